"""How a batch becomes T time steps of network input, in time-major layout [T, B, C, H, W].

"direct" feeds the analog image at every step as an expanded view (stride 0 along T), so a model can
detect that and compute its first layer once; "rate" draws Bernoulli spikes with p = pixel in [0, 1].
Event data already has its T frames and is only moved to time-major order.
"""

import torch

from tna.errors import TnaError

ENCODINGS = ("direct", "rate")


def encode(
    x: torch.Tensor,
    T: int,
    kind: str,
    method: str = "direct",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """static: [B,C,H,W] -> [T,B,C,H,W]; events: [B,T,C,H,W] -> [T,B,C,H,W] (T and method unused)."""
    if method not in ENCODINGS:
        raise TnaError(f"unknown encoding {method!r}: choose one of {', '.join(ENCODINGS)}")
    if kind == "events":
        return x.transpose(0, 1)
    if kind != "static":
        raise TnaError(f"unknown data kind {kind!r}: expected 'static' or 'events'")
    steps = x.unsqueeze(0).expand(T, *x.shape)
    if method == "direct":
        return steps
    return torch.bernoulli(steps.clamp(0, 1), generator=generator)
