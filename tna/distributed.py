"""Multi-process training through torch DDP, launched by torchrun (gloo on CPU, nccl on GPU).

`tna train` reads torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK); without it, it is a
single process and none of this does anything.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device: str) -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Dist()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def teardown(d: Dist) -> None:
    if d.world > 1 and dist.is_initialized():
        dist.destroy_process_group()


def checksum(module: torch.nn.Module) -> str:
    """A hash of every parameter and buffer, to show that all ranks hold the same weights."""
    h = hashlib.sha256()
    for k, v in sorted(module.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def gather(obj, d: Dist) -> list:
    if d.world == 1:
        return [obj]
    out = [None] * d.world
    dist.all_gather_object(out, obj)
    return out


def sync_buffers(module: torch.nn.Module, d: Dist) -> None:
    """Copy rank 0's buffers (batch-norm running statistics) to every rank.

    DDP syncs gradients, so parameters agree; running statistics are updated locally by each
    rank's last forward pass and would differ. Rank 0's are the ones saved and evaluated.
    """
    if d.world > 1:
        for b in module.buffers():
            dist.broadcast(b, src=0)


def barrier(d: Dist) -> None:
    if d.world > 1:
        dist.barrier()
