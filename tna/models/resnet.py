"""Spiking ResNet-20 for CIFAR (He et al. 2016 layout: 3 stages x 3 basic blocks).

A block adds its shortcut to the second conv's (batch-normed) output *before* the neuron:

    y = LIF( BN2(conv2( LIF(BN1(conv1(x))) )) + shortcut(x) )

so on hardware the shortcut is a second synapse map into the same neurons (summed currents).
The shortcut is the identity, or conv1x1/2 + BN when the shape changes.
Widths default to (64, 128, 256) as in the SNN literature's ResNet-20; `width` scales them.
"""

from __future__ import annotations

from torch import nn

from tna.models.layers import Fold, ModelOutput, QLinear, Spiking, conv_bn
from tna.neuron import LIF

WIDTHS = (64, 128, 256)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, neuron: LIF | None, out_neuron: LIF | None):
        super().__init__()
        self.conv1 = Fold(*conv_bn(cin, cout, stride=stride))
        self.act1 = Spiking(neuron)
        self.conv2 = Fold(*conv_bn(cout, cout))
        self.shortcut = Fold(*conv_bn(cin, cout, k=1, stride=stride)) if (stride != 1 or cin != cout) else None
        self.act2 = Spiking(out_neuron)

    def forward(self, x):
        y = self.conv2(self.act1(self.conv1(x)))
        return self.act2(y + (x if self.shortcut is None else self.shortcut(x)))


class ResNet20(nn.Module):
    def __init__(self, in_shape, num_classes, neuron: LIF | None, width: float = 1.0, repact: bool = False):
        super().__init__()
        c = in_shape[0]
        w0, w1, w2 = (max(1, round(n * width)) for n in WIDTHS)
        blocks: list[nn.Module] = [Fold(*conv_bn(c, w0)), Spiking(neuron)]
        cin = w0
        plan = [(w0, 1)] * 3 + [(w1, 2)] + [(w1, 1)] * 2 + [(w2, 2)] + [(w2, 1)] * 2
        for i, (cout, stride) in enumerate(plan):
            last = i == len(plan) - 1
            blocks.append(BasicBlock(cin, cout, stride, neuron, None if (repact and last) else neuron))
            cin = cout
        blocks.append(Fold(nn.AdaptiveAvgPool2d(1), nn.Flatten()))
        self.body = nn.Sequential(*blocks)
        self.classifier = QLinear(cin, num_classes)

    def forward(self, x) -> ModelOutput:
        f = self.body(x)
        return ModelOutput(self.classifier(f.mean(0)), f)
