"""Damaged and impossible deployment files (issue 11): every file deploy writes carries a content
digest, the one reader refuses non-finite or impossible values, outputs never overwrite inputs,
and a read-only folder fails before any work. A bounded fuzz: random byte flips and value changes
in model.nir and reference.h5 are either refused (exit 2, one line) or change nothing."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from deploy import files
from tna import runs
from tna.errors import TnaError

REPO = Path(__file__).resolve().parents[1]
LAVA_PY = REPO / ".venv-lava" / "bin" / "python"
TINY = ["--strategy", "baseline", "--train-samples", "256", "--width", "0.5", "-T", "4", "--batch-size", "64",
        "--epochs", "1"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
FLIPS = 40  # random byte flips per file (readers only: fast)


def py(*args, python=sys.executable, prefix=(), env=None):
    return subprocess.run([*prefix, str(python), *map(str, args)], capture_output=True, text=True,
                          env={**ENV, **(env or {})}, cwd=REPO)


def one_line_refusal(proc):
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-2000:]
    return lines[0]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny trained run, exported once (3 reference samples), in a folder others may read."""
    top = Path(tempfile.mkdtemp(prefix="tna-fuzz-", dir="/tmp"))
    os.chmod(top, 0o755)
    r = top / "run"
    proc = py("-m", "tna.cli", "train", *TINY, "--out", r)
    assert proc.returncode == 0, proc.stderr
    proc = py("deploy/export_nir.py", r, "--samples", "3")
    assert proc.returncode == 0, proc.stderr
    yield r
    shutil.rmtree(top, ignore_errors=True)


def copy(run, tmp_path):
    d = tmp_path / "d"
    shutil.copytree(runs.deploy_dir(run), d)
    return d / runs.MODEL_NIR, d / runs.REFERENCE


def graph_values(path) -> dict:
    g = files.read_graph(path)
    out = {}
    for name, node in g.nodes.items():
        for k, v in vars(node).items():
            if isinstance(v, np.ndarray):
                out[f"{name}/{k}"] = v
    out["edges"] = sorted(map(tuple, g.edges))
    out["meta"] = {k: str(v) for k, v in g.metadata.items()}
    return out


def reference_values(path) -> dict:
    r = files.read_reference(path)
    return {"input": r["input"], "labels": r["labels"], "layers": r["layers"],
            **{f"{g}/logits": r[g]["logits"] for g in files.GOLDEN},
            **{f"{g}/{k}": v for g in files.GOLDEN for k, v in r[g]["spikes"].items()}}


def same(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray):
        return a.shape == np.shape(b) and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)
    return a == b


def set_value(path, name, value, reseal):
    with h5py.File(path, "a") as f:
        ds = f[name]
        ds[...] = value
    if reseal:  # an intact file with an impossible value: the reader's value checks must refuse it
        files.seal(path)


# ---- 1. digests ------------------------------------------------------------------------------------------
def test_every_deploy_file_carries_a_digest_that_matches(run, tmp_path):
    nir_path, ref_path = copy(run, tmp_path)
    for p in (nir_path, ref_path):
        with h5py.File(p) as f:
            assert files.content_digest(f) == f.attrs[files.DIGEST]
    with h5py.File(ref_path) as f:
        a = f.attrs
        assert a["samples"] == 3 and len(a["checkpoint_sha256"]) == 64 and a["written"].endswith("Z")
        assert a["checkpoint_sha256"] == runs.sha256_file(run / runs.CHECKPOINT)
        assert a["model_digest"] == files.file_digest(nir_path)


@pytest.mark.parametrize("name,value", [("node/nodes/classifier/bias", 0.0), ("node/nodes/body_0/weight", 0.5),
                                        ("node/nodes/body_1/v_threshold", 2.0)])
def test_a_changed_value_is_refused_by_the_digest(run, tmp_path, name, value):
    nir_path, _ = copy(run, tmp_path)
    set_value(nir_path, name, value, reseal=False)
    with pytest.raises(TnaError, match="is corrupt: its content does not match the digest"):
        files.read_graph(nir_path)


