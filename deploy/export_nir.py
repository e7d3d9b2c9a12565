"""Export a trained run to NIR, with the golden reference the deployment is held to.

    python deploy/export_nir.py RUN_DIR [--out FILE.nir] [--samples N]

Writes (default into RUN_DIR/deploy/):
- model.nir      the network (see deploy/nir_graph.py), readable with `nir.read` (type-checked)
- reference.h5   N test inputs exactly as they enter the first layer (`input` [N, T, ...]), their
                 `labels` and test-set `indices`, and for each arithmetic the network's spikes per
                 spiking layer and time step plus its logits:
                   float/  the trained model itself (Norse, float32)
                   loihi/  the same graph in Lava's fixed-point arithmetic (deploy/nir_torch.py)
Both files are written to a temporary name and renamed, so a failed export leaves nothing half-done.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import h5py
import nir
import numpy as np
import torch

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deploy import nir_torch  # noqa: E402
from deploy.fixed_point import SYNAPSES  # noqa: E402
from deploy.nir_graph import lif_nodes, model_to_nir  # noqa: E402
from tna.data import load_dataset  # noqa: E402
from tna.errors import TnaError  # noqa: E402
from tna.models.layers import Spiking  # noqa: E402
from tna.run import TrainedRun, load_trained, make_encoder  # noqa: E402

DEFAULT_SAMPLES = 16


def graph_of(run: TrainedRun, synapses: str | None = None) -> nir.NIRGraph:
    """The run's network as a NIR graph (in memory), with everything deployment needs to know.

    `synapses` (default: the run's) says how fixed point stores weights (deploy/fixed_point.py)."""
    cfg = run.config
    synapses = synapses or cfg.synapses  # checked where it is used: fixed_point.plan_network
    encoding = "events" if run.shape.kind == "events" else cfg.encoding
    return model_to_nir(run.model, run.shape.input_shape, T=cfg.T, dt=cfg.dt, encoding=encoding,
                        input_scale=input_scale(run),
                        extra_metadata={"model": cfg.model, "dataset": cfg.dataset, "strategy": cfg.strategy,
                                        "weights": cfg.weights, "num_classes": run.shape.num_classes,
                                        "synapses": synapses})


class _LoihiModel(torch.nn.Module):
    """A run's network in the deployed (Lava fixed-point) arithmetic, with the model interface."""

    def __init__(self, graph):
        super().__init__()
        self.emulator = nir_torch.LoihiEmulator(graph)

    def forward(self, x):
        from tna.models import ModelOutput

        spikes, logits = self.emulator(x.contiguous())
        return ModelOutput(logits, next(reversed(spikes.values())))


def loihi_model(run: TrainedRun, synapses: str | None = None) -> torch.nn.Module:
    return _LoihiModel(graph_of(run, synapses))


def input_scale(run: TrainedRun) -> float:
    """The run's input grid, from the data shape its checkpoint recorded."""
    return input_scale_for(run.config, run.shape)


def input_scale_for(cfg, shape) -> float:
    """The grid of the first layer's input: x = integer * scale. Spikes are 0/1; a static sample lies
    on its dataset's grid (DataSpec.input_scale, recorded in the checkpoint's shape)."""
    if shape.kind == "events" or cfg.encoding == "rate":
        return 1.0
    if getattr(shape, "input_scale", None) is not None:
        return float(shape.input_scale)
    # a checkpoint from before the data recorded its grid: the rule of that time
    return 1 / 255 if cfg.dataset.startswith("mnist5k") else 1 / 64


def reference_inputs(run: TrainedRun, samples: int, data_root: str | None = None):
    """N test samples spread over the test set (it may be sorted by class), encoded as in training."""
    cfg = run.config
    _, test, _ = load_dataset(cfg.dataset, T=cfg.T, root=data_root or cfg.data_root, train_augment=False)
    n = min(samples, len(test))
    indices = np.linspace(0, len(test) - 1, n).round().astype(np.int64)
    x = torch.stack([test[int(i)][0] for i in indices])
    y = torch.tensor([test[int(i)][1] for i in indices])
    torch.manual_seed(0)  # rate encoding draws spikes: fixed, so the reference is reproducible
    return make_encoder(cfg, run.shape)(x).contiguous(), y, indices


@torch.no_grad()
def trained_spikes(model, x: torch.Tensor):
    """The trained model's own spikes per spiking layer (named like the NIR nodes) and logits."""
    rec = {}
    hooks = [m.register_forward_hook(lambda mod, i, o, n=n: rec.__setitem__(n.replace(".", "_"), o))
             for n, m in model.named_modules() if isinstance(m, Spiking)]
    logits = model(x).logits
    for h in hooks:
        h.remove()
    return rec, logits


def export(run_dir: str | Path, out: str | Path | None = None, samples: int = DEFAULT_SAMPLES,
           data_root: str | None = None, synapses: str | None = None) -> tuple[Path, Path]:
    run = load_trained(run_dir)
    cfg = run.config
    out = Path(out) if out else Path(run_dir) / "deploy" / "model.nir"
    ref_path = out.with_name("reference.h5")
    out.parent.mkdir(parents=True, exist_ok=True)
    if samples < 1:
        raise TnaError(f"--samples must be at least 1, got {samples}")

    graph = graph_of(run, synapses)
    layers = lif_nodes(graph)  # in network order (nir.read returns nodes sorted by name)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    nir.write(tmp, graph)
    graph = nir.read(tmp)  # what Lava will see, type-checked
    x, y, indices = reference_inputs(run, samples, data_root)
    ref, logits = trained_spikes(run.model, x)
    golden = {"float": (ref, logits)}
    golden.update({mode: nir_torch.run(graph, x, mode) for mode in nir_torch.MODES if mode != "float"})

    tmp_ref = ref_path.with_name(f".{ref_path.name}.tmp{os.getpid()}")
    with h5py.File(tmp_ref, "w") as f:
        f.create_dataset("input", data=x.transpose(0, 1).numpy().astype(np.float32), compression="gzip")
        f.create_dataset("labels", data=y.numpy())
        f.create_dataset("indices", data=indices)
        f.attrs.update({"run_dir": str(run_dir), "T": cfg.T, "dt": cfg.dt, "layers": layers,
                        "model": cfg.model, "dataset": cfg.dataset})
        for mode, (spikes, lg) in golden.items():
            g = f.create_group(mode)
            g.create_dataset("logits", data=lg.numpy().astype(np.float64))
            for name in layers:
                g.create_dataset(f"spikes/{name}", data=spikes[name].transpose(0, 1).numpy().astype(np.uint8),
                                 compression="gzip")
    os.replace(tmp, out)
    os.replace(tmp_ref, ref_path)
    return out, ref_path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR", help="a trained run folder (tna train --out RUN_DIR)")
    p.add_argument("--out", metavar="FILE.nir", help="where to write the graph (default RUN_DIR/deploy/model.nir); "
                                                      "reference.h5 goes beside it")
    p.add_argument("--samples", type=int, default=DEFAULT_SAMPLES, help=f"test samples in the reference (default {DEFAULT_SAMPLES})")
    p.add_argument("--data-root", help="override the run's data root")
    p.add_argument("--synapses", choices=SYNAPSES, help="fixed-point weights: loihi (8-bit mantissa x 2^exp per layer, "
                                                       "as the chip stores them) | wide (any integer conv weight, "
                                                       "Lava only); default: the run's (loihi)")
    args = p.parse_args(argv)
    try:
        nir_path, ref_path = export(args.run_dir, args.out, args.samples, args.data_root, args.synapses)
    except TnaError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {nir_path} and {ref_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
