"""What every loader returns besides its samples: the data's spec (shape, classes, kind, input grid),
and the in-memory dataset most loaders use. The loaders import this module, and `tna.data`
imports the loaders (on demand): so both depend on it, and it on neither."""

from dataclasses import dataclass

import torch
from torch.utils.data import Dataset


@dataclass(frozen=True)
class DataSpec:
    """What a model needs to know about its input, independent of where the samples come from."""

    name: str
    input_shape: tuple  # (C, H, W) of ONE time step as it enters the network
    num_classes: int
    kind: str  # "static": an image, encoded to T steps later; "events": already T spike frames
    T: int | None  # events: number of frames produced; static: None
    # the grid every sample's values lie on exactly (x = integer * input_scale): the data decides it, so
    # training, evaluation and fixed-point deployment all see the same numbers (events: 1.0)
    input_scale: float


class ArrayDataset(Dataset):
    """Samples held in memory as one tensor; items come out as float32 so storage can stay uint8."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, transform=None):
        self.x, self.y, self.transform = x, y, transform

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i):
        x = self.x[i].to(torch.float32)
        if self.transform is not None:
            x = self.transform(x)
        return x, int(self.y[i])
