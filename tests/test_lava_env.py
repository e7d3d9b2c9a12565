"""The Lava environment: found, usable from the training environment, and bit-exact.

These tests run in the training environment and start the Lava interpreter (.venv-lava, or
$TNA_LAVA_PYTHON) as a subprocess; they need `make setup` to have created it.
"""

import json

import pytest

from deploy.lavanet.env import REPO_ROOT, run_in_lava
from tna.errors import TnaError

SMOKE = REPO_ROOT / "deploy" / "lavanet" / "smoke.py"


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


def test_a_hung_lava_run_is_killed_with_its_workers(tmp_path):
    """A script whose processes sit idle (like lava-nc's start-up deadlock) stops with LavaStalled,
    and the worker it forked is gone too; a script that keeps computing is not interrupted."""
    import os
    import time

    from deploy.lavanet.env import LavaStalled

    pid_file = tmp_path / "worker.pid"
    hung = tmp_path / "hung.py"
    hung.write_text(
        "import multiprocessing as mp, time, sys\n"
        "def idle():\n    time.sleep(600)\n"
        "if __name__ == '__main__':\n"
        "    w = mp.get_context('fork').Process(target=idle); w.start()\n"
        f"    open({str(pid_file)!r}, 'w').write(str(w.pid))\n"
        "    w.join()\n"
    )
    t0 = time.monotonic()
    with pytest.raises(LavaStalled, match=r"hung\.py stopped making progress \(no CPU for 3 s"):
        run_in_lava(hung, [], stall=3, timeout=120)
    assert time.monotonic() - t0 < 60
    worker = int(pid_file.read_text())
    time.sleep(0.2)
    assert not os.path.exists(f"/proc/{worker}") or open(f"/proc/{worker}/stat").read().split()[2] == "Z"

    busy = tmp_path / "busy.py"
    busy.write_text("import time\nt = time.time()\nwhile time.time() - t < 6: pass\nprint('done')\n")
    assert run_in_lava(busy, [], stall=3, timeout=120).stdout.strip() == "done"
