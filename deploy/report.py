"""`tna report RUN_DIR`: spikes, operations, memory, energy and hardware fit of one run.

Counts come from recorded spikes (deploy/accounting.py): the trained model's in its own float
arithmetic and in the deployed fixed-point arithmetic (reference.h5, exported on demand) and,
where `tna deploy` has run, Lava's; each deployment is shown with its difference from the
arithmetic it is held to (fixed point against the loihi-exact model: there must be none). Energy figures are ESTIMATES under the cited models of
deploy/energy.py. Writes RUN_DIR/report/{report.json, report.txt, spikes.png, energy.png}.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import nir
import numpy as np

from deploy import nir_compat  # noqa: F401  (nir 1.0.8: non-square Conv2d output types)
from deploy.accounting import count
from deploy.energy import MODELS, ann_energy_pj, describe, snn_energy_pj
from tna.config import write_json_atomic
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
    from deploy.export_nir import export
    from tna.run import load_trained

    run_dir = Path(run_dir)
    run = load_trained(run_dir)
    d = run_dir / "deploy"
    if not (d / "reference.h5").is_file() or not (d / "model.nir").is_file():
        export(run_dir, samples=samples)
    graph = nir.read(d / "model.nir")
    analog = graph.metadata.get("encoding") == "direct"
    with h5py.File(d / "reference.h5", "r") as f:
        inputs = f["input"][:]
        layers = list(f.attrs["layers"])  # network order
        golden = {g: {k: f[f"{g}/spikes/{k}"][:] for k in layers} for g in ("float", "loihi") if g in f}
    # the trained model in its own (float) arithmetic, and in the deployed fixed-point arithmetic
    accounts = {"trained": count(graph, golden["float"], inputs, analog),
                "trained_loihi": count(graph, golden["loihi"], inputs, analog)}
    for mode in ("float", "fixed"):
        path = d / f"lava_{mode}.h5"
        if path.is_file():
            with h5py.File(path, "r") as f:
                n = int(f.attrs.get("samples", len(inputs)))
                spikes = {k: f[f"spikes/{k}"][:n] for k in layers}
            accounts[f"lava_{mode}"] = count(graph, spikes, inputs[:n], analog)
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
    from deploy.resources import fit, fit_report
    from deploy.targets import TARGETS

    report["hardware_fit"] = {t.key: fit(graph, t) for t in TARGETS}
    report["hardware_fit_table"] = fit_report(graph)
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
    lines.append("hardware fit (deploy/targets.py, hardware_targets.md):")
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
    out = Path(run_dir) / "report"
    out.mkdir(exist_ok=True)
    r["plots"] = [str(p) for p in plots(r, out)]
    write_json_atomic(out / "report.json", json.loads(json.dumps(r, default=float)))
    (out / "report.txt").write_text(text(r) + "\n\n" + r["hardware_fit_table"] + "\n")
    return r, out
