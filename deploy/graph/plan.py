"""The deployable network: a NIR graph as populations and synaptic stages, in float.

`plan_network(graph)` turns what `deploy.graph.read` reads into what Lava runs (docs/deploy_mapping.md):
populations (neurons with their float parameters), and the edges into them as stages (`Op`), one
Lava synapse process each (one step of delay):

    conv     a Conv2d (or a Conv1d, on (C, L, 1))
    dense    an Affine/Linear, with the poolings and the Flatten before it folded into its matrix
    sumpool  a pooling before a conv (or a neuron): a depthwise all-ones conv; its 1/(kh kw) goes
             into the unit of the next stage
    scale    a depthwise 1x1 conv, one weight per channel: a Scale node, or an edge without weights

Every population, whatever its NIR kind, is one discretised neuron (forward Euler at dt, the update
Lava's LIF computes; state starts at u = v = 0 for every sample):

    u <- (1 - du) u + g * sum_e W_e x_e              the synaptic current (du = 1: none carried over)
    v <- (1 - dv) v + u + bias                       spike (spiking kinds): v > theta, then v <- 0

| NIR kind | du | dv | g (per channel) | bias (per neuron, per step) |
|---|---|---|---|---|
| LIF | 1 | dt/tau | dv r | g b + dv v_leak |
| CubaLIF / CubaLI | dt/tau_syn | dt/tau_mem | dv r du w_in | dv v_leak (b: a synapse from a constant 1) |
| IF / I | 1 | 0 | dt r | g b |
| LI | 1 | dt/tau | dv r | g b + dv v_leak |
| Threshold | 1 | 1 | 1 | b (theta = threshold) |

(b: the biases of the Affine/Conv2d nodes feeding it.) LIF, CubaLIF, IF and Threshold spike; LI,
CubaLI and I do not, and may only feed the Output (a readout). A recurrent edge carries the
previous step's spikes; a Delay of n*dt carries those of n steps before (zero before the sample).

The Output's value (`NetworkPlan.output_rule`): a tna export's integrator readout: its v after the T
steps (the logits); any other graph: the Output's values summed over the T steps (a spiking source:
spike counts; a non-spiking one: the sum of its v; weighted nodes straight into the Output: an
integrator with g = 1 is added, whose last v is that sum). argmax is the predicted class.

Both modes start here: floating_pt uses these float parameters; `deploy.loihi.fixed_point`
derives the integers from them. numpy only (no nir, no torch).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from deploy.graph.read import Graph, Link, decimal, dense_matrix, pooled_area, read, trace_link
from tna.config import SYNAPSES
from tna.errors import TnaError

SUPPORTED = ("Input", "Output", "Conv2d", "Conv1d", "Affine", "Linear", "Scale", "Flatten", "AvgPool2d",
             "SumPool2d", "Delay", "LIF", "CubaLIF", "IF", "Threshold", "LI", "CubaLI", "I")
DEFAULT_INPUT_RANGE = (-255, 255)       # graded input integers, unless metadata says otherwise
FORMAT = "tna-nir"                      # metadata "format" of a tna export (deploy/graph/from_model.py)
ONE = "__one__"                         # the source of an edge that carries a bias into a synaptic current:
                                        # 1 at every step (a constant spike source in Lava)


@dataclass
class Op:
    """One synaptic stage on an edge; each becomes one Lava Conv or Dense (one step of delay).

    Shapes are torch layout (C, H, W) or (F,). `weight` is the float linear map of the NIR graph
    (dense: [O, prod(in_shape)] in torch flatten order; scale: ones [C]); `weight_int` is filled by
    `deploy.loihi.fixed_point.fixed_network` (sumpool: None, all ones)."""

    kind: str                    # conv | dense | sumpool | scale
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
    divisor: int = 1     # sumpool: kh*kw for an AvgPool2d (applied in float; in fixed point it is in the unit)

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
    recurrent: bool = False      # from the target itself: the previous step's spikes
    delay: int = 0               # steps of delay (NIR Delay nodes): zero for the first `delay` steps


@dataclass
class Population:
    """Spiking neurons ("lif") or a non-spiking readout ("readout"); float parameters (table above)."""

    name: str
    kind: str                    # lif | readout
    shape: tuple
    decay: float                 # dv
    gain: np.ndarray             # g per channel
    threshold: np.ndarray | None
    bias: np.ndarray             # per neuron: added to v every step
    edges: list
    latency: int = 0             # synaptic stages from the input (Lava steps of delay)
    syn_decay: float = 1.0       # du (1: no current carried over)
    nir_kind: str = "LIF"

    @property
    def recurrent(self) -> bool:
        return any(e.recurrent for e in self.edges)


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
    readout: str | None          # the non-spiking population feeding the Output node (or None)
    metadata: dict = field(default_factory=dict)
    synapses: str = "loihi"      # metadata "synapses": loihi (storable on Loihi) | wide (Lava only)
    output_source: str | None = None  # the population whose values the Output carries
    output_rule: str = "last"    # last: v after T steps | sum: v summed over steps | count: spikes summed
    tna: bool = True             # a tna export (metadata format tna-nir)

    @property
    def lif_names(self) -> list:
        return [n for n, p in self.populations.items() if p.kind == "lif"]

    @property
    def max_latency(self) -> int:
        return max((p.latency for p in self.populations.values()), default=0)


def _metadata(meta: dict, dt, T, input_scale) -> tuple:
    """(dt, T, input_scale, encoding, synapses, tna): a tna export's from its metadata; any other
    graph's from the caller (NIR stores no dt), metadata filling what the caller leaves out."""
    tna = meta.get("format") == FORMAT
    if tna:
        for key in ("dt", "T", "input_scale"):
            if key not in meta:
                raise TnaError(f"the graph's metadata has no '{key}'; export it again with deploy/export_nir.py")
    dt = float(meta["dt"]) if dt is None and "dt" in meta else dt
    T = int(meta["T"]) if T is None and "T" in meta else T
    input_scale = float(meta.get("input_scale", 1.0)) if input_scale is None else input_scale
    if dt is None:
        raise TnaError("the graph does not say its time step (NIR stores no dt); pass --dt SECONDS, the step it "
                       "was trained or exported for (snnTorch: 1e-4, Norse: 1e-3)")
    if T is None:
        raise TnaError("the number of time steps T is unknown; it comes from the inputs [N, T, ...]")
    dt, T, input_scale = float(dt), int(T), float(input_scale)
    if not (math.isfinite(dt) and dt > 0 and T >= 1 and math.isfinite(input_scale) and input_scale > 0):
        raise TnaError(f"bad dt={dt}, T={T}, input_scale={input_scale}; all must be positive and finite")
    if str(meta.get("reset", "zero")) != "zero":
        raise TnaError(f"metadata reset={meta.get('reset')!r} is not supported; only reset to zero maps to Loihi")
    synapses = str(meta.get("synapses", "loihi"))
    if synapses not in SYNAPSES:
        raise TnaError(f"metadata synapses={synapses!r} is not one of {', '.join(SYNAPSES)}; "
                       "export the graph again with deploy/export_nir.py")
    return dt, T, input_scale, str(meta.get("encoding", "direct")), synapses, tna


