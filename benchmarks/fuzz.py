"""Fault fuzz: feed the tools damaged files and misuse, and count how each case ends.

    .venv/bin/python benchmarks/fuzz.py --out runs/fuzz            # ~10 minutes on 2 cores
    .venv/bin/python benchmarks/fuzz.py --out runs/fuzz --cases 10  # a quick look

It trains one tiny run, exports it, and then, case by case: flips bits in checkpoint.pt (tna eval),
flips bytes in model.nir and reference.h5 and mutates their values (NaN, inf, zero or negative
thresholds and time constants; deploy/lava_run.py in fixed point), and misuses the command line.
Every case ends as one of:

    clean      non-zero exit, one line `error: ...`, no traceback
    traceback  a Python traceback reached the user
    harmless   exit 0 with results identical to the intact files' (the damage hit unused bytes)
    WRONG      exit 0 with different results: the worst outcome, a user would trust them
    hang       no answer within the time limit
    lost       an input file was changed by the tool

Prints the table (per group and in total) and writes OUT/fuzz.json with every case.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parents[1]  # where the environments are
PY, LAVA_PY = ROOT / ".venv/bin/python", ROOT / ".venv-lava/bin/python"
REPO = ROOT  # the tree under test (--repo: e.g. an older commit checked out with `git worktree add`)
OUTCOMES = ("clean", "traceback", "harmless", "WRONG", "hang", "lost")


def call(cmd, timeout=240):
    try:
        p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, cwd=REPO,
                           env={**os.environ, "OMP_NUM_THREADS": "1"})
        return p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired:
        return None, "", ""


def judge(rc, err, same: bool | None) -> str:
    if rc is None:
        return "hang"
    if "Traceback" in err:
        return "traceback"
    if rc != 0:
        lines = [line for line in err.strip().splitlines() if line.strip()]
        return "clean" if lines and lines[-1].startswith("error:") and len(lines) <= 2 else "traceback"
    return "harmless" if same else "WRONG"


def lava_out(path: Path):
    with h5py.File(path, "r") as f:
        return {k: f[k][()] for k in ["logits"] + [f"spikes/{n}" for n in f["spikes"]]}


def same_weights(a: Path, b: Path) -> bool:
    """Whether a checkpoint the tool accepted holds exactly the intact weights (what eval and deploy use)."""
    import torch

    try:
        wa = torch.load(a, weights_only=True)["model"]
    except Exception:  # noqa: BLE001 - unreadable for torch, yet the tool succeeded: not the same
        return False
    wb = torch.load(b, weights_only=True)["model"]
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def same_outputs(a, b) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def flip_bits(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    return bytes(b)


def mutate_h5(src: Path, dst: Path, key: str, how: str) -> None:
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        d = f[key]
        v = np.array(d[()], dtype=np.float64)
        flat = v.reshape(-1)
        flat[0] = {"nan": np.nan, "inf": np.inf, "zero": 0.0, "negative": -abs(flat[0]) - 1}[how]
        del f[key]
        f.create_dataset(key, data=v.astype(d.dtype) if how in ("zero", "negative") else v)


def float_datasets(path: Path, words=("weight", "threshold", "tau", "bias", "r", "v_leak", "v_reset")):
    out = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: out.append(n) if isinstance(o, h5py.Dataset) and o.dtype.kind == "f"
                     and o.size and n.split("/")[-1] in words else None)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("runs/fuzz"))
    p.add_argument("--cases", type=int, default=30, help="random flips per file (default 30)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repo", type=Path, default=ROOT, help="the source tree to test (default: this one)")
    args = p.parse_args(argv)
    global REPO
    REPO = args.repo.resolve()
    out = args.out.resolve()
    rng = random.Random(args.seed)
    run = out / "run"
    if not (run / "metrics.json").is_file():
        shutil.rmtree(out, ignore_errors=True)
        rc, _, err = call([PY, "-m", "tna.cli", "train", "--strategy", "baseline", "--epochs", "1", "--train-samples",
                           "512", "--width", "0.5", "--out", run])
        assert rc == 0, err
    nir_path, ref = run / "deploy" / "model.nir", run / "deploy" / "reference.h5"
    if not ref.is_file():
        rc, _, err = call([PY, "deploy/export_nir.py", run, "--samples", "4"])
        assert rc == 0, err
    work = out / "work"
    work.mkdir(exist_ok=True)
    cases: list[dict] = []

    def record(group, what, outcome, err=""):
        cases.append({"group": group, "case": what, "outcome": outcome, "error": err.strip().splitlines()[-1:]})
        print(f"{group:<22} {outcome:<9} {what}", flush=True)

    # ---- checkpoint bit flips -> tna eval -----------------------------------------------------
    data = (run / "checkpoint.pt").read_bytes()
    bad = work / "ckpt-run"
    for i in range(args.cases):
        shutil.rmtree(bad, ignore_errors=True)
        bad.mkdir()
        shutil.copy(run / "config.json", bad)
        (bad / "checkpoint.pt").write_bytes(flip_bits(data, rng))
        rc, so, err = call([PY, "-m", "tna.cli", "eval", bad])
        same = rc == 0 and same_weights(bad / "checkpoint.pt", run / "checkpoint.pt")
        record("checkpoint bit flip", f"flip {i}", judge(rc, err, same), err)

    # ---- model.nir / reference.h5 -> lava_run.py fixed ------------------------------------------
    def lava(model, reference, outfile):
        return call([LAVA_PY, "deploy/lava_run.py", model, reference, "--mode", "fixed", "--out", outfile,
                     "--samples", "2", "--quiet"])

    rc, _, err = lava(nir_path, ref, work / "intact.h5")
    assert rc == 0, err
    intact = lava_out(work / "intact.h5")

    def lava_case(group, what, model, reference):
        target = work / "case.h5"
        target.unlink(missing_ok=True)
        before = {q: q.read_bytes() for q in (model, reference)}
        rc, _, err = lava(model, reference, target)
        if any(q.read_bytes() != b for q, b in before.items()):
            return record(group, what, "lost", err)
        record(group, what, judge(rc, err, rc == 0 and same_outputs(lava_out(target), intact)), err)

    for name, src in (("model.nir", nir_path), ("reference.h5", ref)):
        data = src.read_bytes()
        for i in range(args.cases):
            damaged = work / f"flip-{name}"
            damaged.write_bytes(flip_bits(data, rng))
            model, reference = (damaged, ref) if name == "model.nir" else (nir_path, damaged)
            lava_case(f"{name} byte flip", f"flip {i}", model, reference)
    for key in float_datasets(nir_path):
        for how in ("nan", "inf", "zero", "negative"):
            m = work / "mut.nir"
            mutate_h5(nir_path, m, key, how)
            lava_case("model.nir value", f"{key} = {how}", m, ref)
    for how in ("nan", "inf"):
        r = work / "mut-ref.h5"
        mutate_h5(ref, r, "input", how)
        lava_case("reference.h5 value", f"input = {how}", nir_path, r)

    # ---- outputs that are inputs ---------------------------------------------------------------
    for name, target in (("--out model.nir", nir_path), ("--out reference.h5", ref)):
        copy_m, copy_r = work / "own.nir", work / "own-ref.h5"
        shutil.copy(nir_path, copy_m)
        shutil.copy(ref, copy_r)
        before = (copy_m.read_bytes(), copy_r.read_bytes())
        rc, _, err = lava(copy_m, copy_r, copy_m if target == nir_path else copy_r)
        lost = (copy_m.read_bytes(), copy_r.read_bytes()) != before
        record("output is an input", name, "lost" if lost else judge(rc, err, None), err)

    # ---- table -----------------------------------------------------------------------------------
    groups = list(dict.fromkeys(c["group"] for c in cases))
    lines = ["| group | cases | " + " | ".join(OUTCOMES) + " |", "|---|---|" + "---|" * len(OUTCOMES)]
    for g in groups + ["total"]:
        sel = [c for c in cases if g in ("total", c["group"])]
        lines.append(f"| {g} | {len(sel)} | " + " | ".join(str(sum(c["outcome"] == o for c in sel)) for o in OUTCOMES)
                     + " |")
    text = "\n".join(lines)
    print(text)
    (out / "fuzz.json").write_text(json.dumps(cases, indent=1))
    (out / "fuzz.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
