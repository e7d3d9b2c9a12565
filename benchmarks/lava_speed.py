"""Seconds per sample: the torch integer simulator (the Loihi-exact model) against Lava fixed_pt, and
the float references beside them, for one model, in one run.

    .venv/bin/python benchmarks/lava_speed.py runs/demo --samples 64

Uses (or makes) RUN_DIR/deploy/{model.nir, reference.h5} with N samples. Lava runs in the Lava
environment with its network compiled once and all samples streamed back to back; its figures are
the script's own `compile_seconds` and `run_seconds / samples` (process start and file I/O
excluded). The torch figures are wall time over the same N samples in one batch; the simulator's
"compile" is what is done once, like Lava's compile: building the integer network (the mapping)
and a first run on 2 samples (torch allocates its convolution kernels then). The last
line is the ratio of Lava fixed_pt to the torch simulator, and whether their spikes are
bit-identical. Torch runs on `--threads` threads (default 1: the conservative, reproducible figure;
on a machine whose cores are busy with other work, several OpenMP threads stall each other and
every torch figure here, the float reference too, becomes many times slower and erratic).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import h5py
import nir
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deploy import files  # noqa: E402
from deploy.graph.executor import run as run_float_graph  # noqa: E402
from deploy.loihi.simulate import LoihiSimulator  # noqa: E402
from deploy.pipeline import export, run_lava  # noqa: E402


def timed(f):
    t0 = time.perf_counter()
    out = f()
    return out, time.perf_counter() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--samples", type=int, default=64)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    nir_path, ref_path = export(args.run_dir, samples=args.samples)
    graph = nir.read(nir_path)
    with h5py.File(ref_path) as f:
        x = torch.from_numpy(f["input"][:]).transpose(0, 1).contiguous()
    n = x.shape[1]
    rows = []
    _, run = timed(lambda: run_float_graph(graph, x))
    rows.append((f"torch float reference (batch of {n})", None, run / n))
    sim, build = timed(lambda: LoihiSimulator(graph))
    _, warm = timed(lambda: sim.run_float(x[:, :2]))
    (spikes, _), run = timed(lambda: sim.run_float(x))
    torch_fixed = run / n
    rows.append((f"torch integer simulator (batch of {n})", build + warm, torch_fixed))
    lava = {}
    for mode in ("float", "fixed"):
        info = run_lava(nir_path, ref_path, mode, samples=n)
        lava[mode] = info
        rows.append((f"Lava {mode}_pt", info["compile_seconds"], info["seconds_per_sample"]))
    deployed = files.read_lava_output(Path(lava["fixed"]["out"]), list(spikes))["spikes"]
    same = all(np.array_equal(s.transpose(0, 1).numpy().astype(np.uint8), deployed[k]) for k, s in spikes.items())
    print(f"{args.run_dir}: {graph.metadata.get('model')}, T={graph.metadata['T']}, {n} samples, "
          f"torch threads {torch.get_num_threads()}")
    print(f"{'':<42}{'compile s':>10}{'s/sample':>10}")
    for name, compile_s, per in rows:
        print(f"{name:<42}{'' if compile_s is None else f'{compile_s:.2f}':>10}{per:>10.5f}")
    print(f"Lava fixed_pt / torch integer simulator: {lava['fixed']['seconds_per_sample'] / torch_fixed:.0f}x "
          f"per sample; spikes bit-identical: {'yes' if same else 'NO'}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
