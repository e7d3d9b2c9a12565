"""Loihi's integers: the fixed-point constants, the LIF step, and the mapping of a tna network to them.

Imports numpy only (and tna's dependency-free modules), so the Lava environment (no torch) and the
training environment share it. The Lava network (`deploy/lavanet/network.py`) builds its `fixed_pt`
processes from `fixed_network(graph)`; the one integer simulator (`deploy/loihi/simulate.py`) runs
the same parameters with the same step (`lif_fixed_step`, `wrap_signed`: written with operations
that behave identically on numpy int64 arrays and torch int64 tensors).

The mapping (docs/deploy_mapping.md has the full table), per population P (a LIF or the readout
integrator) of the plan (`deploy/graph/plan.py`) and output channel c; d = dt/tau (LIF) and gain
g_c = d*r_c (LIF) or dt*r_c (readout):

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
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace

import numpy as np

from deploy.graph.plan import ONE, NetworkPlan, Op, Population, plan_network
from deploy.graph.read import ternary_channels
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


# ---- the integer arithmetic, for numpy arrays and torch tensors alike -----------------------------------------------
def _trunc_decay(x, keep, xp):
    """trunc(x * keep / 4096) toward zero, Lava's sign-magnitude shift (keep = 0: exactly 0)."""
    if isinstance(keep, int) and keep == 0:  # du = 4095, the mapping's setting: no carry-over
        return 0
    p = x * keep
    if xp is np:
        return xp.sign(p) * (xp.abs(p) >> DECAY_SHIFT)
    return xp.div(p, DECAY_UNITY, rounding_mode="trunc")  # torch: the same integer, in one operation


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


def _absmax(x) -> int:
    if isinstance(x, np.ndarray):
        return int(np.abs(x).max()) if x.size else 0
    if not x.numel():
        return 0
    lo, hi = x.aminmax()  # one pass, no temporary
    return int(max(-lo, hi))


def _odd_part(k: int) -> int:
    while k and k % 2 == 0:
        k //= 2
    return k


