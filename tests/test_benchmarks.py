"""The training benchmarks: resumable run sets, selection on validation, paired statistics."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.runset import fmt_ci, paired_ci

ROOT = Path(__file__).resolve().parents[1]


def test_paired_ci_is_a_t_interval_of_the_differences():
    ci = paired_ci([0.9, 0.8, 0.7], [0.8, 0.8, 0.6])
    # differences 0.1, 0.0, 0.1: mean 1/15, sd 0.0577, t(0.975, 2) = 4.303
    assert ci["mean"] == pytest.approx(0.0666667, abs=1e-6)
    assert ci["hi"] - ci["mean"] == pytest.approx(4.3027 * 0.057735 / math.sqrt(3), rel=1e-3)
    assert fmt_ci(ci).startswith("+6.67 [")
    assert math.isnan(paired_ci([0.5], [0.4])["lo"])
    with pytest.raises(ValueError):
        paired_ci([0.5, 0.6], [0.4])


def test_alpha_sweep_resumes_selects_on_validation_and_plots(tmp_path):
    args = [sys.executable, str(ROOT / "benchmarks" / "alpha_sweep.py"), "--out", str(tmp_path),
            "--settings", "mnist5k-narrow", "--seeds", "0", "1", "--alphas", "0", "1", "--pairs", "ternary-same",
            "--epochs", "1", "--train-samples", "256"]
    first = subprocess.run(args, capture_output=True, text=True, check=True)
    assert first.stdout.count("--- ") == 4
    again = subprocess.run(args, capture_output=True, text=True, check=True)
    assert "--- " not in again.stdout  # every run finished: nothing is trained twice
    res = json.loads((tmp_path / "results.json").read_text())
    assert len(res["rows"]) == 2 and all(len(r["test"]) == 2 for r in res["rows"])
    (chosen,) = res["chosen"]
    assert sum(next(r for r in res["rows"] if r["alpha"] == chosen["alpha"])["val"]) == max(
        sum(r["val"]) for r in res["rows"]) and chosen["test_gain_vs_alpha0"]["n"] == 2
    zero = next(r for r in res["rows"] if r["alpha"] == 0)
    assert zero["match_share"] == 0 and next(r for r in res["rows"] if r["alpha"] == 1)["match_share"] > 0
    assert (tmp_path / "sweep.png").stat().st_size > 0 and (tmp_path / "matching.png").stat().st_size > 0


def test_strategies_benchmark_tunes_on_validation_then_pairs_seeds(tmp_path):
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "strategies.py"), "--out", str(tmp_path),
                    "--settings", "mnist5k-narrow", "--seeds", "0", "1", "--strategies", "baseline", "tna",
                    "--epochs", "1", "--train-samples", "256"], capture_output=True, text=True, check=True)
    rows = json.loads((tmp_path / "results.json").read_text())
    tna = next(r for r in rows if (r["strategy"], r["weights"]) == ("tna", "ternary"))
    grid = {}
    for run in (tmp_path / "mnist5k-narrow").glob("tna-ternary-alpha*-seed0"):
        grid[run.name] = json.loads((run / "metrics.json").read_text())["val_accuracy"]
    assert len(grid) == 3  # the whole alpha grid ran on the tuning seed, and only there
    assert not list((tmp_path / "mnist5k-narrow").glob("ann-*"))  # no teacher without kd/enof
    assert grid[Path(tna["runs"][0]).name] == max(grid.values()) and tna["seeds"] == [0, 1]
    assert len(list((tmp_path / "mnist5k-narrow").glob("tna-ternary-alpha*-seed1"))) == 1
    (diff,) = json.loads((tmp_path / "comparisons.json").read_text())
    base = next(r for r in rows if (r["strategy"], r["weights"]) == ("baseline", "ternary"))
    assert diff["n"] == 2 and diff["mean"] == pytest.approx(
        sum(tna["values"]) / 2 - sum(base["values"]) / 2)
