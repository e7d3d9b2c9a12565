"""The deployment's files: the NIR graph, the golden reference and Lava's output. h5py, numpy and
nir only (both environments).

model.nir: `nir.write` / `read_graph` (nir.read, type-checked, with one-line errors).
The writers below write exactly where they are told; callers write to `tna.runs.atomic_path`s.

reference.h5 (written by the export, deploy/pipeline.py):
    input                 float32 [N, T, *input_shape]   N test inputs exactly as they enter the network
    labels, indices       [N]                            their labels and test-set indices
    <golden>/logits       float64 [N, K]                 golden = float (the trained model) | loihi (its
    <golden>/spikes/<lif> uint8 [N, T, *shape]           fixed-point arithmetic, deploy/loihi/simulate.py)
    attrs                 run_dir, T, dt, layers (spiking layers in network order), model, dataset

lava_<mode>.h5 (written by deploy/lava_run.py in the Lava environment):
    spikes/<lif>          uint8 [N, T, *shape]           torch (C, H, W) layout, index t = the model's step t
    logits                float64 [N, K]                 float: the readout's v; fixed: integer v / its scale
    attrs                 mode, samples, compile_seconds, run_seconds, seconds_per_sample, steps,
                          latency (JSON: population -> Lava steps)
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from tna.errors import TnaError

GOLDEN = ("float", "loihi")


def read_graph(path: str | Path):
    """nir.read with one-line errors for missing, non-HDF5, non-NIR and non-tna files."""
    import nir

    from deploy.graph import compat  # noqa: F401  (nir 1.0.8: non-square Conv2d output types)
    from deploy.graph.plan import FORMAT
    from deploy.graph.read import meta_value

    path = Path(path)
    if not path.is_file():
        raise TnaError(f"{path} does not exist; pass the model.nir written by deploy/export_nir.py")
    try:
        with h5py.File(path, "r") as f:
            is_nir = "node" in f and "version" in f
    except OSError:
        raise TnaError(f"{path} is not an HDF5 file, so not a NIR graph; pass the model.nir from the export") from None
    if not is_nir:
        raise TnaError(f"{path} is an HDF5 file but not a NIR graph (no 'node'/'version'); pass the model.nir "
                       "from the export")
    try:
        graph = nir.read(path)
    except Exception as e:  # noqa: BLE001 - nir raises many types on foreign content
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise TnaError(f"{path} could not be read as a NIR graph ({type(e).__name__}: {msg}); "
                       "export it again") from None
    fmt = meta_value(dict(getattr(graph, "metadata", {}) or {}).get("format"))
    if fmt != FORMAT:
        raise TnaError(f"{path} is a NIR graph but not a tna export (metadata format={fmt!r}); "
                       "export it with deploy/export_nir.py")
    return graph


def write_reference(path: Path, inputs: np.ndarray, labels: np.ndarray, indices: np.ndarray, layers: list,
                    golden: dict, attrs: dict) -> None:
    """golden: {"float" | "loihi": ({lif: spikes [N, T, ...]}, logits [N, K])} (numpy)."""
    with h5py.File(path, "w") as f:
        f.create_dataset("input", data=np.asarray(inputs, np.float32), compression="gzip")
        f.create_dataset("labels", data=labels)
        f.create_dataset("indices", data=indices)
        f.attrs.update({**attrs, "layers": layers})
        for group, (spikes, logits) in golden.items():
            g = f.create_group(group)
            g.create_dataset("logits", data=np.asarray(logits, np.float64))
            for name in layers:
                g.create_dataset(f"spikes/{name}", data=np.asarray(spikes[name], np.uint8), compression="gzip")


def open_h5(path: str | Path, what: str) -> h5py.File:
    try:
        return h5py.File(path, "r")
    except (OSError, FileNotFoundError):
        raise TnaError(f"{path} is missing or not an HDF5 file ({what}); run the export/deploy again") from None


def read_inputs(path: str | Path, samples: int | None = None) -> np.ndarray:
    """The first `samples` inputs of a reference.h5 [N, T, *input_shape] (float32), one-line errors."""
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


def read_reference(path: str | Path) -> dict:
    """Everything in a reference.h5: input, labels, layers, and per golden group its spikes and logits."""
    with open_h5(path, "reference") as f:
        layers = [str(x) for x in f.attrs["layers"]]
        out = {"input": f["input"][:], "labels": f["labels"][:], "layers": layers}
        for g in GOLDEN:
            if g in f:
                out[g] = {"spikes": {k: f[f"{g}/spikes/{k}"][:] for k in layers}, "logits": f[f"{g}/logits"][:]}
    return out


def write_lava_output(path: Path, spikes: dict, logits, attrs: dict) -> None:
    with h5py.File(path, "w") as f:
        for name, s in spikes.items():
            f.create_dataset(f"spikes/{name}", data=s, compression="gzip", compression_opts=1)
        if logits is not None:
            f.create_dataset("logits", data=np.asarray(logits, np.float64))
        f.attrs.update({k: (json.dumps(v) if isinstance(v, dict) else v) for k, v in attrs.items()})


def read_lava_output(path: str | Path, layers: list) -> dict:
    """Lava's spikes (the first `samples` of each layer), logits and attrs."""
    with open_h5(path, "Lava output") as f:
        n = int(f.attrs.get("samples", 0)) or None
        for name in layers:
            if f"spikes/{name}" not in f:
                raise TnaError(f"{path} has no spikes for layer {name}")
        return {"spikes": {k: f[f"spikes/{k}"][:n] for k in layers},
                "logits": f["logits"][:n] if "logits" in f else None, "samples": n, "attrs": dict(f.attrs)}
