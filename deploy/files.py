"""The deployment's files: the NIR graph, the golden reference and Lava's output. h5py, numpy and
nir only (both environments).

model.nir: `nir.write` / `read_graph` (nir.read, type-checked, with one-line errors).
The writers below write exactly where they are told; callers write to `tna.runs.atomic_path`s.

Every file here carries a SHA-256 content digest in its root attribute `tna_digest` (`seal`, the
last step of every writer; `write_graph` for model.nir), computed over every group's and dataset's
name, attrs, dtype, shape and bytes in name order (`content_digest`). Every reader checks it
(`check_digest`, via `open_h5`/`read_graph`/`read_inputs`): a flipped byte or a changed value is
refused in one line, never run. The graph's values are checked by the one reader
(deploy/graph/read.py: finite, thresholds and time constants positive), the inputs here (numbers,
finite, at least one sample).

reference.h5 (written by the export, deploy/pipeline.py):
    input                 float32 [N, T, *input_shape]   N test inputs exactly as they enter the network
    labels, indices       [N]                            their labels and test-set indices
    <golden>/logits       float64 [N, K]                 golden = float (the trained model) | loihi (its
    <golden>/spikes/<lif> uint8 [N, T, *shape]           fixed-point arithmetic, deploy/loihi/simulate.py)
    attrs                 run_dir, T, dt, layers (spiking layers in network order), model, dataset,
                          samples, model_digest, checkpoint_sha256 (the checkpoint.pt it came from), written

lava_<mode>.h5 (written by deploy/lava_run.py in the Lava environment):
    spikes/<lif>          uint8 [N, T, *shape]           torch (C, H, W) layout, index t = the model's step t
    logits                float64 [N, K]                 float: the readout's v; fixed: integer v / its scale
    attrs                 mode, samples, compile_seconds, run_seconds, seconds_per_sample, steps,
                          latency (JSON: population -> Lava steps), written, reference_digest and
                          model_digest (the files it was run on: `tna report` refuses a stale one)
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import h5py
import numpy as np

from tna.errors import TnaError

GOLDEN = ("float", "loihi")
DIGEST = "tna_digest"  # root attribute of every file deploy writes: SHA-256 of the rest of its content


# ---- content digests: every file deploy writes carries one, every reader checks it -------------------
def _feed(h, value) -> None:
    a = np.asarray(value)
    if a.dtype.kind in "OSUV":  # strings (fixed or variable length), opaque: as text
        items = [x.decode("utf8", "replace") if isinstance(x, bytes) else str(x) for x in a.ravel().tolist()]
        h.update(json.dumps([list(a.shape), items]).encode())
    else:
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(np.ascontiguousarray(a).tobytes())


def content_digest(f: h5py.File) -> str:
    """SHA-256 over every group's and dataset's name, attrs (sorted), dtype, shape and bytes, in name
    order; the root's DIGEST attribute itself is left out."""
    h = hashlib.sha256()
    names = []
    f.visit(names.append)
    for name in [""] + sorted(names):
        obj = f[name] if name else f
        h.update(f"N{name};".encode())
        for k in sorted(obj.attrs):
            if name == "" and k == DIGEST:
                continue
            h.update(f"A{k};".encode())
            _feed(h, obj.attrs[k])
        if isinstance(obj, h5py.Dataset):
            h.update(b"D")
            _feed(h, obj[()])
    return h.hexdigest()


def seal(path: str | Path) -> str:
    """Record the file's content digest in it (call last, after everything is written)."""
    with h5py.File(path, "a") as f:
        d = content_digest(f)
        f.attrs[DIGEST] = d
    return d


def check_digest(f: h5py.File, path, what: str) -> str:
    """The file's digest, after checking that its content matches it (one-line TnaError if not)."""
    try:
        stored = f.attrs.get(DIGEST)
    except Exception:  # noqa: BLE001 - damaged attribute storage
        raise TnaError(f"{path} is corrupt: its content does not match the digest written with it; "
                       "export it again") from None
    stored = stored.decode() if isinstance(stored, bytes) else stored
    if stored is None:
        raise TnaError(f"{path} has no content digest ({what} written by an older tna or another tool); "
                       "export it again")
    try:
        actual = content_digest(f)
    except Exception:  # noqa: BLE001 - damaged HDF5 structure or compressed data
        actual = None
    if actual != stored:
        raise TnaError(f"{path} is corrupt: its content does not match the digest written with it; export it again")
    return str(stored)


def file_digest(path: str | Path, what: str = "file") -> str:
    with open_h5(path, what) as f:
        return str(f.attrs[DIGEST])


