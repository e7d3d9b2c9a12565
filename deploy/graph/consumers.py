"""Our graph -> a graph that another simulator's released NIR importer runs unchanged.

    g = for_consumer(graph_of(run), "norse")          # pure: a new nir.NIRGraph, the input untouched
    spikes, summed = run_in_consumer(g, "norse", x)   # x [T, N, ...]: the consumer's own modules

A tna graph (deploy/graph/from_model.py) ends in an integrator `nir.I` readout (r = 1/(T dt)),
which neither importer maps. Every consumer graph instead ends with `Output` right after the
classifier `Affine`; the readout moves into the metadata: `readout = "sum over steps"` (sum the
Output over the T steps of a sample; its argmax is the class; the sum is T x our logits),
`dt` (the step the graph is written for), `T`, `consumer`, `decay` (dt/tau of every LIF),
`input_scale`, `encoding`, and the source graph's own `source_dt`.

Conventions (read in the consumers' source, 2026-11-28):

norse 1.1.0, `norse.torch.from_nir(graph, dt=metadata["dt"])` (nirtorch.load):
  - maps Input/Output (identity), Affine, Linear, Conv2d, Flatten, IF, LIF, CubaLIF, SumPool2d
    (as LPPool2d norm 1: padding ignored); no AvgPool2d, I, LI (LI is in its docs, not its importer),
    Threshold, Delay, Scale. dt is a call argument (default 1e-3): the graph keeps our dt.
  - LIF -> LIFBoxCell: tau_mem_inv = 1/tau (float32), v += dt*tau_mem_inv*(x + v_leak - v),
    z = v > v_th, v = 0 where z (v_reset is NOT read: always 0); r is not read (r != 1 only warns).
    Ours is the same expression with dt*tau_mem_inv = the decay, so tau is the float32 nearest
    tau_mem for which float32(dt * (1/tau)) is exactly our decay: same spikes, bit for bit.
  - AvgPool2d -> SumPool2d with 1/(kh*kw) folded into the weights of the next Conv2d/Affine
    (through Flatten), exact for power-of-two windows (2x2, 8x8); padding must be 0.
  - Flatten(start_dim=0) is applied literally: feed one sample (no batch dimension) per call;
    `run_in_consumer` loops over the samples.
  - State: `y, state = net(x_t, state)`, state None at a sample's first step.
  - Its executor (the deprecated nirtorch `load`) runs nodes depth-first from the Input, children in
    edge order; a node input that has not run yet this step is read from the previous step, and
    the last node run is returned as the output. So a residual merge must come after its block's
    own path: identity-shortcut edges go last; a 1x1-conv shortcut (ResNet's downsampling blocks)
    is relayed through the block's first LIF (`_chain_residuals`); anything else is refused.

snntorch 1.0.0, `snntorch.import_nir.import_from_nir(graph)` (nirtorch.nir_to_torch):
  - maps Affine, Linear, Conv2d, Flatten, AvgPool2d (count_include_pad), IF, LIF, CubaLIF and
    LIF/CubaLIF <-> Affine/Linear recurrent pairs; no I, LI, SumPool2d, Threshold, Delay, Conv1d.
  - dt is hard-coded 1e-4: beta = 1 - 1e-4/tau, w_scale = r*1e-4/tau; when w_scale != 1 the
    threshold becomes v_th/w_scale (weights stay). The Leaky then does m = beta*m + x, z = m > thr.
    With r = 1 and tau = 1e-4/decay this is ours scaled by 1/decay (m = v/decay): the same
    dynamics, but rounded differently (one rounding instead of our two), so spikes can differ
    where v lands within float32 rounding of the threshold (measured: none differed in 1000 test
    samples of four trained runs, docs/results/consumers.md).
  - one threshold per layer (a per-channel one would have to be folded into weights), v_leak = 0.
  - reset: every reset becomes reset-to-zero, and with `reset_delay=False` (as the importer sets
    it) the membrane is zeroed in the step that spikes: `do_reset = spk - reset_prev` and
    `(1 - reset_prev) * mem` before the next input never eat an input, so the reset is ours.
  - IF imports as a Leaky with beta 0.9 (a leak the graph does not have): IF is refused here.
  - State is hidden in the modules (init_hidden): `snntorch.utils.reset(net)` between samples,
    `y = net(x_t)` per step; Flatten(start_dim=0) is literal as in norse.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass

import nir
import numpy as np
import torch

from deploy.graph import compat  # noqa: F401  (nir 1.0.8: non-square Conv2d output types)
from deploy.graph.read import decimal
from tna.errors import TnaError

READOUT = "sum over steps"


@dataclass(frozen=True)
class Consumer:
    name: str
    version: str        # the release whose importer these conventions were read from
    call: str           # how the graph is imported
    dt: float | None    # the step the importer assumes (None: the caller passes the graph's dt)
    nodes: frozenset    # NIR node kinds its importer maps
    pool: type          # what our AvgPool2d becomes
    reset: str          # how its LIF resets (ours: to zero, in the step that spikes)
    readout: str = READOUT  # what to do with the Output (metadata "readout")


CONSUMERS = {
    "norse": Consumer("norse", "1.1.0", "norse.torch.from_nir(graph, dt=graph.metadata['dt'])", None,
                      frozenset({nir.Input, nir.Output, nir.Affine, nir.Linear, nir.Conv2d, nir.Flatten, nir.IF,
                                 nir.LIF, nir.CubaLIF, nir.SumPool2d}),
                      nir.SumPool2d, "to zero, in the step that spikes (v_reset is not read)"),
    "snntorch": Consumer("snntorch", "1.0.0", "snntorch.import_nir.import_from_nir(graph)", 1e-4,
                         frozenset({nir.Input, nir.Output, nir.Affine, nir.Linear, nir.Conv2d, nir.Flatten,
                                    nir.AvgPool2d, nir.LIF, nir.CubaLIF}),
                         nir.AvgPool2d, "to zero, in the step that spikes (reset_delay=False)"),
}


def _consumer(name: str) -> Consumer:
    if name not in CONSUMERS:
        raise TnaError(f"unknown NIR consumer '{name}'; known: {', '.join(CONSUMERS)}")
    return CONSUMERS[name]


def _uniform(a, what: str, name: str) -> float:
    a = np.asarray(a, dtype=np.float64)
    if a.size and not np.all(a == a.flat[0]):
        raise TnaError(f"NIR node {name}: per-neuron {what} values cannot be exported to this consumer")
    return float(a.flat[0])


def _f32_near(target: float, good) -> np.float32:
    """The float32 nearest `target` (searching outwards, 256 ulps) for which `good(value)` holds;
    the nearest float32 itself when none does (then the consumer is exact only to rounding)."""
    x = np.float32(target)
    up, down = x, x
    for _ in range(256):
        for v in (up, down):
            if good(v):
                return v
        up, down = np.nextafter(up, np.float32(np.inf)), np.nextafter(down, np.float32(-np.inf))
    return x


def _norse_tau(decay: np.float32, dt: float) -> np.float32:
    """tau such that Norse's float32 `dt * (1 / tau)` is exactly `decay`."""
    def good(tau):
        inv = 1 / torch.tensor([tau], dtype=torch.float32)
        return bool((dt * inv)[0] == torch.tensor(decay, dtype=torch.float32))
    return _f32_near(float(dt) / float(decay), good)


