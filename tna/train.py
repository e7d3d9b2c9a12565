"""The training loop, top to bottom: data -> strategy -> epochs -> checkpoint -> metrics.

Reproducibility: the model is initialised from `seed`; every epoch reseeds torch from
(seed, epoch) and shuffles with a sampler seeded the same way, so a run resumed from its
epoch-k checkpoint continues exactly as if it had never stopped (same weights, bit for bit, on CPU).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import sys
import time
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, Subset
from tqdm import tqdm

from tna import distributed
from tna.build import Shape, build_strategy
from tna.checkpoint import CHECKPOINT_FILE, load_checkpoint, save_checkpoint
from tna.config import TrainConfig, load_config
from tna.data import load_dataset, validation
from tna.errors import TnaError
from tna.evaluate import accuracy
from tna.quant import export_ternary, weight_memory
from tna.runs import check_writable
from tna.runs import HISTORY as HISTORY_FILE
from tna.runs import LOCK as LOCK_FILE
from tna.runs import METRICS as METRICS_FILE
from tna.runs import write_json_atomic, write_text_atomic


def train(cfg: TrainConfig, resume: bool = False) -> dict:
    dist = distributed.setup(cfg.device)
    try:
        return _train(cfg, resume, dist)
    finally:
        distributed.teardown(dist)


def _train(cfg: TrainConfig, resume: bool, dist: distributed.Dist) -> dict:
    with contextlib.ExitStack() as stack:  # holds the run folder's lock until training ends
        return _train_locked(cfg, resume, dist, stack)


def _train_locked(cfg: TrainConfig, resume: bool, dist: distributed.Dist, stack: contextlib.ExitStack) -> dict:
    out = Path(cfg.out)
    _check_run_dir(out, resume)
    if resume:
        check_writable(out)  # before an epoch of work, not at its checkpoint
    device = _device(cfg.device, dist)

    # ---- data ----------------------------------------------------------------------------------
    train_set, test_set, spec = load_dataset(cfg.dataset, T=cfg.T, root=cfg.data_root, train_augment=cfg.augment)
    shape = Shape.of(spec)
    if cfg.val_fraction:  # the same training samples without augmentation, for the held-out part
        plain = load_dataset(cfg.dataset, T=cfg.T, root=cfg.data_root, train_augment=False)[0]
        train_set, val_set = validation.split(train_set, plain, cfg.val_fraction)
    else:
        val_set = None
    if cfg.train_samples:
        pick = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(cfg.seed))
        train_set = Subset(train_set, pick[: cfg.train_samples].tolist())
    sampler = DistributedSampler(train_set, num_replicas=dist.world, rank=dist.rank, shuffle=True, seed=cfg.seed)
    batch = max(1, cfg.batch_size // dist.world)  # the global batch stays cfg.batch_size
    train_loader = DataLoader(train_set, batch_size=batch, sampler=sampler, num_workers=cfg.workers)
    test_loader = DataLoader(test_set, batch_size=256, num_workers=cfg.workers)
    val_loader = DataLoader(val_set, batch_size=256, num_workers=cfg.workers) if val_set is not None else None

    # ---- strategy, optimiser, schedule ---------------------------------------------------------
    strategy = build_strategy(cfg, shape).to(device)
    if dist.is_main:
        if not resume:
            _create_run_dir(out)  # only now: a bad option above leaves nothing behind
        stack.enter_context(_locked(out))
        _check_run_dir(out, resume)  # again, under the lock: another run may have finished meanwhile
    params = [p for p in strategy.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * len(train_loader)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(steps, 1), pct_start=0.15)
    start_epoch, history, seconds = 0, [], 0.0
    if resume:
        ckpt = load_checkpoint(out / CHECKPOINT_FILE)
        missing, unexpected = strategy.load_state_dict(ckpt["strategy"], strict=False)
        if unexpected or any(not k.startswith("teacher.") for k in missing):
            raise TnaError(f"{out / CHECKPOINT_FILE} does not match this run's strategy; it cannot be resumed")
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        start_epoch, history, seconds = ckpt["epoch"], ckpt["history"], ckpt["train_seconds"]
        if dist.is_main:
            print(f"resuming {out} after epoch {start_epoch}/{cfg.epochs}")
    if dist.is_main:
        cfg.save(out, {"input_shape": list(shape.input_shape), "num_classes": shape.num_classes,
                       "kind": shape.kind, "world_size": dist.world})
    model = DistributedDataParallel(strategy) if dist.world > 1 else strategy

    # ---- epochs --------------------------------------------------------------------------------
    for epoch in range(start_epoch, cfg.epochs):
        torch.manual_seed(cfg.seed * 100_003 + epoch)  # encoding noise, augmentation
        sampler.set_epoch(epoch)
        strategy.train()
        t0 = time.time()
        loss_sum, correct, seen, parts = 0.0, 0, 0, {}
        bar = tqdm(train_loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False,
                   disable=not (dist.is_main and sys.stderr.isatty()), dynamic_ncols=True)
        for step, (x, y) in enumerate(bar):
            x, y = x.to(device), y.to(device)
            res = model(x, y)
            if not torch.isfinite(res.loss):
                raise TnaError(f"loss became {res.loss.item()} at epoch {epoch + 1}, step {step + 1}; "
                               f"{_kept(epoch)}; lower --lr (now {cfg.lr}) and train again")
            opt.zero_grad(set_to_none=True)
            res.loss.backward()
            opt.step()
            sched.step()
            n = y.numel()
            loss_sum += res.loss.item() * n
            for k, v in res.logs.items():
                parts[k] = parts.get(k, 0.0) + v.item() * n
            correct += (res.logits.argmax(1) == y).sum().item()
            seen += n
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}",
                            **({"match": _share(parts[strategy.match_term] / loss_sum)} if strategy.match_term else {}))
        seconds += time.time() - t0
        distributed.sync_buffers(strategy, dist)
        _check_finite(strategy.base, epoch)

        test = accuracy(strategy.networks(), test_loader, strategy.encode, device)
        val = accuracy(strategy.networks(), val_loader, strategy.encode, device) if val_loader else {}
        row = {"epoch": epoch + 1, "train_loss": loss_sum / seen, "train_accuracy": correct / seen,
               **({"val_accuracy": val["base"]} if val else {}), "test_accuracy": test["base"],
               **{k: v / seen for k, v in parts.items()},
               **({"match_share": parts[strategy.match_term] / loss_sum} if strategy.match_term else {}),
               "lr": sched.get_last_lr()[0], "seconds": round(seconds, 2),
               **{f"{k}_val_accuracy": v for k, v in val.items() if k != "base"},
               **{f"{k}_test_accuracy": v for k, v in test.items() if k != "base"}}
        history.append(row)
        if dist.is_main:
            tqdm.write(_epoch_line(row, cfg.epochs, seconds))
            save_checkpoint(out / CHECKPOINT_FILE, {
                "config": cfg.to_dict(), "shape": shape.__dict__, "epoch": epoch + 1, "history": history,
                "train_seconds": seconds, "model": strategy.base.state_dict(),
                "strategy": strategy.trainable_state(), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(), "ternary": export_ternary(strategy.base),
            })
            _write_history(out, history)
        distributed.barrier(dist)

    # ---- final metrics -------------------------------------------------------------------------
    checksums = distributed.gather(distributed.checksum(strategy), dist)
    if not history:
        raise TnaError(f"{out} has already trained all {cfg.epochs} epochs; nothing to resume")
    last = history[-1]
    metrics = {
        **{k: v for k, v in last.items() if k not in ("epoch", "lr", "seconds")},  # accuracies, loss parts
        "strategy": cfg.strategy, "weights": cfg.weights,
        "dataset": cfg.dataset, "model": cfg.model, "epochs": cfg.epochs, "seed": cfg.seed, "T": cfg.T,
        "encoding": cfg.encoding, "neuron": cfg.neuron, "train_seconds": round(seconds, 2),
        "weight_memory": weight_memory(strategy.base),
        "world_size": dist.world, "rank_checksums": checksums, "ranks_agree": len(set(checksums)) == 1,
    }
    if dist.is_main:
        write_json_atomic(out / METRICS_FILE, metrics)
    return metrics


def _epoch_line(row: dict, epochs: int, seconds: float) -> str:
    """One line per epoch: loss, the matching term's share of it (is the twin/teacher coupled?), accuracies."""
    share = f"  match {_share(row['match_share'])}" if "match_share" in row else ""
    val = f"  val {row['val_accuracy']:.2%}" if "val_accuracy" in row else ""
    twin = f" (twin {row['twin_test_accuracy']:.2%})" if "twin_test_accuracy" in row else ""
    return (f"epoch {row['epoch']}/{epochs}  loss {row['train_loss']:.3f}{share}  train {row['train_accuracy']:.2%}"
            f"{val}  test {row['test_accuracy']:.2%}{twin}  ({seconds:.0f} s)")