def lif_fixed_run(a, du, dv, bias, vth, xp=np, v_sum: bool = False):
    """T steps of `lif_fixed_step` from u = v = 0 over a whole input sequence a [T, ...] (integers,
    in an integer or a floating type): returns (the spikes of every step [T, ...] as 0/1 values, and
    V after the last step as int64; with `v_sum`, V summed over the T steps instead).

    This is `lif_fixed_step`, T times, without the operations that cannot change anything: when
    du = 4095 (u = a << 6, the mapping's setting), |a << 6| < 2**23 (u never wraps) and the largest
    |V| the inputs can build stays inside the clip (v never clips), each step is

        V = trunc(V (4096 - dv) / 4096) + (a << 6) + bias;  s = V > vth << 6;  V = V - V s

    computed in place in floating point, where these integers are exact: float32 when every value
    and product stays below 2**24, float64 (below 2**53) otherwise; trunc is the conversion to an
    integer type (toward zero). The spikes are then 0/1 in that float type, else bool. Any other
    case runs `lif_fixed_step` itself on int64."""
    T = len(a)
    constant = T > 1 and (a.strides[0] if xp is np else a.stride(0)) == 0  # the same input at every step
    first = a[:1] if constant else a
    amax, bmax = _absmax(first), _absmax(bias)
    keep = DECAY_UNITY - int(dv)
    vb, fits = 0.0, int(du) == DU_NO_CARRY and (amax << ACT_SHIFT) < UV_HALF
    for _ in range(T if fits else 0):  # an upper bound of |V| at every step (a reset only lowers it)
        vb = vb * keep / DECAY_UNITY + (amax << ACT_SHIFT) + bmax
        fits = fits and vb <= V_CLIP
    if not fits:
        a = a.astype(np.int64) if xp is np else a.long()
        bias = bias.astype(np.int64) if xp is np else bias.long()
        u = v = total = a[0] * 0
        spikes = []
        for t in range(T):
            u, v, s = lif_fixed_step(u, v, a[t], du, dv, bias, vth, xp)
            spikes.append(s)
            total = total + v
        return xp.stack(spikes), (total if v_sum else v)
    exact32 = vb * _odd_part(keep) < 2 ** 24 and (amax << ACT_SHIFT) + bmax < 2 ** 24
    factor = keep / DECAY_UNITY  # exact in binary: keep has at most 12 bits
    if xp is np:
        dtype, itype = (np.float32, np.int32) if exact32 else (np.float64, np.int64)
        drive = first.astype(dtype) * (1 << ACT_SHIFT) + bias.astype(dtype)  # u + bias of every step
        drive = drive[[0] * T] if constant else drive
        limit = None if vth is None else (np.asarray(vth) * (1 << VTH_SHIFT)).astype(dtype)
        v = np.zeros(drive.shape[1:], dtype)
        total = np.zeros(drive.shape[1:], np.int64) if v_sum else None
        spikes = np.zeros(drive.shape, bool)
        for t in range(T):
            if keep != DECAY_UNITY:
                v = (v * dtype(factor)).astype(itype).astype(dtype)
            v += drive[t]
            if limit is not None:
                spikes[t] = v > limit
                v[spikes[t]] = 0
            if v_sum:
                total += v.astype(np.int64)
        return spikes, (total if v_sum else v.astype(np.int64))
    dtype, itype = (xp.float32, xp.int32) if exact32 else (xp.float64, xp.int64)
    drive = first.to(dtype).mul(1 << ACT_SHIFT).add_(bias.to(dtype))
    drive = drive.expand((T,) + tuple(drive.shape[1:])) if constant else drive
    limit = None if vth is None else (vth * (1 << VTH_SHIFT)).to(dtype)
    v = xp.zeros(drive.shape[1:], dtype=dtype, device=drive.device)
    whole = xp.empty(v.shape, dtype=itype, device=v.device)  # trunc: through an integer type, in place
    spikes = (xp.empty if limit is not None else xp.zeros)(drive.shape, dtype=dtype, device=drive.device)
    total = xp.zeros(v.shape, dtype=xp.int64, device=v.device) if v_sum else None
    for t in range(T):
        if keep != DECAY_UNITY:
            v.copy_(whole.copy_(v.mul_(factor)))
        v.add_(drive[t])
        if limit is not None:
            xp.gt(v, limit, out=spikes[t])
            v.addcmul_(v, spikes[t], value=-1)  # the reset: V - V s = 0 where it spiked
        if v_sum:
            total += v.long()
    return spikes, (total if v_sum else v.long())


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


# ---- the integer mapping ------------------------------------------------------------------------------
@dataclass
class FixedPopulation:
    """Exact Loihi parameters of one population (shape in torch layout, arrays int64)."""

    name: str
    kind: str                    # "lif" | "readout"
    shape: tuple
    du: int                      # 4095 (no current carried over), else round(4096 dt/tau_syn) - 1
    dv: int                      # round(4096 dt/tau) (at most 4095), IF and I: 0
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

    @property
    def recurrent(self) -> bool:
        return any(e.recurrent for e in self.edges)


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
    ter = ternary_channels(op.weight)
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


@dataclass
class _Integers:
    """One population's integers for one value of K, and the Loihi ranges they break (`bad`)."""

    K: int
    weights: list                # per edge: (w_int of its last op, weight exponent)
    lam: np.ndarray              # per channel: V = lam * v
    bias_mant: np.ndarray
    bias_exp: np.ndarray
    bias: np.ndarray
    a: np.ndarray                # worst-case |a_in| per channel
    v_bound: int
    vth: np.ndarray | None
    silent: np.ndarray | None
    bad: list
    u_bound: float = 0.0         # sup|U| (64 |a| times the current's gain, or calibrated)