def _input_range(meta: dict, input_scale: float, encoding: str) -> tuple:
    if "input_range" in meta:
        lo, hi = (float(x) for x in np.asarray(meta["input_range"]).ravel()[:2])
        return math.floor(lo / input_scale + 1e-9), math.ceil(hi / input_scale - 1e-9)
    if encoding == "rate":
        return 0, max(1, round(1 / input_scale))
    return DEFAULT_INPUT_RANGE


def plan_network(graph, *, dt: float | None = None, T: int | None = None, input_scale: float | None = None,
                 input_range: tuple | None = None) -> NetworkPlan:
    """Plan a NIR graph for Lava: a tna export (deploy/export_nir.py: everything from its metadata)
    or any standard graph (dt and T from the caller; input_scale, the value of one input integer,
    default 1; input_range, the integer range of the inputs, default metadata or (-255, 255)).

    Raises TnaError naming the node for anything this mapping does not support."""
    g = read(graph)
    dt, T, input_scale, encoding, synapses, tna = _metadata(g.metadata, dt, T, input_scale)
    for name, node in g.nodes.items():
        kind = type(node.node).__name__ if node.kind == "Conv2d" else node.kind
        if kind not in SUPPORTED:
            raise TnaError(f"NIR node {name}: {kind} is not supported on Lava by tna "
                           f"(supported: {', '.join(SUPPORTED)})")
        if node.kind == "Flatten" and node.shape != (int(np.prod(node.in_shape)),):
            raise TnaError(f"NIR node {name}: Flatten(start_dim={node.node.start_dim}, end_dim={node.node.end_dim}) "
                           "is not supported; only flattening a whole batch-free sample (start_dim 0, end_dim -1)")
    if len(g.inputs) != 1 or len(g.outputs) != 1:
        raise TnaError(f"the graph has {len(g.inputs)} Input and {len(g.outputs)} Output nodes; "
                       "tna maps exactly one of each")
    input_name, output_name = g.inputs[0], g.outputs[0]
    in_range = tuple(int(v) for v in input_range) if input_range is not None else \
        _input_range(g.metadata, input_scale, encoding)

    populations: dict[str, Population] = {}

    def add(pop: Population, links: list):
        for link in links:
            e = _edge(g, link, input_scale if link.source == input_name else 1.0, dt)
            if link.source == input_name:  # graded input: its integer range, times the sum poolings' areas
                e.in_range = _times(in_range, math.prod(op.kernel[0] * op.kernel[1] for op in e.ops
                                                        if op.kind == "sumpool"))
            elif link.source != pop.name and populations[link.source].kind != "lif":
                raise TnaError(f"NIR node {link.source}: a non-spiking {g.nodes[link.source].kind} can only feed the "
                               f"Output, not {pop.name} (Loihi neurons send spikes)")
            if e.recurrent and (len(e.ops) != 1 or pop.kind != "lif"):
                raise TnaError(f"NIR edge {link.source} -> {pop.name}: a recurrent connection must be one "
                               "Affine/Linear/Scale from a spiking population back into itself")
            pop.edges.append(e)
            if e.bias is not None and pop.syn_decay != 1.0:  # into the current: a synapse from a constant 1
                if len(pop.shape) != 1:
                    raise TnaError(f"NIR node {pop.name}: a bias into a {pop.nir_kind}'s synaptic current (from "
                                   f"{link.weighted.name}) is supported for 1-D layers only; export it without bias")
                pop.edges.append(Edge(ONE, pop.name, [Op("dense", (f"{link.weighted.name}.bias",), (1,), pop.shape,
                                                         e.bias.reshape(-1, 1).astype(np.float64))],
                                      None, 1.0, (1, 1)))
            elif e.bias is not None:
                b = np.broadcast_to(e.bias.reshape((-1,) + (1,) * (len(pop.shape) - 1)), pop.shape)
                pop.bias = pop.bias + _channel(pop.gain, pop.shape) * b
        ff = [e for e in pop.edges if not e.recurrent and e.source != ONE]
        pop.latency = max((0 if e.source == input_name else populations[e.source].latency) + len(e.ops)
                          for e in ff) if ff else 0
        populations[pop.name] = pop

    for n in g.populations:
        add(_population(g, n, dt), g.links[n])

    out_src = g.preds[output_name]
    if len(out_src) != 1:
        raise TnaError(f"the Output node {output_name} has {len(out_src)} sources; give it exactly one")
    src = out_src[0]
    if src in populations:
        rule = "last" if tna else ("count" if populations[src].kind == "lif" else "sum")
    elif g.nodes[src].role == "input":
        raise TnaError(f"the Output node {output_name} is fed by the input directly; there is nothing to run")
    else:  # weighted/pass nodes straight into the Output: an integrator with g = 1 sums them over the steps
        if tna:
            raise TnaError(f"the Output node must be fed by one integrator (nir.I) or LIF node, not {out_src}")
        link = trace_link(g, src, output_name)
        if link.source != input_name and populations[link.source].kind != "lif":
            raise TnaError(f"NIR node {link.source}: a non-spiking population cannot feed weights")
        shape = g.shape(output_name)
        add(Population(output_name, "readout", shape, 0.0, np.ones(shape[0]), None, np.zeros(shape), [],
                       nir_kind="sum"), [link])
        src, rule = output_name, "last"
    for name, pop in populations.items():
        if pop.kind == "readout" and name != src:
            raise TnaError(f"NIR node {name}: a non-spiking {pop.nir_kind} must feed the Output (Loihi neurons "
                           "send spikes; a graded value cannot travel on)")
    readout = src if populations[src].kind == "readout" else None
    return NetworkPlan(input_name, g.shape(input_name), input_scale, in_range, T, dt, encoding,
                       populations, readout, g.metadata, synapses, src, rule, tna)


