"""THE reader of NIR graphs: nodes, edges, order, shapes, and what each node type means.

Everything in deploy/ that walks a graph starts here: the Lava/Loihi plan (`deploy/graph/plan.py`),
the resource check (`deploy/report/resources.py`) and the operation counts
(`deploy/report/accounting.py`). numpy only; nodes are recognised by their class name, so this
module imports neither nir nor torch and runs in both environments. Any standard NIR graph is read
(not only tna's exports): nested subgraphs are flattened first (inner nodes named "sub.node").

    g = read(graph)                 # graph: nir.NIRGraph (duck-typed: .nodes, .edges, .metadata)
    g.nodes[name]                   # Node, in topological order: kind, shape (batch-free), geometry
    g.populations                   # neuron populations, in order
    g.links[population]             # Links into it: source -> [pass nodes] -> [one weighted node]

What the node types mean (shapes are batch-free, torch layout (C, H, W) or (F,); a 1-D signal
(C, L) is read as (C, L, 1), so a Conv1d is a Conv2d with a (k, 1) kernel):

| kind | role | meaning here |
|---|---|---|
| Input | input | shape = its input_type |
| Output | output | shape = its source's |
| LIF, CubaLIF, IF, Threshold | population | spiking neurons; shape = their parameter arrays' |
| LI, CubaLI, I | population | non-spiking (a readout): their v is the value |
| Conv2d, Conv1d | weighted | cross-correlation (torch), `weight` [O, C/groups, kh, kw]; padding: numeric, 'valid', symmetric 'same' |
| Affine / Linear | weighted | y = W x (+ b) on a 1-D input |
| Scale | weighted | y = s * x elementwise (folded into an adjacent Affine/Linear/Conv, else its own stage) |
| AvgPool2d / SumPool2d | pass | a window sum, divided by kh*kw (Avg, zero padding counted) or not (Sum) |
| Flatten | pass | start_dim..end_dim of the batch-free shape into one axis |
| Delay | pass | y(t) = x(t - delay), one delay for all elements |

A link (the synapses between two populations) is a chain of pass nodes and at most one weighted
node, which comes last: a population sums its links; anything else raises TnaError naming the node.
A link from a population back into itself (through weighted nodes only: the recurrent connection
snnTorch and the NIR paper write, LIF/CubaLIF <-> Affine) is `recurrent`: it carries the spikes of
the previous step. Any other cycle is refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from tna.errors import TnaError

POPULATIONS = {"LIF": "tau", "CubaLIF": "tau_mem", "IF": "r", "Threshold": "threshold", "LI": "tau",
               "CubaLI": "tau_mem", "I": "r"}  # kind -> the parameter whose shape is the population's
SPIKING = ("LIF", "CubaLIF", "IF", "Threshold")
WEIGHTED = ("Conv2d", "Conv1d", "Affine", "Linear", "Scale")
POOLS = ("AvgPool2d", "SumPool2d")
PASS = ("Flatten", "Delay") + POOLS
KINDS = ("Input", "Output") + tuple(POPULATIONS) + WEIGHTED + PASS
TERNARY_RTOL = 1e-6  # non-zero weights of a ternary channel agree in magnitude to this relative tolerance


# ---- small readers ----------------------------------------------------------------------------------
def kind_of(node) -> str:
    return type(node).__name__


def meta_value(v):
    """An HDF5-read metadata value as a plain Python value (bytes -> str, 0-d arrays -> scalars)."""
    if isinstance(v, bytes):
        return v.decode("utf8")
    if isinstance(v, np.ndarray) and v.shape == ():
        v = v[()]
    if isinstance(v, np.generic):
        return v.item()
    return v


def decimal(x) -> float:
    """A stored parameter as the number it was written as: a float32 value read back as its shortest
    decimal (np.float32(2e-3) -> 0.002, not 0.0020000000949949026), so dt/tau gives the decay the
    model was trained with (1e-3 / 0.002 = 0.5 exactly); other values unchanged."""
    if isinstance(x, np.floating) and x.dtype == np.float32:
        return float(str(x))
    return float(x)


def pair(v, what: str, name: str) -> tuple[int, int]:
    """A 2-D parameter (stride, padding, kernel size, ...): one value for both axes, or two."""
    a = np.atleast_1d(np.asarray(v)).astype(np.int64).ravel().tolist()
    if len(a) == 1:
        a = a * 2
    if len(a) != 2:
        raise TnaError(f"NIR node {name}: {what} {v!r} is not a pair of integers; export 2-D values")
    return int(a[0]), int(a[1])


def conv_len(n: int, k: int, s: int, p: int, d: int = 1) -> int:
    """Output length of a window of size k, stride s, padding p, dilation d over n inputs."""
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def ternary_channels(weight: np.ndarray, rtol: float = TERNARY_RTOL) -> np.ndarray:
    """Per output channel (row of the weight): all non-zero weights share one magnitude, i.e. the
    channel is codes {-1, 0, +1} times one scale. An all-zero channel counts as ternary."""
    w = np.abs(np.asarray(weight, dtype=np.float64)).reshape(len(weight), -1)
    m = w.max(axis=1, keepdims=True) if w.size else np.zeros((len(w), 1))
    return np.all((w == 0) | (np.abs(w - m) <= rtol * m), axis=1)


@dataclass(frozen=True)
class Window:
    """A sliding window: a convolution's or a pooling's geometry (2-D)."""

    kernel: tuple
    stride: tuple
    padding: tuple
    dilation: tuple = (1, 1)
    groups: int = 1

    def out_hw(self, h: int, w: int) -> tuple[int, int]:
        return (conv_len(h, self.kernel[0], self.stride[0], self.padding[0], self.dilation[0]),
                conv_len(w, self.kernel[1], self.stride[1], self.padding[1], self.dilation[1]))

    @property
    def area(self) -> int:
        return self.kernel[0] * self.kernel[1]


@dataclass
class Node:
    """One NIR node as tna reads it. `shape` is its output's batch-free shape, `in_shape` its input's."""

    name: str
    kind: str
    node: object                         # the nir node itself
    shape: tuple
    in_shape: tuple | None = None
    window: Window | None = None         # Conv2d, AvgPool2d, SumPool2d
    weight: np.ndarray | None = None     # weighted nodes: float64 (Conv2d [O, C/g, kh, kw], Affine [O, I])
    bias: np.ndarray | None = None       # weighted nodes: per output channel (None: no bias, or all zero)
    divisor: int = 1                     # pooling: kh*kw (AvgPool2d) or 1 (SumPool2d)
    delay: float = 0.0                   # Delay: seconds (one value for all elements)

    @property
    def spiking(self) -> bool:
        return self.kind in SPIKING

    @property
    def role(self) -> str:
        if self.kind in POPULATIONS:
            return "population"
        if self.kind in WEIGHTED:
            return "weighted"
        return {"Input": "input", "Output": "output"}.get(self.kind, "pass")


@dataclass
class Link:
    """The synapses from one population (or the input) into another: pass nodes, then at most one
    weighted node, in signal order. An empty path is the identity (e.g. a residual shortcut)."""

    source: str
    target: str
    path: tuple                          # of Node
    recurrent: bool = False              # source == target: the previous step's spikes
    delays: tuple = ()                   # its Delay nodes (not in `path`: a delay commutes with the rest)

    @property
    def delay(self) -> float:
        """Seconds of delay on this link."""
        return sum(n.delay for n in self.delays)

    @property
    def weighted(self) -> Node | None:
        return self.path[-1] if self.path and self.path[-1].role == "weighted" else None

    @property
    def passes(self) -> tuple:
        """The pooling/flatten nodes before the weighted node (or all of them)."""
        return self.path[:-1] if self.weighted is not None else self.path

    @property
    def pools(self) -> tuple:
        return tuple(n for n in self.passes if n.kind in POOLS)

    @property
    def names(self) -> tuple:
        return tuple(n.name for n in self.path)


@dataclass
class Graph:
    nodes: dict                          # name -> Node, in topological order
    preds: dict                          # name -> [source names], in edge order
    succs: dict
    inputs: list
    outputs: list
    metadata: dict = field(default_factory=dict)
    links: dict = field(default_factory=dict)  # population -> [Link], in edge order (recurrent ones too)
    recurrent: list = field(default_factory=list)  # (source, target) edges that close a recurrent loop

    @property
    def populations(self) -> list:
        return [n for n, node in self.nodes.items() if node.role == "population"]

    def shape(self, name: str) -> tuple:
        return self.nodes[name].shape


# ---- the reader -------------------------------------------------------------------------------------
def topological_order(nodes, preds: dict, succs: dict) -> list:
    """Kahn's algorithm; a cycle left after removing the recurrent edges is a user error."""
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
        stuck = {n for n in nodes if n not in order}
        sinks = True
        while sinks:  # what is left after Kahn: the cycles and what they feed; keep the cycles
            sinks = {n for n in stuck if not any(t in stuck for t in succs[n])}
            stuck -= sinks
        stuck = sorted(stuck)
        raise TnaError(f"the graph has a cycle through {', '.join(stuck[:4])} that is not a population's own "
                       "recurrent connection (population -> Affine/Linear -> the same population); tna maps "
                       "feed-forward graphs and such self-recurrent layers only")
    return order