class _Scaling:
    """Everything one population's integers share, whatever K: the edges' float units, the
    reference unit per channel, the decay, and the synapse grid K must lie on."""

    def __init__(self, pop: Population, plan: NetworkPlan, ref_mode: str = "min", observed: tuple | None = None):
        self.pop, self.T, self.C = pop, plan.T, pop.shape[0]
        # a tna export is held to worst-case ranges; any other graph to twice the largest |u|, |v| its float
        # reference reached on the given inputs (`observed`), where that is smaller: the Loihi-exact emulator
        # wraps and clips exactly as Lava does, so agreement holds either way; only fixed vs float could differ
        self.observed = None if plan.tna else observed
        self.finals = [e.ops[-1] for e in pop.edges]
        # per edge and channel: the float unit q_ec = gain_c * sigma_e * m_ec
        self.units = np.stack([pop.gain * e.unit * _op_channel_max(op) for e, op in zip(pop.edges, self.finals)])
        synaptic = np.array([e.source != ONE for e in pop.edges])  # a bias edge (from a constant 1) is never primary
        q = np.where((self.units > 0) & synaptic[:, None], self.units, np.inf).min(axis=0)  # the primary unit
        fallback = np.median(q[np.isfinite(q)]) if np.any(np.isfinite(q)) else float(np.max(pop.gain)) or 1.0
        q = np.where(np.isfinite(q), q, fallback)
        # the readout shares one scale for all classes, so argmax(V) = argmax(v)
        self.qref = np.full(self.C, q.min() if ref_mode == "min" else q.max()) if pop.kind == "readout" else q
        self.wide = plan.synapses == "wide"
        self.even = any(op.kind == "dense" for op in self.finals)
        self.dv = min(int(round(DECAY_UNITY * pop.decay)), DECAY_UNITY - 1)
        if pop.decay > 0 and self.dv == 0:
            raise TnaError(f"NIR node {pop.name}: decay dt/tau = {pop.decay:g} rounds to dv = 0 in 12 bits; "
                           "Loihi cannot represent such a slow leak")
        # the current's decay: Lava keeps (4096 - du - 1)/4096 of u; du = 4095 keeps none (no current)
        self.du = DU_NO_CARRY if pop.syn_decay >= 1 else int(round(DECAY_UNITY * pop.syn_decay)) - 1
        if self.du < 0:
            raise TnaError(f"NIR node {pop.name}: synaptic decay dt/tau_syn = {pop.syn_decay:g} rounds to 0 in 12 "
                           "bits; Loihi cannot represent such a slow current decay")
        self.u_gain = DECAY_UNITY / (self.du + 1)  # sup|U| <= 64 |a| * u_gain (a geometric series)
        self.v_steps = DECAY_UNITY / self.dv if self.dv else float(self.T)  # sup|V| <= per-step drive * v_steps
        if pop.kind == "lif" and np.any(pop.threshold < 0):
            raise TnaError(f"NIR node {pop.name}: a negative threshold ({pop.nir_kind} "
                           f"{'threshold' if pop.nir_kind == 'Threshold' else 'v_threshold'}) is not supported in "
                           "fixed point")
        # an edge whose channels include a primary one has weights up to K * ratio: K must be on its grid
        self.ratios = [(op.kind == "dense", float(np.max(u / self.qref)))
                       for op, u, syn in zip(self.finals, self.units, synaptic)
                       if syn and np.any((u > 0) & np.isclose(u, self.qref, rtol=1e-12, atol=0.0))]

    def _per_neuron(self, a) -> np.ndarray:
        return np.broadcast_to(_channel_view(a, self.pop.shape), self.pop.shape)

    def integers(self, K: int) -> _Integers:
        pop, lif = self.pop, self.pop.kind == "lif"
        lam = 64.0 * K / self.qref
        weights, a_hi, a_lo, bad = [], np.zeros(self.C), np.zeros(self.C), []
        for e, op, u in zip(pop.edges, self.finals, self.units):
            w, wexp, ok = _int_weights(op, K * u / self.qref, self.wide)  # multiplier = lam * gain * sigma * m / 64
            weights.append((w, wexp))
            hi, lo = _contrib_bounds(op, w, *e.in_range)
            a_hi, a_lo = a_hi + hi, a_lo + lo
            if not ok:
                bad.append(f"{op.kind} weights up to {int(np.abs(w).max())} need a weight exponent > {W_EXP_MAX}")
        lam_n = self._per_neuron(lam)
        mant, exp, B, ok = _bias_split(lam_n * pop.bias)
        if not np.all(ok):
            bad.append("bias beyond 13-bit mantissa << 7")
        a = np.maximum(a_hi, -a_lo)
        u_sup = 64 * self.u_gain * self._per_neuron(a)
        per_step = u_sup + np.abs(B)
        v_sup = np.ceil(per_step * self.v_steps)
        if self.observed is not None:  # calibrated: twice what the float reference reached
            u_obs, v_obs = (self._per_neuron(np.asarray(o, np.float64).ravel()) for o in self.observed)
            u_sup = np.minimum(u_sup, 2 * lam_n * u_obs)
            v_sup = np.minimum(v_sup, 2 * lam_n * v_obs + u_sup + np.abs(B))
        if u_sup.max(initial=0) > 64 * A_MAX:
            bad.append(f"|a_in| up to {int(a.max())} (x {self.u_gain:.3g} for the current's decay) > {A_MAX}")
        v_bound = int(v_sup.max(initial=0))
        if v_bound > V_BOUND:
            bad.append(f"sup|V| up to {v_bound} > {V_BOUND}")
        vth = silent = None
        if lif:
            vth_f = lam_n * pop.threshold / 64.0
            vmax = (64 * self.u_gain * self._per_neuron(a_hi) + np.maximum(B, 0)) * self.v_steps  # sup of V
            silent = 64 * vth_f >= vmax * (1 + 1e-9)
            vth = np.where(silent, VTH_MAX, np.round(vth_f)).astype(np.int64)
            if vth.max(initial=0) > VTH_MAX:
                bad.append(f"vth up to {int(vth.max())} > {VTH_MAX}")
        return _Integers(K, weights, lam, mant, exp, B, a, v_bound, vth, silent, bad, float(u_sup.max(initial=0)))

    def grid(self, K: int) -> int:
        """The step of the synapse grid around K (every primary edge's weights K * ratio stay on it)."""
        return max([(2 if d else 1) << _grid_exp(K * r, d, self.wide) for d, r in self.ratios]
                   or [2 if self.even else 1])

    def snap(self, K: int) -> int:
        """The largest value <= K on every primary edge's grid."""
        while K % self.grid(K):
            K -= K % self.grid(K)
        return K

    def estimate(self) -> float:
        """The largest K the ranges allow, from a large probe (everything scales with K; rounding is
        negligible there)."""
        kp = 1 << 12
        probe = self.integers(kp)
        limits = [K_CAP]
        if probe.u_bound > 0:
            limits.append(64 * A_MAX * kp / probe.u_bound)
        if probe.v_bound > 0:
            limits.append(V_BOUND * kp / probe.v_bound)
        if probe.vth is not None:
            live = probe.vth[~probe.silent]
            if live.size and live.max() > 0:
                limits.append(VTH_MAX * kp / live.max())
        for op, (w, _) in zip(self.finals, probe.weights):
            wmax = np.abs(w).max() if w.size else 0
            if wmax > 0 and (op.kind == "dense" or not self.wide):
                limits.append((_mant_max(op.kind == "dense") << W_EXP_MAX) * kp / wmax)
        return min(limits)

    def search(self) -> tuple[_Integers, list]:
        """The largest K on the synapse grid whose integers break no range: start from the estimate,
        step down past rounding effects, then up while the next value on the grid still fits.
        Returns (its integers, the ranges the next K would break); `bad` is set if none fits."""
        smallest = self.grid(1)
        K = max(self.snap(max(int(math.floor(self.estimate())), smallest)), smallest)
        res = self.integers(K)
        while res.bad and K > smallest:
            K = max(self.snap(K - 1), smallest)
            res = self.integers(K)
        if res.bad:
            return res, []
        for _ in range(8):
            up = K + self.grid(K)
            while self.snap(up) <= K:
                up += self.grid(K)
            up = self.snap(up)
            nxt = self.integers(up)
            if nxt.bad or up > K_CAP:
                return res, nxt.bad or [f"K cap {K_CAP}"]
            K, res = up, nxt
        return res, []


