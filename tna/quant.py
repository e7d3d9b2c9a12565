"""Ternary weights: {-a, 0, +a} per output channel, trained with a straight-through estimator.

Rule (Ternary Weight Networks, Li et al. 2016), applied to each output channel c of a weight W:

    delta_c = 0.7 * mean(|W_c|)                    # threshold
    t       = sign(W_c) * (|W_c| > delta_c)        # ternary code in {-1, 0, +1}
    a_c     = mean(|W_c| over the non-zero codes)  # scale minimising ||W_c - a_c t||^2 for that t

The forward pass uses a_c * t; the backward pass treats quantisation as the identity (STE), so the
optimiser updates the full-precision shadow weights. Scales are per output channel because a
per-channel factor folds into that channel's threshold at deployment, leaving integer synapses.
`QConv2d` and `QLinear` are the layers that use it (every model builds on them).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

THRESHOLD_FACTOR = 0.7


def ternary_codes(w: torch.Tensor, factor: float = THRESHOLD_FACTOR):
    """Return (codes int8 with w's shape, scale float32 [C_out]) with w ~= scale * codes."""
    flat = w.detach().reshape(w.shape[0], -1)
    delta = factor * flat.abs().mean(dim=1, keepdim=True)
    mask = flat.abs() > delta
    codes = torch.sign(flat) * mask
    n = mask.sum(dim=1).clamp(min=1)
    scale = (flat.abs() * mask).sum(dim=1) / n
    return codes.to(torch.int8).reshape(w.shape), scale.to(torch.float32)


def dequantize(codes: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    shape = (-1,) + (1,) * (codes.dim() - 1)
    return codes.to(scale.dtype) * scale.reshape(shape)


def ternarize(w: torch.Tensor, factor: float = THRESHOLD_FACTOR) -> torch.Tensor:
    """The ternary weight with a straight-through gradient to the shadow weight `w`."""
    codes, scale = ternary_codes(w, factor)
    q = dequantize(codes, scale.to(w.dtype))
    return q + (w - w.detach())  # exactly q forward (w - w is 0.0), identity gradient to w


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


def _weight_layers(model: torch.nn.Module):
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (QConv2d, QLinear))]


def export_ternary(model: torch.nn.Module) -> dict:
    """The deployable integer form of every ternary layer: {layer: {"codes": int8, "scale": [C_out]}}."""
    return {name: dict(zip(("codes", "scale"), ternary_codes(m.weight)))
            for name, m in _weight_layers(model) if m.ternary}


def weight_memory(model: torch.nn.Module) -> dict:
    """Weight storage per layer: 32-bit floats for full precision; for ternary, 2-bit packed codes
    plus one 32-bit scale per output channel (log2(3) = 1.58 bits is the entropy bound)."""
    rows, total, full = [], 0, 0
    for name, m in _weight_layers(model):
        n, c_out = m.weight.numel(), m.weight.shape[0]
        bits = 2 * n + 32 * c_out if m.ternary else 32 * n
        rows.append({"layer": name, "weights": n, "out_channels": c_out, "precision": "ternary" if m.ternary else "full",
                     "bits_per_weight": round(bits / n, 3), "bytes": -(-bits // 8)})
        total += rows[-1]["bytes"]
        full += 4 * n
    return {"layers": rows, "bytes": total, "full_precision_bytes": full,
            "compression": round(full / max(total, 1), 2)}
