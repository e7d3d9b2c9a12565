"""Checkpoints: what a run folder keeps, written atomically and checked on load.

RUN_DIR/checkpoint.pt holds everything to resume (strategy state: base and twin/teacher-free
parts, optimiser, scheduler, epoch, history) and everything to deploy: the base network's
weights and, for ternary layers, the integer codes and per-channel scales (`ternary`).

`torch.load` does not check the zip's CRCs: a flipped bit in a weight loads as a different weight.
So every checkpoint carries a SHA-256 `digest` of its own content (every key, dtype, shape and
byte, walked in a fixed order), recomputed at load: damage is refused, never trained or deployed.
"""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

import torch

from tna.errors import TnaError
from tna.runs import CHECKPOINT as CHECKPOINT_FILE  # noqa: F401  (its old home; train.py imports it here)
from tna.runs import remove_stale_temps, temp_name

FORMAT = "tna-checkpoint"
VERSION = 2
LEGACY = 1  # written before digests: still read (nothing to verify it by)
REQUIRED = ("shape", "model", "epoch")  # what every reader relies on


def digest(obj) -> str:
    """SHA-256 over a payload's structure and values (dicts, lists, tensors, scalars)."""
    h = hashlib.sha256()

    def feed(o):
        if isinstance(o, torch.Tensor):
            t = o.detach().cpu().contiguous()
            h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(o, dict):
            h.update(f"D{len(o)}".encode())
            for k in sorted(o, key=repr):
                feed(k)
                feed(o[k])
        elif isinstance(o, (list, tuple)):
            h.update(f"L{len(o)}".encode())
            for v in o:
                feed(v)
        else:
            h.update(f"S{type(o).__name__}:{o!r};".encode())

    feed(obj)
    return h.hexdigest()


def save_checkpoint(path: str | Path, payload: dict) -> None:
    """torch.save to a temp file, then rename over the old one: a crash never leaves half a file,
    and a failed write (full disk) removes its temp file and says so in one line."""
    path = Path(path)
    body = {"format": FORMAT, "version": VERSION, **payload}
    body["digest"] = digest(body)
    tmp = temp_name(path)
    try:
        torch.save(body, tmp)
        os.replace(tmp, path)
        remove_stale_temps(path)
    except (OSError, RuntimeError) as e:
        tmp.unlink(missing_ok=True)
        full = getattr(e, "errno", None) == errno.ENOSPC or "unexpected pos" in str(e)
        why = "the disk is full" if full else (getattr(e, "strerror", None) or str(e).splitlines()[0])
        raise TnaError(f"cannot write {path} ({why}); any previous checkpoint is kept; free space or fix "
                       f"the folder, then 'tna train --resume {path.parent}'") from None


def load_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise TnaError(f"no checkpoint at {path}; train first with 'tna train --out {path.parent}'")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, random bytes, foreign pickle ...
        raise TnaError(f"{path} is corrupt or not a checkpoint ({type(e).__name__}); retrain or restore it") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise TnaError(f"{path} is not a tna checkpoint (no '{FORMAT}' marker); was it written by another tool?")
    missing = [k for k in REQUIRED if k not in ckpt]
    if missing:
        raise TnaError(f"{path} is incomplete (no {', '.join(missing)}); retrain or restore it")
    if ckpt.get("version") == LEGACY:
        return ckpt
    if ckpt.get("version") != VERSION:
        raise TnaError(f"{path} has checkpoint version {ckpt.get('version')}, this tna reads version {VERSION}; "
                       f"retrain it with this version")
    stored = ckpt.pop("digest", None)
    if stored != digest(ckpt):
        raise TnaError(f"{path} is corrupt: its content does not match the digest written with it; "
                       f"retrain or restore it")
    return ckpt