def _channel(a, shape: tuple) -> np.ndarray:
    """A per-channel vector, broadcast to the neuron shape."""
    return np.broadcast_to(np.asarray(a, dtype=np.float64).reshape((-1,) + (1,) * (len(shape) - 1)), shape)


def _uniform_per_channel(a: np.ndarray, shape: tuple, what: str, name: str) -> np.ndarray:
    """Per-channel values of a per-neuron array that must be constant inside each channel."""
    a = np.asarray(a, dtype=np.float64)
    a = a.reshape(shape) if a.size == math.prod(shape) else np.broadcast_to(a, shape)  # (C, L) on (C, L, 1)
    flat = a.reshape(shape[0], -1) if len(shape) == 3 else a.reshape(-1, 1)
    if not np.all(flat == flat[:, :1]):
        raise TnaError(f"NIR node {name}: {what} must be equal within each channel; re-export with uniform values")
    return flat[:, 0].copy()


def _one(a, what: str, name: str) -> float:
    a = np.asarray(a)
    if a.size and np.ptp(a.astype(np.float64)) > 1e-12 * abs(float(a.flat[0])):
        raise TnaError(f"NIR node {name}: {what} must be one value per layer (Lava's decays are per process)")
    return decimal(a.flat[0])


def _decay(tau, dt: float, what: str, name: str) -> float:
    d = dt / _one(tau, what, name)
    if not 0 < d <= 1:
        raise TnaError(f"NIR node {name}: dt/{what} = {d:g} is outside (0, 1]; forward Euler needs dt <= {what} "
                       "(pass a smaller --dt)")
    return d


