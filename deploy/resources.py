"""What a NIR graph needs in hardware, and whether it fits each target in `deploy/targets.py`.

`resources(graph)` counts, per layer (a neuron population - `nir.LIF`, or the `nir.I` readout -
together with every synapse map that ends in it):

- neurons;
- synapses, dense (every in-bounds source/target pair, zeros included; a conv is unrolled, so
  padding taps are not counted) and non-zero (ternary zeros need no memory);
- fan-in: the most non-zero inputs of any one neuron (summed over all maps into it);
- fan-out: the most non-zero targets of any one neuron of this layer (summed over all maps leaving
  it; a conv counts its receptive fields, so a pixel reaches up to k*k*C_out neurons);
- weight bits per stored synapse: 2 for ternary maps (codes {-1, 0, +1} packed; log2(3) = 1.58
  bits of entropy per dense weight), 8 for full-precision maps after quantisation. In a layer fed
  by two maps (a residual block) only the largest keeps its ternary codes: the per-channel scale
  of the other one relative to it is arbitrary, so it is counted at 8 bits.

A synapse map is the chain of nodes between two populations: `Conv2d` (a pooling before it is
folded in: a kernel of (k-1) s_pool + k_pool taps with stride s s_pool), `Affine`/`Linear` (after
`AvgPool2d`/`SumPool2d`/`Flatten`, linear and folded into the effective weights), a pooling alone
(a depthwise map), or nothing (an identity edge: a residual shortcut).

`fit(graph, target)` maps the layers onto a target and names the binding constraint. The
partitioning rule (simple, stated, conservative):

- a core holds neurons of ONE layer together with all of their incoming synapses;
- a layer of shape (C, H, W) is cut into tiles of g channels x r rows x the full width (1-D layers
  are (N, 1, 1); a single row of one channel may be cut into w columns if nothing else fits);
- per tile: neurons = g r w <= neurons per core; input axons (distinct source neurons) =
  C_in x min(H_in, (r-1) s + k) x min(W_in, (w-1) s + k) for a conv (every input channel, padding
  ignored), all connected sources for a dense map, g r w for an identity map, <= input axons per
  core; synaptic memory = neurons x sum over maps of (max fan-in x (weight bits + index bits))
  + axon overhead x input axons <= memory per core (max, not mean, fan-in: conservative);
- output axons: a source neuron needs one per destination core it reaches; with the destination
  tiles fixed first (layers are placed from the output backwards), a tile's neurons x (cores
  reached per neuron) <= output axons per core;
- per layer the tile with the fewest cores wins: cores(layer) = ceil(C/g) ceil(H/r) ceil(W/w);
  for the plain case this is max(ceil(neurons / neurons per core), ceil(synapse bits / memory per
  core)) or more;
- chips = max(ceil(cores / cores per chip), ceil(neurons / neurons per chip),
  ceil(non-zero synapses / synapses per chip)).

The binding constraint of a layer is the one whose removal would save the most cores (two names
when only relaxing both helps); that of the network is the limit whose removal everywhere saves the
most cores (or the limit a layer violates outright, or a chip-level limit when it sets the chip
count). Speck
places one layer per core (sinabs' memory formulas), Xylo is one core of 1000 neurons; Lava on
CPU has no limits. `fit_report(graph)` prints all targets as one table.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections import defaultdict

import nir
import numpy as np
import torch
import torch.nn.functional as F

from deploy import nir_compat  # noqa: F401  (nir 1.0.8: non-square Conv2d output types)
from deploy.fixed_point import topological_order
from deploy.targets import TARGETS, Fig, Target
from tna.errors import TnaError

POPULATIONS = (nir.LIF, nir.CubaLIF, nir.IF, nir.LI, nir.CubaLI, nir.I)
WEIGHTED = (nir.Conv2d, nir.Affine, nir.Linear)
POOLS = (nir.AvgPool2d, nir.SumPool2d)
PASS = (nir.Flatten,) + POOLS
TERNARY_BITS, FULL_BITS, TERNARY_ENTROPY = 2, 8, math.log2(3)
FEATURES = ("lif_current_free", "ternary_weights", "conv2d", "avg_pool", "residual_add", "integrator_readout",
            "analog_input")


# ---------------------------------------------------------------- graph walking

def _pair(v) -> tuple[int, int]:
    v = np.atleast_1d(np.asarray(v)).astype(int).tolist()
    return (v[0], v[0]) if len(v) == 1 else (v[0], v[1])


def _conv_geometry(node: nir.Conv2d):
    o, i, kh, kw = node.weight.shape
    stride, dil = _pair(node.stride), _pair(node.dilation)
    if isinstance(node.padding, str):
        if node.padding == "valid":
            pad = (0, 0)
        elif node.padding == "same" and stride == (1, 1):
            pad = (dil[0] * (kh - 1) // 2, dil[1] * (kw - 1) // 2)
        else:
            raise TnaError(f"conv padding '{node.padding}' is not understood by the resource check; export numeric "
                           f"padding")
    else:
        pad = _pair(node.padding)
    return (kh, kw), stride, pad, dil, int(node.groups)


def _out_size(n, k, s, p, d=1):
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def _pop_shape(node, fallback):
    arr = {nir.LIF: "tau", nir.LI: "tau", nir.IF: "r", nir.I: "r", nir.CubaLIF: "tau_mem",
           nir.CubaLI: "tau_mem"}[type(node)]
    shape = tuple(int(s) for s in np.shape(getattr(node, arr)))
    return shape if shape else fallback


def _topo(graph) -> list[str]:
    into, out = defaultdict(list), defaultdict(list)
    for s, t in graph.edges:
        if s not in graph.nodes or t not in graph.nodes:
            raise TnaError(f"edge {s} -> {t} names a node that is not in the graph; fix the NIR file")
        into[t].append(s)
        out[s].append(t)
    return topological_order(graph.nodes, into, out)


def _shapes(graph, order, into) -> dict[str, tuple]:
    shape: dict[str, tuple] = {}
    for name in order:
        node = graph.nodes[name]
        src = into.get(name, [])
        ins = shape[src[0]] if src else None
        if isinstance(node, nir.Input):
            shape[name] = tuple(int(v) for v in np.asarray(next(iter(node.input_type.values()))).ravel())
        elif isinstance(node, nir.Output):
            shape[name] = ins
        elif isinstance(node, POPULATIONS):
            shape[name] = _pop_shape(node, ins)
        elif isinstance(node, nir.Conv2d):
            (kh, kw), (sh, sw), (ph, pw), (dh, dw), _ = _conv_geometry(node)
            h, w = (int(v) for v in (node.input_shape if node.input_shape is not None else ins[-2:]))
            shape[name] = (node.weight.shape[0], _out_size(h, kh, sh, ph, dh), _out_size(w, kw, sw, pw, dw))
        elif isinstance(node, (nir.Affine, nir.Linear)):
            shape[name] = (int(node.weight.shape[0]),)
        elif isinstance(node, nir.Flatten):
            shape[name] = (int(np.prod(ins)),)
        elif isinstance(node, POOLS):
            (kh, kw), (sh, sw), (ph, pw) = _pair(node.kernel_size), _pair(node.stride), _pair(node.padding)
            c, h, w = ins
            shape[name] = (c, _out_size(h, kh, sh, ph), _out_size(w, kw, sw, pw))
        else:
            raise TnaError(f"node '{name}': nir.{type(node).__name__} is not handled by the resource check; "
                           f"it knows populations ({', '.join(p.__name__ for p in POPULATIONS)}), Conv2d, "
                           f"Affine, Linear, Flatten, AvgPool2d, SumPool2d")
    return shape


def _chain(graph, into, start) -> tuple[str, list[str]]:
    """Walk back from `start` through synapse/pass nodes to the population (or input) feeding it."""
    path, name = [], start
    while not isinstance(graph.nodes[name], POPULATIONS + (nir.Input,)):
        srcs = into.get(name, [])
        if len(srcs) != 1:
            raise TnaError(f"node '{name}' has {len(srcs)} inputs; only neuron populations may sum several edges")
        path.append(name)
        name = srcs[0]
    return name, path[::-1]


# ---------------------------------------------------------------- one synapse map

def _is_ternary(w2d: np.ndarray) -> bool:
    """Every row's non-zero magnitudes are equal (codes x one scale per output channel)."""
    a = np.abs(w2d)
    nz = a > 0
    hi = np.where(nz, a, 0).max(1)
    lo = np.where(nz, a, np.inf).min(1)
    rows = nz.any(1)
    return bool(np.all(hi[rows] - lo[rows] <= 1e-5 * hi[rows]))


