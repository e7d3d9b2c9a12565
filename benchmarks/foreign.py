"""Standard NIR graphs from other tools and by hand on Lava: verification numbers per graph family.

    OMP_NUM_THREADS=1 python benchmarks/foreign.py [--out runs/foreign] [--only NAME ...] [--quick]

For each graph (tests/foreign_graphs.py builds them) it runs `tna deploy GRAPH.nir --inputs --dt --out`
(deploy/any_graph.py) in both Lava modes and prints, and writes to docs/results/foreign.md: samples and
steps, spike agreement of float Lava with the float reference and of fixed Lava with the Loihi-exact
emulator (both must be 100%), fixed vs float (what quantisation costs: spikes, same class), accuracy
where the inputs have labels, Lava seconds per sample in each mode, and the worst relative mapping
error over the layers (weights, thresholds).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import nir  # noqa: E402
import numpy as np  # noqa: E402

import foreign_graphs as fg  # noqa: E402
from deploy.any_graph import deploy_graph  # noqa: E402
from tna.runs import write_text_atomic  # noqa: E402


def _demo_roundtrip(n: int):
    """runs/demo's export for Norse -> Norse -> Norse's export (repaired), on n of its test samples as they
    enter the network; also returns the trained model's classes for them."""
    import torch

    from deploy.graph.consumers import for_consumer
    from deploy.pipeline import reference_inputs
    from tna.build import load_trained

    run = load_trained(ROOT / "runs" / "demo")
    graph = fg.norse_roundtrip_of(for_consumer(nir.read(ROOT / "runs" / "demo" / "deploy" / "model.nir"), "norse"),
                                  dt=1e-3)
    x, y, _ = reference_inputs(run, n)
    with torch.no_grad():
        trained = run.model(x).logits.argmax(1).numpy()
    return graph, x.transpose(0, 1).numpy(), y.numpy(), trained


def cases(quick: bool) -> dict:
    """name -> (family, where the graph comes from, builder, inputs builder, dt)."""
    n = 4 if quick else None
    return {
        "if_cnn_dvs": ("IF + Conv2d + SumPool2d CNN", "hand-built standard NIR, trained in torch (tests/data)",
                       fg.if_cnn_trained, lambda: fg.dvs_inputs(n or 20, 300), 1e-3),
        "lif_mlp": ("LIF MLP", "hand-built standard NIR", lambda: fg.lif_mlp(),
                    lambda: (fg.spike_inputs(n or 100, 100, 40, 0.2), None), 1e-3),
        "snntorch_leaky_mlp": ("LIF MLP", "snnTorch 1.0.0 export_to_nir (repaired types)",
                               lambda: fg.snntorch_exported("leaky_mlp"), None, 1e-4),
        "norse_lifbox_mlp": ("LIF MLP", "Norse 1.1.0 to_nir (repaired: scalars, tau)", lambda: fg.norse_exported(),
                             None, 1e-3),
        "recurrent_cubalif": ("recurrent CubaLIF (Braille shape)", "hand-built, nested subgraph, bias into I",
                              lambda: fg.recurrent_cubalif(rec_bias=True),
                              lambda: (fg.spike_inputs(n or 50, 256, 12, 0.05), None), 1e-4),
        "snntorch_rsynaptic": ("recurrent CubaLIF", "snnTorch 1.0.0 export_to_nir of RSynaptic",
                               lambda: fg.snntorch_exported("rsynaptic"), None, 1e-4),
        "demo_norse_roundtrip": ("ternary CNN (runs/demo)", "our export -> Norse -> Norse's to_nir", None, None, 1e-3),
    }


