"""Run a NIR graph in torch, step by step, through nirtorch (`nir_to_torch` + our node map).

Two arithmetics over the same graph:
- `float`: the trained model's own (Norse's LIF step, torch conv/linear in float32). Running an
  exported graph this way reproduces the trained model's spikes exactly: the round trip.
- `loihi`: Lava's fixed-point arithmetic, integer for integer (`LoihiEmulator`, from the
  parameters and step functions of `deploy/fixed_point.py` that the Lava mapper uses too).

nirtorch's defaults for Conv2d/Affine mis-map channels and bias in the version we use, so every
node kind we export has an explicit mapping here.
"""

from __future__ import annotations

import warnings

import nir
import numpy as np
import torch
from torch import nn

from deploy import nir_compat  # noqa: F401  (nir 1.0.8: non-square Conv2d output types)
from tna.errors import TnaError

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import nirtorch
    from norse.torch.functional.lif_box import LIFBoxFeedForwardState, LIFBoxParameters, lif_box_feed_forward_step


MODES = ("float", "loihi")


def _t(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float32))


def _uniform(a: np.ndarray, what: str, name: str) -> float:
    a = np.asarray(a)
    if a.size and not np.all(a == a.flat[0]):
        raise TnaError(f"NIR node {name}: per-neuron {what} values are not supported (they must all be equal)")
    return float(a.flat[0])


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
    c = nn.Conv2d(w.shape[1] * node.groups, w.shape[0], tuple(w.shape[2:]), stride=_pair(node.stride),
                  padding=_pad(node.padding), dilation=_pair(node.dilation), groups=node.groups, bias=True)
    c.weight.data, c.bias.data = w, _t(node.bias)
    return c


def _pair(v):
    v = np.atleast_1d(np.asarray(v)).tolist()
    return tuple(v * 2 if len(v) == 1 else v)


def _pad(p):
    if isinstance(p, str):
        raise TnaError(f"string padding '{p}' is not supported; export explicit padding")
    return _pair(p)


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
        nir.AvgPool2d: lambda n: nn.AvgPool2d(_pair(n.kernel_size), _pair(n.stride), _pair(n.padding)),
        nir.LIF: None,  # bound per node (needs its name) in `executor`
        nir.I: lambda n: Integrate(n, dt),
    }


def executor(graph: nir.NIRGraph, mode: str = "float") -> nn.Module:
    """A torch module stepping the graph: `out, state = m(x_t, state)`; LIF modules keep names."""
    if mode != "float":
        raise TnaError(f"unknown execution mode '{mode}'; use float")
    dt = float(graph.metadata["dt"])
    supported = float_node_map(dt)
    names = {id(node): name for name, node in graph.nodes.items()}
    for name, node in graph.nodes.items():
        if type(node) not in supported:
            raise TnaError(f"NIR node {name}: {type(node).__name__} is not supported by the tna executor")
    node_map = {**supported, nir.LIF: lambda n: LIFStep(n, dt, names[id(n)])}
    return nirtorch.nir_to_torch(graph, node_map=node_map, default_map={})


class LoihiEmulator(nn.Module):
    """The graph in Lava's fixed-point arithmetic, integer for integer: the parameters come from
    `deploy.fixed_point.fixed_network` (the same ones the Lava mapper uses) and every neuron update
    is `fixed_point.lif_fixed_step` on int64 tensors. Lava's one-step delay per synapse layer is
    aligned away, so step t here is step t of the trained model."""

    def __init__(self, graph: nir.NIRGraph):
        super().__init__()
        from deploy import fixed_point

        self.fp = fixed_point
        self.net = fixed_point.fixed_network(graph)

    @staticmethod
    def _op(op, y):
        F = torch.nn.functional
        if op.kind == "dense":
            return y.reshape(y.shape[0], -1) @ torch.from_numpy(op.weight_int).T
        if op.kind == "scale":
            return y * torch.from_numpy(op.weight_int).reshape((1, -1) + (1,) * (y.dim() - 2))
        if op.kind == "sumpool":
            c = op.in_shape[0]
            w, groups, dil = torch.ones((c, 1) + tuple(op.kernel), dtype=torch.float64), c, (1, 1)
        else:
            w, groups, dil = torch.from_numpy(op.weight_int).double(), op.groups, op.dilation
        # float64 holds these integer sums exactly (far below 2**53)
        return F.conv2d(y.double(), w, stride=op.stride, padding=op.padding, dilation=dil, groups=groups).round().long()

    def forward(self, x: torch.Tensor):
        """x [T, B, ...] as it enters the network -> ({lif: spikes [T, B, ...]}, logits [B, K])."""
        fp, net = self.fp, self.net
        x_int = fp.quantize_input(x.double(), net.plan.input_scale, torch).long()
        b = x.shape[1]
        state = {k: (torch.zeros((b,) + p.shape, dtype=torch.int64),) * 2 for k, p in net.populations.items()}
        spikes = {k: [] for k, p in net.populations.items() if p.kind == "lif"}
        for t in range(x.shape[0]):
            act = {net.plan.input_name: x_int[t]}
            for name, p in net.populations.items():
                a = torch.zeros((b,) + p.shape, dtype=torch.int64)
                for e in p.edges:
                    y = act[e.source]
                    for op in e.ops:
                        y = self._op(op, y)
                        if op.wraps:
                            y = fp.wrap_signed(y)
                    a = a + y.reshape(a.shape)
                u, v = state[name]
                vth = None if p.vth is None else torch.from_numpy(p.vth)
                u, v, s = fp.lif_fixed_step(u, v, a, p.du, p.dv, torch.from_numpy(p.bias), vth, torch)
                state[name], act[name] = (u, v), s.long()
                if name in spikes:
                    spikes[name].append(s.float())
        readout = state[net.plan.readout][1].double() / net.readout_scale
        return {k: torch.stack(v) for k, v in spikes.items()}, readout.float()


@torch.no_grad()
def run(graph: nir.NIRGraph, x: torch.Tensor, mode: str = "float"):
    """Run x[T, B, ...] through the graph. Returns ({lif node: spikes [T, B, ...]}, logits [B, K])."""
    if mode == "loihi":
        return LoihiEmulator(graph)(x)
    m = executor(graph, mode)
    spikes: dict[str, list] = {}
    hooks = [mod.register_forward_hook(lambda mod, i, o: spikes.setdefault(mod.name, []).append(o[0]))
             for mod in m.modules() if isinstance(mod, LIFStep)]
    state, out = None, None
    for x_t in x:
        out, state = m(x_t, state) if state is not None else m(x_t)
    for h in hooks:
        h.remove()
    return {k: torch.stack(v) for k, v in spikes.items()}, out