def _share(x: float) -> str:
    """A share of the loss, readable from 1e-9 (an uncoupled twin) to 100%."""
    return f"{x:.2%}" if x >= 1e-3 or x == 0 else f"{x * 100:.1e}%"


def _kept(epoch: int) -> str:
    return f"the checkpoint of epoch {epoch} is kept" if epoch else "nothing was saved"


def _check_finite(model: torch.nn.Module, epoch: int) -> None:
    """Weights can turn NaN/inf without the loss showing it (e.g. a broken surrogate gradient)."""
    bad = [n for n, t in model.state_dict().items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise TnaError(f"weights became non-finite in epoch {epoch + 1} ({bad[0]}{' and more' if len(bad) > 1 else ''}); "
                       f"{_kept(epoch)}; check --surrogate-alpha and --lr, then train again")


def _check_run_dir(out: Path, resume: bool) -> None:
    """Refuse early (nothing written yet) to clobber a run or to resume nothing."""
    if not str(out):
        raise TnaError("no run folder given; pass --out RUN_DIR")
    if resume:
        if not (out / CHECKPOINT_FILE).is_file():
            raise TnaError(f"nothing to resume in {out}: it has no {CHECKPOINT_FILE}")
        return
    if (out / METRICS_FILE).is_file():
        raise TnaError(f"{out} already holds a finished run; choose another --out (finished runs are never overwritten)")
    if (out / CHECKPOINT_FILE).is_file():
        raise TnaError(f"{out} holds an unfinished run; continue it with 'tna train --resume {out}' or choose another --out")


def _create_run_dir(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise TnaError(f"cannot write to run folder {out} ({e.strerror}); choose a writable --out") from None


@contextlib.contextmanager
def _locked(out: Path):
    """One writer per run folder: two `tna train` into the same --out would overwrite each other."""
    with open(out / LOCK_FILE, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise TnaError(f"{out} is being written by another tna process; wait for it or choose another --out") from None
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _device(name: str, dist: distributed.Dist) -> torch.device:
    if name == "cuda":
        if not torch.cuda.is_available():
            raise TnaError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu")
        return torch.device("cuda", dist.local_rank)
    if name != "cpu":
        raise TnaError(f"unknown device '{name}'; use cpu or cuda")
    return torch.device("cpu")


def _write_history(out: Path, history: list[dict]) -> None:
    write_text_atomic(out / HISTORY_FILE, "".join(json.dumps(r) + "\n" for r in history))



def resume_config(run_dir: str | Path) -> TrainConfig:
    """The saved config of a run folder, pointed at that folder."""
    cfg = load_config(run_dir)
    cfg.out = str(run_dir)
    return cfg
