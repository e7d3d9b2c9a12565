"""The run folder: every file name in it, and the one way files are written (temp, then rename).

    RUN_DIR/config.json        every option (tna.config)               written by training
    RUN_DIR/checkpoint.pt      weights, codes, optimiser (tna.checkpoint)
    RUN_DIR/epochs.jsonl       one row per epoch
    RUN_DIR/metrics.json       the finished run's metrics (its presence = finished)
    RUN_DIR/.lock              held by the one process writing the run
    RUN_DIR/eval[-loihi[-wide]].json                                    `tna eval`
    RUN_DIR/deploy/model.nir, reference.h5                              export (deploy/pipeline.py)
    RUN_DIR/deploy/lava_{float,fixed}.h5, verification[-MODE].json/.txt `tna deploy`
    RUN_DIR/report/report.json, report.txt, spikes.png, energy.png      `tna report`

Only names and writing live here (standard library only, usable in both environments); what the
files contain is defined by the module that writes them.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from tna.errors import TnaError

CONFIG = "config.json"
CHECKPOINT = "checkpoint.pt"
HISTORY = "epochs.jsonl"
METRICS = "metrics.json"
LOCK = ".lock"
DEPLOY = "deploy"
MODEL_NIR = "model.nir"
REFERENCE = "reference.h5"
VERIFICATION = "verification.json"
VERIFICATION_TEXT = "verification.txt"
REPORT = "report"
REPORT_JSON = "report.json"
REPORT_TEXT = "report.txt"


def eval_file(arithmetic: str, synapses: str | None = None) -> str:
    """`tna eval`'s record: eval.json (float), eval-loihi.json, eval-loihi-wide.json."""
    if arithmetic == "float":
        return "eval.json"
    return f"eval-{arithmetic}{'-wide' if synapses == 'wide' else ''}.json"


def deploy_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / DEPLOY


def lava_output(mode: str) -> str:
    """Lava's spikes and logits for one mode (deploy/lava_run.py writes it)."""
    return f"lava_{mode}.h5"


def verification(mode: str | None = None) -> str:
    """The verification record: of one mode, or (None) the top-level one."""
    return VERIFICATION if mode is None else f"verification-{mode}.json"


def temp_name(path: str | Path) -> Path:
    """A temporary name beside `path`, unique to this process (hidden: `.NAME.tmpPID`)."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def remove_stale_temps(path: str | Path) -> None:
    """Remove `.NAME.tmpPID` files beside `path` whose writer process no longer runs."""
    path = Path(path)
    for stale in path.parent.glob(f".{path.name}.tmp*"):
        pid = stale.name.rsplit(".tmp", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            stale.unlink(missing_ok=True)


def check_writable(folder: str | Path) -> Path:
    """Make sure `folder` exists (created if needed) and a file can be written in it, before any
    work is done; one-line TnaError otherwise."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise TnaError(f"{folder} is a file, not a folder; move it away so the output can be written there")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-check.tmp{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        why = e.strerror or type(e).__name__
        raise TnaError(f"cannot write in {folder} ({why}); make it writable or choose another folder") from None
    return folder


def sha256_file(path: str | Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside `path`; when the block ends without error it is renamed to
    `path` (and temp files left beside it by killed writers are removed), otherwise removed.
    Readers never see half a file."""
    path = Path(path)
    tmp = temp_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
        remove_stale_temps(path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


def write_json_atomic(path: str | Path, obj) -> None:
    """Write JSON to a temp file beside `path`, then rename: readers never see half a file."""
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_metrics(run_dir: str | Path) -> dict:
    path = Path(run_dir) / METRICS
    if not path.is_file():
        raise TnaError(f"{run_dir} has no {METRICS}: the run has not finished")
    return json.loads(path.read_text())


def is_finished(run_dir: str | Path) -> bool:
    return (Path(run_dir) / METRICS).is_file()
