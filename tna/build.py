"""Config -> objects: networks, strategies, encoders; and a finished run folder -> its network.

The only place that turns a `TrainConfig` into objects, so training, `tna eval`, teachers and
export all build a run's network the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from torch import nn

from tna import runs
from tna.checkpoint import load_checkpoint
from tna.config import TrainConfig, load_config
from tna.data.encoding import encode
from tna.errors import TnaError
from tna.models import build_model
from tna.strategies import STRATEGIES, Strategy, Teacher


@dataclass(frozen=True)
class Shape:
    """What a network needs to know about its data (saved in every checkpoint as `shape.__dict__`)."""

    input_shape: tuple
    num_classes: int
    kind: str  # static | events
    input_scale: float | None = None  # the data's input grid (DataSpec.input_scale); None: an older checkpoint

    @classmethod
    def of(cls, spec) -> "Shape":
        return cls(tuple(spec.input_shape), spec.num_classes, spec.kind, spec.input_scale)

    @classmethod
    def from_dict(cls, d: dict) -> "Shape":
        """From a checkpoint's `shape`; checkpoints written before the grid was recorded have none."""
        scale = d.get("input_scale")
        return cls(tuple(d["input_shape"]), d["num_classes"], d["kind"], None if scale is None else float(scale))


def make_encoder(cfg: TrainConfig, shape: Shape):
    """raw batch -> [T, B, ...]; an ANN (neuron=relu) on static data sees the image once."""
    T = 1 if (cfg.neuron == "relu" and shape.kind == "static") else cfg.T
    return partial(encode, T=T, kind=shape.kind, method=cfg.encoding)


def input_grid(cfg: TrainConfig, shape: Shape) -> float:
    """The grid of what the encoder hands the first layer: x = integer * grid. Spikes (events, rate
    code) are 0/1; a static sample lies on its dataset's grid (DataSpec.input_scale, which the
    checkpoint's shape records)."""
    if shape.kind == "events" or cfg.encoding == "rate":
        return 1.0
    if shape.input_scale is not None:
        return float(shape.input_scale)
    # a checkpoint from before the data recorded its grid: the rule of that time
    return 1 / 255 if cfg.dataset.startswith("mnist5k") else 1 / 64


def input_encoding(cfg: TrainConfig, shape: Shape) -> str:
    """What enters the first layer: events, or the config's encoding of static samples (direct | rate)."""
    return "events" if shape.kind == "events" else cfg.encoding


def build_network(cfg: TrainConfig, shape: Shape, *, seed: int | None = None, width: float | None = None,
                  weights: str | None = None, **options) -> nn.Module:
    if seed is not None:
        torch.manual_seed(seed)
    return build_model(cfg.model, shape.input_shape, shape.num_classes, neuron=cfg.lif(),
                       width=cfg.width if width is None else width,
                       weights=cfg.weights if weights is None else weights, ends=cfg.ends, **options)


@dataclass
class TrainedRun:
    config: TrainConfig
    shape: Shape
    model: nn.Module  # the base network, eval mode
    checkpoint: dict

    @property
    def encoding(self) -> str:
        """What enters the first layer: events | direct | rate."""
        return input_encoding(self.config, self.shape)

    @property
    def input_scale(self) -> float:
        """The grid of what enters the first layer (x = integer * input_scale)."""
        return input_grid(self.config, self.shape)


def load_trained(run_dir: str | Path) -> TrainedRun:
    """A finished (or partly trained) run's config and base network, ready for inference."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise TnaError(f"run folder {run_dir} does not exist")
    cfg = load_config(run_dir)
    ckpt = load_checkpoint(run_dir / runs.CHECKPOINT)
    shape = Shape.from_dict(ckpt["shape"])
    options = STRATEGIES[cfg.strategy].model_options if cfg.strategy in STRATEGIES else {}
    model = build_network(cfg, shape, **options)
    try:
        model.load_state_dict(ckpt["model"])
    except (RuntimeError, KeyError) as e:
        raise TnaError(f"{run_dir / runs.CHECKPOINT} does not match its config.json ({str(e).splitlines()[0]})") from None
    return TrainedRun(cfg, shape, model.eval(), ckpt)


def load_teacher(cfg: TrainConfig, shape: Shape) -> Teacher:
    if not cfg.teacher:
        raise TnaError(f"--strategy {cfg.strategy} needs --teacher RUN_DIR: a finished run, e.g. an ANN from "
                       f"'tna train --strategy baseline --neuron relu --weights full --out RUN_DIR'")
    run = load_trained(cfg.teacher)
    if not runs.is_finished(cfg.teacher):
        raise TnaError(f"teacher {cfg.teacher} has not finished training (no metrics.json); finish it with --resume")
    if run.shape.num_classes != shape.num_classes or run.config.dataset != cfg.dataset:
        raise TnaError(f"teacher {cfg.teacher} was trained on {run.config.dataset} "
                       f"({run.shape.num_classes} classes), this run uses {cfg.dataset}")
    return Teacher(run.model, make_encoder(run.config, run.shape))


def build_strategy(cfg: TrainConfig, shape: Shape) -> Strategy:
    if cfg.strategy not in STRATEGIES:
        raise TnaError(f"unknown strategy '{cfg.strategy}'; choose one of: {', '.join(STRATEGIES)}")
    cls = STRATEGIES[cfg.strategy]
    base = build_network(cfg, shape, seed=cfg.seed, **cls.model_options)
    if cfg.init:
        start = load_trained(cfg.init)
        try:
            base.load_state_dict(start.model.state_dict())
        except RuntimeError as e:
            detail = next((line.strip() for line in str(e).splitlines() if "size mismatch" in line or "Missing" in line
                           or "Unexpected" in line), str(e).splitlines()[0])
            raise TnaError(f"--init {cfg.init}: its network ({start.config.model}, width {start.config.width}, "
                           f"{start.config.dataset}) cannot start this run's ({cfg.model}, width {cfg.width}, "
                           f"{cfg.dataset}): {detail}") from None
    if cfg.arithmetic == "loihi":
        from tna.deployed import train_in_loihi_arithmetic

        train_in_loihi_arithmetic(base, input_shape=shape.input_shape, T=cfg.T, dt=cfg.dt,
                                  encoding=input_encoding(cfg, shape), input_scale=input_grid(cfg, shape),
                                  synapses=cfg.synapses)
    enc = make_encoder(cfg, shape)
    if cls.name == "baseline":
        return cls(base, enc)
    if cls.name == "kd":
        return cls(base, enc, load_teacher(cfg, shape), cfg.kd_temperature, cfg.kd_weight)
    if cls.name == "enof":
        return cls(base, enc, load_teacher(cfg, shape), cfg.enof_temperature, cfg.enof_weight)
    twin_weights = cfg.weights if cfg.twin_weights == "same" else cfg.twin_weights
    twin = build_network(cfg, shape, seed=cfg.seed + 10_000, width=cfg.twin_width, weights=twin_weights)
    return cls(base, enc, twin, cfg.alpha, cfg.mse_reduction)

