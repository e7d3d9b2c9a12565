"""CIFAR-10 / CIFAR-100 from the user's --data-root (they cannot be downloaded on these machines).

torchvision reads the files. Its integrity check computes md5 sums of the full 170 MB archives' contents
on every load, which is slow and rejects the tiny files in the real format that the tests write, so we
check only that the expected files exist and report a missing one with the layout to create.

Normalised values are rounded to multiples of `GRID` (1/64): a fixed-point deployment feeds the first
layer integers, so trained, evaluated and deployed inputs are the same numbers only if the loader
already puts them on that grid (an error of at most 1/128: about half a pixel step, 1/255 / std).
"""

from pathlib import Path

from torchvision import datasets, transforms

from tna.data.spec import DataSpec
from tna.errors import TnaError

GRID = 1 / 64  # normalised |x| <= 2.12 -> integers within +-136, inside fixed point's default +-255

_STATS = {  # per-channel mean and std of the training images
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}


class CIFAR10(datasets.CIFAR10):
    """torchvision's CIFAR10 with md5 None everywhere, which its check_integrity reads as 'file exists'."""

    train_list = [[name, None] for name, _ in datasets.CIFAR10.train_list]
    test_list = [[name, None] for name, _ in datasets.CIFAR10.test_list]
    meta = {**datasets.CIFAR10.meta, "md5": None}


class CIFAR100(datasets.CIFAR100):
    """torchvision's CIFAR100 with md5 None everywhere, as `CIFAR10` above."""

    train_list = [[name, None] for name, _ in datasets.CIFAR100.train_list]
    test_list = [[name, None] for name, _ in datasets.CIFAR100.test_list]
    meta = {**datasets.CIFAR100.meta, "md5": None}


_DATASETS = {
    "cifar10": (CIFAR10, "CIFAR-10", "{data_batch_1..5,test_batch,batches.meta}"),
    "cifar100": (CIFAR100, "CIFAR-100", "{train,test,meta}"),
}


class OnGrid:
    """Round a tensor to multiples of `scale` (a power of two: the result is exact in float32)."""

    def __init__(self, scale: float):
        self.scale = scale

    def __call__(self, x):
        return (x / self.scale).round_() * self.scale

    def __repr__(self):
        return f"OnGrid({self.scale:g})"


def _check_layout(name: str, root: str | None) -> None:
    cls, title, files = _DATASETS[name]
    if root is None:
        raise TnaError(f"{name} needs its files on disk: pass --data-root DIR, with DIR/{cls.base_folder}/{files}")
    folder = Path(root).expanduser() / cls.base_folder
    expected = [n for n, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]
    if not all((folder / n).is_file() for n in expected):
        raise TnaError(
            f"{name} not found under {root}: expected {folder}/{files}; download {title} (python version) "
            f"and extract it there, then pass --data-root {root}"
        )


def load(name: str, *, root: str | None, train_augment: bool = True):
    """(train, test, spec): normalised float images [3,32,32] on the 1/64 grid; train gets crop+flip if
    `train_augment` (before normalising, so padded pixels land on the grid too)."""
    _check_layout(name, root)
    cls = _DATASETS[name][0]
    normalise = [transforms.ToTensor(), transforms.Normalize(*_STATS[name]), OnGrid(GRID)]
    augment = [transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip()] if train_augment else []
    root = str(Path(root).expanduser())
    try:  # torchvision unpickles every batch here: a damaged file fails now, not mid-epoch
        train = cls(root, train=True, transform=transforms.Compose(augment + normalise), download=False)
        test = cls(root, train=False, transform=transforms.Compose(normalise), download=False)
    except Exception as e:  # noqa: BLE001 - pickle raises many types on damaged bytes
        raise TnaError(f"{name} files under {root} are damaged ({type(e).__name__}); extract the "
                       f"{_DATASETS[name][1]} archive again") from None
    spec = DataSpec(name, (3, 32, 32), 100 if name == "cifar100" else 10, "static", None, input_scale=GRID)
    return train, test, spec