def _snntorch_tau(decay: np.float32, dt: float) -> np.float32:
    """tau such that snnTorch's `1e-4 / tau` (numpy float32) is exactly `decay`."""
    return _f32_near(dt / float(decay), lambda tau: (dt / np.array([tau], np.float32))[0] == decay)


def _drop_readout(nodes: dict, edges: list) -> list:
    """Replace every `I` readout by a direct edge to what it fed (the Output)."""
    for name in [k for k, n in nodes.items() if isinstance(n, nir.I)]:
        srcs = [s for s, t in edges if t == name]
        dsts = [t for s, t in edges if s == name]
        if not all(isinstance(nodes[d], nir.Output) for d in dsts):
            raise TnaError(f"NIR node {name}: an integrator that is not the readout cannot be exported "
                           f"to this consumer")
        edges = [e for e in edges if name not in e] + [(s, d) for s in srcs for d in dsts]
        del nodes[name]
    return edges


def _pools_to_sums(nodes: dict, edges: list) -> None:
    """AvgPool2d -> SumPool2d, 1/(kh*kw) folded into the next weighted node(s) (through Flatten)."""
    for name in [k for k, n in nodes.items() if isinstance(n, nir.AvgPool2d)]:
        p = nodes[name]
        k = np.asarray(p.kernel_size).reshape(-1)
        k = np.repeat(k, 2) if k.size == 1 else k
        if np.any(np.asarray(p.padding) != 0):
            raise TnaError(f"NIR node {name}: a padded average pool has no sum-pool equivalent in Norse "
                           f"(its SumPool2d ignores padding)")
        nodes[name] = nir.SumPool2d(kernel_size=np.asarray(p.kernel_size), stride=np.asarray(p.stride),
                                    padding=np.asarray(p.padding))
        todo, n_weighted = [name], 0
        while todo:
            cur = todo.pop()
            for t in [t for s, t in edges if s == cur]:
                node = nodes[t]
                if isinstance(node, nir.Flatten):
                    todo.append(t)
                elif isinstance(node, (nir.Conv2d, nir.Affine, nir.Linear)) and \
                        [s for s, tt in edges if tt == t] == [cur]:
                    node.weight = (np.asarray(node.weight) / np.float32(k[0] * k[1])).astype(np.float32)
                    n_weighted += 1
                else:
                    raise TnaError(f"NIR node {name}: an average pool not followed by one weighted layer "
                                   f"({type(node).__name__} {t}) cannot become Norse's SumPool2d")
        if not n_weighted:
            raise TnaError(f"NIR node {name}: an average pool feeding no weighted layer cannot become a SumPool2d")


