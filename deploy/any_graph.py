"""Any standard NIR graph on Lava, verified spike by spike: `tna deploy GRAPH.nir --inputs INPUTS.h5 --dt S`.

The same steps as a run folder's deployment (deploy/pipeline.py), with the graph's own references,
since there is no trained model to hold Lava to:

    plan     the graph at the given dt (deploy/graph/plan.py): every node type's meaning, one-line
             errors for what does not map, nothing written before it passes
    golden   float: the plan in float64 as Lava floating_pt computes it (deploy/graph/float_sim.py);
             loihi: the integer mapping in the Loihi-exact emulator (deploy/loihi/simulate.py)
    files    DIR/model.nir (the graph, with dt, T and the input grid in its metadata, sealed),
             DIR/reference.h5 (inputs, labels, both goldens), DIR/lava_<mode>.h5 (deploy/files.py)
    verify   float Lava vs float golden and fixed Lava vs loihi golden, every spike (both must be
             100%); then fixed Lava vs float Lava (what quantisation costs), accuracy when the inputs
             have labels, and the worst relative error of every stored value per layer

Inputs: `input` [N, T, *input_shape], spikes or analog values. Fixed point feeds integers:
round(x / input_scale), input_scale 1 when every input is a whole number, else max|x| / 255 (or
--input-scale).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deploy import files, verify as verification
from deploy.graph.float_sim import simulate_float
from deploy.graph.plan import NetworkPlan, plan_network
from deploy.loihi.fixed_point import FixedNetwork, calibration_json, fixed_network, mapping_errors, quantize_input
from deploy.loihi.simulate import output_values, simulate
from deploy.pipeline import MODES, Deployment, provenance, run_lava
from tna import runs
from tna.errors import TnaError

INPUT_LEVELS = 255  # analog inputs: max|x| becomes this many integer steps in fixed point


def input_grid(x: np.ndarray, input_scale: float | None = None) -> tuple[float, list]:
    """(input_scale, [min, max] of the quantised inputs in input units)."""
    if input_scale is None:
        top = float(np.abs(x).max(initial=0.0))
        input_scale = 1.0 if np.all(x == np.round(x)) or top == 0 else top / INPUT_LEVELS
    if not (np.isfinite(input_scale) and input_scale > 0):
        raise TnaError(f"--input-scale must be a positive number, got {input_scale}")
    q = np.round(x / input_scale)
    return float(input_scale), [float(q.min(initial=0.0) * input_scale), float(q.max(initial=0.0) * input_scale)]


@dataclass
class Prepared:
    """Everything a deployment needs, before any file is written."""

    graph: object                # nir.NIRGraph with the deployment metadata (dt, T, input grid, calibration)
    plan: NetworkPlan
    net: FixedNetwork
    x: np.ndarray                # inputs [N, T, *input_shape] in the plan's shape
    labels: np.ndarray | None
    float_run: tuple             # simulate_float's (spikes, outputs) on x: the float golden


def prepare(graph_path, inputs_path, dt: float | None, samples: int | None = None,
            input_scale: float | None = None) -> Prepared:
    """Read, check and plan everything; run the float reference (no file written)."""
    import nir

    if samples is not None and samples < 1:
        raise TnaError(f"--samples must be at least 1, got {samples}")
    graph = files.read_any_graph(graph_path)
    x, labels = files.read_user_inputs(inputs_path, samples)
    if dt is None and "dt" in (graph.metadata or {}):  # a graph that says its step (tna's exports do)
        dt = float(np.asarray(graph.metadata["dt"]).ravel()[0])
    if dt is None:
        raise TnaError("the graph does not say its time step (NIR stores no dt): pass --dt SECONDS, the step it "
                       "was made for (snnTorch: 1e-4, Norse: 1e-3)")
    if not (np.isfinite(dt) and dt > 0):
        raise TnaError(f"--dt must be a positive number of seconds, got {dt}")
    scale, rng = input_grid(x, input_scale)
    meta = {**{k: v for k, v in dict(graph.metadata or {}).items() if k not in ("format",)},
            "deployed_by": "tna", "dt": float(dt), "T": int(x.shape[1]), "input_scale": scale, "input_range": rng,
            "source_graph": str(graph_path), "source_sha256": runs.sha256_file(Path(graph_path))}
    plan = plan_network(nir.NIRGraph(nodes=graph.nodes, edges=graph.edges, metadata=meta, type_check=False))
    if int(np.prod(x.shape[2:])) != int(np.prod(plan.input_shape)):
        raise TnaError(f"inputs have shape {x.shape[2:]} per step but the graph's Input takes {plan.input_shape}")
    x = x.reshape(x.shape[:2] + tuple(plan.input_shape))
    classes = int(np.prod(plan.populations[plan.output_source].shape))
    if labels is not None and len(labels) and (labels.min() < 0 or labels.max() >= classes):
        raise TnaError(f"labels span [{labels.min()}, {labels.max()}] but the Output has {classes} values (classes "
                       f"0..{classes - 1}); fix the 'labels' of {inputs_path}")
    ranges = {}  # the fixed-point calibration: the largest |u|, |v| of the float reference, kept in the graph
    float_run = simulate_float(plan, np.ascontiguousarray(x.swapaxes(0, 1)), ranges)
    meta["calibration"] = calibration_json(ranges)
    graph = nir.NIRGraph(nodes=graph.nodes, edges=graph.edges, metadata=meta, type_check=False)
    plan = plan_network(graph)
    return Prepared(graph, plan, fixed_network(plan), x, labels, float_run)


def goldens(p: Prepared) -> dict:
    """{"float": (spikes, outputs), "loihi": (spikes, outputs)}, spikes [N, T, ...], outputs [N, K]."""
    plan, net, x = p.plan, p.net, p.x
    xt = np.ascontiguousarray(x.transpose(1, 0, *range(2, x.ndim)))  # [T, N, ...]
    f_spikes, f_out = p.float_run
    l_spikes, l_out = simulate(net, quantize_input(xt.astype(np.float64), plan.input_scale))
    per_sample = lambda sp: {k: np.asarray(v).astype(np.uint8).swapaxes(0, 1) for k, v in sp.items()}  # noqa: E731
    return {"float": (per_sample(f_spikes), f_out), "loihi": (per_sample(l_spikes), output_values(net, l_out))}


def export(graph_path, inputs_path, out_dir, dt: float | None, samples: int | None = None,
           input_scale: float | None = None) -> tuple[Path, Path, dict]:
    """DIR/model.nir and DIR/reference.h5 (written together, atomically). Returns their paths and the
    mapping errors per layer."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise TnaError(f"--out {out_dir} is a file; give a folder to write the deployment into")
    p = prepare(graph_path, inputs_path, dt, samples, input_scale)
    graph, plan, net, x, labels = p.graph, p.plan, p.net, p.x, p.labels
    out_dir.mkdir(parents=True, exist_ok=True)
    runs.check_writable(out_dir)
    gold = goldens(p)
    layers = [n for n, p in plan.populations.items() if p.kind == "lif"]
    nir_path, ref_path = out_dir / runs.MODEL_NIR, out_dir / runs.REFERENCE
    n = len(x)
    with runs.atomic_path(nir_path) as tmp_nir, runs.atomic_path(ref_path) as tmp_ref:
        files.write_graph(tmp_nir, graph)
        files.write_reference(tmp_ref, x, labels if labels is not None else np.full(n, -1, np.int64),
                              np.arange(n), layers, gold,
                              {"T": plan.T, "dt": plan.dt, "samples": n, "has_labels": labels is not None,
                               "input_scale": plan.input_scale, "output_rule": plan.output_rule,
                               "source_graph": str(graph_path), "checkpoint_sha256": "",
                               "model_digest": files.file_digest(tmp_nir, "NIR graph"),
                               "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    return nir_path, ref_path, mapping_errors(net)


def deploy_graph(graph_path, inputs_path, out_dir, dt: float | None, modes=MODES, samples: int | None = None,
                 input_scale: float | None = None, min_agreement: float | None = None, log=print) -> Deployment:
    """Export, run Lava in each mode, verify; writes DIR/verification.json (one record per mode under
    "modes", "fixed_vs_float", "mapping_errors") and verification.txt."""
    log(f"planning {graph_path} at dt = {'its metadata dt' if dt is None else f'{dt:g} s'} ...")
    nir_path, ref_path, errors = export(graph_path, inputs_path, out_dir, dt, samples, input_scale)
    out_dir = nir_path.parent
    result = Deployment(nir_path, ref_path, {})
    for mode in modes:
        log(f"running Lava ({mode}) ...")
        lava = run_lava(nir_path, ref_path, mode)
        record = verification.compare(ref_path, out_dir / runs.lava_output(mode), mode)
        record["lava"] = lava
        record["source"] = provenance(ref_path)
        result.records[mode] = record
        runs.write_json_atomic(out_dir / runs.verification(mode), record)
        log(verification.summary(record))
        target = 1.0 if min_agreement is None else min_agreement
        if record["spike_agreement"] < target:
            result.failed.append(f"{mode}: spike agreement {record['spike_agreement']:.6%} < {target:.4%}")
    summary = {**result.summary, "mapping_errors": errors}
    texts = [verification.summary(r) for r in result.records.values()]
    if set(modes) >= {"float", "fixed"}:
        cross = verification.compare_outputs(out_dir / runs.lava_output("fixed"), out_dir / runs.lava_output("float"),
                                             ref_path)
        summary["fixed_vs_float"] = cross
        texts.append(verification.cross_summary(cross))
    texts.append(verification.mapping_summary(errors))
    runs.write_json_atomic(out_dir / runs.verification(), summary)
    runs.write_text_atomic(out_dir / runs.VERIFICATION_TEXT, "\n\n".join(texts) + "\n")
    return result


__all__ = ["deploy_graph", "export", "prepare", "goldens", "input_grid", "Prepared"]
