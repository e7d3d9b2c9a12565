"""What the training benchmarks share: named settings, resumable run folders, paired statistics.

A benchmark is a set of ordinary run folders under one `--out`. `run()` reuses a finished folder
and resumes an unfinished one, so a stopped benchmark continues where it stopped, and the same
configuration is never trained twice. Comparisons are paired by seed: runs with the same seed
share the initialisation seed, the data order and the validation split, so a per-seed difference
cancels much of the seed-to-seed spread.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scipy import stats  # noqa: E402

from tna.config import TrainConfig, validate  # noqa: E402
from tna.train import train  # noqa: E402

# Named training settings: a dataset plus what makes a run of it affordable on 2 CPU cores.
SETTINGS = {
    "mnist5k": dict(dataset="mnist5k", epochs=8),
    "mnist5k-dvs": dict(dataset="mnist5k-dvs", epochs=4),
    "mnist1d": dict(dataset="mnist1d", model="convnet1d", epochs=8),
    # a narrow convnet (4/8/8 channels): ternary weights cost it several points on mnist5k
    "mnist5k-narrow": dict(dataset="mnist5k", width=0.25, epochs=8),
}


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


def finished(out: Path) -> dict | None:
    """A finished run's metrics, or None (for reports over what has finished so far)."""
    path = out / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else None


def history(out: Path) -> list[dict]:
    path = out / "epochs.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def paired_ci(a: list[float], b: list[float], level: float = 0.95) -> dict:
    """Mean of the per-seed differences a - b and its t-interval (n - 1 degrees of freedom)."""
    if len(a) != len(b):
        raise ValueError("paired comparison needs the same seeds on both sides")
    d = [x - y for x, y in zip(a, b)]
    n = len(d)
    mean = statistics.mean(d)
    if n < 2:
        return {"mean": mean, "lo": math.nan, "hi": math.nan, "n": n}
    half = stats.t.ppf(0.5 + level / 2, n - 1) * statistics.stdev(d) / math.sqrt(n)
    return {"mean": mean, "lo": mean - half, "hi": mean + half, "n": n}


def fmt_ci(ci: dict) -> str:
    """'+0.42 [-0.10, +0.95]' in percentage points; the interval is blank with one seed."""
    if math.isnan(ci["lo"]):
        return f"{100 * ci['mean']:+.2f} (1 seed, no interval)"
    return f"{100 * ci['mean']:+.2f} [{100 * ci['lo']:+.2f}, {100 * ci['hi']:+.2f}]"
