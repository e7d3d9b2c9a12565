"""The float reference of any NIR graph: its plan (`deploy/graph/plan.py`) run step by step in float64,
computing what Lava's floating_pt computes, operation for operation and in the same order:

    a = sum of the edges' stages, in edge order (weights times g on the last stage; an AvgPool2d's
        1/(kh kw) in its own stage)
    u = u * (1 - du) + a
    v = v * (1 - dv) + u + bias;   spiking: s = v > theta, v[s] = 0

every sample from u = v = 0; a recurrent edge adds its stage on the spikes of 1 + delay steps before,
a delayed feed-forward edge carries the values of `delay` steps before (zero before the sample starts).

Bit for bit, so that float Lava is held to 100%: each stage runs Lava's own algorithm on Lava's data
layout (W, H, C) — Conv: `lava.proc.conv.utils.conv_scipy` (the Lava environment has no torch),
one `scipy.signal.convolve2d` per output and input channel, summed over input channels in order;
Dense: `weights.dot(x)` for graded values, `weights[:, s].sum(axis=1)` for spikes, with the columns
in Lava's flatten order. A tna export is held to the trained model instead (`deploy/graph/executor.py`).
numpy and scipy only: both environments.

    spikes, out = simulate_float(plan, x)    # x [T, N, *input_shape] -> {population: bool [T, N, ...]},
                                             # the Output's values [N, K] (plan.output_rule)
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from deploy.graph.plan import ONE, NetworkPlan, Op


def _lava(a: np.ndarray) -> np.ndarray:
    """[M, C, H, W] -> Lava's [M, W, H, C] (1-D unchanged)."""
    return a.transpose(0, 3, 2, 1) if a.ndim == 4 else a


def _conv_lava(x: np.ndarray, w: np.ndarray, op: Op, groups: int) -> np.ndarray:
    """Lava's `conv_scipy` on frames x [M, W, H, C] with a torch-layout weight w [O, C/g, kh, kw]:
    Lava's kernel is w[:, :, ::-1, ::-1] as [O, kw, kh, C/g], dilated with zeros; -> [M, W', H', O]."""
    wl = w[:, :, ::-1, ::-1].transpose(0, 3, 2, 1)
    (pw, ph), (sw, sh), (dw, dh) = op.padding[::-1], op.stride[::-1], op.dilation[::-1]
    kw, kh = wl.shape[1:3]
    dil = np.zeros((wl.shape[0], dw * (kw - 1) + 1, dh * (kh - 1) + 1, wl.shape[3]))
    dil[:, ::dw, ::dh, :] = wl
    xp = np.pad(x, ((0, 0), (pw, pw), (ph, ph), (0, 0)))
    o, c = wl.shape[0], x.shape[3]
    k_grp, c_grp = o // groups, c // groups
    wo = (xp.shape[1] - dil.shape[1]) // sw + 1
    ho = (xp.shape[2] - dil.shape[2]) // sh + 1
    out = np.zeros((len(x), wo, ho, o))
    for m in range(len(x)):
        for g in range(groups):
            for k in range(k_grp):
                for ci in range(c_grp):
                    full = signal.convolve2d(xp[m, :, :, ci + g * c_grp], dil[k + g * k_grp, :, :, ci], mode="valid")
                    out[m, :, :, k + g * k_grp] += full[::sw, ::sh]
    return out


def _stage(op: Op, y: np.ndarray, gain: np.ndarray | None, graded: bool) -> np.ndarray:
    """One synaptic stage on y [M, *op.in_shape] (torch layout), with the weights Lava floating_pt is
    given and Lava's arithmetic; `graded`: the stage receives values (else spikes)."""
    m = len(y)
    if not graded:
        y = y.astype(bool)
    if op.kind == "dense":
        w = op.weight if gain is None else op.weight * gain[:, None]
        if len(op.in_shape) == 3:  # Lava flattens (W, H, C)
            c, h, wd = op.in_shape
            w = w.reshape(len(w), c, h, wd).transpose(0, 3, 2, 1).reshape(len(w), -1)
        x = _lava(y).reshape(m, -1)
        rows = [w.dot(xi) for xi in x] if graded else [w[:, xi].sum(axis=1) for xi in x]
        return np.stack(rows) if rows else np.zeros((0, len(w)))
    c = op.in_shape[0]
    one_d = len(op.in_shape) == 1
    x = y.reshape(m, 1, 1, c) if one_d else _lava(y)  # a 1-D stage runs on a (1, 1, F) reshape
    if op.kind == "scale":
        w = (op.weight if gain is None else op.weight * gain).reshape(c, 1, 1, 1)
        out = _conv_lava(x, w, op, groups=c)  # a 1x1 depthwise conv: stride 1, no padding
    elif op.kind == "sumpool":
        w = np.ones((c, 1) + tuple(op.kernel)) / op.divisor
        out = _conv_lava(x, w, op, groups=c)
    else:
        w = op.weight if gain is None else op.weight * gain.reshape(-1, 1, 1, 1)
        out = _conv_lava(x, w, op, op.groups)
    return out.reshape(m, -1) if one_d else out.transpose(0, 3, 2, 1)


def _edge(plan: NetworkPlan, pop, e, x: np.ndarray) -> np.ndarray:
    """A feed-forward edge's stages on its source's activity x [T, N, ...] -> [T, N, *pop.shape]."""
    T, n = x.shape[:2]
    y = x.reshape((T * n,) + x.shape[2:])
    graded = e.source == plan.input_name
    for i, op in enumerate(e.ops):
        y = _stage(op, y, pop.gain if i == len(e.ops) - 1 else None, graded)
        graded = True  # after any stage: values
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
        ff = {i: _edge(plan, p, e, act[e.source]) for i, e in enumerate(p.edges) if not e.recurrent}
        u, v = np.zeros(shape), np.zeros(shape)
        bias = np.broadcast_to(p.bias, shape)
        theta = None if p.threshold is None else np.broadcast_to(p.threshold, shape)
        spk = np.zeros((T,) + shape, bool)
        vsum = np.zeros(shape)
        u_max, v_max = np.zeros(p.shape[0]), np.zeros(p.shape[0])
        for t in range(T):
            a = None
            for i, e in enumerate(p.edges):  # summed in edge order, as Lava's InPort sums its ports
                if e.recurrent:  # the spikes of 1 + delay steps before (none before the sample)
                    past = t - 1 - e.delay
                    y = _stage(e.ops[0], spk[past] if past >= 0 else np.zeros(shape, bool), p.gain, False)
                    y = y.reshape(shape)
                else:
                    y = ff[i][t]
                a = y if a is None else a + y
            a = np.zeros(shape) if a is None else a
            u = u * (1 - p.syn_decay) + a
            v = v * (1 - p.decay) + u + bias
            if theta is not None:
                spk[t] = v > theta
                v = np.where(spk[t], 0.0, v)
            vsum += v
            if ranges is not None:
                u_max = np.maximum(u_max, np.abs(u).swapaxes(0, 1).reshape(p.shape[0], -1).max(axis=1))
                v_max = np.maximum(v_max, np.abs(v).swapaxes(0, 1).reshape(p.shape[0], -1).max(axis=1))
        if ranges is not None:
            ranges[name] = (u_max, v_max)
        if p.kind == "lif":
            spikes[name] = spk
            act[name] = spk.astype(np.float64)
        if name == plan.output_source:
            rule = plan.output_rule
            val = spk.sum(axis=0).astype(np.float64) if rule == "count" else vsum if rule == "sum" else v
            out = val.reshape(n, -1)
    return spikes, out
