"""The seam: the one module of tna/ that imports deploy/ (the CLI is the only other).

Training needs the deployed arithmetic (Lava fixed point = bit-accurate Loihi) in two places, and
both go through here; nothing else in tna/ knows that deploy/ exists:

- `loihi_model(run)`: a trained run's network as the chip computes it, with the model interface
  (`tna eval --arithmetic loihi`);
- `train_in_loihi_arithmetic(model, ...)`: the network's logits become the exact fixed-point ones
  with straight-through gradients (`tna train --arithmetic loihi`, fine-tuning as deployed).

Both build the run's NIR graph (deploy/graph/from_model.py) and run it through the one integer
simulator (deploy/loihi/simulate.py), the same code that writes the golden reference Lava is held to.
"""

from __future__ import annotations

import types

import torch
from torch import nn

from tna.models import ModelOutput


class LoihiModel(nn.Module):
    """A NIR graph in the deployed (Lava fixed-point) arithmetic, with the model interface:
    x [T, B, ...] -> ModelOutput(logits [B, K], last spiking layer's spikes [T, B, ...])."""

    def __init__(self, graph):
        super().__init__()
        from deploy.loihi.simulate import LoihiSimulator

        self.simulator = LoihiSimulator(graph)

    def forward(self, x):
        spikes, logits = self.simulator.run_float(x.contiguous())
        return ModelOutput(logits, next(reversed(spikes.values())).float())


def loihi_model(run, synapses: str | None = None) -> nn.Module:
    """`run` (tna.build.TrainedRun) as Lava fixed point computes it; `synapses` overrides the run's."""
    from deploy.graph.from_model import graph_of

    return LoihiModel(graph_of(run, synapses))


def _keep_eval(self, mode: bool = True):
    return nn.Module.train(self, False)


def train_in_loihi_arithmetic(model: nn.Module, *, input_shape: tuple, T: int, dt: float, encoding: str,
                              input_scale: float, synapses: str = "loihi") -> None:
    """Make `model`'s logits the Loihi-exact ones, its gradients the float model's (straight-through):

        logits = float_logits + (loihi_logits - float_logits).detach()

    The loss sees exactly what the chip computes (integer synapses, thresholds, biases, 12-bit
    decays). Batch-norm statistics are frozen: they are part of the integers."""
    from deploy.graph.from_model import model_to_nir
    from deploy.loihi.simulate import LoihiSimulator

    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.train = types.MethodType(_keep_eval, m)
            m.eval()

    def exact_logits(module, inputs, out: ModelOutput) -> ModelOutput:
        was_training = module.training
        with torch.no_grad():
            graph = model_to_nir(module, input_shape, T=T, dt=dt, encoding=encoding, input_scale=input_scale,
                                 extra_metadata={"synapses": synapses})
            _, exact = LoihiSimulator(graph).run_float(inputs[0].contiguous())
        module.train(was_training)
        return ModelOutput(out.logits + (exact.to(out.logits) - out.logits).detach(), out.features)

    model.register_forward_hook(exact_logits)
