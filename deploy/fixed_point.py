"""How a tna NIR graph becomes Loihi integers, and the fixed-point LIF step: the one definition.

Imports numpy only (and the dependency-free `tna.errors`), so the Lava environment (no torch) and
the training environment (torch) share it. The Lava mapper (`deploy/nir_lava.py`) builds its
`fixed_pt` network from `fixed_network(graph)`; the torch side builds its Loihi-exact emulator from
the same parameters and the same step functions (`lif_fixed_step`, `wrap_signed`), which are
written with operations that behave identically on numpy int64 arrays and torch int64 tensors.

The mapping (docs/deploy_mapping.md has the full table), per population P (a LIF or the readout
integrator) and output channel c; d = dt/tau (LIF) and gain g_c = d*r_c (LIF) or dt*r_c (readout):

    float model   v <- (1-d) v + g (sum_e W_e x_e + b)        spike v > theta, then v <- 0
    Loihi         U = A << 6                                  (du = 4095: no current carry-over)
                  V <- trunc(V (4096-dv) / 4096) + U + B      (dv = round(4096 d); readout dv = 0)
                  spike V > vth << 6, then V <- 0

    V = lam_c * v,  lam_c = 64 K / q_c,  q_c = g_c * sigma_p * m_pc   (the primary edge's unit)
    integer weights   w_int = R(lam_c g_c sigma_e W_e / 64)   (= K * codes on the primary edge)
    bias              B = round(lam_c g_c b) = bias_mant << bias_exp  (13-bit mantissa, exp 0..7)
    threshold         vth = round(lam_c theta / 64)           (17 bits)

sigma_e is the value of one integer unit of the edge's input (input_scale for the network input,
1 for spikes, divided by k*k after each sum-pooling stage), m_ec = max|W_e[c]| and the primary
edge of a channel is the one with the smallest unit sigma_e*m_ec (so the other edges of a residual
sum get integer multipliers >= K). K (one integer per population) is the largest value for which
the worst case stays inside Loihi's ranges: |A| <= 2**17-1 (u never wraps), sup|V| <= 64*(2**17-1)
(v never clips, and never passes the largest threshold by accident), vth <= 2**17-1, the bias
fits. Every synapse stage holds 8-bit weights times one shared power of two (Loihi's weight
mantissa and exponent): w = mantissa << exp, |mantissa| <= 255, and for Lava's Dense even and
<= 254 (Lava drops the lowest bit of mixed-sign weights); K itself is such a value, so the primary
edges stay exactly K * codes, and the other edges of a residual sum are rounded to their grid.
The readout shares one lam for all classes, so argmax(V) = argmax(v).

API for a Loihi-exact emulator (torch or numpy; `simulate_fixed` is the numpy reference):

    net = fixed_network(graph)                  # graph: nir.NIRGraph as read by nir.read
    x_int = quantize_input(x, net.plan.input_scale, xp)
    for name, p in net.populations.items():     # topological order; p: FixedPopulation
        a = sum over e in p.edges of: y = activity[e.source] (x_int[t] or the source's spikes)
            for op in e.ops: y = <op on int64, weights op.weight_int>;  y = wrap_signed(y) if op.wraps
              conv: conv2d(y, op.weight_int, op.stride, op.padding, op.dilation, op.groups)
              sumpool: depthwise all-ones conv, op.kernel / op.stride / op.padding
              scale: y * op.weight_int[c];  dense: y.flatten(1) @ op.weight_int.T
        u, v, s = lif_fixed_step(u, v, a, p.du, p.dv, p.bias, p.vth, xp)  # p.vth None: readout
    logits = v_readout / net.readout_scale
(no delays: Lava's one step per stage is aligned away; every sample starts from u = v = 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from tna.errors import TnaError

# ---- Loihi / Lava fixed_pt constants (lava-nc 0.10.0, proc/lif/models.py) -------------------------
DECAY_SHIFT = 12
DECAY_UNITY = 1 << DECAY_SHIFT          # 4096
DU_NO_CARRY = 4095                      # u = a_in << 6 every step (du = 4096 is NOT zero decay)
ACT_SHIFT = 6                           # a_in << 6
VTH_SHIFT = 6                           # v > vth << 6
UV_HALF = 1 << 23                       # u wraps, v clips to +-(2**23 - 1)
V_CLIP = UV_HALF - 1
VTH_MAX = (1 << 17) - 1                 # 17-bit unsigned threshold mantissa
A_MAX = (1 << 17) - 1                   # |a_in| <= A_MAX keeps a_in << 6 inside 24 bits: u never wraps
V_BOUND = VTH_MAX << VTH_SHIFT          # sup|V| <= V_BOUND: v never clips nor exceeds the largest vth
BIAS_MANT_MAX = (1 << 12) - 1           # 13-bit signed bias mantissa (Loihi), stored as int16 in Lava
BIAS_EXP_MAX = 7                        # 3-bit bias exponent
W_MANT_MAX = 255                        # Loihi synapse: 8-bit weight magnitude plus sign
DENSE_W_MANT_MAX = 254                  # Lava Dense, mixed sign: clip [-256, 255], lowest bit dropped -> even
W_EXP_MAX = 7                           # one weight exponent per synapse stage: w = mantissa << exp
K_CAP = 1 << 16                         # only reached when no range binds (e.g. an all-zero layer)
DEFAULT_INPUT_RANGE = (-255, 255)       # graded input integers, unless metadata says otherwise
SYNAPSES = ("loihi", "wide")            # loihi: 8-bit mantissa << exp per stage; wide: any integer in Conv
SUPPORTED = ("Input", "Output", "Conv2d", "Affine", "Linear", "Flatten", "AvgPool2d", "LIF", "I")


# ---- integer arithmetic shared with the torch emulator ---------------------------------------------
def _trunc_decay(x, keep, xp):
    """trunc(x * keep / 4096) toward zero, Lava's sign-magnitude shift."""
    p = x * keep
    return xp.sign(p) * (xp.abs(p) >> DECAY_SHIFT)