def flatten_subgraphs(nodes: dict, edges: list) -> tuple[dict, list]:
    """Nested NIRGraph nodes -> one flat graph: inner nodes become "sub.inner"; an edge to "sub" goes to
    its Input node(s), an edge from "sub" leaves its Output node(s); then every inner Input/Output node
    (an identity) is removed, its sources joined to its targets."""
    flat, out_edges, inner_io = {}, [], set()
    ins, outs = {}, {}
    for name, node in nodes.items():
        if kind_of(node) != "NIRGraph":
            if name in flat:
                raise TnaError(f"NIR node {name}: the name is used twice (also a node inside a subgraph); rename one")
            flat[name] = node
            continue
        sub_nodes, sub_edges = flatten_subgraphs(dict(node.nodes), [tuple(map(meta_value, e)) for e in node.edges])
        for inner, n in sub_nodes.items():
            if f"{name}.{inner}" in nodes or f"{name}.{inner}" in flat:
                raise TnaError(f"NIR node {name}.{inner}: the name is used twice (a node named like the node {inner} "
                               f"inside subgraph {name}); rename one of them")
            flat[f"{name}.{inner}"] = n
            if kind_of(n) in ("Input", "Output"):
                inner_io.add(f"{name}.{inner}")
        ins[name] = [f"{name}.{i}" for i, n in sub_nodes.items() if kind_of(n) == "Input"]
        outs[name] = [f"{name}.{i}" for i, n in sub_nodes.items() if kind_of(n) == "Output"]
        out_edges += [(f"{name}.{a}", f"{name}.{b}") for a, b in sub_edges]
    for s_, t_ in edges:
        s_, t_ = meta_value(s_), meta_value(t_)
        for a in outs.get(s_, [s_]):
            for b in ins.get(t_, [t_]):
                out_edges.append((a, b))
    for io in inner_io:  # an inner Input/Output passes its signal on unchanged
        srcs = [a for a, b in out_edges if b == io]
        dsts = [b for a, b in out_edges if a == io]
        out_edges = [e for e in out_edges if io not in e] + [(a, b) for a in srcs for b in dsts]
        del flat[io]
    return flat, out_edges