def _fixed_population(pop: Population, plan: NetworkPlan, ref_mode: str = "min",
                      observed: tuple | None = None) -> FixedPopulation:
    scaling = _Scaling(pop, plan, ref_mode, observed)
    res, binding = scaling.search()
    if res.bad:
        if pop.kind == "readout" and ref_mode == "min":  # one scale from the largest unit instead
            return _fixed_population(pop, plan, "max", observed)
        raise TnaError(f"NIR node {pop.name}: cannot be represented in Loihi fixed point even with the smallest "
                       f"weights ({'; '.join(res.bad)}); reduce its fan-in or the weight spread")
    fixed_edges = []
    for e, (w, wexp) in zip(pop.edges, res.weights):
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
    scale = np.broadcast_to(_channel_view(res.lam, pop.shape), pop.shape).astype(np.float64).copy()
    return FixedPopulation(pop.name, pop.kind, pop.shape, scaling.du, scaling.dv, res.vth, res.bias_mant,
                           res.bias_exp, res.bias.astype(np.int64), scale, res.K, fixed_edges, pop.latency,
                           res.a.astype(np.int64), res.v_bound, res.silent, binding)


def fixed_network(graph_or_plan, observed: dict | None = None) -> FixedNetwork:
    """The exact integer parameters of every population and edge: a pure function of the graph (a tna
    export), or of the graph and the largest |u|, |v| its float reference reached per population,
    `observed` = {population: (u_max, v_max)} (deploy/graph/float_sim.py; any other graph)."""
    plan = graph_or_plan if isinstance(graph_or_plan, NetworkPlan) else plan_network(graph_or_plan)
    if observed is None and "calibration" in plan.metadata:  # written into the graph by deploy/any_graph.py
        observed = calibration_from_json(plan.metadata["calibration"])
    observed = observed or {}
    pops = {n: _fixed_population(p, plan, observed=observed.get(n)) for n, p in plan.populations.items()}
    rs = float(pops[plan.readout].scale.flat[0]) if plan.readout else None
    return FixedNetwork(plan, pops, rs)


