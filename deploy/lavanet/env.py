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
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Sequence

from tna.errors import TnaError

REPO_ROOT = Path(__file__).resolve().parents[2]
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


class LavaStalled(TnaError):
    """The Lava processes stopped using CPU without finishing (a lava-nc multiprocessing hang)."""


def _session_cpu_seconds(sid: int) -> float | None:
    """CPU time (user + system) of every process in session `sid`, from /proc; None off Linux."""
    total, seen = 0, False
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                rest = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # exited meanwhile
        if int(rest[3]) == sid:  # fields after "(comm)": state ppid pgrp session ... utime stime
            total += int(rest[11]) + int(rest[12])
            seen = True
    return total / os.sysconf("SC_CLK_TCK") if seen else None


def run_in_lava(
    script: str | os.PathLike, args: Sequence[str] = (), *, timeout: float | None = None,
    stall: float | None = None,
) -> subprocess.CompletedProcess:
    """Run `<lava python> script *args` with the repo root on PYTHONPATH; capture its output.

    Returns the CompletedProcess (text stdout/stderr) on exit code 0. Raises TnaError with the
    last error line of stderr when the script fails, or when it runs past `timeout` seconds;
    LavaStalled when its processes (Lava forks several) use no CPU for `stall` seconds: Lava's
    runtime can deadlock at start-up, and a hung run would otherwise wait forever.
    """
    python = lava_python()
    script = Path(script)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    cmd = [str(python), str(script), *map(str, args)]
    child = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)  # its own session: Lava's workers are found and killed
    start = last_busy = time.monotonic()
    cpu = -1.0
    old_term = None
    if threading.current_thread() is threading.main_thread():  # SIGTERM of this process ends Lava's session too
        def _terminate(signum, frame):
            raise SystemExit(128 + signum)
        old_term = signal.signal(signal.SIGTERM, _terminate)
    try:
        while True:
            try:
                stdout, stderr = child.communicate(timeout=1.0)
                break
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            if timeout is not None and now - start > timeout:
                raise TnaError(f"Lava script {script.name} did not finish within {timeout:g} s; "
                               "run it by hand to see where it stops, or raise the timeout")
            used = _session_cpu_seconds(child.pid)
            if used is None or used > cpu + 0.05:
                cpu, last_busy = (used if used is not None else cpu), now
            elif stall is not None and now - last_busy > stall:
                raise LavaStalled(f"Lava script {script.name} stopped making progress (no CPU for {stall:g} s; "
                                  "lava-nc's runtime can deadlock at start-up); run the command again")
    finally:
        if child.poll() is None:
            _kill_session(child)
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
    proc = subprocess.CompletedProcess(cmd, child.returncode, stdout, stderr)
    if proc.returncode != 0:
        hint = ""
        if "No module named 'lava'" in proc.stderr:
            hint = f" ({python} has no lava-nc; run 'make setup' or fix {ENV_VAR})"
        raise TnaError(
            f"Lava script {script.name} failed (exit {proc.returncode}): "
            f"{_last_error_line(proc.stderr)}{hint}"
        )
    return proc


def _kill_session(child: subprocess.Popen) -> None:
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        child.kill()
    child.communicate()
