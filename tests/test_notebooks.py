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
                    "--datasets", "mnist5k", "--seeds", "0", "--epochs", "1", "--train-samples", "384"],
                   check=True, capture_output=True, text=True)
    return out


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


def test_strategies_notebook(bench, tmp_path):
    nb, images = execute("1_strategies.ipynb", {"TNA_BENCH": str(bench)}, tmp_path)
    assert len(images) >= 2
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "ternary TNA - ternary baseline" in text


def test_deployment_then_energy_notebooks(bench, tmp_path):
    run = bench / "mnist5k" / "tna-ternary-seed0"
    nb, images = execute("3_deployment_walkthrough.ipynb", {"TNA_RUN": str(run), "TNA_SAMPLES": "4"}, tmp_path)
    assert len(images) >= 2 and (run / "deploy" / "lava_fixed.h5").is_file()
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "verification: Lava fixed vs loihi-exact torch" in text and "first divergence: none" in text
    runs = {"SNN full (TNA)": str(bench / "mnist5k" / "tna-full-seed0"), "SNN ternary (TNA)": str(run),
            "deployed": str(run)}
    nb, images = execute("2_energy_and_spikes.ipynb", {"TNA_RUNS": json.dumps(runs)}, tmp_path)
    assert len(images) >= 3
