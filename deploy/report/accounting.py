"""Count what a spiking network does on given inputs: spikes, synaptic operations, neuron
updates, and the MACs of the same-shape ANN, per layer, from recorded spikes and its NIR graph.

The same function counts the trained model's spikes (reference.h5) and Lava's, so the two
accounts can be set side by side (in fixed point they must be identical). The graph is read by
`deploy.graph.read`; each link into a population (source -> pooling/flatten -> weighted node) is
one row:

- synaptic operation (SynOp): one spike reaching one NON-ZERO synapse (ternary zeros cost
  nothing). For a conv it is the conv of the spike map with the kernel's non-zero mask, summed;
  average pooling before a synapse layer is folded into it (each spike reaches every tap of the
  composed kernel), an identity shortcut is one op per spike.
- analog MAC: a direct (analog) input is multiplied into the first layer at every time step.
- neuron update: every neuron of every spiking layer, every time step.
- ANN MACs: the same graph as an ANN, run once: output elements x fan-in (dense, zeros included).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from deploy.graph.read import read


def _through_passes(link, x: torch.Tensor) -> torch.Tensor:
    """The source's activity [M, ...] through the link's pooling/flatten nodes; a pooling counts as
    a sum pooling (each spike counts once per window it falls in)."""
    for node in link.passes:
        if node.window is not None:
            w = node.window
            x = F.avg_pool2d(x, w.kernel, w.stride, w.padding) * w.area
        else:
            x = x.flatten(1)
    return x


@torch.no_grad()
def count(graph, spikes: dict, inputs: np.ndarray, analog_input: bool) -> dict:
    """spikes: {lif node: [N, T, *shape]}; inputs: [N, T, *input_shape]. Per-sample averages."""
    g = read(graph)
    n, T = inputs.shape[:2]
    source_name = g.inputs[0]
    signal = {name: torch.as_tensor(np.asarray(s), dtype=torch.float32) for name, s in spikes.items()}
    signal[source_name] = torch.as_tensor(np.asarray(inputs), dtype=torch.float32)
    synapse_rows, outgoing = [], {}
    for target in g.populations:
        for link in g.links[target]:
            x = _through_passes(link, signal[link.source].flatten(0, 1))  # [N*T, ...]
            node = link.weighted
            if node is None:  # identity (a residual shortcut): one op per value passed on
                ops = float(x.sum()) / n
                neurons = int(np.prod(g.shape(target)))
                synapse_rows.append({"node": f"{link.source}->{target}", "source": link.source,
                                     "synops_per_sample": ops, "analog_macs_per_sample": 0.0,
                                     "ann_macs": neurons, "nonzero_weights": neurons})
                outgoing[link.source] = outgoing.get(link.source, 0.0) + ops
                continue
            mask = torch.as_tensor(node.weight != 0, dtype=torch.float32)
            if node.kind == "Conv2d":
                w = node.window
                per_frame = F.conv2d(x, mask, None, w.stride, w.padding, w.dilation, w.groups).sum()
            else:
                per_frame = (x.flatten(1) @ mask.T).sum()
            fan_in = int(np.prod(node.weight.shape[1:]))
            out_elems = int(np.prod(node.shape))
            is_analog = link.source == source_name and analog_input
            ops = float(per_frame) / n
            synapse_rows.append({
                "node": node.name, "source": link.source,
                "synops_per_sample": 0.0 if is_analog else ops,
                # analog input: every non-zero synapse of every output multiplies, every step
                "analog_macs_per_sample": float(out_elems * fan_in * T * float(mask.mean())) if is_analog else 0.0,
                "ann_macs": out_elems * fan_in, "nonzero_weights": int(mask.sum()),
            })
            if not is_analog:
                outgoing[link.source] = outgoing.get(link.source, 0.0) + ops
    layers = []
    for name, s in spikes.items():
        neurons = int(np.prod(np.asarray(s).shape[2:]))
        total = float(np.asarray(s).sum()) / n
        layers.append({"layer": name, "neurons": neurons, "spikes_per_sample": total,
                       "firing_rate": total / (neurons * T), "synops_out_per_sample": outgoing.get(name, 0.0),
                       "neuron_updates_per_sample": neurons * T})
    if source_name in outgoing:  # spiking input (events, rate code) drives synops too
        layers.insert(0, {"layer": "input", "neurons": int(np.prod(inputs.shape[2:])),
                          "spikes_per_sample": float(inputs.sum()) / n, "firing_rate": float(inputs.mean()),
                          "synops_out_per_sample": outgoing[source_name], "neuron_updates_per_sample": 0})
    totals = {
        "spikes": sum(r["spikes_per_sample"] for r in layers if r["layer"] != "input"),
        "synops": sum(r["synops_per_sample"] for r in synapse_rows),
        "analog_macs": sum(r["analog_macs_per_sample"] for r in synapse_rows),
        "neuron_updates": sum(r["neuron_updates_per_sample"] for r in layers),
        "ann_macs": sum(r["ann_macs"] for r in synapse_rows),
    }
    return {"samples": n, "T": T, "layers": layers, "synapses": synapse_rows, "totals": totals}