def _recurrent_edges(raw: dict, preds: dict) -> list:
    """The edges that close a population's loop onto itself: walking back from the edge's source through
    single-input weighted/pass nodes reaches the same population."""
    rec = []
    for p, node in raw.items():
        if kind_of(node) not in POPULATIONS:
            continue
        for first in preds[p]:
            n, seen = first, set()
            while kind_of(raw[n]) not in POPULATIONS and kind_of(raw[n]) != "Input" and len(preds[n]) == 1 \
                    and n not in seen:
                seen.add(n)
                n = preds[n][0]
            if n == p:
                rec.append((first, p))
    return rec


def read(graph) -> Graph:
    """Read a NIR graph: order, shapes, geometry, links. Raises TnaError naming the node for a node
    type tna does not read or an inconsistent graph."""
    raw, edges = flatten_subgraphs(dict(graph.nodes), [tuple(e) for e in graph.edges])
    meta = {k: meta_value(v) for k, v in dict(getattr(graph, "metadata", {}) or {}).items()}
    for key in ("dt", "input_scale", "T"):
        if key in meta:
            v = _values("metadata", key, meta[key])
            if not np.all(v > 0):
                raise TnaError(f"NIR metadata {key} must be positive, got {meta[key]!r}; export it again")
    for name, node in raw.items():
        if kind_of(node) not in KINDS:
            raise TnaError(f"NIR node {name}: nir.{kind_of(node)} is not read by tna (it reads: {', '.join(KINDS)})")
    preds = {n: [] for n in raw}
    succs = {n: [] for n in raw}
    for s, t in edges:
        if s not in raw or t not in raw:
            raise TnaError(f"NIR edge {s} -> {t} names a node that is not in the graph; the file is corrupt")
        preds[t].append(s)
        succs[s].append(t)
    inputs = [n for n, node in raw.items() if kind_of(node) == "Input"]
    if not inputs:
        raise TnaError("the graph has no nir.Input node; export it with deploy/export_nir.py")
    recurrent = _recurrent_edges(raw, preds)
    ff_preds = {n: [s for s in preds[n] if (s, n) not in recurrent] for n in raw}
    ff_succs = {n: [t for t in succs[n] if (n, t) not in recurrent] for n in raw}
    nodes: dict[str, Node] = {}
    for n in topological_order(raw, ff_preds, ff_succs):
        nodes[n] = _node(n, raw[n], [nodes[p].shape for p in ff_preds[n]])
    g = Graph(nodes, preds, succs, inputs, [n for n, node in raw.items() if kind_of(node) == "Output"], meta,
              recurrent=recurrent)
    for p in g.populations:
        g.links[p] = [trace_link(g, first, p, (first, p) in recurrent) for first in preds[p]]
    return g


