"""The one integer simulator: a tna network in Lava's fixed-point arithmetic, integer for integer.

    net = fixed_network(graph)                       # deploy/loihi/fixed_point.py
    spikes, v = simulate(net, x_int)                 # x_int [T, N, *input_shape] integers
    spikes[lif]  -> 0/1 [T, N, *shape];  out -> int64 [N, K]: the Output's integers (plan.output_rule:
                    the readout's V after T steps, or summed over them; or spike counts)

numpy arrays in, numpy out (any environment; no torch needed); torch tensors in, torch out (CPU or
GPU, the device of x_int, batched). Both run the code below; only a convolution and a matrix
product are computed by each library's own routine.

Exact by construction: every value is an integer, held in the cheapest type that holds it exactly.
Each stage knows a bound on its values (the input's measured maximum, then max|x| * the largest
sum of |weights| of one output, stage by stage; spikes are 0/1), and computes in float32 while all
products and partial sums stay below 2**24, in float64 below 2**53 (on a GPU always float64, whose
float32 convolutions may use TF32). Convolution algorithms that transform the data (Winograd and
FFT: NNPACK, cuDNN) are switched off while the simulator runs, so only sums of products are
formed. Lava's Conv output wraps to 24 bits: where the bound allows values beyond that, the wrap
is applied in int64; elsewhere it is the identity. Every neuron population runs
`fixed_point.lif_fixed_run`, which is `lif_fixed_step` (the step checked bit for bit against Lava)
T times.

Layer by layer: the graph is feed-forward, so each population's input over all T steps is
computed at once (one conv over T*N frames, or over N frames when the input is the same at every
step, as with direct encoding), and only the neuron update loops over time. Lava's one step of
delay per synaptic stage is aligned away: step t here is step t of the trained model, and every
sample starts from u = v = 0.

`LoihiSimulator(graph).run_float(x)` is the torch convenience for a float input x [T, B, ...] as it
enters the network: ({lif: spikes 0/1 [T, B, ...]}, logits float32 [B, K]).
"""

from __future__ import annotations

import numpy as np

from deploy.graph.plan import ONE
from deploy.graph.read import conv2d_np  # noqa: F401  (re-exported)
from deploy.loihi.fixed_point import (FixedNetwork, fixed_network, lif_fixed_run, lif_fixed_step, quantize_input,
                                     wrap_signed)

EXACT_F32 = 1 << 24   # integers, products and partial sums below this are exact in float32
EXACT_F64 = 1 << 53   # ... in float64
WRAP = 1 << 23        # Lava's Conv output wraps to 24 bits: values inside (-2**23, 2**23) pass unchanged


# ---- the two libraries: the few operations that differ -----------------------------------------------
class _Numpy:
    xp = np
    f32, f64, i64 = np.float32, np.float64, np.int64

    def __init__(self):
        self.gpu = False

    def asarray(self, x):
        return np.asarray(x)

    def cast(self, x, dtype):
        return x.astype(dtype, copy=False)

    def const(self, a, dtype):
        return np.asarray(a).astype(dtype)

    def absmax(self, x) -> int:
        return int(np.abs(x).max()) if x.size else 0

    def same_over_time(self, x) -> bool:
        return bool(np.all(x == x[:1]))

    def expand(self, y, T):
        return np.broadcast_to(y[None], (T,) + y.shape)

    def shift(self, y, d):
        """y [T, ...] delayed by d steps along time (zeros first)."""
        out = np.zeros_like(y)
        out[d:] = y[:len(y) - d]
        return out

    def conv(self, x, w, op, groups):
        return conv2d_np(x, w, op.stride, op.padding, op.dilation, groups)

    def matmul(self, x, w):
        return x @ w


