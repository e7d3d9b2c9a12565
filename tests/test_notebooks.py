"""The three notebooks execute cleanly on small runs and each shows at least one plot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "strategies.py"), "--out", str(out),
                    "--settings", "mnist5k", "--seeds", "0", "--epochs", "1", "--train-samples", "384", "--no-tune"],
                   check=True, capture_output=True, text=True)
    return out


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "alpha_sweep.py"), "--out", str(out),
                    "--settings", "mnist5k-narrow", "--seeds", "0", "1", "--alphas", "0", "1",
                    "--pairs", "ternary-same", "--epochs", "1", "--train-samples", "384"],
                   check=True, capture_output=True, text=True)
    return out


def run_of(bench: Path, strategy: str, weights: str) -> str:
    rows = json.loads((bench / "results.json").read_text())
    return next(r["runs"][0] for r in rows if (r["strategy"], r["weights"]) == (strategy, weights))


def execute(name: str, env: dict, tmp_path: Path):
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    old = dict(os.environ)
    os.environ.update({"TNA_ROOT": str(ROOT), **env})
    try:
        NotebookClient(nb, timeout=900, kernel_name="python3",
                       resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    nbformat.write(nb, tmp_path / name)  # executed copy, for a look when a test fails
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if "image/png" in o.get("data", {})]
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    return nb, images


def test_strategies_notebook(bench, sweep, tmp_path):
    nb, images = execute("1_strategies.ipynb", {"TNA_BENCH": str(bench), "TNA_SWEEP": str(sweep)}, tmp_path)
    assert len(images) >= 4  # coupling strength, accuracy vs alpha, matching term per epoch, strategies
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "tna ternary - baseline ternary" in text and "alpha* = " in text


def test_deployment_then_energy_notebooks(bench, tmp_path):
    run = Path(run_of(bench, "tna", "ternary"))
    nb, images = execute("3_deployment_walkthrough.ipynb", {"TNA_RUN": str(run), "TNA_SAMPLES": "4"}, tmp_path)
    assert len(images) >= 2 and (run / "deploy" / "lava_fixed.h5").is_file()
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "verification: Lava fixed vs loihi-exact emulator" in text and "first divergence: none" in text
    runs = {"SNN full (TNA)": run_of(bench, "tna", "full"), "SNN ternary (TNA)": str(run),
            "deployed": str(run)}
    nb, images = execute("2_energy_and_spikes.ipynb", {"TNA_RUNS": json.dumps(runs)}, tmp_path)
    assert len(images) >= 3
