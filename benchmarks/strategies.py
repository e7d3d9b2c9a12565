"""Compare training strategies: baseline, kd, enof, tna, each with full and ternary weights, on paired seeds.

    .venv/bin/python benchmarks/strategies.py --out runs/bench                     # 3 settings x 5 seeds (hours)
    .venv/bin/python benchmarks/strategies.py --settings mnist1d --seeds 0 1 2     # one setting
    .venv/bin/python benchmarks/strategies.py --out runs/bench --report            # tables of what finished

Per setting (benchmarks/runset.py: SETTINGS) and seed it trains the ANN teacher that kd and enof
need (same shape, full precision), then the student runs. Each strategy's own hyperparameters
(kd: weight and temperature; enof: weight and temperature; tna: alpha) are chosen on the
VALIDATION split, on the tuning seeds (default: seed 0), from a small grid; only the chosen
setting then runs on the other seeds. The test split is never used to choose anything.

The table shows test accuracy (mean ± std over seeds) and, for ternary TNA minus ternary baseline
and minus ternary KD, the mean paired difference over seeds with a 95% t-interval. The claim under
test (Deckers et al. 2024): TNA helps SNNs, most of all ternary ones, and beats KD.
Every run is an ordinary run folder under --out; finished ones are reused, unfinished ones resumed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.runset import SETTINGS, finished, fmt_ci, mean_std, paired_ci, run  # noqa: E402
from tna.config import write_json_atomic  # noqa: E402

STRATEGIES = ("baseline", "kd", "enof", "tna")
# Each strategy's hyperparameter grid, searched on validation (the first entry is the tool's default).
GRIDS = {
    "baseline": [{}],
    "kd": [{"kd_weight": 0.5, "kd_temperature": 4.0}, {"kd_weight": 0.9, "kd_temperature": 4.0},
           {"kd_weight": 0.5, "kd_temperature": 2.0}],
    "enof": [{"enof_weight": 1.0, "enof_temperature": 1.0}, {"enof_weight": 0.5, "enof_temperature": 1.0},
             {"enof_weight": 2.0, "enof_temperature": 2.0}],
    "tna": [{"alpha": 1e-2}, {"alpha": 1e-4}, {"alpha": 1.0}],
}
SHORT = {"kd_weight": "w", "kd_temperature": "T", "enof_weight": "w", "enof_temperature": "T", "alpha": "alpha"}


def name(strategy: str, weights: str, hp: dict, seed: int) -> str:
    tag = "".join(f"-{SHORT[k]}{v:g}" for k, v in hp.items())
    return f"{strategy}-{weights}{tag}-seed{seed}"


class Bench:
    def __init__(self, args):
        self.args = args

    def common(self, setting: str, seed: int) -> dict:
        epochs = {"epochs": self.args.epochs} if self.args.epochs else {}
        return {**SETTINGS[setting], **epochs, "seed": seed, "train_samples": self.args.train_samples}

    def teacher(self, setting: str, seed: int, train: bool) -> Path:
        path = self.args.out / setting / f"ann-seed{seed}"
        if train:
            run(path, neuron="relu", weights="full", strategy="baseline", **self.common(setting, seed))
        return path

    def student(self, setting, strategy, weights, hp, seed, train: bool) -> dict | None:
        path = self.args.out / setting / name(strategy, weights, hp, seed)
        if not train:
            return finished(path)
        extra = {"teacher": str(self.teacher(setting, seed, True))} if strategy in ("kd", "enof") else {}
        return run(path, strategy=strategy, weights=weights, **hp, **extra, **self.common(setting, seed))

    def choose(self, setting, strategy, weights, train: bool) -> dict | None:
        """The grid entry with the best mean validation accuracy over the tuning seeds."""
        scored = []
        for hp in GRIDS[strategy][:1] if self.args.no_tune else GRIDS[strategy]:
            ms = [self.student(setting, strategy, weights, hp, s, train) for s in self.args.tune_seeds]
            if all(ms):
                scored.append((mean_std([m["val_accuracy"] for m in ms])[0], hp))
        if len(scored) < (1 if self.args.no_tune else len(GRIDS[strategy])):
            return None  # tuning has not finished
        return max(scored, key=lambda t: t[0])[1]

    def go(self, train: bool) -> list[dict]:
        rows = []
        for setting in self.args.settings:
            needs_teacher = train and bool({"kd", "enof"} & set(self.args.strategies))
            ann = [m for s in self.args.seeds if (m := finished(self.teacher(setting, s, needs_teacher)))]
            if ann:
                rows.append(self.row(setting, "ann (teacher)", "full", {}, dict(zip(self.args.seeds, ann))))
            for weights in ("ternary", "full"):
                for strategy in self.args.strategies:
                    hp = self.choose(setting, strategy, weights, train)
                    if hp is None:
                        continue
                    ms = {s: m for s in self.args.seeds if (m := self.student(setting, strategy, weights, hp, s, train))}
                    rows.append(self.row(setting, strategy, weights, hp, ms))
        return rows

    def row(self, setting, strategy, weights, hp, ms: dict) -> dict:
        test = [m["test_accuracy"] for m in ms.values()]
        (mean, std), val = mean_std(test), [m.get("val_accuracy", float("nan")) for m in ms.values()]
        return {"dataset": setting, "strategy": strategy, "weights": weights, "hp": hp, "seeds": list(ms),
                "values": test, "mean": mean, "std": std, "n": len(test), "val_mean": mean_std(val)[0],
                "match_share": mean_std([m.get("match_share", 0.0) for m in ms.values()])[0],
                "epochs": next(iter(ms.values()))["epochs"],
                "runs": [str(self.args.out / setting / (f"ann-seed{s}" if strategy.startswith("ann")
                                                         else name(strategy, weights, hp, s))) for s in ms]}


def comparisons(rows: list[dict]) -> list[dict]:
    """Ternary TNA minus ternary baseline / KD / EnOF, paired by seed, per setting."""
    out = []
    for setting in sorted({r["dataset"] for r in rows}):
        get = {(r["strategy"], r["weights"]): r for r in rows if r["dataset"] == setting}
        tna = get.get(("tna", "ternary"))
        for other in ("baseline", "kd", "enof"):
            ref = get.get((other, "ternary"))
            if tna and ref:
                common = [s for s in tna["seeds"] if s in ref["seeds"]]
                pick = lambda r: [r["values"][r["seeds"].index(s)] for s in common]  # noqa: E731
                out.append({"dataset": setting, "a": "tna ternary", "b": f"{other} ternary",
                            **paired_ci(pick(tna), pick(ref))})
    return out


def table(rows: list[dict], diffs: list[dict]) -> str:
    lines = ["| setting | strategy | weights | chosen on validation | val % | test % (mean ± std) | seeds | "
             "match share | epochs |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        hp = ", ".join(f"{k}={v:g}" for k, v in r["hp"].items()) or "-"
        lines.append(f"| {r['dataset']} | {r['strategy']} | {r['weights']} | {hp} | {100 * r['val_mean']:.2f} | "
                     f"{100 * r['mean']:.2f} ± {100 * r['std']:.2f} | {r['n']} | {r['match_share']:.1e} | "
                     f"{r['epochs']} |")
    lines += ["", "| setting | comparison | test difference, points: mean paired [95% CI] | seeds |",
              "|---|---|---|---|"]
    for d in diffs:
        lines.append(f"| {d['dataset']} | {d['a']} - {d['b']} | {fmt_ci(d)} | {d['n']} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("runs/bench"), help="folder for all run folders and the results")
    p.add_argument("--settings", "--datasets", nargs="+", default=["mnist1d", "mnist5k", "mnist5k-dvs"],
                   choices=SETTINGS)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--tune-seeds", nargs="+", type=int, default=[0],
                   help="seeds whose validation accuracy chooses each strategy's hyperparameters (default 0)")
    p.add_argument("--epochs", type=int, help="override each setting's epochs")
    p.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES)
    p.add_argument("--train-samples", type=int, help="train on a random subset (quick looks, tests)")
    p.add_argument("--no-tune", action="store_true", help="use each strategy's default hyperparameters (quick "
                   "looks and tests; the table then compares untuned strategies)")
    p.add_argument("--report", action="store_true", help="only tabulate what has finished")
    args = p.parse_args(argv)

    bench = Bench(args)
    if not args.report:
        bench.go(train=True)
    rows = bench.go(train=False)
    diffs = comparisons(rows)
    text = table(rows, diffs)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out / "results.json", rows)
    write_json_atomic(args.out / "comparisons.json", diffs)
    (args.out / "results.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
