"""Compare training strategies: baseline, kd, enof, tna, each with full and ternary weights, over seeds.

    .venv/bin/python benchmarks/strategies.py --out runs/bench            # mnist5k and mnist5k-dvs, 3 seeds
    .venv/bin/python benchmarks/strategies.py --datasets mnist5k --seeds 0 --epochs 2   # a quick look

Per dataset and seed it first trains the teacher that kd and enof need (the ANN of the same shape,
full precision), then the eight student runs. Every run is an ordinary run folder under --out;
finished ones are reused, so an interrupted benchmark continues where it stopped. Prints one table
of test accuracy (mean and standard deviation over seeds) and writes it to OUT/results.{json,md}.
The claim under test (Deckers et al. 2024): ternary TNA beats ternary baseline and KD, and comes
close to full precision.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from tna.config import TrainConfig, validate, write_json_atomic
from tna.train import train

STRATEGIES = ("baseline", "kd", "enof", "tna")


def run(out: Path, **options) -> dict:
    """Train one configuration into `out` unless it already finished there; return its metrics."""
    metrics = out / "metrics.json"
    if metrics.is_file():
        return json.loads(metrics.read_text())
    cfg = TrainConfig(out=str(out), **options)
    validate(cfg)
    resume = (out / "checkpoint.pt").is_file()
    print(f"--- {out}", flush=True)
    return train(cfg, resume=resume)


def table(rows: list[dict]) -> str:
    lines = ["| dataset | strategy | weights | test accuracy (mean ± std) | seeds | epochs |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['dataset']} | {r['strategy']} | {r['weights']} | "
                     f"{100 * r['mean']:.2f} ± {100 * r['std']:.2f} % | {r['n']} | {r['epochs']} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/bench", help="folder for all run folders and the results")
    p.add_argument("--datasets", nargs="+", default=["mnist5k", "mnist5k-dvs"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    p.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES)
    p.add_argument("--train-samples", type=int, help="train on a random subset (quick looks, tests)")
    args = p.parse_args(argv)
    out = Path(args.out)

    acc: dict[tuple, list[float]] = {}
    for dataset in args.datasets:
        for seed in args.seeds:
            common = dict(dataset=dataset, seed=seed, epochs=args.epochs, train_samples=args.train_samples)
            teacher = out / dataset / f"ann-seed{seed}"
            m = run(teacher, neuron="relu", weights="full", strategy="baseline", **common)
            acc.setdefault((dataset, "ann (teacher)", "full"), []).append(m["test_accuracy"])
            for weights in ("full", "ternary"):
                for strategy in args.strategies:
                    folder = out / dataset / f"{strategy}-{weights}-seed{seed}"
                    extra = {"teacher": str(teacher)} if strategy in ("kd", "enof") else {}
                    m = run(folder, strategy=strategy, weights=weights, **common, **extra)
                    acc.setdefault((dataset, strategy, weights), []).append(m["test_accuracy"])

    rows = [{"dataset": d, "strategy": s, "weights": w, "epochs": args.epochs, "mean": statistics.mean(v),
             "std": statistics.stdev(v) if len(v) > 1 else 0.0, "n": len(v), "values": v}
            for (d, s, w), v in acc.items()]
    text = table(rows)
    print(text)
    write_json_atomic(out / "results.json", rows)
    (out / "results.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
