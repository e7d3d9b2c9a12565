"""The float reference of any NIR graph: its plan (`deploy/graph/plan.py`) run step by step in float64,
with the arithmetic Lava's floating_pt computes, in the same order:

    a = sum of the edges' stages (weights times g on the last stage; an AvgPool2d's 1/(kh kw) in its own)
    u = u * (1 - du) + a
    v = v * (1 - dv) + u + bias;   spiking: s = v > theta, v[s] = 0

every sample from u = v = 0; a recurrent edge adds its stage on the previous step's spikes, a delayed
edge carries the values of `delay` steps before (zero before the sample starts). This is what
floating-point Lava is held to, spike for spike, for a graph tna did not train (a tna export is held
to the trained model itself, `deploy/graph/executor.py`). numpy only: both environments.

    spikes, out = simulate_float(plan, x)    # x [T, N, *input_shape] -> {population: bool [T, N, ...]},
                                             # the Output's values [N, K] (plan.output_rule)
"""

from __future__ import annotations

import numpy as np

from deploy.graph.plan import ONE, NetworkPlan, Op
from deploy.graph.read import conv2d_np


def _channel(a: np.ndarray, ndim: int) -> np.ndarray:
    return np.asarray(a, np.float64).reshape((-1,) + (1,) * (ndim - 1))


def _stage(op: Op, y: np.ndarray, gain: np.ndarray | None) -> np.ndarray:
    """One synaptic stage on y [M, *op.in_shape], with the weights Lava floating_pt is given."""
    if op.kind == "dense":
        w = op.weight if gain is None else op.weight * gain[:, None]
        return y.reshape(len(y), -1) @ w.T
    if op.kind == "scale":
        w = op.weight if gain is None else op.weight * gain
        return y * w.reshape((1, -1) + (1,) * (y.ndim - 2))
    if op.kind == "sumpool":
        c = op.in_shape[0]
        w = np.ones((c, 1) + tuple(op.kernel)) / op.divisor
        return conv2d_np(y, w, op.stride, op.padding, op.dilation, groups=c)
    w = op.weight if gain is None else op.weight * _channel(gain, 4)
    return conv2d_np(y, w, op.stride, op.padding, op.dilation, op.groups)


def _edge(pop, e, x: np.ndarray) -> np.ndarray:
    """The edge's stages on its source's activity x [T, N, ...] -> [T, N, *pop.shape]."""
    T, n = x.shape[:2]
    y = x.reshape((T * n,) + x.shape[2:])
    for i, op in enumerate(e.ops):
        y = _stage(op, y, pop.gain if i == len(e.ops) - 1 else None)
    y = y.reshape((T, n) + tuple(pop.shape))
    if e.delay:
        shifted = np.zeros_like(y)
        shifted[e.delay:] = y[:T - e.delay]
        y = shifted
    return y


def simulate_float(plan: NetworkPlan, x, ranges: dict | None = None) -> tuple[dict, np.ndarray]:
    """Run x [T, N, *input_shape] (float) through the plan. Returns ({spiking population: bool
    [T, N, *shape]}, the Output's values float64 [N, K]: the readout's last v, or v or spikes summed
    over the steps, as `plan.output_rule` says). `ranges`, if given, receives {population: (largest
    |u|, largest |v|)} per channel (the fixed-point mapping's calibration)."""
    x = np.asarray(x, np.float64)
    T, n = x.shape[:2]
    act = {plan.input_name: x, ONE: np.ones((T, n, 1))}
    spikes, out = {}, None
    for name, p in plan.populations.items():
        shape = (n,) + tuple(p.shape)
        a = None
        for e in p.edges:
            if not e.recurrent:
                y = _edge(p, e, act[e.source])
                a = y if a is None else a + y
        a = np.zeros((T,) + shape) if a is None else a
        rec = [e for e in p.edges if e.recurrent]
        u, v = np.zeros(shape), np.zeros(shape)
        bias = np.broadcast_to(p.bias, shape)
        theta = None if p.threshold is None else np.broadcast_to(p.threshold, shape)
        s = np.zeros(shape, bool)
        spk = np.zeros((T,) + shape, bool)
        vsum = np.zeros(shape)
        u_max, v_max = np.zeros(p.shape[0]), np.zeros(p.shape[0])
        for t in range(T):
            a_t = a[t]
            for e in rec:  # the previous step's spikes (none at t = 0)
                a_t = a_t + _stage(e.ops[0], s.astype(np.float64), p.gain).reshape(shape)
            u = u * (1 - p.syn_decay) + a_t
            v = v * (1 - p.decay) + u + bias
            if theta is not None:
                s = v > theta
                v = np.where(s, 0.0, v)
                spk[t] = s
            vsum += v
            if ranges is not None:
                u_max = np.maximum(u_max, np.abs(u).swapaxes(0, 1).reshape(p.shape[0], -1).max(axis=1))
                v_max = np.maximum(v_max, np.abs(v).swapaxes(0, 1).reshape(p.shape[0], -1).max(axis=1))
        if ranges is not None:
            ranges[name] = (u_max.reshape((-1,) + (1,) * (len(p.shape) - 1)),
                            v_max.reshape((-1,) + (1,) * (len(p.shape) - 1)))
        if p.kind == "lif":
            spikes[name] = spk
            act[name] = spk.astype(np.float64)
        if name == plan.output_source:
            rule = plan.output_rule
            val = spk.sum(axis=0).astype(np.float64) if rule == "count" else vsum if rule == "sum" else v
            out = val.reshape(n, -1)
    return spikes, out
