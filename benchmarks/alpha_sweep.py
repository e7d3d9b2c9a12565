"""Sweep TNA's alpha: how strong must the twin coupling be, and does any strength beat none?

    .venv/bin/python benchmarks/alpha_sweep.py --out runs/alpha-sweep              # the full grid (hours)
    .venv/bin/python benchmarks/alpha_sweep.py --settings mnist1d --seeds 0 1 2     # one setting
    .venv/bin/python benchmarks/alpha_sweep.py --out runs/alpha-sweep --report      # tables/plots of what finished

For each setting (benchmarks/runset.py: SETTINGS), base precision and twin precision, and seed, it
trains TNA at every alpha of a log grid that starts at 0 (no coupling: base and twin train as two
independent baselines). Coarse alphas run first, then the ones between them, so a stopped sweep
already spans the grid. Every run is a resumable run folder under OUT/SETTING/BASE-TWIN/.

Selection is on validation only: per setting and precision pair, the alpha with the best mean
validation accuracy over seeds. Its test accuracy is then compared with alpha = 0 on the same
seeds (mean paired difference, 95% t-interval). Writes OUT/results.{json,md} and two plots:
sweep.png (validation and test accuracy vs alpha, mean ± std; the paper's Fig. 3a) and
matching.png (the logit MSE between base and twin per epoch, per alpha; the paper's Fig. 2c).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.runset import SETTINGS, fmt_ci, history, finished, mean_std, paired_ci, run  # noqa: E402
from tna.config import write_json_atomic  # noqa: E402

COARSE = (0.0, 1e-4, 1e-2, 1.0, 10.0)
FINE = (1e-5, 1e-3, 1e-1)
ALPHAS = tuple(sorted(COARSE + FINE))
# (base weights, twin weights): the twin as precise as the base, or a full-precision twin
PAIRS = (("ternary", "same"), ("full", "same"), ("ternary", "full"))


def folder(out: Path, setting: str, pair: tuple, alpha: float, seed: int) -> Path:
    return out / setting / f"{pair[0]}-{pair[1]}" / f"alpha{alpha:g}-seed{seed}"


def sweep(args) -> None:
    order = [a for a in COARSE + FINE if a in args.alphas]
    for pair in args.pairs:
        for alpha in order:
            for setting in args.settings:
                for seed in args.seeds:
                    options = {**SETTINGS[setting], **({"epochs": args.epochs} if args.epochs else {})}
                    run(folder(args.out, setting, pair, alpha, seed), strategy="tna", weights=pair[0],
                        twin_weights=pair[1], alpha=alpha, seed=seed, train_samples=args.train_samples, **options)


def collect(args) -> list[dict]:
    """One row per (setting, pair, alpha) over the seeds that finished."""
    rows = []
    for setting in args.settings:
        for pair in args.pairs:
            for alpha in args.alphas:
                ms = {s: m for s in args.seeds if (m := finished(folder(args.out, setting, pair, alpha, s)))}
                if not ms:
                    continue
                val = [m.get("val_accuracy", float("nan")) for m in ms.values()]
                test = [m["test_accuracy"] for m in ms.values()]
                rows.append({"setting": setting, "base": pair[0], "twin": pair[1], "alpha": alpha,
                             "seeds": list(ms), "val": val, "test": test,
                             "match_share": mean_std([m.get("match_share", 0.0) for m in ms.values()])[0],
                             "epochs": next(iter(ms.values()))["epochs"]})
    return rows


def select(rows: list[dict]) -> list[dict]:
    """Per (setting, pair): the alpha chosen on validation, and its paired test gain over alpha = 0."""
    out = []
    for key in sorted({(r["setting"], r["base"], r["twin"]) for r in rows}):
        group = [r for r in rows if (r["setting"], r["base"], r["twin"]) == key]
        n = max(len(r["seeds"]) for r in group)
        complete = [r for r in group if len(r["seeds"]) == n]
        best = max(complete, key=lambda r: mean_std(r["val"])[0])
        zero = next((r for r in group if r["alpha"] == 0), None)
        entry = {"setting": key[0], "base": key[1], "twin": key[2], "alpha": best["alpha"], "seeds": n,
                 "alphas_complete": len(complete), "val": mean_std(best["val"])[0],
                 "test": mean_std(best["test"])[0]}
        if zero is not None:
            common = [s for s in best["seeds"] if s in zero["seeds"]]
            pick = lambda r: [r["test"][r["seeds"].index(s)] for s in common]  # noqa: E731
            entry["test_gain_vs_alpha0"] = paired_ci(pick(best), pick(zero))
        out.append(entry)
    return out


def table(rows: list[dict], chosen: list[dict]) -> str:
    lines = ["| setting | base | twin | alpha | seeds | val % (mean ± std) | test % (mean ± std) | match share |",
             "|---|---|---|---|---|---|---|---|"]
    picked = {(c["setting"], c["base"], c["twin"], c["alpha"]) for c in chosen}
    for r in rows:
        (vm, vs), (tm, ts) = mean_std(r["val"]), mean_std(r["test"])
        mark = " **(chosen)**" if (r["setting"], r["base"], r["twin"], r["alpha"]) in picked else ""
        lines.append(f"| {r['setting']} | {r['base']} | {r['twin']} | {r['alpha']:g}{mark} | {len(r['seeds'])} | "
                     f"{100 * vm:.2f} ± {100 * vs:.2f} | {100 * tm:.2f} ± {100 * ts:.2f} | {r['match_share']:.2e} |")
    lines += ["", "| setting | base | twin | alpha chosen on validation | test gain over alpha = 0, points "
              "(mean paired difference [95% CI]) |", "|---|---|---|---|---|"]
    for c in chosen:
        gain = fmt_ci(c["test_gain_vs_alpha0"]) if "test_gain_vs_alpha0" in c else "n/a"
        lines.append(f"| {c['setting']} | {c['base']} | {c['twin']} | {c['alpha']:g} "
                     f"({c['alphas_complete']} alphas with {c['seeds']} seeds) | {gain} |")
    return "\n".join(lines)


def plots(args, rows: list[dict]) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    settings = [s for s in args.settings if any(r["setting"] == s for r in rows)]
    if not settings:
        return []
    fig, axes = plt.subplots(2, len(settings), figsize=(5 * len(settings), 7), squeeze=False)
    for j, setting in enumerate(settings):
        for i, split in enumerate(("val", "test")):
            ax = axes[i][j]
            for pair in args.pairs:
                sel = sorted((r for r in rows if r["setting"] == setting and (r["base"], r["twin"]) == pair),
                             key=lambda r: r["alpha"])
                if sel:
                    ms = [mean_std(r[split]) for r in sel]
                    ax.errorbar([r["alpha"] for r in sel], [100 * m for m, _ in ms], [100 * s for _, s in ms],
                                marker="o", capsize=3, label=f"base {pair[0]}, twin {pair[1]}")
            ax.set_xscale("symlog", linthresh=1e-5)
            ax.set_xlabel("alpha (0 = no coupling)")
            ax.set_ylabel(f"{'validation' if split == 'val' else 'test'} accuracy (%)")
            ax.set_title(setting)
            ax.legend(fontsize=7)
    fig.tight_layout()
    paths = [args.out / "sweep.png"]
    fig.savefig(paths[0], dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, len(settings), figsize=(5 * len(settings), 3.6), squeeze=False)
    seed, pair = args.seeds[0], args.pairs[0]
    for ax, setting in zip(axes[0], settings):
        for alpha in args.alphas:
            h = history(folder(args.out, setting, pair, alpha, seed))
            if h:
                ax.plot([e["epoch"] for e in h], [e["mse"] for e in h], marker=".", label=f"alpha {alpha:g}")
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("MSE(base logits, twin logits)")
        ax.set_title(f"{setting}, base {pair[0]}, twin {pair[1]}, seed {seed}", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    paths.append(args.out / "matching.png")
    fig.savefig(paths[1], dpi=110)
    plt.close(fig)
    return paths


def report(args) -> str:
    rows = collect(args)
    chosen = select(rows) if rows else []
    text = table(rows, chosen)
    args.out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out / "results.json", {"rows": rows, "chosen": chosen})
    (args.out / "results.md").write_text(text + "\n")
    plots(args, rows)
    return text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("runs/alpha-sweep"), help="folder for all runs and results")
    p.add_argument("--settings", nargs="+", default=["mnist1d", "mnist5k-narrow", "mnist5k-dvs"], choices=SETTINGS)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--alphas", nargs="+", type=float, default=list(ALPHAS))
    p.add_argument("--pairs", nargs="+", default=[f"{b}-{t}" for b, t in PAIRS],
                   help="base-twin weight pairs, e.g. ternary-same ternary-full full-same")
    p.add_argument("--epochs", type=int, help="override each setting's epochs")
    p.add_argument("--train-samples", type=int, help="train on a random subset (quick looks, tests)")
    p.add_argument("--report", action="store_true", help="only tabulate and plot what has finished")
    args = p.parse_args(argv)
    args.pairs = [tuple(x.split("-", 1)) for x in args.pairs]
    if not args.report:
        sweep(args)
    print(report(args))
    print(f"wrote {args.out}/results.md, results.json, sweep.png, matching.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
