"""`tna deploy` end to end: a trained run -> NIR -> Lava (float and fixed) -> verification.json."""

from __future__ import annotations

import json
import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch

TINY = ["--train-samples", "1024", "--width", "0.5", "-T", "4", "--batch-size", "32", "--epochs", "2"]


def tna(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "tna.cli", *map(str, args)], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"tna {' '.join(map(str, args))} failed:\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    run = tmp_path_factory.mktemp("deploy") / "run"
    tna("train", "--strategy", "tna", *TINY, "--out", run)
    proc = tna("deploy", run, "--mode", "both", "--samples", "6")
    return run, proc


def test_fixed_point_agrees_exactly_and_float_within_target(deployed):
    run, proc = deployed
    v = json.loads((run / "deploy" / "verification.json").read_text())
    assert v["mode"] == "both" and set(v["modes"]) == {"float", "fixed"}
    fixed, flt = v["modes"]["fixed"], v["modes"]["float"]
    assert fixed["spike_agreement"] == 1.0 and fixed["first_divergence"] is None
    assert all(r["agreement"] == 1.0 and r["spikes_trained"] == r["spikes_deployed"] for r in fixed["layers"].values())
    assert flt["spike_agreement"] >= 0.9999 and flt["output_agreement"] == 1.0
    assert fixed["samples"] == flt["samples"] == 6
    assert sum(r["spikes_trained"] for r in fixed["layers"].values()) > 100  # a live network
    assert set(fixed["layers"]) == {"body_1", "body_3", "body_5"}
    assert "all layers" in proc.stdout and (run / "deploy" / "verification.txt").is_file()
    assert fixed["lava"]["seconds_per_sample"] > 0


def test_deployed_spikes_are_the_golden_spikes(deployed):
    run, _ = deployed
    with h5py.File(run / "deploy" / "reference.h5") as ref, h5py.File(run / "deploy" / "lava_fixed.h5") as lava:
        for name in ref.attrs["layers"]:
            np.testing.assert_array_equal(ref[f"loihi/spikes/{name}"][:], lava[f"spikes/{name}"][:])
        assert ref["input"].shape[:2] == (6, 4)


def test_round_trip_of_the_exported_file_matches_the_trained_spikes(deployed):
    import nir

    from deploy.graph.executor import run as run_float

    run, _ = deployed
    g = nir.read(run / "deploy" / "model.nir")
    with h5py.File(run / "deploy" / "reference.h5") as ref:
        x = torch.from_numpy(ref["input"][:]).transpose(0, 1)
        spikes, _ = run_float(g, x.contiguous())
        for name, s in spikes.items():
            np.testing.assert_array_equal(s.transpose(0, 1).numpy().astype(np.uint8), ref[f"float/spikes/{name}"][:])


def test_min_agreement_gate_fails_with_exit_code_3(deployed):
    run, _ = deployed
    proc = tna("deploy", run, "--mode", "fixed", "--samples", "2", "--min-agreement", "1.5", check=False)
    assert proc.returncode == 3 and "below the required agreement" in proc.stderr


def test_loihi_arithmetic_evaluation(deployed):
    run, _ = deployed
    out = tna("eval", run, "--arithmetic", "loihi").stdout
    loihi = json.loads((run / "eval-loihi.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    assert loihi["arithmetic"] == "loihi" and abs(loihi["test_accuracy"] - metrics["test_accuracy"]) < 0.05
    assert loihi["synapses"] == "loihi" and "loihi arithmetic, loihi synapses" in out
    # the same network with unconstrained conv integers (Lava only): its own file, close accuracy
    tna("eval", run, "--arithmetic", "loihi", "--synapses", "wide")
    wide = json.loads((run / "eval-loihi-wide.json").read_text())
    assert wide["synapses"] == "wide" and abs(wide["test_accuracy"] - loihi["test_accuracy"]) < 0.05
    # what was deployed says how its synapses are stored
    import nir

    assert str(nir.read(run / "deploy" / "model.nir").metadata["synapses"]) == "loihi"


def test_report_counts_trained_and_deployed_alike(deployed):
    run, _ = deployed
    # the gate test above re-exported 2 samples and ran fixed only: lava_float.h5 (6 samples) is stale
    proc = tna("report", run, check=False)
    if proc.returncode != 0:
        assert proc.returncode == 2 and "lava_float.h5 was run on another sample set" in proc.stderr, proc.stderr
        assert "rerun 'tna deploy" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
        tna("deploy", run, "--mode", "both", "--samples", "6")
    out = tna("report", run).stdout
    r = json.loads((run / "report" / "report.json").read_text())
    fixed = r["accounts"]["lava_fixed"]
    assert fixed["totals"]["synops"] > 0 and fixed["samples"] == r["accounts"]["trained_loihi"]["samples"]
    assert r["difference"]["lava_fixed - trained_loihi"] == {"spikes": 0.0, "synops": 0.0, "neuron_updates": 0.0}
    assert r["hardware_fit"]["loihi2"]["fits"] and r["hardware_fit"]["lava-fixed"]["fits"]
    assert r["memory"]["totals"]["ternary_2bit_bytes"] < r["memory"]["totals"]["fp32_bytes"] / 8
    assert (run / "report" / "spikes.png").stat().st_size > 1000 and "ESTIMATES" in out


def test_deploy_refuses_a_relu_model(tmp_path):
    run = tmp_path / "enof-like"
    tna("train", "--neuron", "relu", "--weights", "full", "--strategy", "baseline", *TINY, "--epochs", "1", "--out", run)
    proc = tna("deploy", run, check=False)
    assert proc.returncode == 2 and "ReLU" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_fine_tuning_in_the_deployed_arithmetic(deployed, tmp_path):
    """--arithmetic loihi trains on the exact fixed-point outputs; its reported accuracy is the
    deployed one, the same number `tna eval --arithmetic loihi` measures on the result."""
    run, _ = deployed
    ft = tmp_path / "ft"
    tna("train", "--init", run, "--arithmetic", "loihi", "--strategy", "baseline", "--epochs", "1",
        "--train-samples", "128", "--width", "0.5", "-T", "4", "--lr", "1e-4", "--out", ft)
    m = json.loads((ft / "metrics.json").read_text())
    tna("eval", ft, "--arithmetic", "loihi")
    assert json.loads((ft / "eval-loihi.json").read_text())["test_accuracy"] == m["test_accuracy"]
    before = torch.load(run / "checkpoint.pt", weights_only=True)["model"]
    after = torch.load(ft / "checkpoint.pt", weights_only=True)["model"]
    assert any(not torch.equal(before[k], after[k]) for k in before if k.endswith("weight"))
    assert all(torch.equal(before[k], after[k]) for k in before if "running_" in k)  # batch norm frozen


def test_loihi_arithmetic_needs_spiking_neurons(tmp_path):
    proc = tna("train", "--arithmetic", "loihi", "--neuron", "relu", "--out", tmp_path / "x", check=False)
    assert proc.returncode == 2 and "needs spiking neurons" in proc.stderr
