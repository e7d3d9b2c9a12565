"""The validation split: held out of training, stratified, the same for every run; weights stay finite."""

import numpy as np
import pytest
import torch

from tna.data import load_dataset, validation
from tna.errors import TnaError
from tna.train import _check_finite


def test_holdout_is_stratified_disjoint_and_fixed():
    labels = np.repeat(np.arange(10), 40)
    fit, val = validation.holdout(labels, 0.1)
    assert len(val) == 40 and len(fit) == 360 and not set(fit) & set(val)
    assert np.bincount(labels[val]).tolist() == [4] * 10
    fit2, val2 = validation.holdout(labels, 0.1)
    assert np.array_equal(val, val2)  # independent of any run seed


def test_split_of_mnist5k_never_trains_on_validation_and_validates_unaugmented():
    train, _, _ = load_dataset("mnist5k", train_augment=True)
    plain, _, _ = load_dataset("mnist5k", train_augment=False)
    fit, val = validation.split(train, plain, 0.1)
    assert len(fit) == 3600 and len(val) == 400
    assert not set(fit.indices) & set(val.indices)
    assert np.bincount(validation.labels_of(val)).tolist() == [40] * 10
    x0, _ = val[0]
    assert torch.equal(x0, plain[val.indices[0]][0])  # no random shift
    assert validation.split(train, plain, 0.0) == (train, None)


def test_too_small_a_fraction_is_a_clear_error():
    with pytest.raises(TnaError, match="too few per class"):
        validation.holdout(np.repeat(np.arange(10), 40), 0.01)


def test_non_finite_weights_stop_training():
    model = torch.nn.Linear(3, 2)
    _check_finite(model, 0)
    with torch.no_grad():
        model.weight[0, 0] = float("nan")
    with pytest.raises(TnaError, match="weights became non-finite in epoch 1 .weight.; nothing was saved"):
        _check_finite(model, 0)
