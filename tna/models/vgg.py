"""A VGG-11-style spiking CNN for CIFAR: conv3x3 BN LIF stacks with 2x2 average pooling."""

from __future__ import annotations

from torch import nn

from tna.models.layers import Fold, ModelOutput, QLinear, Spiking, conv_bn
from tna.neuron import LIF

VGG11 = (64, "P", 128, "P", 256, 256, "P", 512, 512, "P", 512, 512, "P")


class VGG(nn.Module):
    def __init__(self, in_shape, num_classes, neuron: LIF | None, width: float = 1.0,
                 repact: bool = False, cfg=VGG11):
        super().__init__()
        c, h, w = in_shape
        layers: list[nn.Module] = []
        convs = [v for v in cfg if v != "P"]
        n_conv = 0
        for v in cfg:
            if v == "P":
                layers.append(Fold(nn.AvgPool2d(2)))
                h, w = h // 2, w // 2
                continue
            n_conv += 1
            cout = max(1, round(v * width))
            is_last = n_conv == len(convs)
            layers += [Fold(*conv_bn(c, cout)), Spiking(None if (repact and is_last) else neuron)]
            c = cout
        layers.append(Fold(nn.Flatten()))
        self.body = nn.Sequential(*layers)
        self.classifier = QLinear(c * h * w, num_classes)

    def forward(self, x) -> ModelOutput:
        f = self.body(x)
        return ModelOutput(self.classifier(f.mean(0)), f)
