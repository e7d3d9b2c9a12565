"""The run configuration: every choice that shapes a result, saved as RUN_DIR/config.json.

A run folder can be reproduced from its config alone (`tna train --config RUN_DIR/config.json`).
Defaults are the demo's: a ternary TNA convnet on the bundled MNIST digits, trainable on a
2-core CPU in a few minutes.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from tna.errors import TnaError
from tna.runs import CONFIG as CONFIG_FILE
from tna.runs import write_json_atomic  # noqa: F401  (its old home; benchmarks import it from here)

# How fixed point stores synapses (graph metadata "synapses", read by deploy/loihi/fixed_point.py):
# loihi = an 8-bit mantissa << one exponent per stage (what a chip holds); wide = any conv integer (Lava only)
SYNAPSES = ("loihi", "wide")


@dataclass
class TrainConfig:
    # data
    dataset: str = "mnist5k"
    data_root: str | None = None
    T: int = 4  # time steps per sample
    encoding: str = "direct"  # static images: direct (analog every step) | rate (Bernoulli spikes)
    augment: bool = True
    train_samples: int | None = None  # train on a random N-sample subset (fixed by seed; quick checks)
    # held out of the training split (stratified, fixed seed VALIDATION_SEED: the same samples for
    # every run and seed) and never trained on; hyperparameters are chosen on it, never on test
    val_fraction: float = 0.1
    # model
    model: str = "convnet"
    width: float = 1.0  # channel multiplier
    neuron: str = "lif"  # lif | relu (the ANN of the same shape, e.g. a KD/EnOF teacher)
    tau_mem: float = 2e-3
    dt: float = 1e-3
    v_th: float = 1.0
    surrogate: str = "triangle"
    surrogate_alpha: float = 1.0
    weights: str = "ternary"  # full | ternary
    ends: str = "ternary"  # precision of first/last layer when weights=ternary: ternary | full
    # strategy (each strategy reads only its own options)
    strategy: str = "tna"  # baseline | kd | enof | tna
    teacher: str | None = None  # kd, enof: RUN_DIR of a trained teacher
    kd_temperature: float = 4.0
    kd_weight: float = 0.5  # loss = (1-w) CE + w T^2 KL
    enof_temperature: float = 1.0
    enof_weight: float = 1.0  # loss = CE + w * LAF
    alpha: float = 1e-4  # tna: weight of the logit MSE (batchmean) between base and twin; chosen on validation (benchmarks/alpha_sweep.py)
    mse_reduction: str = "batchmean"  # tna: batchmean (sum over classes, mean over batch: the authors') | mean | sum
    twin_weights: str = "same"  # tna: same | full | ternary
    twin_width: float = 1.0  # tna: twin channel multiplier
    # arithmetic of the base network's forward pass: float | loihi (Lava fixed point, exact; STE)
    arithmetic: str = "float"
    # how the Loihi-exact arithmetic stores synapses: loihi (8-bit mantissa << one exponent per layer,
    # what the chip holds) | wide (any integer in Conv layers: Lava fixed_pt accepts it, a chip does not)
    synapses: str = "loihi"
    init: str | None = None  # start from this finished run's base weights (fine-tuning)
    # optimisation
    epochs: int = 8
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 0.0
    seed: int = 0
    device: str = "cpu"
    workers: int = 0
    out: str = ""

    def lif(self):
        """The neuron (tna.neuron.LIF), or None for the ANN."""
        from tna.neuron import LIF

        if self.neuron == "relu":
            return None
        return LIF(tau_mem=self.tau_mem, dt=self.dt, v_th=self.v_th,
                   surrogate=self.surrogate, alpha=self.surrogate_alpha)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        if not isinstance(d, dict):
            raise TnaError(f"config must be a JSON object of options, found a JSON {type(d).__name__}")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise TnaError(f"config has unknown keys {unknown}; it was written by another tool or version")
        for key, value in d.items():  # JSON types, checked against each option's annotation ("int | None")
            kind, _, none = str(known[key].type).partition(" | ")
            if value is None and none == "None":
                continue
            kinds = {"bool": (bool,), "int": (int,), "float": (int, float), "str": (str,)}[kind]
            if not isinstance(value, kinds) or (isinstance(value, bool) and kind != "bool"):
                raise TnaError(f"config option '{key}' must be {kind}{' or null' if none else ''}, found {value!r}")
        return cls(**d)

    def save(self, run_dir: Path, extra: dict | None = None) -> None:
        write_json_atomic(Path(run_dir) / CONFIG_FILE, {**self.to_dict(), **({"resolved": extra} if extra else {})})


def load_config(run_dir: str | Path) -> TrainConfig:
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise TnaError(f"{run_dir} is not a tna run folder: {CONFIG_FILE} is missing")
    try:
        d = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise TnaError(f"{path} is not valid JSON ({e}); the run folder is damaged") from None
    if isinstance(d, dict):
        d.pop("resolved", None)
    try:
        return TrainConfig.from_dict(d)
    except TnaError as e:
        raise TnaError(f"{path}: {e}") from None


CHOICES = {
    "encoding": ("direct", "rate"),
    "neuron": ("lif", "relu"),
    "weights": ("full", "ternary"),
    "ends": ("ternary", "full"),
    "twin_weights": ("same", "full", "ternary"),
    "device": ("cpu", "cuda"),
    "arithmetic": ("float", "loihi"),
    "synapses": SYNAPSES,
}


def validate(cfg: TrainConfig) -> None:
    """Reject a bad config before any work starts, with a message that names the fix."""
    from tna.data import DATASETS
    from tna.models import MODELS
    from tna.neuron import SURROGATES
    from tna.strategies import STRATEGIES
    from tna.strategies.tna import REDUCTIONS

    choices = {**CHOICES, "dataset": DATASETS, "model": tuple(MODELS), "strategy": tuple(STRATEGIES),
               "surrogate": SURROGATES, "mse_reduction": REDUCTIONS}
    for key, allowed in choices.items():
        value = getattr(cfg, key)
        if value not in allowed:
            raise TnaError(f"unknown {key.replace('_', '-')} '{value}'; choose one of: {', '.join(allowed)}")
    positive = {"T": cfg.T, "epochs": cfg.epochs, "batch-size": cfg.batch_size, "lr": cfg.lr,
                "width": cfg.width, "twin-width": cfg.twin_width, "tau-mem": cfg.tau_mem, "dt": cfg.dt,
                "v-th": cfg.v_th}
    for key, value in positive.items():
        if not value > 0:
            raise TnaError(f"--{key} must be positive, got {value}")
    for f in fields(cfg):  # a NaN or inf option trains garbage silently: refuse it here
        value = getattr(cfg, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise TnaError(f"--{f.name.replace('_', '-')} must be a finite number, got {value}")
    non_negative = {"alpha": cfg.alpha, "weight-decay": cfg.weight_decay, "enof-weight": cfg.enof_weight,
                    "workers": cfg.workers}
    for key, value in non_negative.items():
        if value < 0:
            raise TnaError(f"--{key} must be zero or positive, got {value}")
    for key, value in {"surrogate-alpha": cfg.surrogate_alpha, "kd-temperature": cfg.kd_temperature,
                       "enof-temperature": cfg.enof_temperature}.items():
        if not value > 0:
            raise TnaError(f"--{key} must be positive, got {value}")
    if not 0 <= cfg.kd_weight <= 1:
        raise TnaError(f"--kd-weight must lie in [0, 1] (loss = (1-w) CE + w KD), got {cfg.kd_weight}")
    if not 0 <= cfg.val_fraction < 0.5:
        raise TnaError(f"--val-fraction must lie in [0, 0.5), got {cfg.val_fraction}")
    if cfg.train_samples is not None and cfg.train_samples < 1:
        raise TnaError(f"--train-samples must be at least 1 (leave it out to train on all), got {cfg.train_samples}")
    if cfg.dt > cfg.tau_mem:
        raise TnaError(f"--dt ({cfg.dt}) must not exceed --tau-mem ({cfg.tau_mem}): the decay dt/tau_mem must be <= 1")
    if cfg.arithmetic == "loihi" and (cfg.neuron == "relu" or cfg.strategy == "enof"):
        raise TnaError("--arithmetic loihi needs spiking neurons throughout (no --neuron relu, no enof's ReLU layer)")
    if cfg.strategy in ("kd", "enof") and not cfg.teacher:
        raise TnaError(f"--strategy {cfg.strategy} needs --teacher RUN_DIR (a finished run; for enof an ANN "
                       f"trained with --neuron relu --weights full --strategy baseline)")
