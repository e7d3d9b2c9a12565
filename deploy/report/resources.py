"""What a NIR graph needs in hardware: neurons, synapses, fan-in/out and weight bits per layer.

`resources(graph)` counts, per layer (a neuron population - `nir.LIF`, or the `nir.I` readout -
together with every synapse map that ends in it; the graph is read by `deploy.graph.read`):

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

A synapse map is a link of the reader: `Conv2d` (a pooling before it is folded in: a kernel of
(k-1) s_pool + k_pool taps with stride s s_pool), `Affine`/`Linear` (the poolings and the Flatten
before it folded into its effective weights, `deploy.graph.read.dense_matrix`), a pooling alone
(a depthwise map), or nothing (an identity edge: a residual shortcut).

Whether and how the counts fit each hardware target is `deploy/report/fit.py`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from deploy.graph.read import Graph, Link, Window, dense_matrix, read, ternary_channels
from tna.errors import TnaError

COUNTED = ("Input", "Output", "LIF", "I", "Conv2d", "Affine", "Linear", "Flatten", "AvgPool2d", "SumPool2d")

TERNARY_BITS, FULL_BITS, TERNARY_ENTROPY = 2, 8, math.log2(3)
FEATURES = ("lif_current_free", "ternary_weights", "conv2d", "avg_pool", "residual_add", "integrator_readout",
            "analog_input")


def _crop(x: torch.Tensor, pad: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
    x = x[..., pad[0]:pad[0] + size[0], pad[1]:pad[1] + size[1]]
    short = (size[1] - x.shape[-1], size[0] - x.shape[-2])
    return F.pad(x, (0, short[0], 0, short[1])) if short[0] > 0 or short[1] > 0 else x


@torch.no_grad()
def _conv_map(win: Window, w: np.ndarray, in_shape, valid=None, params=None):
    """Fan-in, dense synapses and fan-out arrays of a conv (geometry `win`, weight `w`) over an input
    of `in_shape`; valid: (rows, cols) of the input that exist (a folded pooling may not cover it all)."""
    (kh, kw), stride, pad, dil, groups = win.kernel, win.stride, win.padding, win.dilation, win.groups
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
    return (fan_in.numpy(), dense.numpy(), fan_out.numpy(), bool(ternary_channels(w).all()),
            w.size if params is None else params, geo)


@torch.no_grad()
def _pooled_conv(pool, conv, in_shape):
    """Pooling followed by a conv, as one conv on the unpooled map: kernel (k-1) s_pool + k_pool,
    stride s s_pool, padding p s_pool + p_pool; each tap's weight spread over its pooling window."""
    cw = conv.window
    if cw.dilation != (1, 1) or cw.groups != 1:
        raise TnaError("pooling before a dilated or grouped convolution is not supported by the resource check")
    (kh, kw), (ph, pw), (sh, sw), (qh, qw) = cw.kernel, pool.window.kernel, pool.window.stride, pool.window.padding
    w = torch.as_tensor(conv.weight.astype(np.float32))
    o, i = w.shape[:2]
    k = torch.ones(1, 1, ph, pw) / pool.divisor
    weff = F.conv_transpose2d(w.reshape(o * i, 1, kh, kw), k, stride=(sh, sw)).reshape(o, i, *(
        (kh - 1) * sh + ph, (kw - 1) * sw + pw))
    c, h, wd = in_shape
    hp, wp = pool.window.out_hw(h, wd)
    win = Window(tuple(weff.shape[2:]), (cw.stride[0] * sh, cw.stride[1] * sw),
                 (cw.padding[0] * sh + qh, cw.padding[1] * sw + qw))
    valid = (min(h, (hp - 1) * sh - qh + ph), min(wd, (wp - 1) * sw - qw + pw))
    return _conv_map(win, weff.numpy().astype(np.float64), in_shape, valid=valid, params=int(conv.weight.size))


def _dense_map(g: Graph, link: Link, src_shape):
    """Affine/Linear with the pass nodes before it folded in: an (O, N_src) effective weight."""
    weff = dense_matrix(g, link)
    mask = weff != 0
    geo = {"n_src": int(mask.any(0).sum()), "in_shape": tuple(src_shape)}
    return (mask.sum(1).astype(float), np.full(weff.shape[0], float(weff.shape[1])), mask.sum(0).astype(float),
            bool(ternary_channels(weff).all()), int(link.weighted.weight.size), geo)