def reference_source(path: str | Path, samples: int | None = None) -> dict:
    """What a Lava output run on (the first `samples` of) a reference.h5 was derived from: the
    graph's digest, the checkpoint's, and the test-set indices of its samples."""
    with open_h5(path, "reference") as f:
        idx = f["indices"][:samples].tolist() if "indices" in f else []
        return {"model_digest": str(f.attrs.get("model_digest", "")),
                "checkpoint_sha256": str(f.attrs.get("checkpoint_sha256", "")), "indices": json.dumps(idx)}


def stale(lava_attrs: dict, reference: str | Path) -> str | None:
    """Why a Lava output does not belong to this reference.h5 (another graph, checkpoint or sample
    set), or None."""
    n = int(lava_attrs.get("samples", 0)) or None
    want = reference_source(reference, n)
    for key, what in (("model_digest", "graph"), ("checkpoint_sha256", "checkpoint"), ("indices", "sample set")):
        got = lava_attrs.get(key)
        got = got.decode() if isinstance(got, bytes) else got
        if got is None or str(got) != want[key]:
            return what
    return None


def write_graph(path: str | Path, graph) -> str:
    """nir.write, then seal: the model.nir a reader can check. Returns its digest."""
    import nir

    nir.write(path, graph)
    return seal(path)


def same_file(a: str | Path, b: str | Path) -> bool:
    a, b = Path(a), Path(b)
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def read_graph(path: str | Path):
    """nir.read with one-line errors for missing, non-HDF5, non-NIR and non-tna files."""
    from deploy.graph import compat  # noqa: F401  (nir 1.0.8: non-square Conv2d output types)
    from deploy.graph.plan import FORMAT
    from deploy.graph.read import meta_value

    path = _nir_file(path, "the model.nir written by deploy/export_nir.py")
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get(DIGEST) is None:
                fmt = f.get("node/metadata/format", f.get("metadata/format"))
                fmt = meta_value(fmt[()]) if isinstance(fmt, h5py.Dataset) else None
                if fmt != FORMAT:
                    raise TnaError(f"{path} is a NIR graph but not a tna export (metadata format={fmt!r}); "
                                   "export it with deploy/export_nir.py, or deploy any NIR graph with "
                                   "'tna deploy GRAPH.nir --inputs INPUTS.h5 --dt SECONDS --out DIR'")
            check_digest(f, path, "NIR graph")
    except TnaError:
        raise
    except Exception:  # noqa: BLE001 - damaged HDF5 structure
        raise TnaError(f"{path} is corrupt: its content does not match the digest written with it; "
                       "export it again") from None
    graph = _nir_read(path, "export it again")
    meta = dict(getattr(graph, "metadata", {}) or {})
    if meta_value(meta.get("format")) != FORMAT and meta_value(meta.get("deployed_by")) != "tna":
        raise TnaError(f"{path} is a NIR graph but not a tna export (metadata format={meta.get('format')!r}); "
                       "export it with deploy/export_nir.py")
    from deploy.graph.read import read

    read(graph)  # every value finite and possible, the structure consistent: one-line errors here
    return graph


def read_any_graph(path: str | Path):
    """Any standard NIR graph a user gives (another tool's export): nir.read, type-checked if it can
    be (snnTorch's exports fail nir's own type inference; tna's reader checks every shape itself),
    with one-line errors."""
    from deploy.graph import compat  # noqa: F401  (nir 1.0.8: non-square Conv2d output types)

    path = _nir_file(path, "a NIR graph file (.nir)")
    return _nir_read(path, "check the file")


def _open_file(path: Path, what: str) -> h5py.File:
    """An existing HDF5 file, opened read-only (one-line errors naming `what` to pass)."""
    if not path.is_file():
        raise TnaError(f"{path} does not exist; pass {what}")
    try:
        return h5py.File(path, "r")
    except OSError:
        raise TnaError(f"{path} is not an HDF5 file; pass {what}") from None


def _nir_file(path, what: str) -> Path:
    """The path of an existing HDF5 file that holds a NIR graph (one-line errors naming `what` to pass)."""
    path = Path(path)
    if not path.is_file():
        raise TnaError(f"{path} does not exist; pass {what}")
    try:
        with h5py.File(path, "r") as f:
            is_nir = "node" in f and "version" in f
    except OSError:
        raise TnaError(f"{path} is not an HDF5 file, so not a NIR graph; pass {what}") from None
    if not is_nir:
        raise TnaError(f"{path} is an HDF5 file but not a NIR graph (no 'node'/'version'); pass {what}")
    return path