POSITIVE = ("tau", "tau_mem", "tau_syn", "v_threshold")  # a neuron parameter that must be > 0


def _values(n: str, what: str, v) -> np.ndarray | None:
    """A numeric node parameter as float64, refused (one line) when not numbers or not finite."""
    if v is None:
        return None
    try:
        a = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError):
        raise TnaError(f"NIR node {n}: {what} is not numeric; the file is damaged, export it again") from None
    if not np.all(np.isfinite(a)):
        raise TnaError(f"NIR node {n}: {what} holds NaN or infinite values; the file is damaged, export it again")
    return a


def _check_values(n: str, k: str, node) -> None:
    """Every weight, bias and neuron parameter finite; time constants and thresholds positive."""
    names = ("weight", "bias", "scale") if k in WEIGHTED else (
        ("tau", "tau_mem", "tau_syn", "r", "v_threshold", "v_leak", "v_reset", "w_in", "threshold")
        if k in POPULATIONS else ("delay",) if k == "Delay" else ())
    for what in names:
        a = _values(n, what, getattr(node, what, None))
        if a is not None and what in POSITIVE and not np.all(a > 0):
            raise TnaError(f"NIR node {n}: {what} must be positive, got {a.min():g}; the file is damaged, "
                           "export it again")
        if a is not None and what == "delay" and not np.all(a >= 0):
            raise TnaError(f"NIR node {n}: delay must be >= 0, got {a.min():g}")


def canonical(shape) -> tuple:
    """A batch-free shape as tna computes with it: (C, L) -> (C, L, 1); others unchanged."""
    shape = tuple(int(x) for x in np.asarray(shape).ravel())
    return shape + (1,) if len(shape) == 2 else shape


