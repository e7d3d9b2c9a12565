"""Run a script in the Lava environment from the training environment.

Lava (lava-nc 0.10.0) needs Python 3.10 and numpy<2; training needs Python 3.11 and torch. They
live in two virtualenvs, so the training side runs Lava code as a subprocess of the Lava
interpreter. This module must not import lava (it runs in the training environment).

Interpreter: $TNA_LAVA_PYTHON if set, else <repo root>/.venv-lava/bin/python.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Sequence

from tna.errors import TnaError

REPO_ROOT = Path(__file__).resolve().parent.parent
ENV_VAR = "TNA_LAVA_PYTHON"

# stderr lines that are never the reason a Lava script failed: warnings printed by the
# `warnings` module ("file:line: UserWarning: ...") and their indented source line, e.g. the
# multiprocessing resource_tracker's "leaked shared_memory objects" notice at exit.
_WARNING_LINE = re.compile(r"^\S.*:\d+: \w*Warning: ")


def lava_python() -> Path:
    """The Lava interpreter; TnaError saying how to get one if it is missing."""
    override = os.environ.get(ENV_VAR)
    if override:
        path = Path(override).expanduser()
        if not path.is_file() and os.sep not in override:
            found = shutil.which(override)  # a bare command name such as "python3.10"
            path = Path(found) if found else path
    else:
        path = REPO_ROOT / ".venv-lava" / "bin" / "python"
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise TnaError(
            f"Lava environment not found at {path}; run 'make setup' "
            f"(or set {ENV_VAR}=/path/to/python3.10 with lava-nc installed)"
        )
    return path


def _last_error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    meaningful = [ln for ln in lines if not ln[0].isspace() and not _WARNING_LINE.match(ln)]
    return (meaningful or lines or ["(no error output)"])[-1].strip()


def run_in_lava(
    script: str | os.PathLike, args: Sequence[str] = (), *, timeout: float | None = None
) -> subprocess.CompletedProcess:
    """Run `<lava python> script *args` with the repo root on PYTHONPATH; capture its output.

    Returns the CompletedProcess (text stdout/stderr) on exit code 0. Raises TnaError with the
    last error line of stderr when the script fails, or when it runs past `timeout` seconds.
    """
    python = lava_python()
    script = Path(script)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    cmd = [str(python), str(script), *map(str, args)]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise TnaError(
            f"Lava script {script.name} did not finish within {timeout:g} s; "
            "run it by hand to see where it stops, or raise the timeout"
        ) from None
    if proc.returncode != 0:
        hint = ""
        if "No module named 'lava'" in proc.stderr:
            hint = f" ({python} has no lava-nc; run 'make setup' or fix {ENV_VAR})"
        raise TnaError(
            f"Lava script {script.name} failed (exit {proc.returncode}): "
            f"{_last_error_line(proc.stderr)}{hint}"
        )
    return proc
