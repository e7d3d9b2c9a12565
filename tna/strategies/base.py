"""The interface every training strategy implements.

A strategy owns the base network (the one that is deployed) and whatever else its objective
needs: a twin that trains alongside it, or a frozen teacher. The training loop only calls
`strategy(x, y)` and back-propagates `.loss`; it never knows which strategy it runs.
"""

from __future__ import annotations

from typing import Callable, ClassVar, NamedTuple

import torch
from torch import nn

Encoder = Callable[[torch.Tensor], torch.Tensor]  # raw batch -> network input [T, B, ...]


class StepOut(NamedTuple):
    loss: torch.Tensor
    logits: torch.Tensor  # the base network's logits, for training accuracy
    logs: dict  # named scalar parts of the loss


class Strategy(nn.Module):
    name: ClassVar[str]
    # Options the base network must be built with (EnOF's RepAct changes the last activation).
    model_options: ClassVar[dict] = {}
    # The `logs` key of the weighted term that pulls the base toward another network (the twin's or
    # a teacher's outputs), exactly as it enters the loss; None when there is none. The training
    # loop reports its share of the loss (`match_share`) so a user sees how strong the coupling is.
    match_term: ClassVar[str | None] = None

    def __init__(self, base: nn.Module, encode: Encoder):
        super().__init__()
        self.base = base
        self.encode = encode

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> StepOut:
        raise NotImplementedError

    def networks(self) -> dict[str, nn.Module]:
        """The networks whose test accuracy is reported each epoch ("base" first)."""
        return {"base": self.base}

    def trainable_state(self) -> dict:
        """State to checkpoint: everything but a frozen teacher (reloaded from its run folder)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("teacher.")}