def test_a_changed_reference_is_refused(run, tmp_path):
    _, ref_path = copy(run, tmp_path)
    set_value(ref_path, "loihi/logits", 1.0, reseal=False)
    for read in (files.read_reference, files.read_inputs, lambda p: files.open_h5(p, "reference")):
        with pytest.raises(TnaError, match="is corrupt"):
            read(ref_path)


def test_a_graph_without_digest_but_tna_format_is_refused(run, tmp_path):
    nir_path, _ = copy(run, tmp_path)
    with h5py.File(nir_path, "a") as f:
        del f.attrs[files.DIGEST]
    with pytest.raises(TnaError, match="no content digest"):
        files.read_graph(nir_path)


# ---- 2. impossible values ----------------------------------------------------------------------------
IMPOSSIBLE = [("node/nodes/body_0/weight", np.nan, "NaN or infinite"), ("node/nodes/body_2/bias", np.inf, "NaN or infinite"),
              ("node/nodes/readout/r", np.inf, "NaN or infinite"), ("node/nodes/body_1/tau", np.nan, "NaN or infinite"),
              ("node/nodes/body_3/v_threshold", 0.0, "must be positive"),
              ("node/nodes/body_5/v_threshold", -1.0, "must be positive"),
              ("node/nodes/body_1/tau", 0.0, "must be positive"), ("node/metadata/dt", np.inf, "NaN or infinite"),
              ("node/metadata/input_scale", 0.0, "must be positive")]


@pytest.mark.parametrize("name,value,match", IMPOSSIBLE)
def test_impossible_graph_values_are_refused_in_one_line(run, tmp_path, name, value, match):
    nir_path, _ = copy(run, tmp_path)
    set_value(nir_path, name, value, reseal=True)
    with pytest.raises(TnaError, match=match) as e:
        files.read_graph(nir_path)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("value,match", [(np.inf, "NaN or infinite"), (np.nan, "NaN or infinite")])
def test_impossible_inputs_are_refused(run, tmp_path, value, match):
    _, ref_path = copy(run, tmp_path)
    set_value(ref_path, "input", value, reseal=True)
    for read in (files.read_inputs, files.read_reference):
        with pytest.raises(TnaError, match="not finite|NaN or infinite"):
            read(ref_path)


def test_empty_or_non_numeric_inputs_are_refused(run, tmp_path):
    _, ref_path = copy(run, tmp_path)
    with h5py.File(ref_path, "a") as f:
        x = f["input"][:0]
        del f["input"]
        f.create_dataset("input", data=x)
    files.seal(ref_path)
    with pytest.raises(TnaError, match="no samples"):
        files.read_inputs(ref_path)
    with h5py.File(ref_path, "a") as f:
        del f["input"]
        f.create_dataset("input", data=np.array([[["a"]]], dtype="S1"))
    files.seal(ref_path)
    with pytest.raises(TnaError, match="not numbers"):
        files.read_inputs(ref_path)


# ---- 5. the bounded fuzz: readers ----------------------------------------------------------------------
@pytest.mark.parametrize("which", ["model", "reference"])
def test_random_byte_flips_are_refused_or_change_nothing(run, tmp_path, which):
    nir_path, ref_path = copy(run, tmp_path)
    path, values = (nir_path, graph_values) if which == "model" else (ref_path, reference_values)
    want = values(path)
    clean = path.read_bytes()
    rng = np.random.default_rng(11 if which == "model" else 12)
    refused = harmless = 0
    for _ in range(FLIPS):
        data = bytearray(clean)
        i = int(rng.integers(len(data)))
        data[i] ^= 1 << int(rng.integers(8))
        path.write_bytes(bytes(data))
        try:
            got = values(path)
        except TnaError as e:
            assert "\n" not in str(e)
            refused += 1
            continue
        assert same(got, want), f"byte {i} flipped: read without error but different"
        harmless += 1
    assert refused > 0, (refused, harmless)


# ---- 3. nothing lost, nothing stale ------------------------------------------------------------------
def test_lava_run_refuses_to_overwrite_its_inputs(run, tmp_path):
    nir_path, ref_path = copy(run, tmp_path)
    before = (nir_path.read_bytes(), ref_path.read_bytes())
    for out in (nir_path, ref_path, nir_path.parent / ".." / "d" / runs.MODEL_NIR):
        proc = py("deploy/lava_run.py", nir_path, ref_path, "--mode", "fixed", "--out", out, "--quiet", python=LAVA_PY)
        assert "input; write Lava's output to another file" in one_line_refusal(proc)
    assert (nir_path.read_bytes(), ref_path.read_bytes()) == before


