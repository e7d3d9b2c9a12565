"""`tna report RUN_DIR`: spikes, operations, memory, energy and hardware fit of one run.

Counts come from recorded spikes (deploy/report/accounting.py): the trained model's in its own
float arithmetic and in the deployed fixed-point arithmetic (reference.h5, exported on demand)
and, where `tna deploy` has run, Lava's; each deployment is shown with its difference from the
arithmetic it is held to (fixed point against the loihi-exact model: there must be none). Energy
figures are ESTIMATES under the cited models of deploy/report/energy.py; the hardware fit is
deploy/report/fit.py over the resources counted once (deploy/report/resources.py). Writes
RUN_DIR/report/{report.json, report.txt, spikes.png, energy.png}.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from deploy import files
from deploy.graph import compat  # noqa: F401  (nir 1.0.8: non-square Conv2d output types)
from deploy.report.accounting import count
from deploy.report.energy import MODELS, ann_energy_pj, describe, snn_energy_pj
from deploy.report.fit import fit_all
from deploy.report.resources import FEATURES
from deploy.report.targets import TARGETS
from tna import runs
from tna.build import load_trained
from tna.errors import TnaError
from tna.quant import weight_memory

TRIT_BITS = 8 / 5  # five ternary digits packed in one byte (3^5 = 243 <= 256)


def memory(model) -> dict:
    """Per weight layer: bytes as fp32, as 2-bit codes, as base-3 packed codes (+ fp32 scales)."""
    rows = []
    for r in weight_memory(model)["layers"]:
        n, scales = r["weights"], 4 * r["out_channels"]
        rows.append({"layer": r["layer"], "weights": n, "precision": r["precision"], "fp32_bytes": 4 * n,
                     "ternary_2bit_bytes": -(-2 * n // 8) + scales, "ternary_packed_bytes": -(-n // 5) + scales,
                     "bytes_as_trained": r["bytes"]})
    tot = {k: sum(r[k] for r in rows) for k in ("weights", "fp32_bytes", "ternary_2bit_bytes", "ternary_packed_bytes",
                                                 "bytes_as_trained")}
    return {"layers": rows, "totals": tot, "bits_per_weight_2bit": 2.0, "bits_per_weight_packed": TRIT_BITS}


def _energy(totals: dict) -> dict:
    return {name: {"snn_pj": snn_energy_pj(totals, m), "ann_pj": ann_energy_pj(totals["ann_macs"])}
            for name, m in MODELS.items()}


def build(run_dir: str | Path, samples: int = 16) -> dict:
    from deploy.pipeline import export

    run_dir = Path(run_dir)
    run = load_trained(run_dir)
    d = runs.deploy_dir(run_dir)
    runs.check_writable(Path(run_dir) / runs.REPORT)  # before any work
    if not (d / runs.REFERENCE).is_file() or not (d / runs.MODEL_NIR).is_file():
        export(run_dir, samples=samples)
    graph = files.read_graph(d / runs.MODEL_NIR)
    analog = graph.metadata.get("encoding") == "direct"
    ref = files.read_reference(d / runs.REFERENCE)
    inputs, layers = ref["input"], ref["layers"]  # layers in network order
    # the trained model in its own (float) arithmetic, and in the deployed fixed-point arithmetic
    accounts = {"trained": count(graph, ref["float"]["spikes"], inputs, analog),
                "trained_loihi": count(graph, ref["loihi"]["spikes"], inputs, analog)}
    for mode in ("float", "fixed"):
        path = d / runs.lava_output(mode)
        if path.is_file():
            lava = files.read_lava_output(path, layers)
            why = files.stale(lava["attrs"], d / runs.REFERENCE)
            if why:
                raise TnaError(f"{path} was run on another {why} than the current reference.h5 (stale); "
                               f"rerun 'tna deploy {run_dir}' so it matches")
            n = lava["samples"] or len(inputs)
            accounts[f"lava_{mode}"] = count(graph, lava["spikes"], inputs[:n], analog)
    report = {
        "run_dir": str(run_dir), "model": run.config.model, "dataset": run.config.dataset,
        "strategy": run.config.strategy, "weights": run.config.weights, "T": run.config.T,
        "accounts": accounts,
        "energy_pj": {side: _energy(a["totals"]) for side, a in accounts.items()},
        "energy_models": {name: describe(m) for name, m in MODELS.items()},
        "memory": memory(run.model),
        "note": "energy values are estimates from published per-operation figures; loihi1 figures are pre-silicon",
    }
    # each deployment against the arithmetic it is held to (fixed point: must be all zeros)
    for side, ref in (("lava_float", "trained"), ("lava_fixed", "trained_loihi")):
        if side in accounts:
            report.setdefault("difference", {})[f"{side} - {ref}"] = {
                k: accounts[side]["totals"][k] - accounts[ref]["totals"][k] for k in ("spikes", "synops", "neuron_updates")}
    res, fits = fit_all(graph)  # the resources counted once, fitted on every target
    report["hardware_fit"] = fits
    report["hardware_fit_table"] = fit_table(res, fits)
    return report


def text(r: dict) -> str:
    acc = r["accounts"]
    sides = list(acc)
    lines = [f"report: {r['run_dir']} ({r['model']}, {r['dataset']}, {r['strategy']}, {r['weights']} weights, "
             f"T={r['T']}), per sample, {acc['trained']['samples']} samples"]
    head = f"{'layer':<14}{'neurons':>9}" + "".join(f"{'spikes ' + s:>22}" for s in sides) + f"{'rate':>8}{'SynOps out':>13}"
    lines.append(head)
    for i, row in enumerate(acc["trained"]["layers"]):
        vals = "".join(f"{acc[s]['layers'][i]['spikes_per_sample']:>22.1f}" for s in sides)
        lines.append(f"{row['layer']:<14}{row['neurons']:>9}{vals}{row['firing_rate']:>8.3f}{row['synops_out_per_sample']:>13.0f}")
    t = acc["trained"]["totals"]
    lines.append(f"totals (trained): {t['spikes']:.0f} spikes, {t['synops']:.0f} SynOps, {t['analog_macs']:.0f} analog MACs, "
                 f"{t['neuron_updates']:.0f} neuron updates; same-shape ANN: {t['ann_macs']} MACs")
    for side, diff in r.get("difference", {}).items():
        lines.append(f"{side}: " + ", ".join(f"{k} {v:+.1f}" for k, v in diff.items()))
    lines.append("energy per inference (ESTIMATES; loihi1 is pre-silicon):")
    for side, e in r["energy_pj"].items():
        lines.append("  " + side + ": " + ", ".join(f"{m} SNN {v['snn_pj'] / 1e6:.3f} uJ" for m, v in e.items())
                     + f"; ANN (45 nm MACs) {e['horowitz45nm']['ann_pj'] / 1e6:.3f} uJ")
    m = r["memory"]["totals"]
    lines.append(f"weights: {m['weights']} -> fp32 {m['fp32_bytes']} B, ternary 2-bit {m['ternary_2bit_bytes']} B, "
                 f"base-3 packed {m['ternary_packed_bytes']} B (incl. fp32 per-channel scales)")
    lines.append("hardware fit (deploy/report/targets.py, hardware_targets.md):")
    for f in r["hardware_fit"].values():
        where = f"{f['cores']} cores, {f['chips']} chip(s)" if f["cores"] is not None else "host"
        verdict = (f"fits: {where}" if f["fits"] else "does not fit") + f"; binding: {f['binding']}"
        if f["unsupported"]:  # resources are one question, features another: say both
            verdict += ("; but cannot run it as exported, unsupported: " if f["fits"] else "; unsupported: ") \
                + ", ".join(u.split(":")[0] for u in f["unsupported"])
        lines.append(f"  {f['name']:<40} {verdict}")
    return "\n".join(lines)


def plots(r: dict, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    acc = r["accounts"]
    names = [row["layer"] for row in acc["trained"]["layers"]]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(5, len(names) * 0.9), 3.5))
    width = 0.8 / len(acc)
    for i, (side, a) in enumerate(acc.items()):
        ax.bar(x + i * width, [row["spikes_per_sample"] for row in a["layers"]], width, label=side)
    ax.set_xticks(x + 0.4 - width / 2, names, rotation=45, ha="right")
    ax.set_ylabel("spikes per sample")
    ax.set_title("spikes per layer: trained vs deployed")
    ax.legend()
    fig.tight_layout()
    spikes_png = out / "spikes.png"
    fig.savefig(spikes_png, dpi=120)
    plt.close(fig)

    syn = acc["trained"]["synapses"]
    fig, ax = plt.subplots(figsize=(max(5, len(syn) * 0.9), 3.5))
    x = np.arange(len(syn))
    h = MODELS["horowitz45nm"]
    snn = [(s["synops_per_sample"] * h.pj_per_ac + s["analog_macs_per_sample"] * h.pj_per_mac) / 1e6 for s in syn]
    ann = [s["ann_macs"] * h.pj_per_mac / 1e6 for s in syn]
    ax.bar(x - 0.2, ann, 0.4, label="same-shape ANN (MACs)")
    ax.bar(x + 0.2, snn, 0.4, label="SNN (SynOps + analog MACs)")
    ax.set_xticks(x, [s["node"] for s in syn], rotation=45, ha="right")
    ax.set_ylabel("energy per inference (uJ, estimate)")
    ax.set_title("per-layer energy, 45 nm model (Horowitz 2014)")
    ax.legend()
    fig.tight_layout()
    energy_png = out / "energy.png"
    fig.savefig(energy_png, dpi=120)
    plt.close(fig)
    return [spikes_png, energy_png]


def write(run_dir: str | Path, samples: int = 16) -> tuple[dict, Path]:
    if not Path(run_dir).is_dir():
        raise TnaError(f"run folder {run_dir} does not exist")
    r = build(run_dir, samples)
    out = Path(run_dir) / runs.REPORT
    out.mkdir(exist_ok=True)
    r["plots"] = [str(p) for p in plots(r, out)]
    runs.write_json_atomic(out / runs.REPORT_JSON, json.loads(json.dumps(r, default=float)))
    runs.write_text_atomic(out / runs.REPORT_TEXT, text(r) + "\n\n" + r["hardware_fit_table"] + "\n")
    return r, out


def _si(n) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.3g}{unit}"
    return f"{n:g}"


def fit_report(graph) -> str:
    """A readable table: the graph's resources per layer, then the fit on every target."""
    return fit_table(*fit_all(graph))


