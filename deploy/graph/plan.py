"""The deployable network: a tna NIR graph as populations and synaptic stages, in float.

`plan_network(graph)` turns what `deploy.graph.read` reads into what Lava runs (docs/deploy_mapping.md):
populations (a LIF or the integrator readout, with their float parameters), and the edges into
them as stages (`Op`), one Lava synapse process each (one step of delay):

    conv     a Conv2d
    dense    an Affine/Linear, with the poolings and the Flatten before it folded into its matrix
    sumpool  a pooling before a conv (or a neuron): a depthwise all-ones conv; its 1/(kh kw) goes
             into the unit of the next stage
    scale    a depthwise 1x1 conv, one weight per channel, for an edge without a weighted node

Both modes start here: floating_pt uses these float parameters; `deploy.loihi.fixed_point`
derives the integers from them. numpy only (no nir, no torch).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from deploy.graph.read import Graph, Link, dense_matrix, pooled_area, read
from tna.config import SYNAPSES
from tna.errors import TnaError

SUPPORTED = ("Input", "Output", "Conv2d", "Affine", "Linear", "Flatten", "AvgPool2d", "LIF", "I")
DEFAULT_INPUT_RANGE = (-255, 255)       # graded input integers, unless metadata says otherwise
FORMAT = "tna-nir"                      # metadata "format" of a tna export (deploy/graph/from_model.py)


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


def _metadata(meta: dict) -> tuple:
    if meta.get("format") != FORMAT:
        raise TnaError(f"the graph is not a tna NIR export (metadata format={meta.get('format')!r}, "
                       f"expected '{FORMAT}'); export it with deploy/export_nir.py")
    for key in ("dt", "T", "input_scale"):
        if key not in meta:
            raise TnaError(f"the graph's metadata has no '{key}'; export it again with deploy/export_nir.py")
    dt, T, input_scale = float(meta["dt"]), int(meta["T"]), float(meta["input_scale"])
    if not (dt > 0 and T >= 1 and input_scale > 0):
        raise TnaError(f"bad graph metadata dt={dt}, T={T}, input_scale={input_scale}; all must be positive")
    if str(meta.get("reset", "zero")) != "zero":
        raise TnaError(f"metadata reset={meta.get('reset')!r} is not supported; only reset to zero maps to Loihi")
    synapses = str(meta.get("synapses", "loihi"))
    if synapses not in SYNAPSES:
        raise TnaError(f"metadata synapses={synapses!r} is not one of {', '.join(SYNAPSES)}; "
                       "export the graph again with deploy/export_nir.py")
    return dt, T, input_scale, str(meta.get("encoding", "direct")), synapses


def _input_range(meta: dict, input_scale: float, encoding: str) -> tuple:
    if "input_range" in meta:
        lo, hi = (float(x) for x in np.asarray(meta["input_range"]).ravel()[:2])
        return math.floor(lo / input_scale + 1e-9), math.ceil(hi / input_scale - 1e-9)
    if encoding == "rate":
        return 0, max(1, round(1 / input_scale))
    return DEFAULT_INPUT_RANGE


def plan_network(graph) -> NetworkPlan:
    """Plan a tna NIR graph (as written by deploy/export_nir.py) for Lava.

    Raises TnaError naming the node for anything this mapping does not support."""
    g = read(graph)
    dt, T, input_scale, encoding, synapses = _metadata(g.metadata)
    for name, node in g.nodes.items():
        if node.kind not in SUPPORTED:
            raise TnaError(f"NIR node {name}: {node.kind} is not supported on Lava by tna "
                           f"(supported: {', '.join(SUPPORTED)})")
        if node.kind == "Flatten" and (int(node.node.start_dim) != 0 or node.shape != (int(np.prod(node.in_shape)),)):
            raise TnaError(f"NIR node {name}: Flatten(start_dim={node.node.start_dim}, end_dim={node.node.end_dim}) "
                           "is not supported; only flattening a whole batch-free (C, H, W) sample")
    if len(g.inputs) != 1 or len(g.outputs) != 1:
        raise TnaError(f"the graph has {len(g.inputs)} Input and {len(g.outputs)} Output nodes; "
                       "tna maps exactly one of each")
    input_name = g.inputs[0]
    in_range = _input_range(g.metadata, input_scale, encoding)

    populations: dict[str, Population] = {}
    for n in g.populations:
        populations[n] = pop = _population(g, n, dt)
        for link in g.links[n]:
            e = _edge(g, link, input_scale if link.source == input_name else 1.0)
            if link.source == input_name:  # graded input: its integer range, times the sum poolings' areas
                e.in_range = _times(in_range, math.prod(op.kernel[0] * op.kernel[1] for op in e.ops
                                                        if op.kind == "sumpool"))
            pop.edges.append(e)
            if e.bias is not None:
                pop.bias = pop.bias + np.broadcast_to(e.bias.reshape((-1,) + (1,) * (len(pop.shape) - 1)), pop.shape)
        # latency: every op is one Lava synapse stage (one step)
        pop.latency = max((0 if e.source == input_name else populations[e.source].latency) + len(e.ops)
                          for e in pop.edges)

    out_src = g.preds[g.outputs[0]]
    if len(out_src) != 1 or out_src[0] not in populations:
        raise TnaError(f"the Output node must be fed by one integrator (nir.I) or LIF node, not {out_src}")
    readout = out_src[0] if populations[out_src[0]].kind == "readout" else None
    return NetworkPlan(input_name, g.shape(input_name), input_scale, in_range, T, dt, encoding,
                       populations, readout, g.metadata, synapses)


def _uniform_per_channel(a: np.ndarray, shape: tuple, what: str, name: str) -> np.ndarray:
    """Per-channel values of a per-neuron array that must be constant inside each channel."""
    a = np.broadcast_to(np.asarray(a, dtype=np.float64), shape)
    flat = a.reshape(shape[0], -1) if len(shape) == 3 else a.reshape(-1, 1)
    if not np.all(flat == flat[:, :1]):
        raise TnaError(f"NIR node {name}: {what} must be equal within each channel; re-export with uniform values")
    return flat[:, 0].copy()


def _population(g: Graph, n: str, dt: float) -> Population:
    node, shape = g.nodes[n].node, g.shape(n)
    if len(shape) not in (1, 3):
        raise TnaError(f"NIR node {n}: neuron shape {shape} is not supported; use (C, H, W) or (F,)")
    r = np.asarray(node.r, dtype=np.float64)
    if g.nodes[n].kind == "I":
        return Population(n, "readout", shape, 0.0, dt * _uniform_per_channel(r, shape, "r", n), None,
                          np.zeros(shape), [])
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
    return Population(n, "lif", shape, decay, gain, theta, np.zeros(shape), [])


def _sumpools(link: Link, pools) -> list:
    return [Op("sumpool", (p.name,), p.in_shape, p.shape, None, kernel=p.window.kernel, stride=p.window.stride,
               padding=p.window.padding, groups=p.in_shape[0]) for p in pools]


def _edge(g: Graph, link: Link, unit: float) -> Edge:
    """A link as stages; `unit` is the value of one integer unit of the source's activity."""
    w_node = link.weighted
    divisor = math.prod(p.divisor for p in link.pools)
    spikes = (0, 1)  # the input's range is filled in by plan_network
    if w_node is None:
        shape = link.path[-1].shape if link.path else g.shape(link.source)
        if len(shape) != len(g.shape(link.target)):
            raise TnaError(f"NIR edge {link.source} -> {link.target}: a Flatten without a synaptic layer is not "
                           "supported")
        ops = _sumpools(link, link.pools) + [Op("scale", (), shape, shape, np.ones(shape[0]))]
        return Edge(link.source, link.target, ops, None, unit / divisor, _times(spikes, pooled_area(link)))
    if w_node.kind == "Conv2d":
        win = w_node.window
        ops = _sumpools(link, link.pools) + [
            Op("conv", (w_node.name,), w_node.in_shape, w_node.shape, w_node.weight, kernel=win.kernel,
               stride=win.stride, padding=win.padding, dilation=win.dilation, groups=win.groups)]
        return Edge(link.source, link.target, ops, w_node.bias, unit / divisor, _times(spikes, pooled_area(link)))
    # Affine / Linear: the poolings and the Flatten before it fold into one matrix on the source's activity
    names = tuple(p.name for p in link.pools) + (w_node.name,)
    op = Op("dense", names, g.shape(link.source), w_node.shape, dense_matrix(g, link))
    return Edge(link.source, link.target, [op], w_node.bias, unit, spikes)


def _times(rng: tuple, area: int) -> tuple:
    return rng[0] * area, rng[1] * area