def _crop(x: torch.Tensor, pad: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
    x = x[..., pad[0]:pad[0] + size[0], pad[1]:pad[1] + size[1]]
    short = (size[1] - x.shape[-1], size[0] - x.shape[-2])
    return F.pad(x, (0, short[0], 0, short[1])) if short[0] > 0 or short[1] > 0 else x


@torch.no_grad()
def _conv_map(node, in_shape, valid=None, params=None):
    """valid: (rows, cols) of the input that exist (a folded pooling may not cover the whole map)."""
    (kh, kw), stride, pad, dil, groups = _conv_geometry(node)
    w = np.asarray(node.weight, dtype=np.float64)
    nz = w != 0
    c, h, wd = in_shape
    conv = dict(stride=stride, padding=pad, dilation=dil)
    exists = torch.ones(h, wd)
    if valid is not None:
        exists = torch.zeros(h, wd)
        exists[:valid[0], :valid[1]] = 1.0
    if groups == 1:  # the input is all ones: sum the mask over the other side first (C times cheaper)
        ones = exists.reshape(1, 1, h, wd)
        fan_in = F.conv2d(ones, torch.as_tensor(nz.sum(1, keepdims=True), dtype=torch.float32), **conv)[0]
        taps = F.conv2d(ones, torch.ones(1, 1, kh, kw), **conv)[0]
        dense = (taps * c).expand(w.shape[0], -1, -1)
        back = torch.as_tensor(nz.sum(0, keepdims=True), dtype=torch.float32)  # (1, C_in, kh, kw)
        fan_out = F.conv_transpose2d(torch.ones(1, 1, *fan_in.shape[1:]), back, stride=stride, dilation=dil)
    else:
        mask = torch.as_tensor(nz, dtype=torch.float32)
        ones_in = exists.expand(1, c, h, wd)
        fan_in = F.conv2d(ones_in, mask, groups=groups, **conv)[0]
        dense = F.conv2d(ones_in, torch.ones_like(mask), groups=groups, **conv)[0]
        fan_out = F.conv_transpose2d(torch.ones(1, *fan_in.shape), mask, stride=stride, dilation=dil, groups=groups)
    fan_out = _crop(fan_out, pad, (h, wd))[0] * exists
    geo = {"c_in": int(nz.any(axis=(0, 2, 3)).sum()) if groups == 1 else c,
           "k": (dil[0] * (kh - 1) + 1, dil[1] * (kw - 1) + 1), "kernel": (kh, kw), "stride": stride,
           "padding": pad, "in_shape": (c, h, wd)}
    return (fan_in.numpy(), dense.numpy(), fan_out.numpy(), _is_ternary(w.reshape(w.shape[0], -1)),
            w.size if params is None else params, geo)


@torch.no_grad()
def _pooled_conv(pool, conv, in_shape):
    """Pooling followed by a conv, as one conv on the unpooled map: kernel (k-1) s_pool + k_pool,
    stride s s_pool, padding p s_pool + p_pool; each tap's weight spread over its pooling window."""
    (kh, kw), stride, pad, dil, groups = _conv_geometry(conv)
    if dil != (1, 1) or groups != 1:
        raise TnaError("pooling before a dilated or grouped convolution is not supported by the resource check")
    (ph, pw), (sh, sw), (qh, qw) = _pair(pool.kernel_size), _pair(pool.stride), _pair(pool.padding)
    w = torch.as_tensor(np.asarray(conv.weight, dtype=np.float32))
    o, i = w.shape[:2]
    k = torch.ones(1, 1, ph, pw) / (ph * pw if isinstance(pool, nir.AvgPool2d) else 1)
    weff = F.conv_transpose2d(w.reshape(o * i, 1, kh, kw), k, stride=(sh, sw)).reshape(o, i, *(
        (kh - 1) * sh + ph, (kw - 1) * sw + pw))
    c, h, wd = in_shape
    hp, wp = _out_size(h, ph, sh, qh), _out_size(wd, pw, sw, qw)
    node = nir.Conv2d(input_shape=(h, wd), weight=weff.numpy(), stride=(stride[0] * sh, stride[1] * sw),
                      padding=(pad[0] * sh + qh, pad[1] * sw + qw), dilation=1, groups=1, bias=np.zeros(o))
    valid = (min(h, (hp - 1) * sh - qh + ph), min(wd, (wp - 1) * sw - qw + pw))
    return _conv_map(node, in_shape, valid=valid, params=int(np.asarray(conv.weight).size))


@torch.no_grad()
def _dense_map(graph, path, shape, src_shape):
    """Affine/Linear with the pass nodes before it folded in: an (O, N_src) effective weight."""
    node = graph.nodes[path[-1]]
    weff = torch.as_tensor(np.asarray(node.weight, dtype=np.float32))
    for name in reversed(path[:-1]):
        p = graph.nodes[name]
        i = path.index(name)
        before = shape[path[i - 1]] if i > 0 else src_shape
        if isinstance(p, nir.Flatten):
            weff = weff.reshape(weff.shape[0], *before)
        else:  # pooling: its adjoint spreads each pooled weight over the window
            (kh, kw), st, pad = _pair(p.kernel_size), _pair(p.stride), _pair(p.padding)
            c = before[0]
            k = torch.ones(c, 1, kh, kw, dtype=weff.dtype) / (kh * kw if isinstance(p, nir.AvgPool2d) else 1)
            weff = _crop(F.conv_transpose2d(weff, k, stride=st, groups=c), pad, tuple(before[1:]))
    weff = weff.reshape(weff.shape[0], -1).numpy()
    if weff.shape[1] != int(np.prod(src_shape)):
        raise TnaError(f"{path[-1]}: weight expects {weff.shape[1]} inputs but its source has "
                       f"{int(np.prod(src_shape))}")
    mask = weff != 0
    geo = {"n_src": int(mask.any(0).sum()), "in_shape": tuple(src_shape)}
    return (mask.sum(1).astype(float), np.full(weff.shape[0], float(weff.shape[1])), mask.sum(0).astype(float),
            _is_ternary(weff), int(np.asarray(node.weight).size), geo)


@torch.no_grad()
def _pool_map(node, in_shape):
    (kh, kw), st, pad = _pair(node.kernel_size), _pair(node.stride), _pair(node.padding)
    c, h, w = in_shape
    k = torch.ones(c, 1, kh, kw)
    fan_in = F.conv2d(torch.ones(1, c, h, w), k, stride=st, padding=pad, groups=c)[0]
    fan_out = _crop(F.conv_transpose2d(torch.ones(1, *fan_in.shape), k, stride=st, groups=c), pad, (h, w))[0]
    geo = {"k": (kh, kw), "kernel": (kh, kw), "stride": st, "padding": pad, "in_shape": tuple(in_shape)}
    return fan_in.numpy(), fan_in.numpy(), fan_out.numpy(), True, 0, geo


def _synapse_map(graph, path, source, src_shape, shape):
    weighted = [n for n in path if isinstance(graph.nodes[n], WEIGHTED)]
    if len(weighted) > 1:
        raise TnaError(f"{' -> '.join(path)}: two weighted layers without neurons between them; the resource check "
                       f"needs one synapse map per edge")
    if weighted and weighted[0] != path[-1]:
        raise TnaError(f"{' -> '.join(path)}: nodes after the weighted layer are not supported by the resource check")
    if weighted and isinstance(graph.nodes[path[-1]], nir.Conv2d):
        pools = [graph.nodes[n] for n in path[:-1]]
        if len(pools) > 1 or not all(isinstance(p, POOLS) for p in pools):
            raise TnaError(f"{' -> '.join(path)}: only one pooling may precede a convolution in the resource check")
        conv = graph.nodes[path[-1]]
        kind, out = "conv", (_pooled_conv(pools[0], conv, src_shape) if pools else _conv_map(conv, src_shape))
    elif weighted:
        kind, out = "dense", _dense_map(graph, path, shape, src_shape)
    else:
        pools = [n for n in path if isinstance(graph.nodes[n], POOLS)]
        if len(pools) > 1:
            raise TnaError(f"{' -> '.join(path)}: two poolings in a row are not supported by the resource check")
        if pools:
            kind, out = "pool", _pool_map(graph.nodes[pools[0]], src_shape)
        else:
            n = float(np.prod(src_shape))
            kind, out = "identity", (np.ones(int(n)), np.ones(int(n)), np.ones(int(n)), True, 0,
                                     {"in_shape": tuple(src_shape)})
    fan_in, dense, fan_out, ternary, params, geo = out
    return {"source": source, "nodes": list(path), "kind": kind, "fan_in_arr": fan_in.ravel(),
            "dense_arr": dense.ravel(), "fan_out_arr": fan_out.ravel(), "ternary": ternary,
            "kernel_parameters": params, **geo}


# ---------------------------------------------------------------- resources

def resources(graph: nir.NIRGraph) -> dict:
    """Per-layer and total neurons, synapses, fan-in/out and weight bits of a feed-forward NIR graph."""
    order = _topo(graph)
    into: dict[str, list[str]] = defaultdict(list)
    for s, t in graph.edges:
        into[t].append(s)
    shape = _shapes(graph, order, into)
    inputs = [n for n in order if isinstance(graph.nodes[n], nir.Input)]
    if not inputs:
        raise TnaError("the graph has no nir.Input node; export it with deploy.nir_graph.model_to_nir")
    layers, fan_out = [], {}
    for name in order:
        node = graph.nodes[name]
        if not isinstance(node, POPULATIONS):
            continue
        pshape, n = shape[name], int(np.prod(shape[name]))
        maps = []
        for edge_src in into.get(name, []):
            source, path = _chain(graph, into, edge_src)
            m = _synapse_map(graph, path, source, shape[source], shape)
            if m["fan_in_arr"].size != n:
                raise TnaError(f"{source} -> {name}: the map produces {m['fan_in_arr'].size} values for {n} neurons")
            maps.append(m)
        if not maps:
            raise TnaError(f"population '{name}' has no input")
        primary = max(range(len(maps)), key=lambda i: maps[i]["fan_in_arr"].sum())
        fan_in = np.zeros(n)
        for i, m in enumerate(maps):
            m["nonzero"] = int(round(m["fan_in_arr"].sum()))
            m["dense"] = int(round(m["dense_arr"].sum()))
            m["fan_in"] = int(m["fan_in_arr"].max())
            m["weight_bits"] = TERNARY_BITS if (m["ternary"] and i == primary) else FULL_BITS
            m["merged"] = len(maps) > 1 and i != primary
            fan_in += m["fan_in_arr"]
            fan_out[m["source"]] = fan_out.get(m["source"], 0) + m["fan_out_arr"]
        layers.append({
            "name": name, "kind": type(node).__name__, "shape": tuple(pshape), "neurons": n,
            "synapses_dense": sum(m["dense"] for m in maps), "synapses_nonzero": sum(m["nonzero"] for m in maps),
            "fan_in": int(fan_in.max()), "fan_in_mean": float(fan_in.mean()), "fan_out": 0,
            "weight_bits": sorted({m["weight_bits"] for m in maps}),
            "sparse_weight_bits": sum(m["nonzero"] * m["weight_bits"] for m in maps),
            "dense_weight_bits": sum(m["dense"] * m["weight_bits"] for m in maps),
            "entropy_weight_bits": sum(m["dense"] * (TERNARY_ENTROPY if m["weight_bits"] == TERNARY_BITS
                                                     else FULL_BITS) for m in maps),
            "kernel_parameters": sum(m["kernel_parameters"] for m in maps),
            "maps": [{k: v for k, v in m.items() if not k.endswith("_arr")} for m in maps],
        })
    for layer in layers:
        layer["fan_out"] = int(np.max(fan_out.get(layer["name"], 0)))
    ins = [{"name": i, "shape": shape[i], "neurons": int(np.prod(shape[i])),
            "fan_out": int(np.max(fan_out.get(i, 0)))} for i in inputs]
    meta = dict(graph.metadata or {})
    all_maps = [m for layer in layers for m in layer["maps"]]
    features = {
        "lif_current_free": any(isinstance(graph.nodes[x["name"]], nir.LIF) for x in layers),
        "ternary_weights": any(m["ternary"] and m["kind"] in ("conv", "dense") for m in all_maps),
        "conv2d": any(m["kind"] == "conv" for m in all_maps),
        "avg_pool": any(isinstance(graph.nodes[n], POOLS) for m in all_maps for n in m["nodes"]),
        "residual_add": any(len(x["maps"]) > 1 for x in layers),
        "integrator_readout": any(isinstance(graph.nodes[x["name"]], nir.I) for x in layers),
        "analog_input": meta.get("encoding") == "direct",
    }
    totals = {
        "layers": len(layers),
        "neurons": sum(x["neurons"] for x in layers),
        "spiking_neurons": sum(x["neurons"] for x in layers if x["kind"] != "I"),
        "synapses_dense": sum(x["synapses_dense"] for x in layers),
        "synapses_nonzero": sum(x["synapses_nonzero"] for x in layers),
        "fan_in": max(x["fan_in"] for x in layers),
        "fan_out": max([x["fan_out"] for x in layers] + [i["fan_out"] for i in ins]),
        "sparse_weight_bits": sum(x["sparse_weight_bits"] for x in layers),
        "dense_weight_bits": sum(x["dense_weight_bits"] for x in layers),
        "entropy_weight_bits": sum(x["entropy_weight_bits"] for x in layers),
        "kernel_parameters": sum(x["kernel_parameters"] for x in layers),
    }
    return {"inputs": ins, "layers": layers, "totals": totals, "features": features, "metadata": meta}


# ---------------------------------------------------------------- fitting

def get_target(target) -> Target:
    if isinstance(target, Target):
        return target
    for t in TARGETS:
        if t.key == target:
            return t
    raise TnaError(f"unknown hardware target '{target}'; choose one of: {', '.join(t.key for t in TARGETS)}")


def _chw(shape) -> tuple[int, int, int]:
    return tuple(shape) if len(shape) == 3 else (int(np.prod(shape)), 1, 1)


def _tile_candidates(c, h, w):
    g, r = np.meshgrid(np.arange(1, c + 1), np.arange(1, h + 1), indexing="ij")
    g, r = g.ravel(), r.ravel()
    cols = np.arange(1, w)  # last resort: part of one row of one channel
    return (np.concatenate([g, np.ones_like(cols)]), np.concatenate([r, np.ones_like(cols)]),
            np.concatenate([np.full(g.size, w), cols]))


def _in_axons(m, g, r, w):
    """Distinct source neurons feeding a tile (never more than its neurons x max fan-in)."""
    n = g * r * w
    if m["kind"] == "identity":
        return n
    if m["kind"] == "dense":
        bound = np.full(g.shape, m["n_src"])
    else:
        _, hi, wi = m["in_shape"]
        rows = np.minimum(hi, (r - 1) * m["stride"][0] + m["k"][0])
        cols = np.minimum(wi, (w - 1) * m["stride"][1] + m["k"][1])
        bound = (m["c_in"] if m["kind"] == "conv" else g) * rows * cols
    return np.minimum(bound, n * m["fan_in"])


def _cores_reached(m, dest_shape, plan):
    """Destination cores one source neuron of map m reaches (conservative)."""
    if m["kind"] == "identity":
        return 1
    if m["kind"] == "dense":
        return plan["cores"]
    c, h, w = _chw(dest_shape)
    g, r, wt = plan["tile"]
    bands = lambda n, k, s, t: min(math.ceil(n / t), math.ceil((math.ceil(k / s) - 1) / t) + 1)  # noqa: E731
    rows, cols = bands(h, m["k"][0], m["stride"][0], r), bands(w, m["k"][1], m["stride"][1], wt)
    return (math.ceil(c / g) if m["kind"] == "conv" else 1) * rows * cols


def _place_layer(layer, t: Target, out_cap):
    c, h, w = _chw(layer["shape"])
    g, r, wt = _tile_candidates(c, h, w)
    n = g * r * wt
    cores = np.ceil(c / g) * np.ceil(h / r) * np.ceil(w / wt)
    lo, hi = t.index_bits_per_synapse.value or (0, 0)
    idx = np.clip(np.ceil(np.log2(np.maximum(n, 2))), lo, hi)
    axons = sum(_in_axons(m, g, r, wt) for m in layer["maps"])
    mem = n * sum(m["fan_in"] * (m["weight_bits"] + idx) for m in layer["maps"])
    mem = mem + (t.axon_overhead_bits.value or 0) * axons
    ok = {"neurons per core": n <= (t.neurons_per_core.value or np.inf),
          "input axons per core": axons <= (t.max_in_axons_per_core.value or np.inf),
          "synaptic memory per core": mem <= (t.synapse_memory_bits_per_core.value or np.inf),
          "output axons per core": n <= (out_cap if out_cap is not None else np.inf)}
    allok = np.logical_and.reduce(list(ok.values()))
    if not allok.any():
        first = int(np.argmin(n))  # a single neuron
        failing = [k for k in ("input axons per core", "synaptic memory per core", "output axons per core",
                               "neurons per core") if not ok[k][first]]
        detail = {"input axons per core": f"one neuron has {int(axons[first])} inputs > "
                                          f"{t.max_in_axons_per_core.value} input axons",
                  "synaptic memory per core": f"one neuron's synapses need {int(mem[first])} bits > "
                                              f"{t.synapse_memory_bits_per_core.value}",
                  "output axons per core": f"one neuron reaches more than {t.max_out_axons_per_core.value} cores",
                  "neurons per core": ""}[failing[0]]
        return {"feasible": False, "binding": failing[0], "detail": detail, "cores": int(cores[first]),
                "tile": (1, 1, 1), "neurons_per_core": 1}
    best = int(np.argmin(np.where(allok, cores, np.inf)))
    saving = {}
    for k in ok:
        others = np.logical_and.reduce([v for kk, v in ok.items() if kk != k])
        saving[k] = cores[best] - np.where(others, cores, np.inf).min()
    binding = max(saving, key=saving.get)
    if saving[binding] <= 0:  # no single constraint: two are tight together
        pairs = {}
        for a, b in itertools.combinations(ok, 2):
            others = np.logical_and.reduce([v for kk, v in ok.items() if kk not in (a, b)])
            pairs[f"{a} + {b}"] = cores[best] - np.where(others, cores, np.inf).min()
        binding = max(pairs, key=pairs.get)
        if pairs[binding] <= 0:
            binding = "neurons per core"
    return {"feasible": True, "binding": binding, "detail": "", "cores": int(cores[best]),
            "tile": (int(g[best]), int(r[best]), int(wt[best])), "neurons_per_core": int(n[best]),
            "input_axons": int(axons[best]), "memory_bits": int(mem[best])}


LIMITS = {"neurons per core": "neurons_per_core", "synaptic memory per core": "synapse_memory_bits_per_core",
          "input axons per core": "max_in_axons_per_core", "output axons per core": "max_out_axons_per_core"}


def _plan(res, t: Target) -> list[dict]:
    layers = res["layers"]
    plans: dict[str, dict] = {}
    for layer in reversed(layers):  # destinations first, for the output-axon limit
        out_cap = None
        if t.max_out_axons_per_core.value:
            reach = sum(_cores_reached(m, dest["shape"], plans[dest["name"]])
                        for dest in layers for m in dest["maps"] if m["source"] == layer["name"])
            if reach:
                out_cap = t.max_out_axons_per_core.value // reach
        plans[layer["name"]] = _place_layer(layer, t, out_cap)
    return [{"name": x["name"], **plans[x["name"]]} for x in layers]


def _fit_cores(res, t: Target):
    rows = _plan(res, t)
    bad = [p for p in rows if not p["feasible"]]
    if bad:
        first = bad[0]
        return {"fits": False, "cores": None, "chips": None, "layers": rows,
                "cores_other_layers": sum(p["cores"] for p in rows if p["feasible"]),
                "binding": f"{first['binding']} ({first['name']}: {first['detail']})"}
    cores = sum(p["cores"] for p in rows)
    # the network's binding constraint: the limit whose removal (everywhere) saves the most cores
    saving = {}
    for label, fld in LIMITS.items():
        if getattr(t, fld).value is not None:
            relaxed = _plan(res, dataclasses.replace(t, **{fld: Fig(None)}))
            if all(p["feasible"] for p in relaxed):
                saving[label] = cores - sum(p["cores"] for p in relaxed)
    binding = max(saving, key=saving.get) if saving else "neurons per core"
    if not saving or saving[binding] <= 0:
        cost = defaultdict(int)
        for p in rows:
            cost[p["binding"]] += p["cores"]
        binding = max(cost, key=cost.get)
    tot = res["totals"]
    chip_needs = {"cores per chip": math.ceil(cores / t.cores_per_chip.value)}
    if t.neurons_per_chip.value:
        chip_needs["neurons per chip"] = math.ceil(tot["neurons"] / t.neurons_per_chip.value)
    if t.synapses_per_chip.value:
        chip_needs["synapses per chip"] = math.ceil(tot["synapses_nonzero"] / t.synapses_per_chip.value)
    chips = max(chip_needs.values())
    chip_binding = max(chip_needs, key=chip_needs.get)
    if chip_binding != "cores per chip" and chip_needs[chip_binding] > chip_needs["cores per chip"]:
        binding = chip_binding
    fits = t.max_chips.value is None or chips <= t.max_chips.value
    if not fits:
        binding = f"chips ({chips} needed, the device has {t.max_chips.value}; per-layer: {binding})"
    return {"fits": fits, "cores": cores, "chips": chips, "layers": rows, "binding": binding,
            "chip_needs": chip_needs}


def _speck_layer(layer, t: Target):
    f, h, w = _chw(layer["shape"])
    problems, kernels, srcs = [], [], []
    c_total = 0
    for m in layer["maps"]:
        cin, hi, wi = _chw(m["in_shape"])
        if m["kind"] in ("conv", "pool"):
            k, s, p = m["kernel"], m["stride"], m["padding"]
        elif m["kind"] == "dense":  # a full-size kernel over the source map
            k, s, p = (hi, wi), (1, 1), (0, 0)
        else:
            k, s, p = (1, 1), (1, 1), (0, 0)
        if k[0] != k[1]:
            problems.append(f"kernel {k[0]}x{k[1]} is not square")
        if max(k) > t.max_kernel_size.value:
            problems.append(f"kernel {max(k)} > {t.max_kernel_size.value}")
        if s[0] != s[1] or s[0] not in t.strides.value:
            problems.append(f"stride {s} not in {t.strides.value}")
        if max(p) > t.max_padding.value:
            problems.append(f"padding {max(p)} > {t.max_padding.value}")
        if max(hi, wi) > t.max_input_size.value:
            problems.append(f"input {hi}x{wi} > {t.max_input_size.value}")
        kernels.append(max(k))
        srcs.append((hi, wi, s))
        c_total += cin
    if len(set(srcs)) > 1:
        problems.append("merged inputs differ in resolution or stride (one kernel cannot serve both)")
    if max(f, c_total) > t.max_channels.value:
        problems.append(f"channels {max(f, c_total)} > {t.max_channels.value}")
    if max(h, w) > t.max_output_map.value:
        problems.append(f"output map {h}x{w} > {t.max_output_map.value}")
    lg = lambda v: int(math.ceil(math.log2(v))) if v > 1 else 0  # noqa: E731
    k = max(kernels)
    return {"name": layer["name"], "kernel_memory": c_total * 2 ** (lg(k * k) + lg(f)),
            "neuron_memory": f * 2 ** (lg(h) + lg(w)), "problems": problems}


def _match(need, cores) -> dict | None:
    """Assign each layer a distinct core with enough memory (augmenting paths)."""
    owner: dict[int, int] = {}

    def place(i, seen):
        for c, (km, nm) in enumerate(cores):
            if c in seen or need[i]["kernel_memory"] > km or need[i]["neuron_memory"] > nm:
                continue
            seen.add(c)
            if c not in owner or place(owner[c], seen):
                owner[c] = i
                return True
        return False

    for i in range(len(need)):
        if not place(i, set()):
            return None
    return {need[i]["name"]: c for c, i in owner.items()}


def _fit_speck(res, t: Target):
    need = [_speck_layer(x, t) for x in res["layers"]]
    dests = defaultdict(set)
    for x in res["layers"]:
        for m in x["maps"]:
            dests[m["source"]].add(x["name"])
    violations = [f"{n['name']}: {p}" for n in need for p in n["problems"]]
    violations += [f"{s}: {len(d)} destination layers > {t.max_destinations.value}"
                   for s, d in dests.items() if s in {x["name"] for x in res["layers"]}
                   and len(d) > t.max_destinations.value]
    cores = list(zip(t.core_kernel_memory.value, t.core_neuron_memory.value))
    if len(need) > len(cores):
        binding = f"cores per chip ({len(need)} layers > {len(cores)} cores)"
        return {"fits": False, "cores": len(need), "chips": None, "binding": binding, "violations": violations,
                "layers": need}
    too_big = [n for n in need if not any(n["neuron_memory"] <= nm for _, nm in cores)]
    too_wide = [n for n in need if not any(n["kernel_memory"] <= km for km, _ in cores)]
    assignment = None if too_big or too_wide else _match(need, cores)
    if too_big:
        x = too_big[0]
        binding = f"neuron memory per core ({x['name']}: {x['neuron_memory']} > {max(c[1] for c in cores)})"
    elif too_wide:
        x = too_wide[0]
        binding = f"kernel memory per core ({x['name']}: {x['kernel_memory']} > {max(c[0] for c in cores)})"
    elif assignment is None:
        binding = "per-core kernel/neuron memory (no assignment of layers to the 9 cores)"
    elif violations:
        binding = f"layer limits ({violations[0]})"
    else:
        binding = "cores per chip" if len(need) == len(cores) else "none"
    fits = assignment is not None and not violations
    for n in need:
        n["core"] = None if assignment is None else assignment.get(n["name"])
    return {"fits": fits, "cores": len(need), "chips": 1 if fits else None, "binding": binding,
            "violations": violations, "layers": need}


def _fit_single_core(res, t: Target):
    tot = res["totals"]
    readout = sum(x["neurons"] for x in res["layers"] if x["kind"] == "I")
    hidden = tot["neurons"] - readout
    demand = [("hidden neurons", hidden, t.neurons_per_core.value),
              ("input channels", sum(i["neurons"] for i in res["inputs"]), t.max_input_channels.value),
              ("output neurons", readout, t.max_output_neurons.value),
              ("fan-out per neuron", tot["fan_out"], t.max_fan_out.value),
              ("fan-in per neuron", tot["fan_in"], t.max_fan_in.value)]
    over = [(name, need, cap) for name, need, cap in demand if cap is not None and need > cap]
    if not over:
        return {"fits": True, "cores": 1, "chips": 1, "binding": "none", "violations": []}
    over.sort(key=lambda v: v[1] / v[2], reverse=True)
    return {"fits": False, "cores": None, "chips": None, "violations": [f"{n}: {a} > {b}" for n, a, b in over],
            "binding": f"{over[0][0]} ({over[0][1]} > {over[0][2]})"}


def _fit_host(res, t: Target, graph):
    notes = []
    if t.decay_bits.value:
        dt = float(res["metadata"].get("dt", 1e-3))
        taus = {float(np.asarray(graph.nodes[x["name"]].tau).ravel()[0]) for x in res["layers"]
                if isinstance(graph.nodes[x["name"]], nir.LIF)}
        for tau in sorted(taus):
            dv = 4096 * dt / tau
            notes.append(f"tau {tau:g} s, dt {dt:g} s: dv = {dv:g}" + ("" if abs(dv - round(dv)) < 1e-3
                                                                       else f" (rounds to {round(dv)})"))
    return {"fits": True, "cores": None, "chips": None, "binding": "none (CPU memory only)", "notes": notes}


def fit(graph: nir.NIRGraph, target) -> dict:
    """Does the graph fit `target` (a Target or its key)? Cores, chips, the binding constraint, and which
    of the export's features the target does not support."""
    return _fit(graph, resources(graph), get_target(target))


def _fit(graph, res, t: Target) -> dict:
    if t.mapping == "host":
        out = _fit_host(res, t, graph)
    elif t.mapping == "cores":
        out = _fit_cores(res, t)
    elif t.mapping == "layer-per-core":
        out = _fit_speck(res, t)
    else:
        out = _fit_single_core(res, t)
    unsupported, partial = [], []
    for f in FEATURES:
        if not res["features"][f]:
            continue
        s = getattr(t.support, f)
        if s.value is False:
            unsupported.append(f"{f}: {s.note}" if s.note else f)
        elif s.value is not True:
            partial.append(f"{f}: {'unknown' if s.value is None else 'partial'}" + (f" ({s.note})" if s.note else ""))
    out.setdefault("violations", [])
    out.setdefault("notes", [])
    out.update({"target": t.key, "name": t.name, "unsupported": unsupported, "partial": partial,
                "deployable": out["fits"] and not unsupported})
    return out


# ---------------------------------------------------------------- report

def _si(n) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.3g}{unit}"
    return f"{n:g}"


