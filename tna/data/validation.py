"""The validation split: a fixed, stratified part of the training split that never trains.

Hyperparameters (alpha, KD and EnOF weights and temperatures, ...) are chosen on it, never on the
test split. The split depends only on the labels and `VALIDATION_SEED`, not on the run's seed, so
every run of a comparison holds out the same samples and paired comparisons stay paired.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split
from torch.utils.data import Dataset, Subset

from tna.errors import TnaError

VALIDATION_SEED = 0


def labels_of(dataset: Dataset) -> np.ndarray:
    """Every label of a dataset without decoding its samples (ours, torchvision's, tonic's, Subsets)."""
    if isinstance(dataset, Subset):
        return labels_of(dataset.dataset)[np.asarray(dataset.indices)]
    for attr in ("y", "targets"):
        if hasattr(dataset, attr):
            return np.asarray(getattr(dataset, attr)).reshape(-1)
    return np.array([int(dataset[i][1]) for i in range(len(dataset))])


def holdout(labels: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (fit, validation) indices; each class keeps its share in both."""
    n_val = round(len(labels) * fraction)
    n_classes = len(np.unique(labels))
    if n_val < n_classes or len(labels) - n_val < n_classes:
        raise TnaError(f"--val-fraction {fraction} of {len(labels)} training samples leaves too few per class "
                       f"({n_classes} classes); use a fraction between {n_classes / len(labels):.3f} and 0.5, "
                       f"or 0 for no validation split")
    fit, val = train_test_split(np.arange(len(labels)), test_size=n_val, stratify=labels,
                                random_state=VALIDATION_SEED)
    return np.sort(fit), np.sort(val)


def split(train: Dataset, plain: Dataset, fraction: float) -> tuple[Dataset, Dataset | None]:
    """(fit, validation) from the training split: `train` as it trains (augmented), `plain` the same
    samples without augmentation (validation is judged like the test split)."""
    if fraction == 0:
        return train, None
    fit, val = holdout(labels_of(plain), fraction)
    return Subset(train, fit.tolist()), Subset(plain, val.tolist())