def fit_table(res: dict, fits: dict) -> str:
    """The table of `fit_report` from counted resources and their fits (`deploy.report.fit.fit_all`)."""
    lines = ["Resources per layer (synapses: dense = every in-bounds pair, nz = non-zero; bits = stored "
             "non-zero weights)",
             f"{'layer':<18} {'kind':<4} {'shape':<14} {'neurons':>8} {'syn dense':>10} {'syn nz':>10} "
             f"{'fan-in':>7} {'fan-out':>7} {'w bits':>6} {'weight mem':>10}"]
    for i in res["inputs"]:
        lines.append(f"{i['name']:<18} {'in':<4} {str(i['shape']):<14} {i['neurons']:>8} {'':>10} {'':>10} "
                     f"{'':>7} {i['fan_out']:>7}")
    for x in res["layers"]:
        lines.append(f"{x['name']:<18} {x['kind']:<4} {str(x['shape']):<14} {x['neurons']:>8} "
                     f"{_si(x['synapses_dense']):>10} {_si(x['synapses_nonzero']):>10} {x['fan_in']:>7} "
                     f"{x['fan_out']:>7} {'/'.join(map(str, x['weight_bits'])):>6} "
                     f"{_si(x['sparse_weight_bits'] / 8) + 'B':>10}")
    t = res["totals"]
    lines.append(f"{'total':<18} {'':<4} {'':<14} {t['neurons']:>8} {_si(t['synapses_dense']):>10} "
                 f"{_si(t['synapses_nonzero']):>10} {t['fan_in']:>7} {t['fan_out']:>7} {'':>6} "
                 f"{_si(t['sparse_weight_bits'] / 8) + 'B':>10}")
    used = [f for f in FEATURES if res["features"][f]]
    lines += ["", f"features used: {', '.join(used)}", "",
              f"{'target':<40} {'fits':<4} {'cores':>6} {'chips':>5}  binding constraint / unsupported"]
    for tg in TARGETS:
        r = fits[tg.key]
        cores = "-" if r["cores"] is None else str(r["cores"])
        chips = "-" if r["chips"] is None else str(r["chips"])
        lines.append(f"{tg.name:<40} {'yes' if r['fits'] else 'no':<4} {cores:>6} {chips:>5}  {r['binding']}")
        for u in r["unsupported"]:
            lines.append(f"{'':<59}unsupported: {u}")
        if r["partial"]:
            lines.append(f"{'':<59}partial/unconfirmed: {', '.join(p.split(':')[0] for p in r['partial'])}")
    lines += ["", "fits = the resources fit; a target also needs every feature used (see 'unsupported' and "
                  "hardware_targets.md). Figures marked estimated in deploy/report/targets.py are not confirmed."]
    return "\n".join(lines)
