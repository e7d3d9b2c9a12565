"""The deployment, start to end: export -> Lava per mode -> verify. `tna deploy`, the notebooks and
the benchmarks call these functions (training environment; Lava runs as a subprocess).

    nir_path, ref_path = export(run_dir, samples=16)      # RUN_DIR/deploy/{model.nir, reference.h5}
    summary = run_lava(nir_path, ref_path, "fixed")       # RUN_DIR/deploy/lava_fixed.h5 (a hung run is retried)
    record = verify(ref_path, "fixed")                    # every spike: Lava vs the golden reference
    result = deploy(run_dir, modes=("float", "fixed"))    # all of it, plus verification.json / .txt

Fixed-point Lava is held to the golden `loihi` arithmetic (the one integer simulator,
deploy/loihi/simulate.py) and must agree exactly; floating-point Lava to the trained model.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from deploy import files, verify as verification
from deploy.graph.from_model import graph_of, lif_nodes
from deploy.lavanet.env import LavaStalled, run_in_lava
from deploy.loihi.simulate import LoihiSimulator
from tna import runs
from tna.build import TrainedRun, load_trained, make_encoder
from tna.data import load_dataset
from tna.errors import TnaError
from tna.models.layers import Spiking

DEFAULT_SAMPLES = 16
MODES = ("float", "fixed")
MIN_AGREEMENT = {"fixed": 1.0, "float": 0.9999}  # spike agreement each mode is held to by default
LAVA_STALL_SECONDS = 120  # no CPU use by any Lava process for this long: a hung run
LAVA_RUN = Path(__file__).resolve().parent / "lava_run.py"


# ---- export ---------------------------------------------------------------------------------------------
def reference_inputs(run: TrainedRun, samples: int, data_root: str | None = None):
    """N test samples spread over the test set (it may be sorted by class), encoded as in training:
    (x [T, N, ...], labels [N], test-set indices [N])."""
    cfg = run.config
    _, test, _ = load_dataset(cfg.dataset, T=cfg.T, root=data_root or cfg.data_root, train_augment=False)
    n = min(samples, len(test))
    indices = np.linspace(0, len(test) - 1, n).round().astype(np.int64)
    x = torch.stack([test[int(i)][0] for i in indices])
    y = torch.tensor([test[int(i)][1] for i in indices])
    torch.manual_seed(0)  # rate encoding draws spikes: fixed, so the reference is reproducible
    return make_encoder(cfg, run.shape)(x).contiguous(), y, indices


@torch.no_grad()
def trained_spikes(model, x: torch.Tensor):
    """The trained model's own spikes per spiking layer (named like the NIR nodes) and logits."""
    rec = {}
    hooks = [m.register_forward_hook(lambda mod, i, o, n=n: rec.__setitem__(n.replace(".", "_"), o))
             for n, m in model.named_modules() if isinstance(m, Spiking)]
    logits = model(x).logits
    for h in hooks:
        h.remove()
    return rec, logits


