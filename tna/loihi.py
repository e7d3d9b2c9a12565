"""Train in the deployed arithmetic: the network's outputs come from Lava's fixed-point arithmetic
(emulated exactly in torch), its gradients from the float network (straight-through).

    logits = float_logits + (loihi_logits - float_logits).detach()

The loss therefore sees exactly what the chip computes (integer synapses, thresholds, biases,
12-bit decays), while gradients flow through the float model the integers are derived from.
Batch-norm statistics are frozen (they are part of the integers). `tna train --arithmetic loihi`
uses it, typically to fine-tune a trained run (`--init RUN_DIR`).
"""

from __future__ import annotations

import types

import torch
from torch import nn

from tna.models import ModelOutput


def _keep_eval(self, mode: bool = True):
    return nn.Module.train(self, False)


def enable(model: nn.Module, *, input_shape: tuple, T: int, dt: float, encoding: str, input_scale: float,
           synapses: str = "loihi") -> None:
    """Make `model`'s logits the Loihi-exact ones (straight-through); freeze its batch norms."""
    from deploy.nir_graph import model_to_nir
    from deploy.nir_torch import LoihiEmulator

    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.train = types.MethodType(_keep_eval, m)
            m.eval()

    def exact_logits(module, inputs, out: ModelOutput) -> ModelOutput:
        was_training = module.training
        with torch.no_grad():
            graph = model_to_nir(module, input_shape, T=T, dt=dt, encoding=encoding, input_scale=input_scale,
                                 extra_metadata={"synapses": synapses})
            _, exact = LoihiEmulator(graph)(inputs[0].contiguous())
        module.train(was_training)
        return ModelOutput(out.logits + (exact.to(out.logits) - out.logits).detach(), out.features)

    model.register_forward_hook(exact_logits)