def lif_fixed_step(u, v, a_in, du, dv, bias, vth, xp=np):
    """One step of Lava's bit-accurate LIF (`PyLifModelBitAcc`), for int64 numpy arrays or tensors.

    u, v: state (int64); a_in: summed synaptic input (int64); du, dv: 12-bit decays (ints or
    arrays); bias: bias_mant << bias_exp (int64); vth: threshold mantissa (int64 array, or None for
    a neuron that never spikes, the readout). xp: the numpy module or the torch module.
    Returns (u, v, spikes) with spikes a bool array; v is already reset where it spiked.

        u = trunc(u (4096 - du - 1) / 4096) + (a_in << 6), wrapped to signed 24 bits
        v = trunc(v (4096 - dv) / 4096) + u + bias, clipped to +-(2**23 - 1)
        s = v > (vth << 6);  v[s] = 0
    """
    u = _trunc_decay(u, DECAY_UNITY - (du + 1), xp) + a_in * (1 << ACT_SHIFT)
    u = xp.where(u > UV_HALF, u - 2 * UV_HALF, xp.where(u <= -UV_HALF, u + 2 * UV_HALF, u))
    v = _trunc_decay(v, DECAY_UNITY - dv, xp) + u + bias
    v = xp.clip(v, -V_CLIP, V_CLIP)
    if vth is None:
        return u, v, v != v
    s = v > vth * (1 << VTH_SHIFT)
    return u, xp.where(s, xp.zeros_like(v), v), s


