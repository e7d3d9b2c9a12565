"""`tna train` / `tna eval` end to end, in subprocesses, as a user runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tna.build import load_trained
from tna.config import TrainConfig

TINY = ["--train-samples", "1024", "--width", "0.5", "-T", "4", "--batch-size", "32"]


def tna(*args, check=True, **kw):
    proc = subprocess.run([sys.executable, "-m", "tna.cli", *map(str, args)], capture_output=True, text=True, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"tna {' '.join(map(str, args))} failed:\n{proc.stderr}")
    return proc


def weights(run_dir) -> dict:
    return torch.load(Path(run_dir) / "checkpoint.pt", weights_only=True)["model"]


def test_train_writes_a_complete_run_folder_and_eval_reproduces_it(tmp_path):
    run = tmp_path / "run"
    tna("train", "--strategy", "tna", "--epochs", "2", *TINY, "--out", run)
    assert {p.name for p in run.iterdir()} >= {"config.json", "checkpoint.pt", "epochs.jsonl", "metrics.json"}
    m = json.loads((run / "metrics.json").read_text())
    assert m["strategy"] == "tna" and m["weights"] == "ternary" and m["dataset"] == "mnist5k" and m["epochs"] == 2
    assert 0.3 < m["test_accuracy"] <= 1 and 0.3 < m["twin_test_accuracy"] <= 1
    assert m["weight_memory"]["compression"] > 10
    assert len((run / "epochs.jsonl").read_text().splitlines()) == 2
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["alpha"] == TrainConfig().alpha and cfg["train_samples"] == 1024 and cfg["resolved"]["num_classes"] == 10
    assert cfg["mse_reduction"] == "batchmean" and cfg["val_fraction"] == 0.1

    # the coupling is visible: every epoch row has the loss parts and the matching term's share
    rows = [json.loads(line) for line in (run / "epochs.jsonl").read_text().splitlines()]
    for row in rows:
        assert row["train_loss"] == pytest.approx(row["ce"] + row["ce_twin"] + row["alpha_mse"], rel=1e-5)
        assert row["alpha_mse"] == pytest.approx(cfg["alpha"] * row["mse"], rel=1e-5) and row["mse"] > 0
        assert row["match_share"] == pytest.approx(row["alpha_mse"] / row["train_loss"], rel=1e-6)
        assert 0.3 < row["val_accuracy"] <= 1 and 0.3 < row["twin_val_accuracy"] <= 1
    assert m["match_share"] == rows[-1]["match_share"] and m["val_accuracy"] == rows[-1]["val_accuracy"]

    # the checkpoint carries the deployable integer form, consistent with the saved weights
    trained = load_trained(run)
    from tna.quant import export_ternary
    stored = trained.checkpoint["ternary"]
    for name, d in export_ternary(trained.model).items():
        assert torch.equal(stored[name]["codes"], d["codes"]) and torch.equal(stored[name]["scale"], d["scale"])
        assert set(d["codes"].unique().tolist()) <= {-1, 0, 1}
    assert not any(k.startswith("twin") for k in trained.checkpoint["model"])  # only the base is kept

    out = tna("eval", run).stdout
    assert json.loads((run / "eval.json").read_text())["test_accuracy"] == m["test_accuracy"]
    assert f"{m['test_accuracy']:.2%}" in out


def test_resume_after_interrupt_ends_with_identical_weights(tmp_path):
    args = ["--strategy", "baseline", "--epochs", "3", *TINY, "--seed", "3"]
    tna("train", *args, "--out", tmp_path / "straight")

    run = tmp_path / "interrupted"
    proc = subprocess.Popen([sys.executable, "-m", "tna.cli", "train", *args, "--out", str(run)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    history = run / "epochs.jsonl"
    deadline = time.time() + 300
    while not (history.is_file() and history.read_text().count("\n") >= 1):
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read() if proc.poll() else "timeout"
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)  # mid-way through epoch 2
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "tna train --resume" in err and not (run / "metrics.json").exists()
    assert torch.load(run / "checkpoint.pt", weights_only=True)["epoch"] < 3

    tna("train", "--resume", run)
    a, b = weights(tmp_path / "straight"), weights(run)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((run / "metrics.json").read_text())["test_accuracy"] == \
        json.loads((tmp_path / "straight" / "metrics.json").read_text())["test_accuracy"]


def test_two_process_ddp_ranks_agree(tmp_path):
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "tna.cli", "train", "--strategy", "tna", "--epochs", "1", *TINY, "--out", str(run)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    m = json.loads((run / "metrics.json").read_text())
    assert m["world_size"] == 2 and len(m["rank_checksums"]) == 2
    assert m["ranks_agree"] and m["rank_checksums"][0] == m["rank_checksums"][1]
    assert json.loads((run / "config.json").read_text())["resolved"]["world_size"] == 2


def _assert_user_error(proc, *fragments):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for f in fragments:
        assert f in lines[0], lines[0]


@pytest.mark.parametrize("args,fragments", [
    (["--dataset", "imagenet"], ["unknown dataset 'imagenet'", "mnist5k"]),
    (["--model", "alexnet"], ["unknown model 'alexnet'", "resnet20"]),
    (["--strategy", "dropout"], ["unknown strategy 'dropout'", "tna"]),
    (["--weights", "binary"], ["unknown weights 'binary'", "ternary"]),
    (["--strategy", "kd"], ["needs --teacher RUN_DIR"]),
    (["--strategy", "kd", "--teacher", "/nonexistent/run"], ["/nonexistent/run", "does not exist"]),
    (["--epochs", "0"], ["--epochs must be positive"]),
    (["--dataset", "cifar10"], ["--data-root"]),
    (["--alpha", "nan"], ["--alpha must be a finite number"]),
    (["--alpha", "-1"], ["--alpha must be zero or positive"]),
    (["--surrogate-alpha", "nan"], ["--surrogate-alpha must be a finite number"]),
    (["--kd-temperature", "0"], ["--kd-temperature must be positive"]),
    (["--kd-weight", "nan"], ["--kd-weight must be a finite number"]),
    (["--kd-weight", "1.5"], ["--kd-weight must lie in [0, 1]"]),
    (["--width", "inf"], ["--width must be a finite number"]),
    (["--weight-decay", "-1"], ["--weight-decay must be zero or positive"]),
    (["--workers", "-1"], ["--workers must be zero or positive"]),
    (["--train-samples", "0"], ["--train-samples must be at least 1"]),
    (["--train-samples", "-100000"], ["--train-samples must be at least 1"]),
    (["--val-fraction", "0.7"], ["--val-fraction must lie in [0, 0.5)"]),
    (["--mse-reduction", "max"], ["unknown mse-reduction 'max'", "batchmean"]),
])
def test_bad_options_fail_in_one_line_and_write_nothing(tmp_path, args, fragments):
    run = tmp_path / "run"
    _assert_user_error(tna("train", *TINY, *args, "--out", run, check=False), *fragments)
    assert not run.exists()


def test_unwritable_run_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    _assert_user_error(tna("train", *TINY, "--epochs", "1", "--out", blocker / "run", check=False), "cannot write")


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    run = tmp_path_factory.mktemp("finished") / "run"
    tna("train", "--strategy", "baseline", "--epochs", "1", *TINY, "--out", run)
    return run


def test_finished_run_is_never_overwritten(finished):
    before = (finished / "checkpoint.pt").read_bytes()
    _assert_user_error(tna("train", *TINY, "--out", finished, check=False), "already holds a finished run")
    assert (finished / "checkpoint.pt").read_bytes() == before


def test_corrupt_and_foreign_checkpoints(finished, tmp_path):
    for name, content in [("corrupt", None), ("foreign", {"state": torch.zeros(2)})]:
        run = tmp_path / name
        run.mkdir()
        (run / "config.json").write_text((finished / "config.json").read_text())
        if content is None:
            (run / "checkpoint.pt").write_bytes((finished / "checkpoint.pt").read_bytes()[:5000])
        else:
            torch.save(content, run / "checkpoint.pt")
        expected = "corrupt or not a checkpoint" if content is None else "not a tna checkpoint"
        _assert_user_error(tna("eval", run, check=False), expected)
        _assert_user_error(tna("train", "--resume", run, check=False), expected)
    _assert_user_error(tna("eval", tmp_path / "nope", check=False), "does not exist")


def test_kd_and_enof_train_from_an_ann_teacher(tmp_path):
    ann = tmp_path / "ann"
    tna("train", "--neuron", "relu", "--weights", "full", "--strategy", "baseline", "--epochs", "1", *TINY, "--out", ann)
    for strategy in ("kd", "enof"):
        run = tmp_path / strategy
        tna("train", "--strategy", strategy, "--teacher", ann, "--epochs", "2", *TINY, "--out", run)
        assert json.loads((run / "metrics.json").read_text())["test_accuracy"] > 0.3
        assert not any(k.startswith("teacher") for k in weights(run))


def test_nan_loss_stops_with_a_clear_error_and_no_metrics(tmp_path):
    run = tmp_path / "run"
    proc = tna("train", "--strategy", "baseline", "--weights", "full", "--lr", "1e38", "--epochs", "2", *TINY,
               "--out", run, check=False)
    _assert_user_error(proc, "loss became", "lower --lr")
    assert not (run / "metrics.json").exists()


def test_help_teaches():
    out = tna("train", "--help").stdout
    for word in ("--strategy", "baseline | kd | enof | tna", "--teacher", "--resume", "torchrun", "examples:"):
        assert word in out