def _nir_read(path: Path, fix: str):
    """nir.read, type-checked when nir's own type inference accepts the graph (it rejects some valid
    ones, e.g. snnTorch's exports; tna's reader checks every shape itself)."""
    import nir

    errors = []
    for type_check in (True, False):
        try:
            return nir.read(path, type_check=type_check)
        except Exception as e:  # noqa: BLE001 - nir raises many types on foreign content
            errors.append(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    raise TnaError(f"{path} could not be read as a NIR graph ({errors[-1]}); {fix}")


def read_user_inputs(path: str | Path, samples: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """INPUTS.h5 from the user: `input` [N, T, *input_shape] (spikes or analog values) and optional
    `labels` [N]. Returns (the first `samples` inputs as float32, labels or None); one-line errors."""
    path = Path(path)
    with _open_file(path, "an HDF5 file with 'input' [N, T, *input_shape]") as f:
        if "input" not in f or not isinstance(f["input"], h5py.Dataset):
            raise TnaError(f"{path} has no 'input' dataset; write the inputs as 'input' [N, T, *input_shape]")
        ds = f["input"]
        if ds.ndim < 3 or 0 in ds.shape:
            raise TnaError(f"{path}: 'input' has shape {ds.shape}; expected [N, T, *input_shape] with N, T >= 1")
        if ds.dtype.kind not in "biuf":
            raise TnaError(f"{path}: 'input' has dtype {ds.dtype}, not numbers")
        n = ds.shape[0] if samples is None else min(samples, ds.shape[0])
        x = np.asarray(ds[:n], dtype=np.float32)
        if not np.all(np.isfinite(x)):
            raise TnaError(f"{path}: 'input' holds NaN or infinite values")
        labels = None
        if "labels" in f:
            lab = f["labels"]
            if not isinstance(lab, h5py.Dataset) or lab.ndim != 1 or lab.shape[0] < n or lab.dtype.kind not in "iu":
                raise TnaError(f"{path}: 'labels' must be integers [N] with one label per input")
            labels = np.asarray(lab[:n], dtype=np.int64)
    return x, labels


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
    seal(path)


def open_h5(path: str | Path, what: str) -> h5py.File:
    """Open a file deploy wrote, its content digest checked (one-line TnaError if missing or damaged)."""
    try:
        f = h5py.File(path, "r")
    except (OSError, FileNotFoundError):
        raise TnaError(f"{path} is missing or not an HDF5 file ({what}); run the export/deploy again") from None
    try:
        check_digest(f, path, what)
    except BaseException:
        f.close()
        raise
    return f


def read_inputs(path: str | Path, samples: int | None = None) -> np.ndarray:
    """The first `samples` inputs of a reference.h5 [N, T, *input_shape] (float32), one-line errors."""
    path = Path(path)
    with _open_file(path, "the reference.h5 written by deploy/export_nir.py") as f:
        try:
            has_input = "input" in f and isinstance(f["input"], h5py.Dataset)
        except Exception:  # noqa: BLE001 - damaged HDF5 structure
            has_input = True  # let the digest check say what is wrong
        check_digest(f, path, "reference") if has_input else None
        if not has_input:
            raise TnaError(f"{path} has no 'input' dataset; pass the reference.h5 written by deploy/export_nir.py")
        ds = f["input"]
        if ds.ndim < 3:
            raise TnaError(f"{path}: 'input' has shape {ds.shape}, expected [N, T, *input_shape]")
        if ds.dtype.kind not in "biuf":
            raise TnaError(f"{path}: 'input' has dtype {ds.dtype}, not numbers; export it again")
        if ds.shape[0] < 1 or 0 in ds.shape:
            raise TnaError(f"{path}: 'input' holds no samples (shape {ds.shape}); export it with --samples 1 or more")
        n = ds.shape[0] if samples is None else min(samples, ds.shape[0])
        x = np.asarray(ds[:n], dtype=np.float32)
        if not np.all(np.isfinite(x)):
            raise TnaError(f"{path}: 'input' holds NaN or infinite values; export it again")
        return x


def read_reference(path: str | Path) -> dict:
    """Everything in a reference.h5: input, labels, layers, and per golden group its spikes and logits."""
    with open_h5(path, "reference") as f:
        layers = [str(x) for x in f.attrs["layers"]]
        out = {"input": f["input"][:], "labels": f["labels"][:], "layers": layers, "digest": str(f.attrs[DIGEST]),
               "attrs": dict(f.attrs)}
        if out["input"].dtype.kind not in "biuf" or not len(out["input"]) or not np.all(np.isfinite(out["input"])):
            raise TnaError(f"{path}: 'input' is empty, not numbers, or not finite; export it again")
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
    seal(path)


def read_lava_output(path: str | Path, layers: list) -> dict:
    """Lava's spikes (the first `samples` of each layer), logits and attrs."""
    with open_h5(path, "Lava output") as f:
        n = int(f.attrs.get("samples", 0)) or None
        for name in layers:
            if f"spikes/{name}" not in f:
                raise TnaError(f"{path} has no spikes for layer {name}")
        return {"spikes": {k: f[f"spikes/{k}"][:n] for k in layers},
                "logits": f["logits"][:n] if "logits" in f else None, "samples": n, "attrs": dict(f.attrs)}