class _Torch:
    def __init__(self, device):
        import torch

        self.torch, self.xp, self.device = torch, torch, device
        self.f32, self.f64, self.i64 = torch.float32, torch.float64, torch.int64
        self.gpu = torch.device(device).type != "cpu"

    def asarray(self, x):
        return x.to(self.device)

    def cast(self, x, dtype):
        return x.to(dtype)

    def const(self, a, dtype):
        """A weight or parameter array, on the device."""
        return self.torch.as_tensor(np.asarray(a), device=self.device).to(dtype)

    def absmax(self, x) -> int:
        if not x.numel():
            return 0
        lo, hi = x.aminmax()
        return int(max(-lo, hi))

    def same_over_time(self, x) -> bool:
        return bool((x == x[:1]).all())

    def expand(self, y, T):
        return y.unsqueeze(0).expand((T,) + tuple(y.shape))

    def shift(self, y, d):
        out = self.torch.zeros_like(y)
        out[d:] = y[:len(y) - d]
        return out

    def conv(self, x, w, op, groups):
        return self.torch.nn.functional.conv2d(x, w, stride=op.stride, padding=op.padding,
                                               dilation=op.dilation, groups=groups)

    def matmul(self, x, w):
        return x @ w


# ---- the stages -------------------------------------------------------------------------------------------
def _dtype(be, bound: float, stage: bool = True):
    """The cheapest type that holds integers (and their sums) up to `bound` exactly."""
    if bound < EXACT_F32 and not (stage and be.gpu):
        return be.f32
    if bound < EXACT_F64:
        return be.f64
    raise AssertionError(f"internal: integers up to {bound:.3g} exceed what floating point holds exactly")


def _weights(op):
    """The op's integer weights (sumpool: all ones) and max over outputs of sum |w| (its gain on a bound)."""
    if op.kind == "sumpool":
        w = np.ones((op.in_shape[0], 1) + tuple(op.kernel), np.int64)
        return w, float(op.kernel[0] * op.kernel[1])
    w = op.weight_int
    if op.kind == "scale":
        return w, float(np.abs(w).max(initial=0))
    return w, float(np.abs(w).reshape(len(w), -1).sum(axis=1).max(initial=0))


def _stage(be, op, y, bound: float):
    """One synaptic stage on activity y [M, *op.in_shape] with |y| <= bound -> (output, its bound)."""
    w, gain = _weights(op)
    out_bound = bound * gain
    dtype = _dtype(be, out_bound)
    x = be.cast(y, dtype)
    if op.kind == "dense":  # Lava's Dense: no wrap
        return be.matmul(x.reshape(len(x), -1), be.const(w.T, dtype)), out_bound
    if op.kind == "scale":
        out = x * be.const(w, dtype).reshape((1, -1) + (1,) * (len(x.shape) - 2))
    else:
        out = be.conv(x, be.const(w, dtype), op, op.in_shape[0] if op.kind == "sumpool" else op.groups)
    if out_bound < WRAP:  # inside 24 bits Lava's wrap is the identity
        return out, out_bound
    return wrap_signed(be.cast(out, be.i64), 24), float(WRAP)


def _edge_input(be, e, x, bound: float, T: int, constant: bool):
    """The edge's stages on the source's activity x [T, N, ...] -> ([T, N, ...], bound); a delayed edge
    shifted by its steps (zero before)."""
    if constant and not e.delay:  # the same at every step: compute one step, repeat it
        y = x[0]
        for op in e.ops:
            y, bound = _stage(be, op, y, bound)
        return be.expand(y, T), bound
    n = x.shape[1]
    y = x.reshape((T * n,) + tuple(x.shape[2:]))
    for op in e.ops:
        y, bound = _stage(be, op, y, bound)
    y = y.reshape((T, n) + tuple(y.shape[1:]))
    if e.delay:
        y = be.shift(y, e.delay)
    return y, bound


def _recurrent_run(be, p, a, T: int):
    """A population with recurrent edges, step by step: its input at step t adds the recurrent stages
    on its own spikes of step t - 1 - delay (none before the sample). Returns (spikes [T, ...], V of the
    last step, V summed over the steps)."""
    xp = be.xp
    vth = None if p.vth is None else be.const(p.vth, be.i64)
    bias = be.const(p.bias, be.i64)
    a = be.cast(a, be.i64)
    u = v = a[0] * 0
    silent = be.cast(a[0] * 0, be.f32)
    rec = [e for e in p.edges if e.recurrent]
    spikes, total = [], v
    for t in range(T):
        a_t = a[t]
        for e in rec:
            past = t - 1 - e.delay
            y, _ = _stage(be, e.ops[0], be.cast(spikes[past], be.f32) if past >= 0 else silent, 1.0)
            a_t = a_t + be.cast(y, be.i64).reshape(a_t.shape)
        u, v, z = lif_fixed_step(u, v, a_t, p.du, p.dv, bias, vth, xp)
        spikes.append(z)
        total = total + v
    return xp.stack(spikes), v, total