def run(name: str, case, out: Path, quick: bool) -> dict:
    family, source, build, inputs, dt = case
    trained = None
    if name == "demo_norse_roundtrip":
        graph, x, y, trained = _demo_roundtrip(4 if quick else 200)
    else:
        graph = build()
        if inputs is None:  # spikes at 10% into the graph's input shape
            from deploy.graph.read import read

            g = read(graph)
            x, y = fg.spike_inputs(4 if quick else 100, 100, g.nodes[g.inputs[0]].shape, 0.1), None
        else:
            x, y = inputs()
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    nir.write(folder / "graph.nir", graph)
    fg.write_inputs(folder / "inputs.h5", x, y)
    t0 = time.perf_counter()
    result = deploy_graph(folder / "graph.nir", folder / "inputs.h5", folder / "deployed", dt, log=lambda m: None)
    wall = time.perf_counter() - t0
    v = json.loads((folder / "deployed" / "verification.json").read_text())
    fl, fx, cross = v["modes"]["float"], v["modes"]["fixed"], v["fixed_vs_float"]
    worst = max(max(r.get("weights", 0), r.get("threshold", 0)) for r in v["mapping_errors"].values())
    row = {"name": name, "family": family, "source": source, "dt": dt, "T": int(x.shape[1]), "samples": fl["samples"],
           "float_agreement": fl["spike_agreement"], "fixed_agreement": fx["spike_agreement"],
           "spikes": fx["spikes_deployed"], "fixed_vs_float_spikes": cross["spike_agreement"],
           "same_class": cross["same_class"], "accuracy_float": cross.get("accuracy_b"),
           "accuracy_fixed": cross.get("accuracy_a"), "lava_s_per_sample_float": fl["lava"]["seconds_per_sample"],
           "lava_s_per_sample_fixed": fx["lava"]["seconds_per_sample"], "worst_mapping_error": worst,
           "wall_s": round(wall, 1), "failed": result.failed}
    if trained is not None:  # a graph of our trained model: Lava's classes against the model's own
        import h5py

        with h5py.File(folder / "deployed" / "lava_float.h5") as f:
            row["same_class_as_trained"] = float((f["logits"][:].argmax(1) == trained).mean())
    print(json.dumps(row), flush=True)
    return row


def table(rows: list) -> str:
    pct = lambda v: "-" if v is None else f"{100 * v:.2f}%"  # noqa: E731
    lines = ["| graph | from | dt | T | N | float Lava vs float ref | fixed Lava vs Loihi-exact | fixed vs float spikes "
             "| same class | accuracy float / fixed | Lava s/sample float / fixed | worst mapping error |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['family']} (`{r['name']}`) | {r['source']} | {r['dt']:g} | {r['T']} | {r['samples']} | "
                     f"{pct(r['float_agreement'])} | {pct(r['fixed_agreement'])} | {pct(r['fixed_vs_float_spikes'])} | "
                     f"{pct(r['same_class'])} | {pct(r['accuracy_float'])} / {pct(r['accuracy_fixed'])} | "
                     f"{r['lava_s_per_sample_float']:.3f} / {r['lava_s_per_sample_fixed']:.3f} | "
                     f"{r['worst_mapping_error']:.3g} |")
    extra = [f"- `{r['name']}`: float Lava gives the trained model's own class on {100 * r['same_class_as_trained']:.2f}% "
             f"of {r['samples']} test samples." for r in rows if "same_class_as_trained" in r]
    return "\n".join(lines + ([""] + extra if extra else []))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(ROOT / "runs" / "foreign"), help="work folder (default runs/foreign)")
    p.add_argument("--only", nargs="*", help="run only these graphs")
    p.add_argument("--quick", action="store_true", help="4 samples each (a smoke run)")
    p.add_argument("--doc", default=str(ROOT / "docs" / "results" / "foreign.md"), help="where to write the table")
    args = p.parse_args(argv)
    rows = [run(name, case, Path(args.out), args.quick) for name, case in cases(args.quick).items()
            if not args.only or name in args.only]
    text = ("# Standard NIR graphs on Lava (benchmarks/foreign.py)\n\n"
            f"Measured {time.strftime('%Y-%m-%d')} on 2 CPU cores; every sample runs T steps in both Lava modes.\n"
            "Spike agreement counts every neuron at every step of every sample; the mapping error is the worst "
            "relative error of the stored weights and thresholds over the layers (deploy/loihi/fixed_point.py "
            "`mapping_errors`).\n\n" + table(rows) + "\n")
    if not args.quick and not args.only:
        write_text_atomic(Path(args.doc), text)
    print(table(rows))
    return 0 if all(not r["failed"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
