"""Seconds per sample: Lava (floating_pt, fixed_pt) beside the torch `loihi`-exact emulator and the
float NIR executor, for one model, in one run.

    .venv/bin/python benchmarks/lava_speed.py runs/demo --samples 32

Uses (or makes) RUN_DIR/deploy/{model.nir, reference.h5}. Lava runs in the Lava environment with
its network compiled once and all samples streamed back to back; its figures are the script's own
`compile_seconds` and `run_seconds / samples` (process start and file I/O excluded). The torch
figures are wall time over the same samples in one batch.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import h5py
import nir
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deploy import nir_torch  # noqa: E402
from deploy.export_nir import export  # noqa: E402
from deploy.lava_env import run_in_lava  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--samples", type=int, default=32)
    args = p.parse_args(argv)
    nir_path, ref_path = export(args.run_dir, samples=args.samples)
    graph = nir.read(nir_path)
    with h5py.File(ref_path) as f:
        x = torch.from_numpy(f["input"][:]).transpose(0, 1).contiguous()
    n = x.shape[1]
    rows = []
    for mode in ("float", "loihi"):
        t0 = time.perf_counter()
        nir_torch.run(graph, x, mode)
        rows.append((f"torch, {mode} arithmetic (batch of {n})", None, (time.perf_counter() - t0) / n))
    for mode in ("float", "fixed"):
        out = Path(nir_path).parent / f"lava_{mode}.h5"
        proc = run_in_lava(Path(__file__).resolve().parents[1] / "deploy" / "lava_run.py",
                           [str(nir_path), str(ref_path), "--mode", mode, "--out", str(out), "--samples", str(n)])
        info = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append((f"Lava {mode}_pt", info["compile_seconds"], info["seconds_per_sample"]))
    print(f"{args.run_dir}: {graph.metadata.get('model')}, T={graph.metadata['T']}, {n} samples")
    print(f"{'':<42}{'compile s':>10}{'s/sample':>10}")
    for name, compile_s, per in rows:
        print(f"{name:<42}{'' if compile_s is None else f'{compile_s:.2f}':>10}{per:>10.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
