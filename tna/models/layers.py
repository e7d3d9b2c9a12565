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
from tna.quant import QConv2d, QLinear, ternarize

__all__ = ["ModelOutput", "QConv2d", "QLinear", "Fold", "Spiking", "conv_bn", "fold_conv_bn", "quantizable_layers",
           "set_weight_precision"]


class ModelOutput(NamedTuple):
    logits: torch.Tensor  # [B, classes]: the readout averaged over time
    features: torch.Tensor  # [T, B, F]: what enters the classifier at each step


def fold_conv_bn(conv: QConv2d, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """The conv + batch-norm pair as one conv (inference statistics): the weight and bias that
    evaluation and export both use, so the deployed arithmetic is the evaluated arithmetic.

        w' = w_q * gamma / sqrt(var + eps)        b' = beta - mean * gamma / sqrt(var + eps)

    For a ternary conv each output channel's non-zero weights stay equal in magnitude.
    """
    w = ternarize(conv.weight) if conv.ternary else conv.weight
    k = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    b = bn.bias - bn.running_mean * k
    if conv.bias is not None:
        b = b + conv.bias * k
    return w * k.reshape(-1, 1, 1, 1), b


class Fold(nn.Sequential):
    """Apply per-frame layers to x[T, B, ...] by folding T into the batch.

    When x is constant over time (direct encoding gives an expanded view, stride 0 along T) the
    layers run once and the result is expanded again: same numbers, T times less work.
    In evaluation a leading conv + batch norm runs as the single folded conv it deploys as.
    """

    def frames(self, x):
        layers = list(self)
        if not self.training and len(layers) >= 2 and isinstance(layers[0], QConv2d) \
                and isinstance(layers[1], nn.BatchNorm2d):
            conv = layers[0]
            w, b = fold_conv_bn(conv, layers[1])
            x = F.conv2d(x, w, b, conv.stride, conv.padding, conv.dilation, conv.groups)
            layers = layers[2:]
        for layer in layers:
            x = layer(x)
        return x

    def forward(self, x):
        T, B = x.shape[:2]
        if T > 1 and x.stride(0) == 0:
            y = self.frames(x[0])
            return y.unsqueeze(0).expand(T, *y.shape)
        y = self.frames(x.reshape(T * B, *x.shape[2:]))
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


def conv_bn(cin: int, cout: int, k: int | tuple = 3, stride: int | tuple = 1) -> list[nn.Module]:
    """Conv (no bias: batch norm follows and folds into the threshold at export) + batch norm.

    `k` and `stride` may be (h, w) pairs, e.g. (5, 1) for a 1-D convolution along H; padding is k // 2
    per dimension."""
    pad = tuple(n // 2 for n in k) if isinstance(k, tuple) else k // 2
    return [QConv2d(cin, cout, k, stride=stride, padding=pad, bias=False), nn.BatchNorm2d(cout)]


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