def _population(g: Graph, n: str, dt: float) -> Population:
    """The table of the module docstring, for one NIR neuron node."""
    node, shape, kind = g.nodes[n].node, g.shape(n), g.nodes[n].kind
    if len(shape) not in (1, 3):
        raise TnaError(f"NIR node {n}: neuron shape {shape} is not supported; use (C, H, W), (C, L) or (F,)")
    zeros = np.zeros(shape)
    per_channel = lambda a, what: _uniform_per_channel(a, shape, what, n)  # noqa: E731

    def per_neuron(a) -> np.ndarray:
        a = np.asarray(0.0 if a is None else a, np.float64)
        if a.size == math.prod(shape):
            return a.reshape(shape)
        if a.size == shape[0] and a.size > 1:
            return _channel(a.ravel(), shape)
        if a.size == 1:
            return np.full(shape, float(a.ravel()[0]))
        raise TnaError(f"NIR node {n}: a parameter of shape {a.shape} does not fit the neurons {shape}")
    for what in ("v_reset",):
        val = getattr(node, what, None)
        if val is not None and np.any(np.asarray(val) != 0):
            raise TnaError(f"NIR node {n}: {kind} with {what} != 0 is not supported on Lava by tna "
                           "(Lava's neurons reset to 0)")
    spiking = kind in ("LIF", "CubaLIF", "IF", "Threshold")
    pop_kind = "lif" if spiking else "readout"
    theta = None
    if kind == "Threshold":
        theta = per_neuron(node.threshold).copy()
        return Population(n, "lif", shape, 1.0, np.ones(shape[0]), theta, zeros, [], nir_kind=kind)
    if spiking:
        theta = per_neuron(node.v_threshold).copy()
    if kind in ("IF", "I"):
        gain = dt * per_channel(node.r, "r")
        return Population(n, pop_kind, shape, 0.0, gain, theta, zeros, [], nir_kind=kind)
    if kind in ("LIF", "LI"):
        d = _decay(node.tau, dt, "tau", n)
        return Population(n, pop_kind, shape, d, d * per_channel(node.r, "r"), theta, d * per_neuron(node.v_leak),
                          [], nir_kind=kind)
    # CubaLIF, CubaLI
    dm, ds = _decay(node.tau_mem, dt, "tau_mem", n), _decay(node.tau_syn, dt, "tau_syn", n)
    w_in = 1.0 if getattr(node, "w_in", None) is None else node.w_in
    gain = dm * ds * per_channel(node.r, "r") * per_channel(w_in, "w_in")
    return Population(n, pop_kind, shape, dm, gain, theta, dm * per_neuron(node.v_leak), [], syn_decay=ds,
                      nir_kind=kind)


