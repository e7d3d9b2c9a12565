"""Datasets by name, all behind one call, so the trainer and the deployer never care where data comes from.

`load_dataset(name)` returns `(train, test, spec)`. Static datasets yield `(float32 [C,H,W], int)` and are
turned into T time steps later by `tna.data.encoding`; event datasets yield binary spike frames
`(float32 [T,C,H,W], int)` with C=2 polarities. Loaders are imported on demand so that asking for MNIST
does not pay for torchvision's or tonic's import time.
"""

import os
from pathlib import Path

from torch.utils.data import Dataset

from tna.data.spec import ArrayDataset, DataSpec
from tna.errors import TnaError

__all__ = ["DATASETS", "ArrayDataset", "DataSpec", "default_cache_dir", "load_dataset"]

DATASETS = ("mnist5k", "mnist5k-dvs", "mnist1d", "cifar10", "cifar100", "cifar10-dvs")


def default_cache_dir() -> Path:
    """`$TNA_CACHE` if set, else `~/.cache/tna`: built data (simulated events, frames) lives here."""
    return Path(os.environ.get("TNA_CACHE") or "~/.cache/tna").expanduser()


def load_dataset(
    name: str,
    *,
    T: int = 8,
    root: str | None = None,
    cache_dir: str | None = None,
    train_augment: bool = True,
) -> tuple[Dataset, Dataset, DataSpec]:
    """Returns (train, test, spec). `T` only matters for event datasets; `root` is the user's --data-root
    (needed by the CIFAR sets, which cannot be downloaded here); `cache_dir` holds what we build."""
    if name not in DATASETS:
        raise TnaError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}")
    if not isinstance(T, int) or T < 1:
        raise TnaError(f"T must be a positive integer number of time steps, got {T!r}")
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    if name == "mnist5k":
        from tna.data import mnist5k

        return mnist5k.load(train_augment=train_augment)
    if name == "mnist5k-dvs":
        from tna.data import mnist5k_dvs

        return mnist5k_dvs.load(T=T, cache_dir=cache)
    if name == "mnist1d":
        from tna.data import mnist1d

        return mnist1d.load(cache_dir=cache)
    if name in ("cifar10", "cifar100"):
        from tna.data import cifar

        return cifar.load(name, root=root, train_augment=train_augment)
    from tna.data import cifar10_dvs

    return cifar10_dvs.load(T=T, root=root)
