"""Our trained network in other simulators: the graph `deploy/export_nir.py --consumer C` writes,
run by each consumer's released NIR importer, against the trained model itself.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/consumers.py [RUN_DIR ...] [--samples 1000]

For each run (default runs/demo) and consumer (norse, snntorch): N test samples spread over the
test set, encoded as in training (`deploy.pipeline.reference_inputs`); the graph is written with
nir.write and read back (what the consumer sees), imported by the consumer unchanged, and run one
sample at a time (`deploy.graph.consumers.run_in_consumer`). Measured: same-class rate (argmax of
the Output summed over the T steps vs the trained model's predicted class), the accuracy of both on
the labels, and spike agreement (every spike of every spiking layer, each time step, equal to the
trained model's), with the number of samples whose spikes are all identical, and the model's spike
rate (spikes per neuron and step) to show the layers are not silent. Prints a table and
writes docs/results/consumers.md (--md to change, --no-md to skip).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import nir
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deploy.graph.consumers import CONSUMERS, for_consumer, run_in_consumer  # noqa: E402
from deploy.graph.from_model import graph_of  # noqa: E402
from deploy.pipeline import reference_inputs, trained_spikes  # noqa: E402
from tna.build import load_trained  # noqa: E402


def measure(run_dir: str, consumer: str, samples: int) -> dict:
    run = load_trained(run_dir)
    x, y, _ = reference_inputs(run, samples)
    ref, logits = trained_spikes(run.model, x)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"model-{consumer}.nir"
        nir.write(path, for_consumer(graph_of(run), consumer))
        graph = nir.read(path, type_check=False)
    t0 = time.perf_counter()
    spikes, summed = run_in_consumer(graph, consumer, x)
    seconds = time.perf_counter() - t0
    equal = sum(int((spikes[k] == ref[k]).sum()) for k in ref)
    total = sum(ref[k].numel() for k in ref)
    same_sample = torch.ones(x.shape[1], dtype=torch.bool)
    for k in ref:
        same_sample &= (spikes[k] == ref[k]).flatten(2).all(2).all(0)
    cfg = run.config
    trained = (f"{cfg.model} width {cfg.width:g}, {cfg.dataset}, --strategy {cfg.strategy}, {cfg.epochs} epochs on "
               f"{cfg.train_samples or 'all'} training samples, T {cfg.T}, tau_mem {cfg.tau_mem:g}, dt {cfg.dt:g}")
    return {"run": run_dir, "trained": trained, "model": cfg.model, "dataset": cfg.dataset, "T": cfg.T,
            "consumer": consumer,
            "samples": int(x.shape[1]), "layers": f"{len(spikes)}/{len(ref)}",
            "same_class": float((summed.argmax(1) == logits.argmax(1)).float().mean()),
            "acc_model": float((logits.argmax(1) == y).float().mean()),
            "acc_consumer": float((summed.argmax(1) == y).float().mean()),
            "spike_rate": float(sum(float(ref[k].sum()) for k in ref) / total),
            "spike_agreement": equal / total, "spikes_differing": total - equal, "spikes_total": total,
            "samples_all_spikes_equal": int(same_sample.sum()), "seconds": seconds,
            "graph_dt": float(graph.metadata["dt"]), "decay": float(graph.metadata["decay"])}


def table(rows: list[dict]) -> str:
    head = ("| run | model | dataset | consumer | graph dt | samples | same class | acc model / consumer "
            "| model spike rate | spike agreement | differing spikes | samples with all spikes equal | s |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        lines.append(f"| {r['run']} | {r['model']} | {r['dataset']} | {r['consumer']} | {r['graph_dt']:g} "
                     f"| {r['samples']} | {r['same_class']:.2%} | {r['acc_model']:.2%} / {r['acc_consumer']:.2%} "
                     f"| {r['spike_rate']:.3f} | {r['spike_agreement']:.6%} "
                     f"| {r['spikes_differing']} of {r['spikes_total']} "
                     f"| {r['samples_all_spikes_equal']}/{r['samples']} | {r['seconds']:.0f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="*", default=["runs/demo"], metavar="RUN_DIR")
    p.add_argument("--samples", type=int, default=1000)
    p.add_argument("--consumers", default=",".join(CONSUMERS))
    p.add_argument("--md", default=str(ROOT / "docs/results/consumers.md"))
    p.add_argument("--no-md", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for run_dir in args.runs:
        for consumer in args.consumers.split(","):
            rows.append(measure(run_dir, consumer, args.samples))
            print(table(rows[-1:]).splitlines()[-1], flush=True)
    text = table(rows)
    print("\n" + text)
    if not args.no_md:
        Path(args.md).write_text(
            "# Our trained networks in other simulators (NIR consumers)\n\n"
            "Written by `benchmarks/consumers.py` (" + " ".join(["OMP_NUM_THREADS=1 .venv/bin/python",
                                                                  "benchmarks/consumers.py", *args.runs,
                                                                  "--samples", str(args.samples)]) + ").\n"
            "Each graph is what `deploy/export_nir.py RUN --consumer C` writes, read back with nir.read and "
            "imported unchanged by the consumer's released importer (norse 1.1.0 `norse.torch.from_nir(g, "
            "dt=g.metadata['dt'])`, snnTorch 1.0.0 `snntorch.import_nir.import_from_nir(g)`), run one sample "
            "at a time; compared with the trained model on the same encoded test inputs "
            "(`deploy.pipeline.reference_inputs`, samples spread over the test set). Same class: argmax "
            "of the Output summed over the T steps vs the model's predicted class. Spike agreement: every "
            "spike of every spiking layer at every step. Conventions: docs/consumers.md.\n\n" + text + "\n\n"
            "Runs (`tna train`; run folders are not in git):\n\n"
            + "".join(f"- {r}: {t}\n" for r, t in dict((r["run"], r["trained"]) for r in rows).items()))
        print(f"wrote {args.md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
