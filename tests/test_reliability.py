"""Nothing silently wrong: damaged checkpoints are refused, run folders have one writer, bad files say so."""

import fcntl
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tna import checkpoint
from tna.checkpoint import load_checkpoint, save_checkpoint
from tna.config import TrainConfig
from tna.errors import TnaError

TINY = ["--train-samples", "256", "--width", "0.5", "-T", "2", "--batch-size", "32", "--strategy", "baseline"]


def payload(epoch):
    return {"epoch": epoch, "shape": {}, "model": {"w": torch.ones(2)}}


def tna(*args):
    return subprocess.run([sys.executable, "-m", "tna.cli", *map(str, args)], capture_output=True, text=True)


def one_line_error(proc, fragment):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr and fragment in lines[0], proc.stderr


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("rel") / "run"
    proc = tna("train", *TINY, "--epochs", "1", "--out", out)
    assert proc.returncode == 0, proc.stderr
    return out


def test_bit_flips_in_a_checkpoint_are_refused_or_harmless(run, tmp_path):
    """Fuzz: 60 random single-bit flips. Each either fails with the one-line error, or loads the
    identical content (a flip in bytes torch never reads) - never different weights."""
    data = (run / "checkpoint.pt").read_bytes()
    intact = load_checkpoint(run / "checkpoint.pt")
    rng = random.Random(7)
    outcomes = {"refused": 0, "identical": 0}
    for _ in range(60):
        b = bytearray(data)
        b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        path = tmp_path / "flip.pt"
        path.write_bytes(bytes(b))
        try:
            got = load_checkpoint(path)
        except TnaError as e:
            assert "corrupt" in str(e) or "not a tna checkpoint" in str(e)
            outcomes["refused"] += 1
            continue
        assert checkpoint.digest(got) == checkpoint.digest(intact)
        assert all(torch.equal(got["model"][k], v) for k, v in intact["model"].items())
        outcomes["identical"] += 1
    assert outcomes["refused"] >= 50, outcomes


def test_a_changed_weight_is_refused_by_eval_and_deploy(run, tmp_path):
    """The one-bit case that used to evaluate (97.2%) and verify (100%) with damaged weights."""
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text((run / "config.json").read_text())
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    name = next(k for k in ckpt["model"] if k.endswith("weight"))
    ckpt["model"][name].view(-1)[0] = 6.03e37  # digest left as it was written
    torch.save(ckpt, bad / "checkpoint.pt")
    one_line_error(tna("eval", bad), "does not match the digest")
    one_line_error(tna("deploy", bad, "--samples", "2"), "does not match the digest")


def test_a_full_disk_during_save_is_one_line_and_leaves_no_temp(tmp_path, monkeypatch):
    def full(obj, f):
        Path(f).write_bytes(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 376512 vs 376404")

    save_checkpoint(tmp_path / "checkpoint.pt", payload(1))
    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(TnaError, match="the disk is full.*previous checkpoint is kept"):
        save_checkpoint(tmp_path / "checkpoint.pt", payload(2))
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]
    assert load_checkpoint(tmp_path / "checkpoint.pt")["epoch"] == 1


def test_a_checkpoint_with_only_the_marker_is_refused(tmp_path):
    torch.save({"format": checkpoint.FORMAT, "version": checkpoint.LEGACY}, tmp_path / "checkpoint.pt")
    with pytest.raises(TnaError, match="is incomplete .no shape, model, epoch."):
        load_checkpoint(tmp_path / "checkpoint.pt")


def test_stale_temp_files_are_cleaned_by_the_next_save(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a writer that is gone
    (tmp_path / f".checkpoint.pt.tmp{dead.pid}").write_bytes(b"left by a killed run")
    save_checkpoint(tmp_path / "checkpoint.pt", payload(1))
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_a_run_folder_has_one_writer(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    with open(out / ".lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another process writing this run
        one_line_error(tna("train", *TINY, "--epochs", "1", "--out", out), "being written by another tna process")
    assert not (out / "metrics.json").exists() and not (out / "checkpoint.pt").exists()


@pytest.mark.parametrize("content,fragment", [
    ("[1, 2]", "must be a JSON object"),
    ('{"epochs": "2"}', "'epochs' must be int, found '2'"),
    ('{"alpha": NaN}', "--alpha must be a finite number"),
])
def test_malformed_config_files(tmp_path, content, fragment):
    cfg = tmp_path / "config.json"
    cfg.write_text(content)
    one_line_error(tna("train", "--config", cfg, "--out", tmp_path / "run"), fragment)
    assert not (tmp_path / "run").exists()


def test_config_types_accept_what_the_tool_writes():
    d = TrainConfig(train_samples=5, teacher="x").to_dict()
    assert TrainConfig.from_dict(json.loads(json.dumps(d))) == TrainConfig(train_samples=5, teacher="x")
