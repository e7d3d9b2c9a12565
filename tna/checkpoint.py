"""Checkpoints: what a run folder keeps, written atomically and checked on load.

RUN_DIR/checkpoint.pt holds everything to resume (strategy state: base and twin/teacher-free
parts, optimiser, scheduler, epoch, history) and everything to deploy: the base network's
weights and, for ternary layers, the integer codes and per-channel scales (`ternary`).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from tna.errors import TnaError

FORMAT = "tna-checkpoint"
VERSION = 1
CHECKPOINT_FILE = "checkpoint.pt"


def save_checkpoint(path: str | Path, payload: dict) -> None:
    """torch.save to a temp file, then rename over the old one: a crash never leaves half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save({"format": FORMAT, "version": VERSION, **payload}, tmp)
    os.replace(tmp, path)


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
    if ckpt.get("version") != VERSION:
        raise TnaError(f"{path} has checkpoint version {ckpt.get('version')}, this tna reads version {VERSION}")
    return ckpt