def _run(be, net: FixedNetwork, x_int):
    plan = net.plan
    T, n = x_int.shape[:2]
    x = be.asarray(x_int)
    act = {plan.input_name: (x, float(be.absmax(x)), T > 1 and be.same_over_time(x)),
           ONE: (be.expand(be.const(np.ones((n, 1)), be.i64), T), 1.0, True)}  # a bias into a current
    spikes, out = {}, None
    for name, p in net.populations.items():
        ins = []
        for e in p.edges:
            if e.recurrent:
                continue
            src, bound, constant = act[e.source]
            y, yb = _edge_input(be, e, src, bound, T, constant)
            ins.append((y.reshape((T, n) + tuple(p.shape)), yb))
        a_bound = sum(b for _, b in ins)
        dtype = _dtype(be, a_bound, stage=False) if a_bound < EXACT_F64 else be.i64
        a = be.cast(ins[0][0], dtype) if ins else be.cast(be.xp.zeros((T, n) + tuple(p.shape)), dtype)
        for y, _ in ins[1:]:
            a = a + be.cast(y, dtype)
        total = None
        if p.recurrent:
            s, v, total = _recurrent_run(be, p, a, T)
        else:
            vth = None if p.vth is None else be.const(p.vth, be.i64)
            summed = name == plan.output_source and plan.output_rule == "sum"
            s, v = lif_fixed_run(a, p.du, p.dv, be.const(p.bias, be.i64), vth, be.xp, v_sum=summed)  # measures max|a|
            total = v if summed else None
        if p.kind == "lif":
            spikes[name] = s
            act[name] = (s, 1.0, False)
        if name == plan.output_source:
            rule = plan.output_rule
            out = (be.cast(s, be.i64).sum(0) if rule == "count" else total if rule == "sum" else v).reshape(n, -1)
    return spikes, out


def simulate(net: FixedNetwork, x_int):
    """Run integer inputs x_int [T, N, *input_shape] through the integer network.

    Returns ({lif: spikes 0/1 [T, N, *shape]}, the Output's integers int64 [N, K]: see `plan.output_rule`), as
    numpy arrays for a numpy input and as torch tensors (on its device) for a torch input. The spikes
    are bool, or (torch) 0/1 in the float type they were computed in: `.bool()` if it matters."""
    if type(x_int).__module__.split(".")[0] == "torch":
        import torch

        precision = torch.get_float32_matmul_precision()
        torch.set_float32_matmul_precision("highest")  # full float32 products, whatever the caller chose
        try:
            with torch.no_grad(), torch.backends.nnpack.flags(enabled=False), \
                    torch.backends.cudnn.flags(enabled=False):
                return _run(_Torch(x_int.device), net, x_int)
        finally:
            torch.set_float32_matmul_precision(precision)
    return _run(_Numpy(), net, np.asarray(x_int))


class LoihiSimulator:
    """A graph's integer network, ready to run on float inputs as they enter the network."""

    def __init__(self, graph_or_net):
        self.net = graph_or_net if isinstance(graph_or_net, FixedNetwork) else fixed_network(graph_or_net)

    def quantize(self, x, xp=np):
        """Float inputs -> the integers Lava's fixed_pt is fed: round(x / input_scale)."""
        return quantize_input(x, self.net.plan.input_scale, xp)

    def run_float(self, x):
        """x: torch float [T, B, ...] -> ({lif: spikes 0/1 [T, B, ...]}, logits float32 [B, K] or None)."""
        import torch

        spikes, out = simulate(self.net, self.quantize(x.double(), torch))
        return spikes, output_values(self.net, out).float()


def output_values(net: FixedNetwork, out):
    """The Output's integers as the values they stand for: V / the readout's scale, or spike counts."""
    out = out.double() if hasattr(out, "double") else np.asarray(out, np.float64)
    return out if net.plan.output_rule == "count" else out / net.readout_scale