def _decay(tau: float, dt: float) -> np.float32:
    """The LIF decay dt/tau the graph was trained with, in float32 (as tna.neuron.LIF steps it).
    The graph stores tau in float32 (2e-3 -> 0.0020000000949...), and dt/that rounds to 0.49999997,
    not the model's 0.5: tau is read back as the shortest decimal that float32 value prints as (the
    config's own value, e.g. 0.002), then divided in double precision, as the model did."""
    return np.float32(dt / decimal(np.float32(tau)))


def _preds(edges, t):
    return [s for s, tt in edges if tt == t]


def _chain_residuals(nodes: dict, edges: list, source_dt: float) -> dict:
    """Norse's importer runs nodes depth-first (below); a residual merge fed by a projection
    shortcut (x -> conv1 -> LIF a1 -> conv2 -> m, x -> s -> m) can never be run in order there.
    Rewrite it as a chain: conv1 also relays x, as spikes, through extra channels of a1 (one tap
    of weight 2 v_th/decay: v = 2 v_th where x = 1, else 0, so a1's extra neurons spike exactly
    with x, in the same step), and conv2 applies s to those channels, summing both paths in one
    conv (bias: the sum of both). Returns {a1: its own channel count} (extra channels follow).
    The sum's rounding order changes: spikes can differ where a sum lands on the threshold."""
    relays = {}
    for m in [k for k in nodes if len(_preds(edges, k)) > 1]:
        srcs = _preds(edges, m)
        if len(srcs) != 2:
            raise TnaError(f"NIR node {m}: a merge of {len(srcs)} inputs cannot be run by Norse's importer")
        longs = [s for s in srcs if isinstance(nodes[s], nir.Conv2d) and _preds(edges, s)
                 and isinstance(nodes[_preds(edges, s)[0]], nir.LIF)]
        if not longs:
            raise TnaError(f"NIR node {m}: only residual blocks (conv -> LIF -> conv, plus a shortcut) can be "
                           f"chained for Norse's importer")
        c2 = longs[0]
        a1 = _preds(edges, c2)[0]
        c1 = _preds(edges, a1)[0]
        x = _preds(edges, c1)[0] if isinstance(nodes[c1], nir.Conv2d) and len(_preds(edges, c1)) == 1 else None
        short = [s for s in srcs if s != c2][0]
        if short == x:
            continue  # identity shortcut: x runs before the block; only the edge order matters
        s_node, n1, n2 = nodes[short], nodes[c1], nodes[c2]
        ok = (x is not None and isinstance(s_node, nir.Conv2d) and _preds(edges, short) == [x]
              and np.shape(s_node.weight)[2:] == (1, 1) and np.all(np.asarray(s_node.padding) == 0)
              and np.array_equal(np.broadcast_to(n1.stride, 2), np.broadcast_to(s_node.stride, 2))
              and np.all(np.broadcast_to(n2.stride, 2) == 1) and n1.groups == n2.groups == s_node.groups == 1
              and np.all(np.asarray(n1.dilation) == 1) and np.all(np.asarray(n2.dilation) == 1)
              and not isinstance(n1.padding, str) and not isinstance(n2.padding, str))
        if not ok:
            raise TnaError(f"NIR node {m}: this shortcut ({short}) cannot be relayed for Norse's importer "
                           f"(a 1x1 unpadded conv with conv1's stride is)")
        lif = nodes[a1]
        tau, vth = _uniform(lif.tau, "tau", a1), _uniform(lif.v_threshold, "v_threshold", a1)
        decay = float(_decay(tau, source_dt))
        w1, w2, ws = (np.asarray(n.weight, np.float32) for n in (n1, n2, s_node))
        o1, cx = w1.shape[0], w1.shape[1]
        p1, p2 = np.broadcast_to(n1.padding, 2), np.broadcast_to(n2.padding, 2)
        if np.any(p1 >= w1.shape[2:]) or np.any(p2 >= w2.shape[2:]):
            raise TnaError(f"NIR node {m}: conv padding too large to relay the shortcut for Norse's importer")
        relay = np.zeros((cx, cx, *w1.shape[2:]), np.float32)
        relay[np.arange(cx), np.arange(cx), p1[0], p1[1]] = np.float32(2 * vth / decay)
        nodes[c1] = nir.Conv2d(input_shape=n1.input_shape, weight=np.concatenate([w1, relay]), stride=n1.stride,
                               padding=n1.padding, dilation=n1.dilation, groups=1,
                               bias=np.concatenate([np.asarray(n1.bias, np.float32), np.zeros(cx, np.float32)]))
        shape = (o1 + cx, *np.shape(lif.tau)[1:])
        f = lambda v: np.full(shape, v, dtype=np.float32)  # noqa: E731
        nodes[a1] = nir.LIF(tau=f(tau), r=f(_uniform(lif.r, "r", a1)), v_leak=f(_uniform(lif.v_leak, "v_leak", a1)),
                            v_threshold=f(vth), v_reset=f(_uniform(lif.v_reset, "v_reset", a1)))
        apply = np.zeros((w2.shape[0], cx, *w2.shape[2:]), np.float32)
        apply[:, :, p2[0], p2[1]] = ws[:, :, 0, 0]
        nodes[c2] = nir.Conv2d(input_shape=n2.input_shape, weight=np.concatenate([w2, apply], axis=1),
                               stride=n2.stride, padding=n2.padding, dilation=n2.dilation, groups=1,
                               bias=np.asarray(n2.bias, np.float32) + np.asarray(s_node.bias, np.float32))
        del nodes[short]
        edges[:] = [e for e in edges if short not in e]
        relays[a1] = o1
    return relays