def _sumpools(link: Link, pools) -> list:
    return [Op("sumpool", (p.name,), p.in_shape, p.shape, None, kernel=p.window.kernel, stride=p.window.stride,
               padding=p.window.padding, groups=p.in_shape[0], divisor=p.divisor) for p in pools]


def _edge(g: Graph, link: Link, unit: float, dt: float) -> Edge:
    """A link as stages; `unit` is the value of one integer unit of the source's activity."""
    w_node = link.weighted
    divisor = math.prod(p.divisor for p in link.pools)
    spikes = (0, 1)  # the input's range is filled in by plan_network
    steps = link.delay / dt
    if abs(steps - round(steps)) > 1e-6 * max(1.0, steps):
        raise TnaError(f"NIR node {link.delays[0].name}: delay {link.delay:g} s is not a whole number of steps of "
                       f"dt = {dt:g} s")
    extra = dict(recurrent=link.recurrent, delay=int(round(steps)))
    if w_node is None or w_node.kind == "Scale":
        shape = link.path[-1].shape if link.path else g.shape(link.source)
        flat = [n.name for n in link.path if n.kind == "Flatten"]
        if flat or len(shape) != len(g.shape(link.target)):
            raise TnaError(f"NIR node {flat[0] if flat else link.source}: a Flatten must be followed by an "
                           f"Affine/Linear on the way to {link.target} (Lava has no reshaping synapse)")
        w = np.ones(shape[0]) if w_node is None else _uniform_per_channel(w_node.weight, shape, "Scale", w_node.name)
        names = () if w_node is None else (w_node.name,)
        ops = _sumpools(link, link.pools) + [Op("scale", names, shape, shape, w)]
        return Edge(link.source, link.target, ops, None, unit / divisor, _times(spikes, pooled_area(link)), **extra)
    if w_node.kind == "Conv2d":
        win = w_node.window
        ops = _sumpools(link, link.pools) + [
            Op("conv", (w_node.name,), w_node.in_shape, w_node.shape, w_node.weight, kernel=win.kernel,
               stride=win.stride, padding=win.padding, dilation=win.dilation, groups=win.groups)]
        return Edge(link.source, link.target, ops, w_node.bias, unit / divisor, _times(spikes, pooled_area(link)),
                    **extra)
    # Affine / Linear: the poolings and the Flatten before it fold into one matrix on the source's activity
    names = tuple(p.name for p in link.pools) + (w_node.name,)
    op = Op("dense", names, g.shape(link.source), w_node.shape, dense_matrix(g, link))
    return Edge(link.source, link.target, [op], w_node.bias, unit, spikes, **extra)


def _times(rng: tuple, area: int) -> tuple:
    return rng[0] * area, rng[1] * area
