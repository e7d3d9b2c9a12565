"""`tna deploy` in both Lava modes on the datasets read from --data-root: tiny CIFAR-100 and CIFAR10-DVS
files in their real on-disk formats (as tests/test_data.py writes them), trained for a moment and
deployed with every spike agreeing (floating_pt with the trained model, fixed_pt with the Loihi-exact
one). CIFAR-10 in fixed point: tests/test_mnist1d.py."""

from __future__ import annotations

import json
import subprocess
import sys

import nir
import numpy as np
import pytest
from test_data import _images, _write_aedat4, _write_py2_pickle  # noqa: E402 (tests/ is on sys.path)

from tna.data import cifar10_dvs


def tna(*args):
    proc = subprocess.run([sys.executable, "-m", "tna.cli", *map(str, args)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError(f"tna {' '.join(map(str, args))} failed:\n{proc.stderr}")
    return proc


def write_cifar100(root, n_train=64, n_test=8):
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, n in (("train", n_train), ("test", n_test)):
        data = _images(n, 0) if name == "test" else rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        _write_py2_pickle(folder / name, {"fine_labels": [i % 100 for i in range(n)],
                                          "coarse_labels": [i % 20 for i in range(n)], "data": data})
    _write_py2_pickle(folder / "meta", {"fine_label_names": [f"c{i}" for i in range(100)],
                                        "coarse_label_names": [f"s{i}" for i in range(20)]})


def write_cifar10_dvs(root, per_class=10, events=4000):
    """Recordings laid out as the extracted figshare release; dense enough to make the network spike."""
    rng = np.random.default_rng(0)
    for name in cifar10_dvs.CLASSES:
        (root / "CIFAR10DVS" / name).mkdir(parents=True)
        for k in range(per_class):
            _write_aedat4(root / "CIFAR10DVS" / name / f"cifar10_{name}_{k}.aedat4",
                          np.sort(rng.integers(0, 1_000_000, events)), rng.integers(0, 128, events),
                          rng.integers(0, 128, events), rng.integers(0, 2, events))


def deployed_exactly(run, samples: int) -> dict:
    tna("deploy", run, "--mode", "both", "--samples", samples)
    v = json.loads((run / "deploy" / "verification.json").read_text())
    for mode in ("float", "fixed"):
        r = v["modes"][mode]
        assert r["spike_agreement"] == 1.0 and r["first_divergence"] is None, (mode, r["first_divergence"])
        assert r["output_agreement"] == 1.0 and r["samples"] == samples
        assert all(x["agreement"] == 1.0 and x["spikes_trained"] == x["spikes_deployed"] for x in r["layers"].values())
    assert sum(x["spikes_trained"] for x in v["modes"]["fixed"]["layers"].values()) > 100  # a live network
    return v


def test_cifar100_run_deploys_exactly_in_both_modes(tmp_path):
    write_cifar100(tmp_path / "data")
    run = tmp_path / "run"
    tna("train", "--dataset", "cifar100", "--data-root", tmp_path / "data", "--strategy", "baseline",
        "--width", "0.25", "-T", "2", "--batch-size", "32", "--epochs", "1", "--val-fraction", "0", "--out", run)
    deployed_exactly(run, 4)
    g = nir.read(run / "deploy" / "model.nir")
    assert float(g.metadata["input_scale"]) == 1 / 64 and g.nodes["readout"].r.shape == (100,)


def test_cifar10_dvs_run_deploys_exactly_in_both_modes(tmp_path):
    pytest.importorskip("aedat", reason="the 'aedat' package decodes .aedat4 (pip install aedat)")
    write_cifar10_dvs(tmp_path / "data")
    run = tmp_path / "run"
    # 90 recordings: 8 short epochs settle the batch-norm statistics, so every layer spikes
    tna("train", "--dataset", "cifar10-dvs", "--data-root", tmp_path / "data", "--strategy", "baseline",
        "--width", "0.25", "-T", "3", "--batch-size", "8", "--epochs", "8", "--val-fraction", "0", "--out", run)
    v = deployed_exactly(run, 4)
    assert all(x["spikes_trained"] > 0 for x in v["modes"]["fixed"]["layers"].values())
    g = nir.read(run / "deploy" / "model.nir")
    assert str(g.metadata["encoding"]) == "events" and float(g.metadata["input_scale"]) == 1.0