def _depth_first_safe(nodes: dict, edges: list) -> list:
    """Norse 1.1.0 imports through the deprecated `nirtorch.load`, whose executor runs nodes in
    depth-first pre-order from the Input (children in edge order) and feeds a node whose input has
    not run yet that input's value from the previous step; it returns the last node run. Order
    the edges so that depth-first order is a topological order ending at the Output (a shortcut
    edge after the block's own path), and check it."""
    def order(es):
        out = {}
        for s, t in es:
            out.setdefault(s, []).append(t)
        seen, seq = set(), []

        def visit(n):
            if n in seen:
                return
            seen.add(n)
            seq.append(n)
            for t in out.get(n, []):
                visit(t)
        for n in [k for k, v in nodes.items() if isinstance(v, nir.Input)]:
            visit(n)
        return seq

    # a shortcut edge (its target has another, longer input path) goes last
    into = {}
    for s, t in edges:
        into.setdefault(t, []).append(s)
    late = [(s, t) for s, t in edges if len(into[t]) > 1 and not isinstance(nodes[s], nir.Conv2d)]
    edges = [e for e in edges if e not in late] + late
    seq = order(edges)
    pos = {n: i for i, n in enumerate(seq)}
    if len(seq) != len(nodes) or not isinstance(nodes[seq[-1]], nir.Output) or \
            any(pos[s] >= pos[t] for s, t in edges):
        raise TnaError("this graph's branches cannot be run in order by Norse 1.1.0's importer "
                       "(nirtorch.load runs nodes depth-first); export it for snntorch instead")
    return edges


