"""A spiking CNN for 1-D signals (mnist1d): the demo convnet's recipe along one axis.

    conv5(C->32) BN LIF -> conv5/2(32->64) BN LIF -> conv5/2(64->64) BN LIF -> flatten -> linear readout

A signal of length L arrives as (C, L, 1) and every convolution is a Conv2d with a (k, 1) kernel,
stride (s, 1) and padding (k // 2, 0): the graph stays plain NIR Conv2d, which Lava's Conv runs
unchanged. Kernel 5 and two strided layers give each last-layer neuron a receptive field of 17 of
40 samples (the readout sees all 10 positions); strides instead of pooling, as in `convnet`.
"""

from __future__ import annotations

from torch import nn

from tna.errors import TnaError
from tna.models.layers import Fold, ModelOutput, QLinear, Spiking, conv_bn
from tna.neuron import LIF

KERNEL = 5
CHANNELS = (32, 64, 64)


class ConvNet1d(nn.Module):
    def __init__(self, in_shape, num_classes, neuron: LIF | None, width: float = 1.0, repact: bool = False):
        super().__init__()
        c, length, w = in_shape
        if w != 1:
            raise TnaError(f"convnet1d takes 1-D signals shaped (C, L, 1), this dataset gives {tuple(in_shape)}; "
                           f"use --model convnet for images")
        c1, c2, c3 = (max(1, round(n * width)) for n in CHANNELS)
        last = Spiking(None) if repact else Spiking(neuron)  # EnOF's RepAct: last LIF -> ReLU
        k = (KERNEL, 1)
        self.body = nn.Sequential(
            Fold(*conv_bn(c, c1, k)), Spiking(neuron),
            Fold(*conv_bn(c1, c2, k, stride=(2, 1))), Spiking(neuron),
            Fold(*conv_bn(c2, c3, k, stride=(2, 1))), last,
            Fold(nn.Flatten()),
        )
        length = (length + 1) // 2
        length = (length + 1) // 2
        self.classifier = QLinear(c3 * length, num_classes)

    def forward(self, x) -> ModelOutput:
        f = self.body(x)
        return ModelOutput(self.classifier(f.mean(0)), f)
