"""mnist1d end to end: the offline build on its grid, the 1-D convnet, NIR with (k, 1) kernels, and
`tna deploy` in both modes; and the data's input grid reaching fixed-point deployment (CIFAR)."""

from __future__ import annotations

import json
import os
import pickle
import random
import subprocess
import sys

import nir
import numpy as np
import pytest
import torch

from tna.data import load_dataset, mnist1d
from tna.errors import TnaError


def tna(*args, env=None, check=True):
    proc = subprocess.run([sys.executable, "-m", "tna.cli", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"tna {' '.join(map(str, args))} failed:\n{proc.stderr}")
    return proc


# ---------------------------------------------------------------- the dataset

@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("tna-cache")


@pytest.fixture(scope="module")
def data(cache):
    import requests

    def no_download(*a, **k):
        raise AssertionError("mnist1d tried to download")

    get, requests.get = requests.get, no_download
    try:
        return load_dataset("mnist1d", cache_dir=str(cache))
    finally:
        requests.get = get


def test_builds_offline_with_the_published_shapes(data):
    train, test, spec = data
    assert (spec.input_shape, spec.num_classes, spec.kind, spec.T) == ((1, 40, 1), 10, "static", None)
    assert len(train) == 4000 and len(test) == 1000
    assert set(train.y.tolist()) == set(test.y.tolist()) == set(range(10))
    assert np.bincount(train.y.numpy()).min() > 350  # roughly balanced (the generator shuffles 500 per class)
    x, y = test[0]
    assert x.shape == (1, 40, 1) and x.dtype == torch.float32 and isinstance(y, int)


def test_values_lie_exactly_on_the_grid(data):
    train, test, spec = data
    assert spec.input_scale == mnist1d.GRID == 1 / 32
    for ds in (train, test):
        codes = ds.x / spec.input_scale
        assert torch.equal(codes, codes.round())
        assert codes.abs().max() <= mnist1d.CODE_MAX
    assert 0.9 < float(train.x.std()) < 1.1  # the generator's standardised signals


def test_build_is_deterministic_and_leaves_global_rngs_alone():
    np.random.seed(123)
    random.seed(123)
    a = mnist1d.build()
    draws = (np.random.rand(), random.random())
    np.random.seed(123)
    random.seed(123)
    assert draws == (np.random.rand(), random.random())
    b = mnist1d.build()
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_built_once_then_read_from_cache(data, cache, monkeypatch):
    files = list((cache / "mnist1d").iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz"
    monkeypatch.setattr(mnist1d, "build", None)  # any rebuild would now fail
    train, _, _ = load_dataset("mnist1d", cache_dir=str(cache))
    assert torch.equal(train.x, data[0].x)


def test_unreadable_cache_is_rebuilt(data, tmp_path):
    load_dataset("mnist1d", cache_dir=str(tmp_path))
    path, = (tmp_path / "mnist1d").iterdir()
    path.write_bytes(path.read_bytes()[:500])
    with pytest.warns(UserWarning, match="rebuilding unreadable cache"):
        train, _, _ = load_dataset("mnist1d", cache_dir=str(tmp_path))
    assert torch.equal(train.x, data[0].x) and not list((tmp_path / "mnist1d").glob(".*.tmp"))


# ---------------------------------------------------------------- model and graph

def test_convnet1d_is_1d_convolutions_written_as_conv2d():
    from tna.models import build_model
    from tna.models.layers import QConv2d
    from tna.neuron import LIF

    m = build_model("convnet1d", (1, 40, 1), 10, neuron=LIF(), weights="ternary")
    convs = [c for c in m.modules() if isinstance(c, QConv2d)]
    assert [(c.kernel_size, c.stride, c.padding) for c in convs] == [
        ((5, 1), (1, 1), (2, 0)), ((5, 1), (2, 1), (2, 0)), ((5, 1), (2, 1), (2, 0))]
    out = m.eval()(torch.rand(4, 3, 1, 40, 1))
    assert out.logits.shape == (3, 10) and out.features.shape == (4, 3, 64 * 10)
    with pytest.raises(TnaError, match="convnet1d takes 1-D signals"):
        build_model("convnet1d", (1, 28, 28), 10, neuron=LIF())


def test_non_square_kernels_survive_nir_write_and_typed_read(tmp_path):
    from deploy.graph.from_model import model_to_nir
    from tna.models import build_model
    from tna.neuron import LIF

    m = build_model("convnet1d", (1, 40, 1), 10, neuron=LIF(), width=0.25, weights="ternary")
    g = model_to_nir(m, (1, 40, 1), T=4, dt=1e-3, encoding="direct", input_scale=1 / 32)
    nir.write(tmp_path / "m.nir", g)
    back = nir.read(tmp_path / "m.nir")  # type-checked
    conv = back.nodes["body_2"]
    assert conv.weight.shape[2:] == (5, 1)
    assert list(conv.input_type["input"]) == [8, 40, 1] and list(conv.output_type["output"]) == [16, 20, 1]
    square = nir.Conv2d(input_shape=(9, 7), weight=np.zeros((2, 1, 3, 3)), stride=2, padding=1, dilation=1,
                        groups=1, bias=np.zeros(2))
    assert list(square.output_type["output"]) == [2, 5, 4]  # unchanged for square kernels


# ---------------------------------------------------------------- the grid reaches deployment

def test_input_grid_comes_from_the_checkpoint():
    from tna.build import Shape, input_grid
    from tna.config import TrainConfig

    saved = Shape((1, 40, 1), 10, "static", 1 / 32).__dict__
    assert input_grid(TrainConfig(dataset="mnist1d"), Shape.from_dict(saved)) == 1 / 32
    assert input_grid(TrainConfig(dataset="mnist1d", encoding="rate"), Shape.from_dict(saved)) == 1.0
    old = {"input_shape": [3, 32, 32], "num_classes": 10, "kind": "static"}  # written before the grid was saved
    assert Shape.from_dict(old).input_scale is None
    assert input_grid(TrainConfig(dataset="cifar10"), Shape.from_dict(old)) == 1 / 64
    digits = Shape.from_dict({**old, "input_shape": [1, 28, 28]})
    assert input_grid(TrainConfig(dataset="mnist5k"), digits) == 1 / 255


def _check_all_agree(mode_report):
    assert mode_report["spike_agreement"] == 1.0 and mode_report["first_divergence"] is None
    assert mode_report["output_agreement"] == 1.0
    assert all(r["agreement"] == 1.0 and r["spikes_trained"] == r["spikes_deployed"]
               for r in mode_report["layers"].values())


def test_mnist1d_run_deploys_exactly_in_both_modes(cache, data, tmp_path):
    run = tmp_path / "run"
    env = {"TNA_CACHE": str(cache)}
    tna("train", "--dataset", "mnist1d", "--model", "convnet1d", "--strategy", "baseline", "--train-samples", "512",
        "--width", "0.5", "-T", "4", "--batch-size", "32", "--epochs", "2", "--out", run, env=env)
    assert torch.load(run / "checkpoint.pt", weights_only=True)["shape"]["input_scale"] == 1 / 32
    tna("deploy", run, "--mode", "both", "--samples", "6", env=env)
    v = json.loads((run / "deploy" / "verification.json").read_text())
    _check_all_agree(v["modes"]["float"])
    _check_all_agree(v["modes"]["fixed"])
    assert set(v["modes"]["fixed"]["layers"]) == {"body_1", "body_3", "body_5"}
    assert sum(r["spikes_trained"] for r in v["modes"]["fixed"]["layers"].values()) > 300  # a live network
    g = nir.read(run / "deploy" / "model.nir")
    assert float(g.metadata["input_scale"]) == 1 / 32
    assert all(g.nodes[n].weight.shape[2:] == (5, 1) for n in ("body_0", "body_2", "body_4"))


def _write_tiny_cifar10(root, n_train=40, n_test=10):
    """CIFAR-10 in its on-disk layout (pickled dicts of uint8 rows), random images, labels i % 10."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)

    def batch(path, n):
        with open(path, "wb") as f:
            pickle.dump({"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "labels": [i % 10 for i in range(n)]},
                        f, protocol=2)

    for b in range(1, 6):
        batch(folder / f"data_batch_{b}", n_train)
    batch(folder / "test_batch", n_test)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, f, protocol=2)


def test_cifar10_run_deploys_in_fixed_point(tmp_path):
    """Normalised colour inputs used to miss the 1/64 grid ('input values are not multiples of input_scale')."""
    _write_tiny_cifar10(tmp_path / "data")
    _, test, spec = load_dataset("cifar10", root=str(tmp_path / "data"), train_augment=False)
    x = torch.stack([test[i][0] for i in range(len(test))])
    assert spec.input_scale == 1 / 64 and torch.equal(x * 64, (x * 64).round())
    run = tmp_path / "run"
    tna("train", "--dataset", "cifar10", "--data-root", tmp_path / "data", "--strategy", "baseline",
        "--train-samples", "64", "--width", "0.25", "-T", "2", "--batch-size", "32", "--epochs", "1", "--out", run)
    tna("deploy", run, "--mode", "fixed", "--samples", "3")
    v = json.loads((run / "deploy" / "verification.json").read_text())
    _check_all_agree(v["modes"]["fixed"])