def test_lava_run_subprocess_cases(run, tmp_path):
    """A handful of real lava_run.py runs: damaged or impossible files exit 2 in one line; the
    intact pair runs and records what it was derived from."""
    nir_path, ref_path = copy(run, tmp_path)
    out = tmp_path / "o.h5"
    proc = py("deploy/lava_run.py", nir_path, ref_path, "--mode", "fixed", "--out", out, "--quiet", python=LAVA_PY)
    assert proc.returncode == 0, proc.stderr
    with h5py.File(out) as f:
        assert f.attrs["reference_digest"] == files.file_digest(ref_path)
        with h5py.File(ref_path) as r:
            assert json.loads(f.attrs["indices"]) == r["indices"][:].tolist()
        assert f.attrs["model_digest"] == files.file_digest(nir_path)
    ref = files.read_reference(ref_path)
    lava = files.read_lava_output(out, ref["layers"])
    for k in ref["layers"]:
        np.testing.assert_array_equal(lava["spikes"][k], ref["loihi"]["spikes"][k])
    cases = [(nir_path, "node/nodes/classifier/bias", 0.0, False), (nir_path, "node/nodes/body_0/weight", np.nan, True),
             (nir_path, "node/nodes/readout/r", np.inf, True), (ref_path, "input", np.inf, True)]
    for path, name, value, reseal in cases:
        a, b = copy(run, tmp_path / name.replace("/", "_"))
        target = a if path == nir_path else b
        set_value(target, name, value, reseal)
        proc = py("deploy/lava_run.py", a, b, "--mode", "fixed", "--out", tmp_path / "x.h5", "--quiet", python=LAVA_PY)
        one_line_refusal(proc)
        assert not (tmp_path / "x.h5").exists()


def test_report_refuses_a_lava_output_of_another_reference(run, tmp_path):
    from deploy.report.report import build

    r = tmp_path / "run"
    shutil.copytree(run, r)
    d = runs.deploy_dir(r)
    proc = py("deploy/lava_run.py", d / runs.MODEL_NIR, d / runs.REFERENCE, "--mode", "fixed",
              "--out", d / runs.lava_output("fixed"), "--quiet", python=LAVA_PY)
    assert proc.returncode == 0, proc.stderr
    build(r)  # matching: fine
    proc = py("deploy/export_nir.py", r, "--samples", "3")  # the same sample set again (a new file): still fine
    assert proc.returncode == 0, proc.stderr
    build(r)
    proc = py("deploy/export_nir.py", r, "--samples", "4")  # a new sample set; lava_fixed.h5 is now stale
    assert proc.returncode == 0, proc.stderr
    with pytest.raises(TnaError, match="rerun 'tna deploy"):
        build(r)


# ---- 4. writability before work ------------------------------------------------------------------------
def test_deploy_folder_that_is_a_file_and_out_that_is_a_folder(run, tmp_path):
    r = tmp_path / "run"
    shutil.copytree(run, r)
    shutil.rmtree(runs.deploy_dir(r))
    runs.deploy_dir(r).write_text("x")
    assert "is a file, not a folder" in one_line_refusal(py("-m", "tna.cli", "deploy", r, "--samples", "2"))
    assert "is a file, not a folder" in one_line_refusal(py("deploy/export_nir.py", r, "--samples", "2"))
    (tmp_path / "out").mkdir()
    assert "is a folder" in one_line_refusal(py("deploy/export_nir.py", r, "--out", tmp_path / "out"))
    assert list((tmp_path / "out").iterdir()) == []


def test_stale_temp_files_are_removed_by_the_next_write(tmp_path):
    target = tmp_path / "a.json"
    dead = tmp_path / ".a.json.tmp999999999"
    dead.write_text("half")
    runs.write_json_atomic(target, {"x": 1})
    assert not dead.exists() and json.loads(target.read_text()) == {"x": 1}


NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"),
                    reason="read-only folders need a non-root user: run as root with setpriv to switch to nobody")
def test_read_only_folders_fail_in_one_line_before_work(run, tmp_path):
    top = Path(tempfile.mkdtemp(prefix="tna-ro-", dir="/tmp"))
    try:
        os.chmod(top, 0o755)
        r = top / "run"
        shutil.copytree(run, r)
        for p in sorted([r, *r.rglob("*")], reverse=True):
            os.chmod(p, 0o555 if p.is_dir() else 0o444)
        d = runs.deploy_dir(r)
        home = top / "home"  # the user's own home (matplotlib, caches), writable by nobody
        home.mkdir()
        os.chown(home, 65534, 65534)
        env = {"HOME": str(home), "MPLCONFIGDIR": str(home)}
        for args, python in [(("-m", "tna.cli", "deploy", r, "--samples", "2"), sys.executable),
                             (("-m", "tna.cli", "report", r), sys.executable),
                             (("-m", "tna.cli", "eval", r), sys.executable),
                             (("-m", "tna.cli", "train", "--resume", r), sys.executable),
                             (("deploy/export_nir.py", r, "--samples", "2"), sys.executable),
                             (("deploy/lava_run.py", d / runs.MODEL_NIR, d / runs.REFERENCE, "--mode", "fixed",
                               "--out", d / "lava_fixed.h5", "--quiet"), LAVA_PY)]:
            proc = py(*args, python=python, prefix=NOBODY, env=env)
            if python == LAVA_PY and "error while loading shared libraries" in proc.stderr:
                continue  # the Lava interpreter's libpython is not readable by nobody here; the case below covers it
            if "Permission denied" in proc.stderr and "cannot write" not in proc.stderr:
                pytest.skip(f"user nobody cannot run the repository's interpreters here: {proc.stderr[-300:]}")
            assert "cannot write in" in one_line_refusal(proc), args
        assert not [p for p in r.rglob(".*tmp*")]
    finally:
        for p in [top, *top.rglob("*")]:
            if p.is_dir():
                os.chmod(p, stat.S_IRWXU)
        shutil.rmtree(top, ignore_errors=True)


def test_lava_run_output_folder_unwritable_fails_before_work(run, tmp_path):
    """(As root, file modes are ignored: a parent that is a file stands in for an unwritable folder.)"""
    nir_path, ref_path = copy(run, tmp_path)
    proc = py("deploy/lava_run.py", nir_path, ref_path, "--mode", "fixed", "--out", nir_path.parent / "f" / "o.h5",
              "--quiet", python=LAVA_PY)
    assert proc.returncode == 0, proc.stderr  # the folder is created
    (tmp_path / "file").write_text("x")
    proc = py("deploy/lava_run.py", nir_path, ref_path, "--mode", "fixed", "--out", tmp_path / "file" / "o.h5",
              "--quiet", python=LAVA_PY)
    assert "is a file, not a folder" in one_line_refusal(proc)


def test_sigterm_of_the_parent_ends_the_lava_session(tmp_path):
    """`tna deploy` killed (SIGTERM) takes its Lava child's process group with it."""
    import signal
    import time

    sleeper = tmp_path / "sleep.py"
    sleeper.write_text("import os, time\nprint(os.getpid(), flush=True)\nopen(%r, 'w').write(str(os.getpid()))\n"
                       "time.sleep(120)\n" % str(tmp_path / "pid"))
    parent = subprocess.Popen([sys.executable, "-c", "import sys; from deploy.lavanet.env import run_in_lava; "
                               f"run_in_lava({str(sleeper)!r})"], cwd=REPO, env=ENV)
    try:
        for _ in range(300):
            if (tmp_path / "pid").is_file() and (tmp_path / "pid").read_text():
                break
            time.sleep(0.1)
        child = int((tmp_path / "pid").read_text())
        os.kill(parent.pid, signal.SIGTERM)
        parent.wait(timeout=30)
        for _ in range(100):
            if not Path(f"/proc/{child}").exists():
                break
            time.sleep(0.1)
        assert not Path(f"/proc/{child}").exists(), "the Lava child outlived its parent"
    finally:
        if parent.poll() is None:
            parent.kill()
