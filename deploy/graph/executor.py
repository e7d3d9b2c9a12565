"""The float reference: a NIR graph run in torch, step by step, through nirtorch (`nir_to_torch` +
our node map), in the trained model's own arithmetic (Norse's LIF step, torch conv/linear in
float32). Running an exported graph this way reproduces the trained model's spikes exactly: the
round trip. (The fixed-point arithmetic is `deploy/loihi/simulate.py`.)

nirtorch's defaults for Conv2d/Affine mis-map channels and bias in the version we use, so every
node kind we export has an explicit mapping here.
"""

from __future__ import annotations

import warnings

import nir
import numpy as np
import torch
from torch import nn

from deploy.graph import compat  # noqa: F401  (nir 1.0.8: non-square Conv2d output types)
from deploy.graph.read import decimal, pair
from tna.errors import TnaError

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import nirtorch
    from norse.torch.functional.lif_box import LIFBoxFeedForwardState, LIFBoxParameters, lif_box_feed_forward_step



def _t(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float32))


def _uniform(a: np.ndarray, what: str, name: str) -> float:
    a = np.asarray(a)
    if a.size and not np.all(a == a.flat[0]):
        raise TnaError(f"NIR node {name}: per-neuron {what} values are not supported (they must all be equal)")
    return decimal(a.flat[0])


class LIFStep(nn.Module):
    """One NIR LIF population stepped with Norse: v += dt/tau (v_leak - v + r I); z = v > v_th."""

    def __init__(self, node: nir.LIF, dt: float, name: str):
        super().__init__()
        self.name = name
        tau = _uniform(node.tau, "tau", name)
        if not np.all(np.asarray(node.r) == 1):
            raise TnaError(f"NIR node {name}: LIF with r != 1 is not supported by this version")
        v_reset = 0.0 if node.v_reset is None else _uniform(node.v_reset, "v_reset", name)
        self.p = LIFBoxParameters(tau_mem_inv=torch.as_tensor(dt / tau), v_leak=_t(_uniform(node.v_leak, "v_leak", name)),
                                  v_th=_t(_uniform(node.v_threshold, "v_threshold", name)), v_reset=_t(v_reset),
                                  method="heaviside", alpha=1.0)

    def forward(self, x, state=None):
        if state is None:
            state = LIFBoxFeedForwardState(v=torch.full_like(x, float(self.p.v_leak)))
        z, state = lif_box_feed_forward_step(x, state, self.p, dt=1.0)
        return z, state


class Integrate(nn.Module):
    """NIR integrator `I`: v += dt r I (the readout; never spikes)."""

    def __init__(self, node: nir.I, dt: float):
        super().__init__()
        self.register_buffer("gain", _t(node.r) * dt)

    def forward(self, x, state=None):
        v = x * self.gain if state is None else state + x * self.gain
        return v, v


def _conv(node: nir.Conv2d) -> nn.Conv2d:
    w = _t(node.weight)
    c = nn.Conv2d(w.shape[1] * node.groups, w.shape[0], tuple(w.shape[2:]),
                  stride=pair(node.stride, "stride", "Conv2d"), padding=_pad(node.padding),
                  dilation=pair(node.dilation, "dilation", "Conv2d"), groups=node.groups, bias=True)
    c.weight.data, c.bias.data = w, _t(node.bias)
    return c


def _pad(p):
    if isinstance(p, str):
        raise TnaError(f"string padding '{p}' is not supported; export explicit padding")
    return pair(p, "padding", "Conv2d")


def _affine(node: nir.Affine) -> nn.Linear:
    w = _t(node.weight)
    lin = nn.Linear(w.shape[1], w.shape[0], bias=True)
    lin.weight.data, lin.bias.data = w, _t(node.bias)
    return lin


def float_node_map(dt: float) -> dict:
    return {
        nir.Input: lambda n: nn.Identity(),
        nir.Output: lambda n: nn.Identity(),
        nir.Conv2d: _conv,
        nir.Affine: _affine,
        nir.Flatten: lambda n: nn.Flatten(start_dim=n.start_dim + 1, end_dim=n.end_dim if n.end_dim < 0 else n.end_dim + 1),
        nir.AvgPool2d: lambda n: nn.AvgPool2d(pair(n.kernel_size, "kernel_size", "AvgPool2d"),
                                              pair(n.stride, "stride", "AvgPool2d"),
                                              pair(n.padding, "padding", "AvgPool2d")),
        nir.LIF: None,  # bound per node (needs its name) in `executor`
        nir.I: lambda n: Integrate(n, dt),
    }


def executor(graph: nir.NIRGraph) -> nn.Module:
    """A torch module stepping the graph: `out, state = m(x_t, state)`; LIF modules keep names."""
    dt = float(graph.metadata["dt"])
    supported = float_node_map(dt)
    names = {id(node): name for name, node in graph.nodes.items()}
    for name, node in graph.nodes.items():
        if type(node) not in supported:
            raise TnaError(f"NIR node {name}: {type(node).__name__} is not supported by the tna executor")
    node_map = {**supported, nir.LIF: lambda n: LIFStep(n, dt, names[id(n)])}
    return nirtorch.nir_to_torch(graph, node_map=node_map, default_map={})


@torch.no_grad()
def run(graph: nir.NIRGraph, x: torch.Tensor):
    """Run x[T, B, ...] through the graph. Returns ({lif node: spikes [T, B, ...]}, logits [B, K])."""
    m = executor(graph)
    spikes: dict[str, list] = {}
    hooks = [mod.register_forward_hook(lambda mod, i, o: spikes.setdefault(mod.name, []).append(o[0]))
             for mod in m.modules() if isinstance(mod, LIFStep)]
    state, out = None, None
    for x_t in x:
        out, state = m(x_t, state) if state is not None else m(x_t)
    for h in hooks:
        h.remove()
    return {k: torch.stack(v) for k, v in spikes.items()}, out
