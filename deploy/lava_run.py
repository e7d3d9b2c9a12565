"""Run a tna NIR graph on Lava (floating_pt or bit-accurate fixed_pt) over reference inputs.

    .venv-lava/bin/python deploy/lava_run.py MODEL.nir REFERENCE.h5 --mode float|fixed --out OUT.h5 [--samples N]

Reads the graph and the first N inputs (`input` [N, T, *shape] of REFERENCE.h5), builds the Lava
network (deploy/nir_lava.py), compiles it once, runs all samples back to back and writes OUT.h5
(temporary name, then rename):

    spikes/<lif node>   uint8 [N, T, *shape]  torch (C, H, W) layout, index t = the model's step t
    logits              float64 [N, K]        float: the readout's v; fixed: integer v / its scale
    attrs               mode, samples, compile_seconds, run_seconds, seconds_per_sample, steps,
                        latency (JSON: population -> Lava steps)

Prints one JSON line (the attrs plus the output path). A user error (unreadable or foreign file,
missing dataset, unsupported node) prints `error: <one line>` to stderr and exits with code 2.
Runs in the Lava environment (Python 3.10, no torch); progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tna.errors import TnaError  # noqa: E402


def read_graph(path: str | Path):
    """nir.read with one-line errors for missing, non-HDF5, non-NIR and non-tna files."""
    import h5py
    import nir

    from deploy import nir_compat  # noqa: F401  (nir 1.0.8: non-square Conv2d output types)

    path = Path(path)
    if not path.is_file():
        raise TnaError(f"{path} does not exist; pass the model.nir written by deploy/export_nir.py")
    try:
        with h5py.File(path, "r") as f:
            is_nir = "node" in f and "version" in f
    except OSError:
        raise TnaError(f"{path} is not an HDF5 file, so not a NIR graph; pass the model.nir from the export") from None
    if not is_nir:
        raise TnaError(f"{path} is an HDF5 file but not a NIR graph (no 'node'/'version'); pass the model.nir from the export")
    try:
        graph = nir.read(path)
    except Exception as e:  # noqa: BLE001 - nir raises many types on foreign content
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise TnaError(f"{path} could not be read as a NIR graph ({type(e).__name__}: {msg}); export it again") from None
    meta = dict(getattr(graph, "metadata", {}) or {})
    fmt = meta.get("format")
    fmt = fmt.decode() if isinstance(fmt, bytes) else fmt
    if fmt != "tna-nir":
        raise TnaError(f"{path} is a NIR graph but not a tna export (metadata format={fmt!r}); "
                       "export it with deploy/export_nir.py")
    return graph


def read_inputs(path: str | Path, samples: int | None):
    import h5py
    import numpy as np

    path = Path(path)
    if not path.is_file():
        raise TnaError(f"{path} does not exist; pass the reference.h5 written by deploy/export_nir.py")
    try:
        f = h5py.File(path, "r")
    except OSError:
        raise TnaError(f"{path} is not an HDF5 file; pass the reference.h5 written by deploy/export_nir.py") from None
    with f:
        if "input" not in f or not isinstance(f["input"], h5py.Dataset):
            raise TnaError(f"{path} has no 'input' dataset; pass the reference.h5 written by deploy/export_nir.py")
        ds = f["input"]
        if ds.ndim < 3:
            raise TnaError(f"{path}: 'input' has shape {ds.shape}, expected [N, T, *input_shape]")
        n = ds.shape[0] if samples is None else min(samples, ds.shape[0])
        return np.asarray(ds[:n], dtype=np.float32)


def write_output(path: Path, result, mode: str, n: int) -> dict:
    import h5py

    attrs = {
        "mode": mode,
        "samples": n,
        "steps": result.steps,
        "compile_seconds": round(result.compile_seconds, 4),
        "run_seconds": round(result.run_seconds, 4),
        "seconds_per_sample": round(result.run_seconds / max(n, 1), 5),
        "latency": json.dumps(result.latency),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with h5py.File(tmp, "w") as f:
            for name, s in result.spikes.items():
                f.create_dataset(f"spikes/{name}", data=s, compression="gzip", compression_opts=1)
            if result.logits is not None:
                f.create_dataset("logits", data=result.logits.astype("float64"))
            f.attrs.update(attrs)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return attrs


def run(model: str, reference: str, mode: str, out: str, samples: int | None = None, progress: bool = True) -> dict:
    from deploy import nir_lava

    if mode not in nir_lava.MODES:
        raise TnaError(f"unknown mode '{mode}'; use float or fixed")
    if samples is not None and samples < 1:
        raise TnaError(f"--samples must be at least 1, got {samples}")
    graph = read_graph(model)
    x = read_inputs(reference, samples)
    with tempfile.TemporaryDirectory(prefix="tna-lava-") as rec_dir:
        net = nir_lava.build(graph, mode, x, record_dir=rec_dir, progress=progress)
        if progress:
            print(f"lava {mode}: {len(net.plan.populations)} populations, {x.shape[0]} samples x {net.T} steps "
                  f"+ {net.L} pipeline steps", file=sys.stderr, flush=True)
        result = net.run()
    attrs = write_output(Path(out), result, mode, x.shape[0])
    return {**attrs, "latency": result.latency, "out": str(out)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL.nir")
    p.add_argument("reference", metavar="REFERENCE.h5")
    p.add_argument("--mode", choices=("float", "fixed"), required=True)
    p.add_argument("--out", metavar="OUT.h5", required=True)
    p.add_argument("--samples", type=int, default=None, help="first N samples (default: all)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = p.parse_args(argv)
    try:
        summary = run(args.model, args.reference, args.mode, args.out, args.samples, progress=not args.quiet)
    except TnaError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