def _lif_for(node: nir.LIF, name: str, c: Consumer, source_dt: float) -> tuple[nir.LIF, float]:
    tau = _uniform(node.tau, "tau", name)
    for what, v in (("r", node.r), ("v_leak", node.v_leak), ("v_reset", node.v_reset)):
        if _uniform(v, what, name) != (1.0 if what == "r" else 0.0):
            raise TnaError(f"NIR node {name}: LIF with {what} = {_uniform(v, what, name)} cannot be exported to "
                           f"{c.name} (it needs r = 1, v_leak = 0, v_reset = 0)")
    if c.name == "snntorch":  # it asserts one threshold per layer (Norse takes one per neuron)
        _uniform(node.v_threshold, "v_threshold", name)
    decay = _decay(tau, source_dt)
    dt = source_dt if c.dt is None else c.dt
    new_tau = _norse_tau(decay, dt) if c.name == "norse" else _snntorch_tau(decay, dt)
    shape = np.shape(node.tau)
    f = lambda v: np.full(shape, v, dtype=np.float32)  # noqa: E731
    return nir.LIF(tau=f(new_tau), r=f(1.0), v_leak=f(0.0), v_threshold=np.asarray(node.v_threshold, np.float32),
                   v_reset=f(0.0)), float(decay)


def for_consumer(graph: nir.NIRGraph, consumer: str) -> nir.NIRGraph:
    """A copy of our graph that `consumer`'s released importer runs unchanged (conventions: module
    docstring). Raises TnaError (one line: why, and what works) for a graph it cannot express."""
    c = _consumer(consumer)
    meta = dict(graph.metadata or {})
    if "dt" not in meta or "T" not in meta:
        raise TnaError("the graph has no dt/T metadata: export it with deploy/export_nir.py")
    source_dt = float(meta["dt"])
    nodes = {k: copy.deepcopy(n) for k, n in graph.nodes.items()}
    edges = _drop_readout(nodes, list(graph.edges))
    if c.pool is nir.SumPool2d:
        _pools_to_sums(nodes, edges)
    relays = _chain_residuals(nodes, edges, source_dt) if c.name == "norse" else {}
    if c.name == "norse":
        edges = _depth_first_safe(nodes, edges)
    decays = set()
    for name in list(nodes):
        if isinstance(nodes[name], nir.LIF):
            nodes[name], d = _lif_for(nodes[name], name, c, source_dt)
            decays.add(d)
    bad = sorted({type(n).__name__ for n in nodes.values() if type(n) not in c.nodes})
    if bad:
        raise TnaError(f"{c.name} {c.version}'s NIR importer does not map {', '.join(bad)}; "
                       f"it maps {', '.join(sorted(t.__name__ for t in c.nodes))}")
    if len(decays) > 1:
        raise TnaError(f"the graph's LIF layers have different decays {sorted(decays)}: not supported here")
    meta.update({"consumer": c.name, "consumer_version": c.version, "import": c.call, "readout": c.readout,
                 "dt": source_dt if c.dt is None else c.dt, "source_dt": source_dt,
                 "decay": decays.pop() if decays else 1.0, "reset": "zero",
                 "relay_channels": ",".join(f"{k}:{v}" for k, v in relays.items())})
    meta.pop("synapses", None)
    if any(isinstance(n, nir.Conv2d) and len(set(np.shape(n.weight)[2:])) > 1 for n in nodes.values()):
        meta["nir_read"] = ("nir.read(path, type_check=False): nir 1.0.8 mistypes non-square Conv2d kernels "
                            "(the importers map them right)")
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)


