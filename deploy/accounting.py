"""Count what a spiking network does on given inputs: spikes, synaptic operations, neuron
updates, and the MACs of the same-shape ANN, per layer, from recorded spikes and its NIR graph.

The same function counts the trained model's spikes (reference.h5) and Lava's, so the two
accounts can be set side by side (in fixed point they must be identical).

- synaptic operation (SynOp): one spike reaching one NON-ZERO synapse (ternary zeros cost
  nothing). For a conv it is the conv of the spike map with the kernel's non-zero mask, summed;
  average pooling before a synapse layer is folded into it (each spike reaches every tap of the
  composed kernel), an identity shortcut is one op per spike.
- analog MAC: a direct (analog) input is multiplied into the first layer at every time step.
- neuron update: every neuron of every spiking layer, every time step.
- ANN MACs: the same graph as an ANN, run once: output elements x fan-in (dense, zeros included).
"""

from __future__ import annotations

import nir
import numpy as np
import torch
import torch.nn.functional as F

SYNAPTIC = (nir.Conv2d, nir.Affine)
PASS = (nir.Flatten, nir.AvgPool2d)


def _pair(v):
    v = np.atleast_1d(np.asarray(v)).tolist()
    return tuple(v * 2 if len(v) == 1 else v)


def _sources(graph: nir.NIRGraph) -> dict[str, list[str]]:
    into: dict[str, list[str]] = {}
    for s, t in graph.edges:
        into.setdefault(t, []).append(s)
    return into


def _trace(graph, into, name) -> tuple[str, list[str]]:
    """Walk back from a node through pooling/flatten to the spiking layer (or input) feeding it."""
    path = []
    while isinstance(graph.nodes[name], PASS):
        path.append(name)
        name = into[name][0]
    return name, path[::-1]


def _apply_pass(graph, path, x):
    for name in path:
        node = graph.nodes[name]
        if isinstance(node, nir.AvgPool2d):  # as sum pooling: each spike counts once per tap
            k = _pair(node.kernel_size)
            x = F.avg_pool2d(x, k, _pair(node.stride), _pair(node.padding)) * (k[0] * k[1])
        else:
            x = x.flatten(1)
    return x


def _out_elements(node, x_shape) -> int:
    if isinstance(node, nir.Affine):
        return node.weight.shape[0]
    w = node.weight
    h = (x_shape[-2] + 2 * _pair(node.padding)[0] - _pair(node.dilation)[0] * (w.shape[2] - 1) - 1) // _pair(node.stride)[0] + 1
    wd = (x_shape[-1] + 2 * _pair(node.padding)[1] - _pair(node.dilation)[1] * (w.shape[3] - 1) - 1) // _pair(node.stride)[1] + 1
    return w.shape[0] * h * wd


@torch.no_grad()
def count(graph: nir.NIRGraph, spikes: dict, inputs: np.ndarray, analog_input: bool) -> dict:
    """spikes: {lif node: [N, T, *shape]}; inputs: [N, T, *input_shape]. Per-sample averages."""
    into = _sources(graph)
    n, T = inputs.shape[:2]
    signal = {name: torch.as_tensor(np.asarray(s), dtype=torch.float32) for name, s in spikes.items()}
    signal["input"] = torch.as_tensor(np.asarray(inputs), dtype=torch.float32)
    synapse_rows, outgoing = [], {}
    for name, node in graph.nodes.items():
        for src_edge in into.get(name, []):
            if isinstance(node, nir.LIF) and isinstance(graph.nodes[src_edge], nir.LIF):  # identity shortcut
                ops = float(signal[src_edge].sum()) / n
                synapse_rows.append({"node": f"{src_edge}->{name}", "source": src_edge, "synops_per_sample": ops,
                                     "analog_macs_per_sample": 0.0, "ann_macs": int(np.prod(graph.nodes[name].tau.shape)),
                                     "nonzero_weights": int(np.prod(graph.nodes[name].tau.shape))})
                outgoing[src_edge] = outgoing.get(src_edge, 0.0) + ops
        if not isinstance(node, SYNAPTIC):
            continue
        src, path = _trace(graph, into, into[name][0])
        x = _apply_pass(graph, path, signal[src].flatten(0, 1))  # [N*T, ...]
        mask = torch.as_tensor(node.weight != 0, dtype=torch.float32)
        if isinstance(node, nir.Affine):
            per_frame = (x.flatten(1) @ mask.T).sum()
        else:
            per_frame = F.conv2d(x, mask, None, _pair(node.stride), _pair(node.padding), _pair(node.dilation)).sum()
        fan_in = int(np.prod(node.weight.shape[1:]))
        out_elems = _out_elements(node, x.shape)
        is_analog = src == "input" and analog_input
        ops = float(per_frame) / n
        synapse_rows.append({
            "node": name, "source": src,
            "synops_per_sample": 0.0 if is_analog else ops,
            # analog input: every non-zero synapse of every output multiplies, every step
            "analog_macs_per_sample": float(out_elems * fan_in * T * float(mask.mean())) if is_analog else 0.0,
            "ann_macs": out_elems * fan_in, "nonzero_weights": int(mask.sum()),
        })
        if not is_analog:
            outgoing[src] = outgoing.get(src, 0.0) + ops
    layers = []
    for name, s in spikes.items():
        neurons = int(np.prod(np.asarray(s).shape[2:]))
        total = float(np.asarray(s).sum()) / n
        layers.append({"layer": name, "neurons": neurons, "spikes_per_sample": total,
                       "firing_rate": total / (neurons * T), "synops_out_per_sample": outgoing.get(name, 0.0),
                       "neuron_updates_per_sample": neurons * T})
    if "input" in outgoing:  # spiking input (events, rate code) drives synops too
        layers.insert(0, {"layer": "input", "neurons": int(np.prod(inputs.shape[2:])),
                          "spikes_per_sample": float(inputs.sum()) / n, "firing_rate": float(inputs.mean()),
                          "synops_out_per_sample": outgoing["input"], "neuron_updates_per_sample": 0})
    totals = {
        "spikes": sum(r["spikes_per_sample"] for r in layers if r["layer"] != "input"),
        "synops": sum(r["synops_per_sample"] for r in synapse_rows),
        "analog_macs": sum(r["analog_macs_per_sample"] for r in synapse_rows),
        "neuron_updates": sum(r["neuron_updates_per_sample"] for r in layers),
        "ann_macs": sum(r["ann_macs"] for r in synapse_rows),
    }
    return {"samples": n, "T": T, "layers": layers, "synapses": synapse_rows, "totals": totals}