def _node(n: str, node, ins: list) -> Node:
    """The node's meaning: its geometry and output shape, from its input shapes `ins`."""
    k = kind_of(node)
    _check_values(n, k, node)
    if k == "Input":
        return Node(n, k, node, canonical(next(iter(node.input_type.values()))))
    if not ins:
        raise TnaError(f"NIR node {n}: no input edge; the graph is disconnected")
    if k not in POPULATIONS and len(ins) != 1:
        raise TnaError(f"NIR node {n}: {k} with {len(ins)} input edges; only neurons may sum several inputs")
    if any(s != ins[0] for s in ins):
        raise TnaError(f"NIR node {n}: input shapes differ ({ins}); the graph is inconsistent")
    shp = ins[0]
    if k == "Conv1d":  # on (C, L, 1): a Conv2d with a (k, 1) kernel
        w = np.asarray(node.weight, dtype=np.float64)
        if w.ndim != 3 or len(shp) != 3 or shp[2] != 1:
            raise TnaError(f"NIR node {n}: Conv1d needs a 3-D weight and a (C, L) input, got {w.shape} and {shp[:2]}")
        one = lambda v, fill: (int(np.asarray(v).ravel()[0]), fill)  # noqa: E731
        pad = node.padding if isinstance(node.padding, (str, bytes)) else one(node.padding, 0)
        as2d = _Conv2d()
        as2d.__dict__.update(weight=w[..., None], groups=node.groups, stride=one(node.stride, 1),
                             dilation=one(node.dilation, 1), padding=pad, bias=node.bias)
        out = _node(n, as2d, ins)
        out.kind, out.node = "Conv2d", node
        return out
    if k == "Conv2d":
        w = np.asarray(node.weight, dtype=np.float64)
        if w.ndim != 4 or len(shp) != 3:
            raise TnaError(f"NIR node {n}: Conv2d needs a 4-D weight and a (C, H, W) input, got {w.shape} and {shp}")
        groups = int(np.asarray(node.groups).ravel()[0]) if node.groups is not None else 1
        if shp[0] != w.shape[1] * groups:
            raise TnaError(f"NIR node {n}: Conv2d expects {w.shape[1] * groups} input channels, gets {shp[0]}")
        kh, kw = w.shape[2:]
        st, dil = pair(node.stride, "stride", n), pair(node.dilation, "dilation", n)
        win = Window((int(kh), int(kw)), st, _padding(node.padding, (kh, kw), st, dil, n), dil, groups)
        ho, wo = win.out_hw(shp[1], shp[2])
        if ho < 1 or wo < 1:
            raise TnaError(f"NIR node {n}: Conv2d output would be empty for input {shp}")
        return Node(n, k, node, (int(w.shape[0]), ho, wo), shp, win, w, _bias(node, w.shape[0]))
    if k in ("Affine", "Linear"):
        w = np.asarray(node.weight, dtype=np.float64)
        if len(shp) != 1 or w.ndim != 2 or w.shape[1] != shp[0]:
            raise TnaError(f"NIR node {n}: {k} weight {w.shape} does not fit its input {shp} "
                           "(flatten the whole sample first: Flatten(start_dim=0, end_dim=-1) on batch-free shapes)")
        return Node(n, k, node, (int(w.shape[0]),), shp, None, w, _bias(node, w.shape[0]) if k == "Affine" else None)
    if k == "Scale":
        sc = np.asarray(node.scale, dtype=np.float64)
        if canonical(sc.shape) != shp and sc.size != 1:
            raise TnaError(f"NIR node {n}: Scale of shape {sc.shape} does not fit its input {shp}")
        return Node(n, k, node, shp, shp, weight=np.broadcast_to(sc.reshape(-1) if sc.size == 1 else
                                                                 sc.reshape(shp), shp).copy())
    if k == "Delay":
        d = np.asarray(node.delay, dtype=np.float64)
        if d.size and np.ptp(d) > 1e-12 * max(float(np.abs(d).max()), 1e-30):
            raise TnaError(f"NIR node {n}: Delay with different delays per element is not supported on Lava by tna "
                           "(one delay per node maps onto delay lines)")
        return Node(n, k, node, shp, shp, delay=float(d.ravel()[0]) if d.size else 0.0)
    if k == "Flatten":
        start, end = int(node.start_dim), int(node.end_dim)
        start, end = start % len(shp), end % len(shp)
        out = shp[:start] + (int(np.prod(shp[start:end + 1])),) + shp[end + 1:]
        return Node(n, k, node, out, shp)
    if k in POOLS:
        if len(shp) != 3:
            raise TnaError(f"NIR node {n}: {k} needs a (C, H, W) input, got {shp}")
        win = Window(pair(node.kernel_size, "kernel_size", n), pair(node.stride, "stride", n),
                     pair(node.padding, "padding", n))
        return Node(n, k, node, (shp[0],) + win.out_hw(shp[1], shp[2]), shp, win,
                    divisor=win.area if k == "AvgPool2d" else 1)
    if k in POPULATIONS:
        own = canonical(np.shape(getattr(node, POPULATIONS[k])))
        if own and own not in (shp, (1,)) and own != (1,) * len(own):
            raise TnaError(f"NIR node {n}: {k} has shape {own} but receives {shp}")
        return Node(n, k, node, shp, shp)
    return Node(n, k, node, shp, shp)  # Output