# ---- running a graph in the consumer (training environment) -------------------------------------------
def import_graph(graph: nir.NIRGraph, consumer: str) -> torch.nn.Module:
    """The consumer's own module for the graph, through its released importer."""
    c = _consumer(consumer)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if c.name == "norse":
            import norse.torch

            return norse.torch.from_nir(graph, dt=float(graph.metadata["dt"]))
        import contextlib
        import io

        from snntorch.import_nir import import_from_nir

        with contextlib.redirect_stdout(io.StringIO()):  # it prints its w_scale "hack" per layer
            return import_from_nir(copy.deepcopy(graph))


def _spiking_modules(net: torch.nn.Module, consumer: str) -> dict:
    if consumer == "norse":
        from norse.torch.module.lif_box import LIFBoxCell as cls
    else:
        from snntorch import Leaky as cls
    return {name.split(".")[-1]: m for name, m in net.named_modules() if isinstance(m, cls)}


@torch.no_grad()
def run_in_consumer(graph, consumer: str, x: torch.Tensor):
    """Run x[T, N, ...] through `consumer`'s import of the graph (a nir.NIRGraph already made for it,
    or a path to one), one sample at a time (both importers take Flatten(start_dim=0) literally).
    Returns ({spiking node: spikes [T, N, ...]} (a relaying layer's own channels only), the Output
    summed over the T steps [N, K])."""
    if not isinstance(graph, nir.NIRGraph):
        graph = nir.read(graph)
    if graph.metadata.get("consumer") != consumer:
        raise TnaError(f"this graph was written for {graph.metadata.get('consumer') or 'tna'}, not {consumer}")
    net = import_graph(graph, consumer).eval()
    layers = _spiking_modules(net, consumer)
    rec: dict[str, list] = {k: [] for k in layers}
    hooks = [m.register_forward_hook(lambda mod, i, o, k=k: rec[k].append(o[0] if isinstance(o, tuple) else o))
             for k, m in layers.items()]
    summed = []
    try:
        for n in range(x.shape[1]):
            if consumer == "snntorch":
                import snntorch.utils

                snntorch.utils.reset(net)
            state, total = None, 0
            for x_t in x[:, n]:
                if consumer == "norse":
                    y, state = net(x_t, state)
                else:
                    y = net(x_t)
                    y = y[0] if isinstance(y, tuple) else y
                total = total + y
            summed.append(total)
    finally:
        for h in hooks:
            h.remove()
    T, N = x.shape[0], x.shape[1]
    spikes = {k: torch.stack(v).reshape(N, T, *v[0].shape).transpose(0, 1) for k, v in rec.items() if v}
    for item in filter(None, str(graph.metadata.get("relay_channels", "")).split(",")):
        k, n = item.split(":")  # a layer's own channels come first; the rest relay a shortcut
        spikes[k] = spikes[k][:, :, : int(n)]
    return spikes, torch.stack(summed)
