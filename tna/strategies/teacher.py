"""A frozen teacher loaded from a finished run folder, with its own input encoding."""

from __future__ import annotations

import torch
from torch import nn

from tna.models import ModelOutput


class Teacher(nn.Module):
    def __init__(self, model: nn.Module, encode):
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        self.encode = encode

    def train(self, mode: bool = True):  # stays in eval mode (batch norm statistics frozen)
        return super().train(False)

    @torch.no_grad()
    def forward(self, x) -> ModelOutput:
        return self.model(self.encode(x))
