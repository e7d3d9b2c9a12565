"""Building blocks shared by every model: quantisable conv/linear, time folding, the activation.

Tensors carry time first: x[T, B, ...]. Stateless layers (conv, batch norm, pooling) run once on
all T*B frames (`Fold`); only the neuron loops over time (`Spiking`). That "layer-wise
multi-step" order is the fast path for training.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from tna.neuron import LIF, lif_sequence
from tna.quant import ternarize


class ModelOutput(NamedTuple):
    logits: torch.Tensor  # [B, classes]: the readout averaged over time
    features: torch.Tensor  # [T, B, F]: what enters the classifier at each step


class QConv2d(nn.Conv2d):
    """Conv2d whose weight is ternary ({-a,0,+a} per output channel) when `ternary` is set."""

    ternary: bool = False

    def forward(self, x):
        w = ternarize(self.weight) if self.ternary else self.weight
        return self._conv_forward(x, w, self.bias)


class QLinear(nn.Linear):
    """Linear layer whose weight is ternary when `ternary` is set."""

    ternary: bool = False

    def forward(self, x):
        w = ternarize(self.weight) if self.ternary else self.weight
        return F.linear(x, w, self.bias)


class Fold(nn.Sequential):
    """Apply per-frame layers to x[T, B, ...] by folding T into the batch.

    When x is constant over time (direct encoding gives an expanded view, stride 0 along T) the
    layers run once and the result is expanded again: same numbers, T times less work.
    """

    def forward(self, x):
        T, B = x.shape[:2]
        if T > 1 and x.stride(0) == 0:
            y = super().forward(x[0])
            return y.unsqueeze(0).expand(T, *y.shape)
        y = super().forward(x.reshape(T * B, *x.shape[2:]))
        return y.reshape(T, B, *y.shape[1:])


class Spiking(nn.Module):
    """The activation: LIF neurons over time, or ReLU for the ANN twin of a model (neuron=None)."""

    def __init__(self, neuron: LIF | None):
        super().__init__()
        self.neuron = neuron

    def forward(self, x):
        if self.neuron is None:
            return F.relu(x)
        return lif_sequence(x, self.neuron)

    def extra_repr(self):
        return "ReLU" if self.neuron is None else repr(self.neuron)


def conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1) -> list[nn.Module]:
    """Conv (no bias: batch norm follows and folds into the threshold at export) + batch norm."""
    return [QConv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False), nn.BatchNorm2d(cout)]


def quantizable_layers(model: nn.Module) -> list[nn.Module]:
    """The model's weight layers in forward order (construction order in our models)."""
    return [m for m in model.modules() if isinstance(m, (QConv2d, QLinear))]


def set_weight_precision(model: nn.Module, weights: str, ends: str = "ternary") -> None:
    """weights: 'full' | 'ternary'. ends: precision of the first and last layer when ternary
    ('ternary' keeps the whole network integer-deployable; 'full' keeps them full precision)."""
    layers = quantizable_layers(model)
    for i, layer in enumerate(layers):
        is_end = i == 0 or i == len(layers) - 1
        layer.ternary = weights == "ternary" and (not is_end or ends == "ternary")