_Conv2d = type("Conv2d", (), {"__doc__": "A Conv1d's parameters as a Conv2d with a (k, 1) kernel."})


def _padding(pad, kernel, stride, dil, name) -> tuple:
    """Numeric padding, or 'valid', or 'same' where it is symmetric (stride 1, odd dilated kernel)."""
    if isinstance(pad, (str, bytes)):
        pad = meta_value(pad)
        kh, kw = kernel
        if pad == "valid":
            return 0, 0
        if pad == "same" and stride == (1, 1) and (dil[0] * (kh - 1)) % 2 == 0 and (dil[1] * (kw - 1)) % 2 == 0:
            return dil[0] * (kh - 1) // 2, dil[1] * (kw - 1) // 2
        raise TnaError(f"NIR node {name}: padding {pad!r} is not symmetric here; export explicit padding")
    return pair(pad, "padding", name)


def _bias(node, n_out: int) -> np.ndarray | None:
    b = getattr(node, "bias", None)
    if b is None:
        return None
    b = np.asarray(b, dtype=np.float64).ravel()
    if b.size == 1 and n_out != 1:
        b = np.full(n_out, float(b[0]))
    return b if np.any(b != 0) else None


def trace_link(g: Graph, first: str, target: str, recurrent: bool = False) -> Link:
    """Walk back from `target` through pass nodes and one weighted node to a population or the input
    (Scale nodes next to the weighted node are folded into it; Delay nodes are set aside)."""
    path, n = [], first
    while g.nodes[n].role not in ("population", "input"):
        if g.nodes[n].role == "output":
            raise TnaError(f"NIR node {n}: an Output node cannot feed {target}")
        path.append(g.nodes[n])
        n = g.preds[n][0]  # exactly one: checked by _node
    path.reverse()
    delays = tuple(p for p in path if p.kind == "Delay")
    path = _fold_scales([p for p in path if p.kind != "Delay"], target)
    weighted = [p.name for p in path if p.role == "weighted"]
    if len(weighted) > 1:
        raise TnaError(f"NIR nodes {weighted[0]} -> {weighted[1]}: two synaptic layers in a row into {target}; "
                       "put a LIF between them")
    if weighted and path[-1].name != weighted[0]:
        raise TnaError(f"NIR node {path[-1].name}: {path[-1].kind} between synaptic layer {weighted[0]} and "
                       f"neuron {target} is not supported; pool before the synaptic layer")
    if path and path[-1].shape != g.nodes[target].shape:
        raise TnaError(f"NIR node {path[-1].name}: its output {path[-1].shape} does not fit {target} "
                       f"{g.nodes[target].shape}")
    return Link(n, target, tuple(path), recurrent, delays)


def _per_channel(a: np.ndarray, name: str) -> np.ndarray:
    """One value per channel of a (C, H, W) array (constant within each channel), or the 1-D array."""
    if a.ndim == 1:
        return a
    flat = a.reshape(a.shape[0], -1)
    if not np.all(flat == flat[:, :1]):
        raise TnaError(f"NIR node {name}: a Scale next to a convolution must be one value per channel")
    return flat[:, 0]


