"""The Lava environment: found, usable from the training environment, and bit-exact.

These tests run in the training environment and start the Lava interpreter (.venv-lava, or
$TNA_LAVA_PYTHON) as a subprocess; they need `make setup` to have created it.
"""

import json

import pytest

from deploy.lava_env import REPO_ROOT, run_in_lava
from tna.errors import TnaError

SMOKE = REPO_ROOT / "deploy" / "lava_smoke.py"


def test_smoke_script_matches_reference_in_both_modes():
    proc = run_in_lava(SMOKE, [], timeout=180)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["ok"] is True
    assert set(result["spikes"]) == {"floating_pt", "fixed_pt"}
    assert all(n > 0 for n in result["spikes"].values()), result


def test_bogus_lava_python_is_a_helpful_error(monkeypatch, tmp_path):
    bogus = tmp_path / "no-such-env" / "bin" / "python"
    monkeypatch.setenv("TNA_LAVA_PYTHON", str(bogus))
    with pytest.raises(TnaError) as err:
        run_in_lava(SMOKE, [])
    msg = str(err.value)
    assert str(bogus) in msg and "make setup" in msg and "TNA_LAVA_PYTHON" in msg
    assert "\n" not in msg


def test_failing_script_reports_its_last_error_line(tmp_path):
    script = tmp_path / "fails.py"
    script.write_text(
        "import tna\n"  # the repo root is on PYTHONPATH
        "raise ValueError('weights have the wrong shape')\n"
        "\n"
    )
    expected = r"fails\.py failed \(exit 1\): ValueError: weights have the wrong shape"
    with pytest.raises(TnaError, match=expected):
        run_in_lava(script, [], timeout=60)