@torch.no_grad()
def _pool_map(pool, in_shape):
    (kh, kw), st, pad = pool.window.kernel, pool.window.stride, pool.window.padding
    c, h, w = in_shape
    k = torch.ones(c, 1, kh, kw)
    fan_in = F.conv2d(torch.ones(1, c, h, w), k, stride=st, padding=pad, groups=c)[0]
    fan_out = _crop(F.conv_transpose2d(torch.ones(1, *fan_in.shape), k, stride=st, groups=c), pad, (h, w))[0]
    geo = {"k": (kh, kw), "kernel": (kh, kw), "stride": st, "padding": pad, "in_shape": tuple(in_shape)}
    return fan_in.numpy(), fan_in.numpy(), fan_out.numpy(), True, 0, geo


def _synapse_map(g: Graph, link: Link) -> dict:
    src_shape = g.shape(link.source)
    where = " -> ".join((link.source,) + link.names + (link.target,))
    w = link.weighted
    if w is not None and w.kind == "Conv2d":
        pools = link.passes
        if len(pools) > 1 or any(p.kind not in ("AvgPool2d", "SumPool2d") for p in pools):
            raise TnaError(f"{where}: only one pooling may precede a convolution in the resource check")
        kind = "conv"
        out = _pooled_conv(pools[0], w, src_shape) if pools else _conv_map(w.window, w.weight, src_shape)
    elif w is not None:
        kind, out = "dense", _dense_map(g, link, src_shape)
    elif link.pools:
        if len(link.pools) > 1:
            raise TnaError(f"{where}: two poolings in a row are not supported by the resource check")
        kind, out = "pool", _pool_map(link.pools[0], src_shape)
    else:
        n = int(np.prod(src_shape))
        kind, out = "identity", (np.ones(n), np.ones(n), np.ones(n), True, 0, {"in_shape": tuple(src_shape)})
    fan_in, dense, fan_out, ternary, params, geo = out
    return {"source": link.source, "nodes": list(link.names), "kind": kind, "fan_in_arr": fan_in.ravel(),
            "dense_arr": dense.ravel(), "fan_out_arr": fan_out.ravel(), "ternary": ternary,
            "kernel_parameters": params, **geo}


def resources(graph) -> dict:
    """Per-layer and total neurons, synapses, fan-in/out and weight bits of a feed-forward NIR graph
    (a nir.NIRGraph, or the reader's Graph)."""
    g = graph if isinstance(graph, Graph) else read(graph)
    for name, node in g.nodes.items():  # what the report counts: the node types tna exports
        if node.kind not in COUNTED:
            raise TnaError(f"NIR node {name}: nir.{node.kind} is not counted by the resource report (it counts "
                           f"{', '.join(COUNTED)})")
    if g.recurrent:
        raise TnaError("the resource report counts feed-forward graphs; this one has recurrent connections")
    layers, fan_out = [], {}
    for name in g.populations:
        node, n = g.nodes[name], int(np.prod(g.shape(name)))
        maps = []
        for link in g.links[name]:
            m = _synapse_map(g, link)
            if m["fan_in_arr"].size != n:
                raise TnaError(f"{link.source} -> {name}: the map produces {m['fan_in_arr'].size} values for {n} "
                               "neurons")
            maps.append(m)
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
            "name": name, "kind": node.kind, "shape": tuple(g.shape(name)), "neurons": n,
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
    ins = [{"name": i, "shape": g.shape(i), "neurons": int(np.prod(g.shape(i))),
            "fan_out": int(np.max(fan_out.get(i, 0)))} for i in g.inputs]
    all_maps = [m for layer in layers for m in layer["maps"]]
    features = {
        "lif_current_free": any(x["kind"] == "LIF" for x in layers),
        "ternary_weights": any(m["ternary"] and m["kind"] in ("conv", "dense") for m in all_maps),
        "conv2d": any(m["kind"] == "conv" for m in all_maps),
        "avg_pool": any(g.nodes[n].kind in ("AvgPool2d", "SumPool2d") for m in all_maps for n in m["nodes"]),
        "residual_add": any(len(x["maps"]) > 1 for x in layers),
        "integrator_readout": any(x["kind"] == "I" for x in layers),
        "analog_input": g.metadata.get("encoding") == "direct",
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
    taus = sorted({float(np.asarray(g.nodes[x["name"]].node.tau).ravel()[0]) for x in layers if x["kind"] == "LIF"})
    return {"inputs": ins, "layers": layers, "totals": totals, "features": features, "metadata": dict(g.metadata),
            "lif_taus": taus}