def calibration_json(observed: dict) -> str:
    """{population: (u_max, v_max) per channel} as the JSON text a graph's metadata carries."""
    return json.dumps({k: [np.asarray(u).ravel().tolist(), np.asarray(v).ravel().tolist()]
                       for k, (u, v) in observed.items()})


def calibration_from_json(text) -> dict:
    try:
        raw = json.loads(text.decode() if isinstance(text, bytes) else str(text))
        return {k: tuple(np.asarray(x, np.float64) for x in uv) for k, uv in raw.items()}
    except (ValueError, TypeError, AttributeError):
        raise TnaError("the graph's metadata 'calibration' is damaged; deploy the graph again") from None


def _rel(stored: np.ndarray, want: np.ndarray) -> float:
    """Worst |stored - want| relative to the largest |want| (0 when both are all zero)."""
    want, stored = np.asarray(want, np.float64), np.asarray(stored, np.float64)
    top = float(np.abs(want).max(initial=0.0))
    err = float(np.abs(stored - want).max(initial=0.0))
    return err / top if top > 0 else err


def mapping_errors(net: FixedNetwork) -> dict:
    """What storing the float network on Loihi costs, per population: the worst relative error of the
    values the integers stand for (weights w_int 64 / (lam g sigma); thresholds vth 64 / lam; biases
    B / lam; decays dv / 4096 and (du + 1) / 4096) against the float plan's."""
    out = {}
    for name, fp in net.populations.items():
        pop = net.plan.populations[name]
        lam = fp.scale.reshape(fp.shape[0], -1)[:, 0]
        weights, biases = [], [_rel(fp.bias / fp.scale, pop.bias)]
        for e in fp.edges:  # a bias into the current (an edge from the constant 1) counts as a bias
            op = e.ops[-1]
            per = (lam * pop.gain * e.unit / 64.0).reshape((-1,) + (1,) * (op.weight.ndim - 1))
            (biases if e.source == ONE else weights).append(_rel(op.weight_int / per, op.weight))
        rec = {"weights": max(weights, default=0.0),
               "bias": max(biases),
               "decay_v": abs(fp.dv / DECAY_UNITY - pop.decay) / pop.decay if pop.decay else float(fp.dv != 0),
               "decay_u": abs((fp.du + 1) / DECAY_UNITY - pop.syn_decay) / pop.syn_decay}
        if fp.vth is not None:
            live = ~fp.silent
            rec["threshold"] = _rel((fp.vth * 64.0 / fp.scale)[live], pop.threshold[live]) if live.any() else 0.0
            rec["silent_neurons"] = int(fp.silent.sum())
        out[name] = {k: (round(v, 8) if isinstance(v, float) else v) for k, v in rec.items()}
    return out