def export(run_dir: str | Path, out: str | Path | None = None, samples: int = DEFAULT_SAMPLES,
           data_root: str | None = None, synapses: str | None = None) -> tuple[Path, Path]:
    """Write the run's graph (model.nir) and the golden reference (reference.h5, deploy/files.py)
    beside it: N test inputs, and every spiking layer's spikes and the logits from the trained model
    (`float`) and from the same graph in Lava's fixed-point arithmetic (`loihi`). Both files are
    written under temporary names and renamed together: a failed export leaves nothing half-done."""
    import nir

    if samples < 1:
        raise TnaError(f"--samples must be at least 1, got {samples}")
    out = Path(out) if out else runs.deploy_dir(run_dir) / runs.MODEL_NIR
    if out.is_dir():
        raise TnaError(f"--out {out} is a folder; give the file to write, e.g. {out / runs.MODEL_NIR}")
    ref_path = out.with_name(runs.REFERENCE)
    run = load_trained(run_dir)  # (a missing run folder: its own error, and nothing created)
    runs.check_writable(out.parent)  # before any work
    cfg = run.config
    graph = graph_of(run, synapses)
    layers = lif_nodes(graph)  # in network order (nir.read returns nodes sorted by name)
    ckpt = Path(run_dir) / runs.CHECKPOINT
    source = {"checkpoint_sha256": runs.sha256_file(ckpt) if ckpt.is_file() else "",
              "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    with runs.atomic_path(out) as tmp_nir, runs.atomic_path(ref_path) as tmp_ref:
        files.write_graph(tmp_nir, graph)
        graph = nir.read(tmp_nir)  # what Lava will see, type-checked
        x, y, indices = reference_inputs(run, samples, data_root)
        ref, logits = trained_spikes(run.model, x)
        loihi_spikes, loihi_logits = LoihiSimulator(graph).run_float(x)
        golden = {"float": (ref, logits), "loihi": (loihi_spikes, loihi_logits)}
        files.write_reference(
            tmp_ref, x.transpose(0, 1).numpy(), y.numpy(), indices, layers,
            {g: ({k: s.transpose(0, 1).numpy() for k, s in sp.items()}, lg.numpy()) for g, (sp, lg) in golden.items()},
            {"run_dir": str(run_dir), "T": cfg.T, "dt": cfg.dt, "model": cfg.model, "dataset": cfg.dataset,
             "samples": len(indices), "model_digest": files.file_digest(tmp_nir, "NIR graph"), **source})
    return out, ref_path


# ---- Lava ---------------------------------------------------------------------------------------------
def run_lava(nir_path: str | Path, ref_path: str | Path, mode: str, out: str | Path | None = None,
             samples: int | None = None, retry: bool = True) -> dict:
    """deploy/lava_run.py in the Lava environment; returns its summary (deploy/files.py attrs).

    A run whose processes sit idle for LAVA_STALL_SECONDS (lava-nc's runtime can deadlock at
    start-up) is killed with its workers and, with `retry`, started once more: the run is
    deterministic."""
    if mode not in MODES:
        raise TnaError(f"unknown mode '{mode}'; use float or fixed")
    out = Path(out) if out else Path(nir_path).parent / runs.lava_output(mode)
    args = [str(nir_path), str(ref_path), "--mode", mode, "--out", str(out)]
    if samples is not None:
        args += ["--samples", str(samples)]
    try:
        proc = run_in_lava(LAVA_RUN, args, stall=LAVA_STALL_SECONDS)
    except LavaStalled as e:
        if not retry:
            raise
        print(f"warning: {e}; retrying once", file=sys.stderr, flush=True)
        proc = run_in_lava(LAVA_RUN, args, stall=LAVA_STALL_SECONDS)
    lines = proc.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else {}


def verify(ref_path: str | Path, mode: str, lava_out: str | Path | None = None) -> dict:
    """The verification record of one mode (deploy/verify.py): Lava's output against its golden data."""
    lava_out = Path(lava_out) if lava_out else Path(ref_path).parent / runs.lava_output(mode)
    return verification.compare(ref_path, lava_out, mode)


def provenance(ref_path: str | Path) -> dict:
    """What a verification was derived from: the reference's digest, its checkpoint, samples, time."""
    with files.open_h5(ref_path, "reference") as f:
        a = f.attrs
        return {"reference_digest": str(a[files.DIGEST]), "checkpoint_sha256": str(a.get("checkpoint_sha256", "")),
                "samples": int(len(f["indices"])), "indices": [int(i) for i in f["indices"][:]],
                "reference_written": str(a.get("written", "")),
                "verified": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


# ---- all of it ----------------------------------------------------------------------------------------
@dataclass
class Deployment:
    nir_path: Path
    ref_path: Path
    records: dict                          # mode -> verification record
    failed: list = field(default_factory=list)  # "mode: agreement ... < target" for each mode below its target

    @property
    def summary(self) -> dict:
        """The top-level verification.json: the worst agreement over the modes, and every mode's record."""
        modes = list(self.records)
        top = {"mode": "both" if len(modes) > 1 else modes[0],
               "spike_agreement": min(r["spike_agreement"] for r in self.records.values()),
               "output_agreement": min(r["output_agreement"] for r in self.records.values()), "modes": self.records}
        return {**self.records[modes[0]], **top} if len(modes) == 1 else top


def deploy(run_dir: str | Path, modes=MODES, samples: int = DEFAULT_SAMPLES, min_agreement: float | None = None,
           data_root: str | None = None, synapses: str | None = None, log=print) -> Deployment:
    """Export, run Lava in each mode, verify every spike; writes RUN_DIR/deploy/verification.json
    (and one per mode) and verification.txt. `min_agreement` overrides MIN_AGREEMENT."""
    run_dir = Path(run_dir)
    if run_dir.is_dir():
        runs.check_writable(runs.deploy_dir(run_dir))  # before any work
    log(f"exporting {run_dir} to NIR with {samples} reference samples ...")
    nir_path, ref_path = export(run_dir, samples=samples, data_root=data_root, synapses=synapses)
    out_dir = nir_path.parent
    result = Deployment(nir_path, ref_path, {})
    for mode in modes:
        log(f"running Lava ({mode}) ...")
        lava = run_lava(nir_path, ref_path, mode, samples=samples)
        record = verify(ref_path, mode)
        record["lava"] = lava
        record["source"] = provenance(ref_path)
        result.records[mode] = record
        runs.write_json_atomic(out_dir / runs.verification(mode), record)
        log(verification.summary(record))
        target = MIN_AGREEMENT[mode] if min_agreement is None else min_agreement
        if record["spike_agreement"] < target:
            result.failed.append(f"{mode}: spike agreement {record['spike_agreement']:.6%} < {target:.4%}")
    runs.write_json_atomic(out_dir / runs.verification(), result.summary)
    runs.write_text_atomic(out_dir / runs.VERIFICATION_TEXT,
                           "\n\n".join(verification.summary(r) for r in result.records.values()) + "\n")
    return result


# ---- graphs for other simulators ----------------------------------------------------------------------
def export_for_consumer(run_dir: str | Path, consumer: str, out: str | Path | None = None) -> Path:
    """Write the run's graph as `consumer` (norse | snntorch) imports it unchanged
    (deploy/graph/consumers.py): RUN_DIR/deploy/model-<consumer>.nir, or beside `out` (export's
    --out, the model.nir path; or a folder). Written under a temporary name, read back and imported
    by the consumer (when it is installed) before it takes its name: a failed export leaves nothing."""
    import nir

    from deploy.graph.consumers import CONSUMERS, for_consumer, import_graph

    if consumer not in CONSUMERS:
        raise TnaError(f"unknown NIR consumer '{consumer}'; use one of {', '.join(CONSUMERS)}")
    name = f"model-{consumer}.nir"
    out = Path(out) if out else runs.deploy_dir(run_dir) / name
    out = out / name if out.is_dir() else out.with_name(name)
    run = load_trained(run_dir)
    graph = for_consumer(graph_of(run), consumer)  # (a graph the consumer cannot run: refused here)
    runs.check_writable(out.parent)
    with runs.atomic_path(out) as tmp:
        nir.write(tmp, graph)
        try:
            import_graph(nir.read(tmp, type_check=False), consumer)
        except ImportError:
            pass  # the consumer is not installed here: the file is still what it imports
    return out