def fit_report(graph: nir.NIRGraph) -> str:
    """A readable table: the graph's resources per layer, then the fit on every target."""
    res = resources(graph)
    lines = ["Resources per layer (synapses: dense = every in-bounds pair, nz = non-zero; bits = stored "
             "non-zero weights)",
             f"{'layer':<18} {'kind':<4} {'shape':<14} {'neurons':>8} {'syn dense':>10} {'syn nz':>10} "
             f"{'fan-in':>7} {'fan-out':>7} {'w bits':>6} {'weight mem':>10}"]
    for i in res["inputs"]:
        lines.append(f"{i['name']:<18} {'in':<4} {str(i['shape']):<14} {i['neurons']:>8} {'':>10} {'':>10} "
                     f"{'':>7} {i['fan_out']:>7}")
    for x in res["layers"]:
        lines.append(f"{x['name']:<18} {x['kind']:<4} {str(x['shape']):<14} {x['neurons']:>8} "
                     f"{_si(x['synapses_dense']):>10} {_si(x['synapses_nonzero']):>10} {x['fan_in']:>7} "
                     f"{x['fan_out']:>7} {'/'.join(map(str, x['weight_bits'])):>6} "
                     f"{_si(x['sparse_weight_bits'] / 8) + 'B':>10}")
    t = res["totals"]
    lines.append(f"{'total':<18} {'':<4} {'':<14} {t['neurons']:>8} {_si(t['synapses_dense']):>10} "
                 f"{_si(t['synapses_nonzero']):>10} {t['fan_in']:>7} {t['fan_out']:>7} {'':>6} "
                 f"{_si(t['sparse_weight_bits'] / 8) + 'B':>10}")
    used = [f for f in FEATURES if res["features"][f]]
    lines += ["", f"features used: {', '.join(used)}", "",
              f"{'target':<40} {'fits':<4} {'cores':>6} {'chips':>5}  binding constraint / unsupported"]
    for tg in TARGETS:
        r = _fit(graph, res, tg)
        cores = "-" if r["cores"] is None else str(r["cores"])
        chips = "-" if r["chips"] is None else str(r["chips"])
        lines.append(f"{tg.name:<40} {'yes' if r['fits'] else 'no':<4} {cores:>6} {chips:>5}  {r['binding']}")
        for u in r["unsupported"]:
            lines.append(f"{'':<59}unsupported: {u}")
        if r["partial"]:
            lines.append(f"{'':<59}partial/unconfirmed: {', '.join(p.split(':')[0] for p in r['partial'])}")
    lines += ["", "fits = the resources fit; a target also needs every feature used (see 'unsupported' and "
                  "hardware_targets.md). Figures marked estimated in deploy/targets.py are not confirmed."]
    return "\n".join(lines)
