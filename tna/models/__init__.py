"""Model registry: name -> spiking network class, and `build_model` that applies the options."""

from __future__ import annotations

from torch import nn

from tna.errors import TnaError
from tna.models.convnet import ConvNet
from tna.models.convnet1d import ConvNet1d
from tna.models.layers import ModelOutput, set_weight_precision
from tna.models.resnet import ResNet20
from tna.models.vgg import VGG
from tna.neuron import LIF

MODELS = {"convnet": ConvNet, "convnet1d": ConvNet1d, "vgg11": VGG, "resnet20": ResNet20}

__all__ = ["MODELS", "ModelOutput", "build_model"]


def build_model(name: str, in_shape, num_classes: int, *, neuron: LIF | None, width: float = 1.0,
                weights: str = "full", ends: str = "ternary", repact: bool = False) -> nn.Module:
    """neuron=None builds the ANN of the same shape (ReLU), used as a KD/EnOF teacher."""
    if name not in MODELS:
        raise TnaError(f"unknown model '{name}'; choose one of: {', '.join(MODELS)}")
    model = MODELS[name](tuple(in_shape), num_classes, neuron, width=width, repact=repact)
    set_weight_precision(model, weights, ends)
    return model