def _fold_scales(path: list, target: str) -> list:
    """Scale nodes folded into the weighted node beside them: after it they scale its rows (and bias),
    before an Affine/Linear its columns, before a Conv2d (groups 1) its input channels."""
    path = list(path)
    i = 0
    while i < len(path):
        node = path[i]
        if node.kind != "Scale" or len([p for p in path if p.role == "weighted"]) == 1:
            i += 1
            continue
        prev = path[i - 1] if i > 0 else None
        nxt = path[i + 1] if i + 1 < len(path) else None
        s = node.weight
        if prev is not None and prev.kind in ("Affine", "Linear", "Conv2d"):
            c = _per_channel(s, node.name)
            w = prev.weight * c.reshape((-1,) + (1,) * (prev.weight.ndim - 1))
            b = None if prev.bias is None else prev.bias * c
            path[i - 1] = replace(prev, weight=w, bias=b)
            del path[i]
        elif nxt is not None and nxt.kind in ("Affine", "Linear"):
            path[i + 1] = replace(nxt, weight=nxt.weight * s.reshape(1, -1))
            del path[i]
        elif nxt is not None and nxt.kind == "Conv2d" and nxt.window.groups == 1:
            c = _per_channel(s, node.name)
            path[i + 1] = replace(nxt, weight=nxt.weight * c.reshape(1, -1, 1, 1))
            del path[i]
        elif nxt is not None and nxt.kind == "Conv2d":
            raise TnaError(f"NIR node {node.name}: a Scale before a grouped Conv2d ({nxt.name}, groups "
                           f"{nxt.window.groups}) is not supported; scale after the convolution instead")
        else:
            raise TnaError(f"NIR node {node.name}: a Scale must sit next to the Affine/Linear/Conv2d it scales "
                           f"(on the way into {target})")
    return path


# ---- what a link computes -----------------------------------------------------------------------------
def pool_matrix_fold(w: np.ndarray, in_shape: tuple, pool: Node) -> np.ndarray:
    """W [O, C*Hp*Wp] acting after a pooling -> the same map on the pooling's input [O, C*H*W]
    (each pooled weight spread over its window, divided by the pooling's divisor)."""
    c, h, wd = in_shape
    (kh, kw), (sh, sw), (ph, pw) = pool.window.kernel, pool.window.stride, pool.window.padding
    hp, wp = pool.window.out_hw(h, wd)
    o = w.shape[0]
    w4 = w.reshape(o, c, hp, wp).astype(np.float64) / pool.divisor
    out = np.zeros((o, c, h, wd))
    for i in range(hp):
        for j in range(wp):
            for a in range(kh):
                y = i * sh - ph + a
                if not 0 <= y < h:
                    continue
                for b in range(kw):
                    x = j * sw - pw + b
                    if 0 <= x < wd:
                        out[:, :, y, x] += w4[:, :, i, j]
    return out.reshape(o, -1)


def dense_matrix(g: Graph, link: Link) -> np.ndarray:
    """An Affine/Linear link as one matrix on its source's activity [O, prod(source shape)]: the
    poolings before it folded in (Flatten is torch's C order, so it changes nothing)."""
    w = link.weighted.weight
    for p in reversed(link.pools):  # last pooling first
        w = pool_matrix_fold(w, p.in_shape, p)
    if w.shape[1] != int(np.prod(g.shape(link.source))):
        raise TnaError(f"NIR node {link.weighted.name}: its weight takes {w.shape[1]} inputs but its source "
                       f"{link.source} has {int(np.prod(g.shape(link.source)))}")
    return w


def pooled_area(link: Link) -> int:
    """How many source values one value after the link's poolings sums (for value ranges)."""
    return math.prod(p.window.area for p in link.pools) if link.pools else 1


def conv2d_np(x, w, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
    """torch.nn.functional.conv2d semantics (cross-correlation) in numpy; x [N, C, H, W].

    Exact for int64 inputs; float64 for floats."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    ho = conv_len(h, kh, stride[0], padding[0], dilation[0])
    wo = conv_len(wd, kw, stride[1], padding[1], dilation[1])
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