def wrap_signed(x, bits=24):
    """Lava Conv's fixed_pt output wrap (`signed_clamp`): two's-complement wrap to `bits` bits.

    Works for numpy arrays and torch tensors (both `%` are floor-modulo)."""
    base = 1 << bits
    return (x + base // 2) % base - base // 2


def dense_effective_weights(w: np.ndarray, num_weight_bits: int = 8) -> np.ndarray:
    """The weights a Lava fixed_pt Dense really uses (clip to 8 bits, then drop low bits).

    Mixed signs: clip [-256, 255] and floor to even (num_weight_bits 8); all >= 0: [0, 255];
    all <= 0: [-255, 0]. The mapping only emits even weights inside the range, which pass unchanged."""
    w = np.asarray(w).astype(np.int64)
    if w.size == 0:
        return w
    if w.min() >= 0:
        mode = "exc"
    elif w.max() <= 0:
        mode = "inh"
    else:
        mode = "mixed"
    x = -w if mode == "inh" else w.copy()
    x = np.clip(x, -256 if mode == "mixed" else 0, 255)
    k = 8 - num_weight_bits + (1 if mode == "mixed" else 0)
    x = (x >> k) << k
    return -x if mode == "inh" else x


def quantize_input(x, input_scale: float, xp=np):
    """Graded input integers: round(x / input_scale) (int64), as fed to Lava fixed_pt."""
    q = xp.round(x / input_scale)
    return q.astype(np.int64) if xp is np else q.long()


# ---- the plan: topology and float parameters (mode-independent) -----------------------------------
@dataclass
class Op:
    """One synaptic stage on an edge; each becomes one Lava Conv or Dense (one step of delay).

    kind: "conv" (nir.Conv2d), "dense" (nir.Affine, with any Flatten / AvgPool before it folded
    into its matrix), "sumpool" (an AvgPool2d feeding a conv or a neuron: a depthwise all-ones
    conv; its 1/(kh kw) is folded into the next stage) or "scale" (a depthwise 1x1 conv with one
    weight per channel, for edges without a weighted layer, e.g. an identity shortcut).
    Shapes are torch layout (C, H, W) or (F,). `weight` is the float linear map of the NIR graph
    (dense: [O, prod(in_shape)] in torch flatten order; scale: ones [C]); `weight_int` is filled by
    `fixed_network` (sumpool: None, all ones)."""

    kind: str
    nodes: tuple
    in_shape: tuple
    out_shape: tuple
    weight: np.ndarray | None = None
    kernel: tuple = (1, 1)
    stride: tuple = (1, 1)
    padding: tuple = (0, 0)
    dilation: tuple = (1, 1)
    groups: int = 1
    weight_int: np.ndarray | None = None
    weight_exp: int = 0  # weight_int = mantissa << weight_exp, |mantissa| <= 255 (Dense: even, <= 254)

    @property
    def weight_mant(self) -> np.ndarray:
        """The 8-bit synapse mantissas a Loihi core stores (exact: weight_int is on the 2**exp grid)."""
        return self.weight_int >> self.weight_exp

    @property
    def wraps(self) -> bool:
        """Realised as a Lava Conv, whose fixed_pt output wraps to 24 bits (Dense does not)."""
        return self.kind != "dense"


@dataclass
class Edge:
    """source (a population or the input node) -> ops -> target population."""

    source: str
    target: str
    ops: list
    bias: np.ndarray | None      # float bias of the weighted node, per output channel (or None)
    unit: float                  # sigma: value of one integer unit entering the last op
    in_range: tuple              # integer range of one value entering the last op


@dataclass
class Population:
    """A LIF node ("lif") or the integrator readout ("readout"); float parameters from NIR."""

    name: str
    kind: str
    shape: tuple
    decay: float                 # d = dt/tau (readout: 0)
    gain: np.ndarray             # per channel: d*r (LIF) or dt*r (readout)
    threshold: np.ndarray | None
    bias: np.ndarray             # g-free float bias, neuron shape: sum of the edges' biases
    edges: list
    latency: int = 0             # synaptic stages from the input (Lava steps of delay)


@dataclass
class NetworkPlan:
    input_name: str
    input_shape: tuple
    input_scale: float
    input_range: tuple           # integer range of the graded input (fixed mode)
    T: int
    dt: float
    encoding: str
    populations: dict            # name -> Population, in topological order
    readout: str | None          # the integrator feeding the Output node
    metadata: dict = field(default_factory=dict)
    synapses: str = "loihi"      # metadata "synapses": loihi (storable on Loihi) | wide (Lava only)

    @property
    def lif_names(self) -> list:
        return [n for n, p in self.populations.items() if p.kind == "lif"]

    @property
    def max_latency(self) -> int:
        return max((p.latency for p in self.populations.values()), default=0)


def _kind(node) -> str:
    return type(node).__name__


def _pair(v, what: str, name: str) -> tuple:
    a = np.atleast_1d(np.asarray(v)).astype(np.int64).ravel().tolist()
    if len(a) == 1:
        a = a * 2
    if len(a) != 2:
        raise TnaError(f"NIR node {name}: {what} {v!r} is not a pair of integers; export 2-D values")
    return tuple(int(x) for x in a)


def _meta_value(v):
    if isinstance(v, bytes):
        return v.decode("utf8")
    if isinstance(v, np.ndarray) and v.shape == ():
        v = v[()]
    if isinstance(v, np.generic):
        return v.item()
    return v


def _conv_len(n, k, s, p, d=1):
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def _uniform_per_channel(a: np.ndarray, shape: tuple, what: str, name: str) -> np.ndarray:
    """Per-channel values of a per-neuron array that must be constant inside each channel."""
    a = np.broadcast_to(np.asarray(a, dtype=np.float64), shape)
    flat = a.reshape(shape[0], -1) if len(shape) == 3 else a.reshape(-1, 1)
    if not np.all(flat == flat[:, :1]):
        raise TnaError(f"NIR node {name}: {what} must be equal within each channel; re-export with uniform values")
    return flat[:, 0].copy()


def _pool_fold(w: np.ndarray, in_shape: tuple, kernel, stride, padding) -> np.ndarray:
    """W [O, C*Hp*Wp] after an AvgPool2d -> the equivalent matrix on the pool's input [O, C*H*W]."""
    c, h, wd = in_shape
    kh, kw = kernel
    hp, wp = _conv_len(h, kh, stride[0], padding[0]), _conv_len(wd, kw, stride[1], padding[1])
    o = w.shape[0]
    w4 = w.reshape(o, c, hp, wp).astype(np.float64) / (kh * kw)  # count_include_pad: divisor kh*kw
    out = np.zeros((o, c, h, wd))
    for i in range(hp):
        for j in range(wp):
            for a in range(kh):
                y = i * stride[0] - padding[0] + a
                if not 0 <= y < h:
                    continue
                for b in range(kw):
                    x = j * stride[1] - padding[1] + b
                    if 0 <= x < wd:
                        out[:, :, y, x] += w4[:, :, i, j]
    return out.reshape(o, -1)


def topological_order(nodes, preds: dict, succs: dict) -> list:
    """Kahn's algorithm; a cycle (a recurrent connection) is a user error: tna maps feed-forward graphs."""
    indeg = {n: len(preds[n]) for n in nodes}
    order, ready = [], [n for n in nodes if indeg[n] == 0]
    while ready:
        n = ready.pop(0)
        order.append(n)
        for t in succs[n]:
            indeg[t] -= 1
            if indeg[t] == 0:
                ready.append(t)
    if len(order) != len(nodes):
        raise TnaError("the graph has a cycle (recurrent connections); tna maps feed-forward graphs only")
    return order


def plan_network(graph) -> NetworkPlan:
    """Parse a tna NIR graph (duck-typed: `.nodes`, `.edges`, `.metadata`; nir is not imported).

    Raises TnaError naming the node for anything this mapping does not support."""
    nodes = dict(graph.nodes)
    meta = {k: _meta_value(v) for k, v in dict(getattr(graph, "metadata", {}) or {}).items()}
    if meta.get("format") != "tna-nir":
        raise TnaError(f"the graph is not a tna NIR export (metadata format={meta.get('format')!r}, "
                       "expected 'tna-nir'); export it with deploy/export_nir.py")
    for key in ("dt", "T", "input_scale"):
        if key not in meta:
            raise TnaError(f"the graph's metadata has no '{key}'; export it again with deploy/export_nir.py")
    dt, T, input_scale = float(meta["dt"]), int(meta["T"]), float(meta["input_scale"])
    if not (dt > 0 and T >= 1 and input_scale > 0):
        raise TnaError(f"bad graph metadata dt={dt}, T={T}, input_scale={input_scale}; all must be positive")
    if str(meta.get("reset", "zero")) != "zero":
        raise TnaError(f"metadata reset={meta.get('reset')!r} is not supported; only reset to zero maps to Loihi")
    encoding = str(meta.get("encoding", "direct"))

    for name, node in nodes.items():
        if _kind(node) not in SUPPORTED:
            raise TnaError(f"NIR node {name}: {_kind(node)} is not supported on Lava by tna "
                           f"(supported: {', '.join(SUPPORTED)})")
    preds = {n: [] for n in nodes}
    succs = {n: [] for n in nodes}
    for s, t in graph.edges:
        s, t = _meta_value(s), _meta_value(t)
        if s not in nodes or t not in nodes:
            raise TnaError(f"NIR edge {s} -> {t} names a node that is not in the graph; the file is corrupt")
        preds[t].append(s)
        succs[s].append(t)
    inputs = [n for n, node in nodes.items() if _kind(node) == "Input"]
    outputs = [n for n, node in nodes.items() if _kind(node) == "Output"]
    if len(inputs) != 1 or len(outputs) != 1:
        raise TnaError(f"the graph has {len(inputs)} Input and {len(outputs)} Output nodes; tna maps exactly one of each")
    input_name = inputs[0]

    order = topological_order(nodes, preds, succs)  # shapes forward

    shapes: dict[str, tuple] = {}
    for n in order:
        node, k = nodes[n], _kind(nodes[n])
        if k == "Input":
            shapes[n] = tuple(int(x) for x in np.asarray(node.input_type["input"]).ravel())
            continue
        if not preds[n]:
            raise TnaError(f"NIR node {n}: no input edge; the graph is disconnected")
        ins = [shapes[p] for p in preds[n]]
        if k not in ("LIF", "I") and len(ins) != 1:
            raise TnaError(f"NIR node {n}: {k} with {len(ins)} input edges; only neurons may sum several inputs")
        if any(s != ins[0] for s in ins):
            raise TnaError(f"NIR node {n}: input shapes differ ({ins}); the graph is inconsistent")
        shp = ins[0]
        if k == "Conv2d":
            w = np.asarray(node.weight)
            if w.ndim != 4 or len(shp) != 3:
                raise TnaError(f"NIR node {n}: Conv2d needs a 4-D weight and a (C, H, W) input, got {w.shape} and {shp}")
            groups = int(np.asarray(node.groups).ravel()[0]) if node.groups is not None else 1
            if shp[0] != w.shape[1] * groups:
                raise TnaError(f"NIR node {n}: Conv2d expects {w.shape[1] * groups} input channels, gets {shp[0]}")
            kh, kw = w.shape[2:]
            st, dil = _pair(node.stride, "stride", n), _pair(node.dilation, "dilation", n)
            pad = node.padding
            if isinstance(pad, (str, bytes)):
                pad = _meta_value(pad)
                if pad == "valid":
                    pad = (0, 0)
                elif pad == "same" and st == (1, 1) and (dil[0] * (kh - 1)) % 2 == 0 and (dil[1] * (kw - 1)) % 2 == 0:
                    pad = (dil[0] * (kh - 1) // 2, dil[1] * (kw - 1) // 2)
                else:
                    raise TnaError(f"NIR node {n}: padding {pad!r} is not symmetric here; export explicit padding")
            pad = _pair(pad, "padding", n)
            ho, wo = _conv_len(shp[1], kh, st[0], pad[0], dil[0]), _conv_len(shp[2], kw, st[1], pad[1], dil[1])
            if ho < 1 or wo < 1:
                raise TnaError(f"NIR node {n}: Conv2d output would be empty for input {shp}")
            shapes[n] = (int(w.shape[0]), ho, wo)
        elif k in ("Affine", "Linear"):
            w = np.asarray(node.weight)
            if len(shp) != 1 or w.ndim != 2 or w.shape[1] != shp[0]:
                raise TnaError(f"NIR node {n}: {k} weight {w.shape} does not fit its input {shp} "
                               "(a (C, H, W) input needs a Flatten first)")
            shapes[n] = (int(w.shape[0]),)
        elif k == "Flatten":
            start, end = int(node.start_dim), int(node.end_dim)
            if start != 0 or end not in (-1, len(shp) - 1):
                raise TnaError(f"NIR node {n}: Flatten(start_dim={start}, end_dim={end}) is not supported; "
                               "only flattening a whole batch-free (C, H, W) sample")
            shapes[n] = (int(np.prod(shp)),)
        elif k == "AvgPool2d":
            if len(shp) != 3:
                raise TnaError(f"NIR node {n}: AvgPool2d needs a (C, H, W) input, got {shp}")
            ks, st = _pair(node.kernel_size, "kernel_size", n), _pair(node.stride, "stride", n)
            pd = _pair(node.padding, "padding", n)
            shapes[n] = (shp[0], _conv_len(shp[1], ks[0], st[0], pd[0]), _conv_len(shp[2], ks[1], st[1], pd[1]))
        elif k in ("LIF", "I"):
            own = tuple(np.asarray(node.r).shape)
            if own != shp:
                raise TnaError(f"NIR node {n}: {k} has shape {own} but receives {shp}")
            shapes[n] = shp
        elif k == "Output":
            shapes[n] = shp

    # populations and the edges into them
    pop_names = [n for n in order if _kind(nodes[n]) in ("LIF", "I")]
    populations: dict[str, Population] = {}
    for n in pop_names:
        node, k = nodes[n], _kind(nodes[n])
        shape = shapes[n]
        if len(shape) not in (1, 3):
            raise TnaError(f"NIR node {n}: neuron shape {shape} is not supported; use (C, H, W) or (F,)")
        r = np.asarray(node.r, dtype=np.float64)
        if k == "LIF":
            tau = np.asarray(node.tau, dtype=np.float64)
            for what, val in (("v_leak", node.v_leak), ("v_reset", node.v_reset)):
                if val is not None and np.any(np.asarray(val) != 0):
                    raise TnaError(f"NIR node {n}: LIF with {what} != 0 is not supported on Lava by tna "
                                   "(Lava's LIF leaks to 0 and resets to 0)")
            if np.any(tau <= 0) or np.ptp(tau) > 1e-12 * abs(float(tau.flat[0])):
                raise TnaError(f"NIR node {n}: LIF tau must be one positive value per layer")
            decay = dt / float(tau.flat[0])
            if not 0 < decay <= 1:
                raise TnaError(f"NIR node {n}: dt/tau = {decay:g} is outside (0, 1]; forward Euler needs dt <= tau")
            gain = decay * _uniform_per_channel(r, shape, "r", n)
            theta = np.broadcast_to(np.asarray(node.v_threshold, dtype=np.float64), shape).copy()
            pop = Population(n, "lif", shape, decay, gain, theta, np.zeros(shape), [])
        else:
            gain = dt * _uniform_per_channel(r, shape, "r", n)
            pop = Population(n, "readout", shape, 0.0, gain, None, np.zeros(shape), [])
        for p in preds[n]:
            pop.edges.append(_edge(p, n, nodes, preds, shapes, input_name, input_scale, meta, encoding))
        for e in pop.edges:
            if e.bias is not None:
                b = e.bias.reshape((-1,) + (1,) * (len(shape) - 1))
                pop.bias = pop.bias + np.broadcast_to(b, shape)
        populations[n] = pop

    # latencies: every op is one Lava synapse stage (one step)
    for pop in populations.values():
        lat = 0
        for e in pop.edges:
            src = 0 if e.source == input_name else populations[e.source].latency
            lat = max(lat, src + len(e.ops))
        pop.latency = lat

    out_src = preds[outputs[0]]
    readout = None
    if len(out_src) != 1 or out_src[0] not in populations:
        raise TnaError(f"the Output node must be fed by one integrator (nir.I) or LIF node, not {out_src}")
    if populations[out_src[0]].kind == "readout":
        readout = out_src[0]
    if "input_range" in meta:
        lo, hi = (float(x) for x in np.asarray(meta["input_range"]).ravel()[:2])
        in_range = (math.floor(lo / input_scale + 1e-9), math.ceil(hi / input_scale - 1e-9))
    elif encoding == "rate":
        in_range = (0, max(1, round(1 / input_scale)))
    else:
        in_range = DEFAULT_INPUT_RANGE
    for pop in populations.values():  # the input's range is known only now
        for e in pop.edges:
            if e.source == input_name:
                area = int(np.prod([op.kernel[0] * op.kernel[1] for op in e.ops if op.kind == "sumpool"] or [1]))
                e.in_range = (in_range[0] * area, in_range[1] * area)
    synapses = str(meta.get("synapses", "loihi"))
    if synapses not in SYNAPSES:
        raise TnaError(f"metadata synapses={synapses!r} is not one of {', '.join(SYNAPSES)}; "
                       "export the graph again with deploy/export_nir.py")
    return NetworkPlan(input_name, shapes[input_name], input_scale, in_range, T, dt, encoding,
                       populations, readout, meta, synapses)


def _edge(first, target, nodes, preds, shapes, input_name, input_scale, meta, encoding) -> Edge:
    """Walk back from `target` through pooling/flatten/one weighted node to a population or the input."""
    path = []
    n = first
    while _kind(nodes[n]) not in ("LIF", "I", "Input"):
        path.append(n)
        if len(preds[n]) != 1:
            raise TnaError(f"NIR node {n}: {_kind(nodes[n])} with {len(preds[n])} inputs is not supported")
        n = preds[n][0]
    source = n
    path.reverse()
    weighted = [p for p in path if _kind(nodes[p]) in ("Conv2d", "Affine", "Linear")]
    if len(weighted) > 1:
        raise TnaError(f"NIR nodes {weighted[0]} -> {weighted[1]}: two synaptic layers in a row into {target}; "
                       "put a LIF between them")
    if weighted and path[-1] != weighted[0]:
        raise TnaError(f"NIR node {path[-1]}: {_kind(nodes[path[-1]])} between synaptic layer {weighted[0]} and "
                       f"neuron {target} is not supported; pool before the synaptic layer")
    unit = input_scale if source == input_name else 1.0
    in_range = (0, 1)  # spikes; the input's range is filled in by plan_network
    ops: list[Op] = []
    pending = []  # AvgPools waiting to be folded into a following Affine
    shape = shapes[source]
    bias = None
    for p in path:
        node, k = nodes[p], _kind(nodes[p])
        out = shapes[p]
        if k == "AvgPool2d":
            ks, st = _pair(node.kernel_size, "kernel_size", p), _pair(node.stride, "stride", p)
            pd = _pair(node.padding, "padding", p)
            pending.append((p, shape, ks, st, pd, out))
        elif k == "Flatten":
            pass
        elif k == "Conv2d":
            ops += _pool_ops(pending)
            unit /= math.prod(q[2][0] * q[2][1] for q in pending) if pending else 1
            in_range = _scaled_range(in_range, pending)
            pending = []
            w = np.asarray(node.weight, dtype=np.float64)
            pad = _conv_padding(node, p, w)
            groups = int(np.asarray(node.groups).ravel()[0]) if node.groups is not None else 1
            ops.append(Op("conv", (p,), shapes[preds[p][0]], out, w, kernel=tuple(w.shape[2:]),
                          stride=_pair(node.stride, "stride", p), padding=pad,
                          dilation=_pair(node.dilation, "dilation", p), groups=groups))
            bias = _bias(node, w.shape[0])
        elif k in ("Affine", "Linear"):
            w = np.asarray(node.weight, dtype=np.float64)
            names = [q[0] for q in pending]
            for q in reversed(pending):  # fold pools (last first) into the matrix
                _, pin, ks, st, pd, _ = q
                w = _pool_fold(w, pin, ks, st, pd)
            pending = []
            # the matrix acts on the source's activity itself (pools folded, Flatten is torch C-order)
            ops.append(Op("dense", tuple(names) + (p,), shapes[source], out, w))
            bias = _bias(node, w.shape[0]) if k == "Affine" else None
        shape = out
    if not weighted:
        ops += _pool_ops(pending)
        unit /= math.prod(q[2][0] * q[2][1] for q in pending) if pending else 1
        in_range = _scaled_range(in_range, pending)
        if len(shape) != len(shapes[target]):
            raise TnaError(f"NIR edge {source} -> {target}: a Flatten without a synaptic layer is not supported")
        c = shape[0]
        ops.append(Op("scale", (), shape, shape, np.ones(c)))
    return Edge(source, target, ops, bias, unit, in_range)


def _pool_ops(pending) -> list:
    ops = []
    for p, pin, ks, st, pd, out in pending:
        c = pin[0]
        ops.append(Op("sumpool", (p,), pin, out, None, kernel=ks, stride=st, padding=pd, groups=c))
    return ops


def _scaled_range(rng, pending):
    area = math.prod(q[2][0] * q[2][1] for q in pending) if pending else 1
    return (rng[0] * area, rng[1] * area)


def _conv_padding(node, name, w):
    pad = node.padding
    if isinstance(pad, (str, bytes)):
        pad = _meta_value(pad)
        kh, kw = w.shape[2:]
        dil = _pair(node.dilation, "dilation", name)
        pad = (0, 0) if pad == "valid" else (dil[0] * (kh - 1) // 2, dil[1] * (kw - 1) // 2)
    return _pair(pad, "padding", name)


def _bias(node, n_out):
    b = getattr(node, "bias", None)
    if b is None:
        return None
    b = np.asarray(b, dtype=np.float64).ravel()
    if b.size == 1 and n_out != 1:
        b = np.full(n_out, float(b[0]))
    return b if np.any(b != 0) else None


# ---- the integer mapping ------------------------------------------------------------------------------
@dataclass
class FixedPopulation:
    """Exact Loihi parameters of one population (shape in torch layout, arrays int64)."""

    name: str
    kind: str                    # "lif" | "readout"
    shape: tuple
    du: int                      # 4095
    dv: int                      # round(4096 d), readout 0
    vth: np.ndarray | None       # threshold mantissa (spike when V > vth << 6); readout None
    bias_mant: np.ndarray
    bias_exp: np.ndarray
    bias: np.ndarray             # bias_mant << bias_exp (added to V each step, not shifted)
    scale: np.ndarray            # lam per neuron: V = lam * v  (readout: one value; logits = V / lam)
    K: int                       # the primary edges' integer weights are K * codes (K = mantissa << exp)
    edges: list                  # incoming Edges, ops with weight_int
    latency: int
    a_bound: np.ndarray          # worst-case |a_in| per channel
    v_bound: int                 # worst-case sup|V| (<= V_BOUND)
    silent: np.ndarray | None    # neurons that can never reach threshold (vth = VTH_MAX)
    binding: list = field(default_factory=list)  # the ranges the next K on the synapse grid would break


@dataclass
class FixedNetwork:
    plan: NetworkPlan
    populations: dict            # name -> FixedPopulation, topological order
    readout_scale: float | None  # logits = V_readout / readout_scale

    @property
    def edges(self) -> list:
        return [e for p in self.populations.values() for e in p.edges]


def _channel_view(a, shape):
    """Per-channel vector -> broadcastable against the neuron shape."""
    return np.asarray(a).reshape((-1,) + (1,) * (len(shape) - 1))


def _op_channel_max(op: Op) -> np.ndarray:
    w = np.abs(op.weight)
    return w.reshape(w.shape[0], -1).max(axis=1)


def _is_ternary(op: Op) -> np.ndarray:
    """Per output channel: all non-zero weights share one magnitude (codes = sign(w) exactly)."""
    w = np.abs(op.weight).reshape(op.weight.shape[0], -1)
    m = w.max(axis=1, keepdims=True)
    nz = w > 0
    return np.all(~nz | (np.abs(w - m) <= 1e-6 * m), axis=1)


def _mant_max(dense: bool) -> int:
    return DENSE_W_MANT_MAX if dense else W_MANT_MAX


def _grid_exp(vmax: float, dense: bool, wide: bool = False) -> int:
    """The smallest weight exponent whose grid holds values up to vmax in an 8-bit mantissa
    (wide synapses: 0 for Conv stages, which Lava accepts at any size; Dense always needs it)."""
    if wide and not dense:
        return 0
    unit, mmax, exp = (2 if dense else 1), _mant_max(dense), 0
    while exp < W_EXP_MAX and np.round(vmax / (unit << exp)) * unit > mmax:
        exp += 1
    return exp


def _int_weights(op: Op, mult: np.ndarray, wide: bool = False):
    """Integer weights of a final op and their shared exponent: w = R(mult_c * W[c] / m_c) on the grid
    2**exp (Dense: 2**(exp+1), even mantissas), exp the smallest that fits the mantissa in 8 bits.

    Ternary channels become exactly sign(W) * mult_c when mult_c is on the grid (the primary edge:
    K * codes). Returns (w_int, exp, ok); ok is False when even exp = W_EXP_MAX is not enough."""
    w = op.weight.reshape(op.weight.shape[0], -1)
    m = np.abs(w).max(axis=1)
    safe = np.where(m > 0, m, 1.0)
    ter = _is_ternary(op)
    vals = np.where(ter[:, None], np.sign(w), w / safe[:, None]) * np.asarray(mult, dtype=np.float64)[:, None]
    dense = op.kind == "dense"
    mmax = _mant_max(dense)
    exp = _grid_exp(float(np.abs(vals).max(initial=0.0)), dense, wide)
    grid = (2 if dense else 1) << exp
    out = (grid * np.round(vals / grid)).reshape(op.weight.shape).astype(np.int64)
    ok = (wide and not dense) or int(np.abs(out).max(initial=0)) <= mmax << exp
    return out, exp, ok


def _contrib_bounds(op: Op, w_int: np.ndarray, lo: int, hi: int):
    """Per output channel: max and min of sum_j w_j x_j over inputs x_j in [lo, hi] (full fan-in)."""
    w = w_int.reshape(w_int.shape[0], -1)
    hi_c = np.maximum(w * hi, w * lo).sum(axis=1)
    lo_c = np.minimum(w * hi, w * lo).sum(axis=1)
    return hi_c, lo_c


def _bias_split(B: np.ndarray):
    """B (float) -> (mant, exp, mant << exp) with |mant| <= 4095, exp in 0..7, exp minimal."""
    B = np.round(B)
    exp = np.zeros(B.shape, dtype=np.int64)
    mant = B.copy()
    for e in range(BIAS_EXP_MAX + 1):
        need = np.abs(np.round(B / (1 << e))) > BIAS_MANT_MAX
        exp = np.where(need, e + 1, exp)
    exp = np.minimum(exp, BIAS_EXP_MAX)
    mant = np.round(B / (1 << exp)).astype(np.int64)
    ok = np.abs(mant) <= BIAS_MANT_MAX
    return mant, exp, mant << exp, ok


def _fixed_population(pop: Population, plan: NetworkPlan, ref_mode: str = "min") -> FixedPopulation:
    shape = pop.shape
    C = shape[0]
    edges = pop.edges
    finals = [e.ops[-1] for e in edges]
    # per edge and channel: the float unit q_ec = gain_c * sigma_e * m_ec
    units = []
    for e, op in zip(edges, finals):
        m = _op_channel_max(op)
        units.append(pop.gain * e.unit * m)
    units = np.stack(units)  # [E, C]
    pos = np.where(units > 0, units, np.inf)
    q = pos.min(axis=0)  # primary unit per channel
    fallback = np.median(q[np.isfinite(q)]) if np.any(np.isfinite(q)) else float(np.max(pop.gain)) or 1.0
    q = np.where(np.isfinite(q), q, fallback)
    if pop.kind == "readout":
        qref = np.full(C, q.min() if ref_mode == "min" else q.max())
    else:
        qref = q
    even = any(op.kind == "dense" for op in finals)
    wide = plan.synapses == "wide"
    dv = 0 if pop.kind == "readout" else min(int(round(DECAY_UNITY * pop.decay)), DECAY_UNITY - 1)
    if pop.kind == "lif" and dv == 0:
        raise TnaError(f"NIR node {pop.name}: decay dt/tau = {pop.decay:g} rounds to dv = 0 in 12 bits; "
                       "Loihi cannot represent such a slow leak")
    if pop.kind == "lif" and np.any(pop.threshold < 0):
        raise TnaError(f"NIR node {pop.name}: negative v_threshold is not supported in fixed point")

    def ints(K: int):
        lam = 64.0 * K / qref  # per channel
        ws, a_hi, a_lo, bad = [], np.zeros(C), np.zeros(C), []
        for e, op, u in zip(edges, finals, units):
            mult = K * u / qref  # = lam * gain * sigma * m / 64
            w, wexp, ok = _int_weights(op, mult, wide)
            ws.append((w, wexp))
            h, lo_ = _contrib_bounds(op, w, *e.in_range)
            a_hi += h
            a_lo += lo_
            if not ok:
                bad.append(f"{op.kind} weights up to {int(np.abs(w).max())} need a weight exponent > {W_EXP_MAX}")
        lam_n = np.broadcast_to(_channel_view(lam, shape), shape)
        g_n = np.broadcast_to(_channel_view(pop.gain, shape), shape)
        mant, exp, B, ok = _bias_split(lam_n * g_n * pop.bias)
        if not np.all(ok):
            bad.append("bias beyond 13-bit mantissa << 7")
        a = np.maximum(a_hi, -a_lo)
        if a.max(initial=0) > A_MAX:
            bad.append(f"|a_in| up to {int(a.max())} > {A_MAX}")
        a_n = np.broadcast_to(_channel_view(a, shape), shape)
        per_step = 64 * a_n + np.abs(B)
        if pop.kind == "lif":
            vb = np.ceil(per_step * DECAY_UNITY / dv)
        else:
            vb = per_step * plan.T
        v_bound = int(vb.max(initial=0))
        if v_bound > V_BOUND:
            bad.append(f"sup|V| up to {v_bound} > {V_BOUND}")
        vth, silent = None, None
        if pop.kind == "lif":
            vth_f = lam_n * pop.threshold / 64.0
            a_hi_n = np.broadcast_to(_channel_view(a_hi, shape), shape)
            vmax = (64 * a_hi_n + np.maximum(B, 0)) * DECAY_UNITY / dv  # sup of V from above
            silent = 64 * vth_f >= vmax * (1 + 1e-9)
            vth = np.where(silent, VTH_MAX, np.round(vth_f)).astype(np.int64)
            if vth.max(initial=0) > VTH_MAX:
                bad.append(f"vth up to {int(vth.max())} > {VTH_MAX}")
        return dict(ws=ws, lam=lam, lam_n=lam_n, mant=mant, exp=exp, B=B, a=a, v_bound=v_bound,
                    vth=vth, silent=silent, bad=bad)

    # estimate the largest K from a large probe (everything scales with K; rounding is negligible
    # there), then step down past rounding effects and up while the next value still fits; K stays
    # on the synapse grid (mantissa << exp) so the primary edges' weights are exactly K * codes
    kp = 1 << 12
    probe = ints(kp)
    limits = [K_CAP]
    if probe["a"].max(initial=0) > 0:
        limits.append(A_MAX * kp / probe["a"].max())
    if probe["v_bound"] > 0:
        limits.append(V_BOUND * kp / probe["v_bound"])
    if probe["vth"] is not None:
        live = probe["vth"][~probe["silent"]]
        if live.size and live.max() > 0:
            limits.append(VTH_MAX * kp / live.max())
    for op, (w, _) in zip(finals, probe["ws"]):
        wmax = np.abs(w).max() if w.size else 0
        if wmax > 0 and (op.kind == "dense" or not wide):
            limits.append((_mant_max(op.kind == "dense") << W_EXP_MAX) * kp / wmax)
    # an edge whose channels include a primary one has weights up to K * ratio; K must be on its grid
    ratios = [(op.kind == "dense", float(np.max(u / qref))) for op, u in zip(finals, units)
              if np.any((u > 0) & np.isclose(u, qref, rtol=1e-12, atol=0.0))]

    def grid(K: int) -> int:
        return max([(2 if d else 1) << _grid_exp(K * r, d, wide) for d, r in ratios] or [2 if even else 1])

    def snap(K: int) -> int:  # the largest value <= K on every primary edge's grid
        while K % grid(K):
            K -= K % grid(K)
        return K

    smallest = grid(1)
    K = max(snap(max(int(math.floor(min(limits))), smallest)), smallest)
    res = ints(K)
    while res["bad"] and K > smallest:
        K = max(snap(K - 1), smallest)
        res = ints(K)
    binding = []
    if not res["bad"]:
        for _ in range(8):
            up = K + grid(K)
            while snap(up) <= K:
                up += grid(K)
            up = snap(up)
            nxt = ints(up)
            if nxt["bad"] or up > K_CAP:
                binding = nxt["bad"] or [f"K cap {K_CAP}"]
                break
            K, res = up, nxt
    if res["bad"]:
        if pop.kind == "readout" and ref_mode == "min":
            return _fixed_population(pop, plan, ref_mode="max")
        raise TnaError(f"NIR node {pop.name}: cannot be represented in Loihi fixed point even with the smallest "
                       f"weights ({'; '.join(res['bad'])}); reduce its fan-in or the weight spread")
    fixed_edges = []
    for e, (w, wexp) in zip(edges, res["ws"]):
        ops = [replace(op) for op in e.ops]
        for op in ops[:-1]:
            if op.kind == "sumpool":
                op.weight_int = None
        ops[-1].weight_int, ops[-1].weight_exp = w, wexp
        mant = ops[-1].weight_mant
        assert np.array_equal(mant << wexp, w), "internal: weights off the synapse grid"
        if ops[-1].kind == "dense":
            assert np.array_equal(dense_effective_weights(mant), mant), "internal: Lava would alter Dense weights"
        fixed_edges.append(replace(e, ops=ops))
    scale = np.broadcast_to(_channel_view(res["lam"], shape), shape).astype(np.float64).copy()
    return FixedPopulation(pop.name, pop.kind, shape, DU_NO_CARRY, dv, res["vth"], res["mant"], res["exp"],
                           res["B"].astype(np.int64), scale, K, fixed_edges, pop.latency,
                           res["a"].astype(np.int64), res["v_bound"], res["silent"], binding)


def fixed_network(graph_or_plan) -> FixedNetwork:
    """The exact integer parameters of every population and edge (a pure function of the graph)."""
    plan = graph_or_plan if isinstance(graph_or_plan, NetworkPlan) else plan_network(graph_or_plan)
    pops = {n: _fixed_population(p, plan) for n, p in plan.populations.items()}
    rs = float(pops[plan.readout].scale.flat[0]) if plan.readout else None
    return FixedNetwork(plan, pops, rs)


# ---- a numpy reference of the integer network (tests, and the model for the torch emulator) ---------
def conv2d_np(x, w, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
    """torch.nn.functional.conv2d semantics (cross-correlation) in numpy; x [N, C, H, W].

    Exact for int64 inputs; float64 for floats."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    ho = _conv_len(h, kh, stride[0], padding[0], dilation[0])
    wo = _conv_len(wd, kw, stride[1], padding[1], dilation[1])
    xp_ = np.pad(x, ((0, 0), (0, 0), (padding[0], padding[0]), (padding[1], padding[1])))
    og = o // groups
    out = np.zeros((n, o, ho, wo), dtype=np.result_type(x, w))
    for g in range(groups):
        xs = xp_[:, g * cg:(g + 1) * cg]
        ws = w[g * og:(g + 1) * og]
        for a in range(kh):
            for b in range(kw):
                y0, x0 = a * dilation[0], b * dilation[1]
                patch = xs[:, :, y0:y0 + stride[0] * (ho - 1) + 1:stride[0], x0:x0 + stride[1] * (wo - 1) + 1:stride[1]]
                out[:, g * og:(g + 1) * og] += np.einsum("nchw,oc->nohw", patch, ws[:, :, a, b])
    return out


def apply_op_int(op: Op, x: np.ndarray) -> np.ndarray:
    """One fixed-point synaptic stage on int64 activity x [N, *in_shape] (Lava's arithmetic)."""
    n = x.shape[0]
    if op.kind == "dense":
        return x.reshape(n, -1) @ op.weight_int.T
    if op.kind == "sumpool":
        c = op.in_shape[0]
        ones = np.ones((c, 1) + tuple(op.kernel), dtype=np.int64)
        y = conv2d_np(x, ones, op.stride, op.padding, (1, 1), c)
    elif op.kind == "scale":
        y = x * op.weight_int.reshape((1, -1) + (1,) * (x.ndim - 2))
    else:
        y = conv2d_np(x, op.weight_int, op.stride, op.padding, op.dilation, op.groups)
    return wrap_signed(y, 24)


def simulate_fixed(net: FixedNetwork, x_int: np.ndarray):
    """Run integer inputs x_int [N, T, *input_shape] through the integer network (numpy, no delays:
    Lava's one-step-per-stage delays are aligned away). Returns ({lif: spikes uint8 [N, T, *shape]},
    readout V [N, K] int64 after T steps, or None)."""
    plan = net.plan
    n, T = x_int.shape[:2]
    state = {k: (np.zeros((n,) + p.shape, np.int64), np.zeros((n,) + p.shape, np.int64))
             for k, p in net.populations.items()}
    spikes = {k: np.zeros((n, T) + p.shape, np.uint8) for k, p in net.populations.items() if p.kind == "lif"}
    act = {}
    for t in range(T):
        act[plan.input_name] = x_int[:, t].astype(np.int64)
        for name, p in net.populations.items():
            a = np.zeros((n,) + p.shape, np.int64)
            for e in p.edges:
                y = act[e.source]
                for op in e.ops:
                    y = apply_op_int(op, y)
                a = a + y.reshape(a.shape)
            u, v = state[name]
            u, v, s = lif_fixed_step(u, v, a, p.du, p.dv, p.bias, p.vth, np)
            state[name] = (u, v)
            act[name] = s.astype(np.int64)
            if p.kind == "lif":
                spikes[name][:, t] = s
    v_out = state[plan.readout][1].reshape(n, -1).copy() if plan.readout else None
    return spikes, v_out
