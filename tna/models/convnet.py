"""The demo model: a small spiking CNN for 28x28 digits (and 34x34 events).

    conv3x3(C->16) BN LIF -> conv3x3/2(16->32) BN LIF -> conv3x3/2(32->32) BN LIF -> flatten -> linear readout

Strided convolutions instead of pooling keep every layer a plain synapse map on hardware.
"""

from __future__ import annotations

from torch import nn

from tna.models.layers import Fold, ModelOutput, QLinear, Spiking, conv_bn
from tna.neuron import LIF


class ConvNet(nn.Module):
    def __init__(self, in_shape, num_classes, neuron: LIF | None, width: float = 1.0, repact: bool = False):
        super().__init__()
        c, h, w = in_shape
        c1, c2, c3 = (max(1, round(n * width)) for n in (16, 32, 32))
        last = Spiking(None) if repact else Spiking(neuron)  # EnOF's RepAct: last LIF -> ReLU
        self.body = nn.Sequential(
            Fold(*conv_bn(c, c1)), Spiking(neuron),
            Fold(*conv_bn(c1, c2, stride=2)), Spiking(neuron),
            Fold(*conv_bn(c2, c3, stride=2)), last,
            Fold(nn.Flatten()),
        )
        h, w = (h + 1) // 2, (w + 1) // 2
        h, w = (h + 1) // 2, (w + 1) // 2
        self.classifier = QLinear(c3 * h * w, num_classes)

    def forward(self, x) -> ModelOutput:
        f = self.body(x)
        return ModelOutput(self.classifier(f.mean(0)), f)
