"""Operation counts on hand-made graphs where every number can be counted by hand."""

import nir
import numpy as np
import pytest

from deploy.report.accounting import count
from deploy.report.energy import HOROWITZ_45NM, LOIHI1_ENERGY, ann_energy_pj, snn_energy_pj


def lif(shape):
    z = np.zeros(shape, np.float32)
    return nir.LIF(tau=z + 2e-3, r=z + 1, v_leak=z, v_threshold=z + 1, v_reset=z)


def graph(conv_w, aff_w, pool=False):
    c = conv_w.shape[0]
    side = 2 if pool else 4
    nodes = {
        "input": nir.Input({"input": np.array([1, 4, 4])}),
        "conv": nir.Conv2d(input_shape=(4, 4), weight=conv_w, stride=1, padding=1, dilation=1, groups=1,
                           bias=np.zeros(c, np.float32)),
        "lif": lif((c, 4, 4)),
        "flat": nir.Flatten({"input": np.array([c, side, side])}, start_dim=0),
        "fc": nir.Affine(weight=aff_w, bias=np.zeros(aff_w.shape[0], np.float32)),
        "readout": nir.I(r=np.ones(aff_w.shape[0], np.float32)),
        "output": nir.Output({"output": np.array([aff_w.shape[0]])}),
    }
    edges = [("input", "conv"), ("conv", "lif"), ("flat", "fc"), ("fc", "readout"), ("readout", "output")]
    if pool:
        nodes["pool"] = nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))
        edges += [("lif", "pool"), ("pool", "flat")]
    else:
        edges += [("lif", "flat")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def test_spiking_input_conv_and_affine_synops():
    conv_w = np.ones((2, 1, 3, 3), np.float32)
    conv_w[1, 0, 0, 0] = 0  # one zero tap in channel 1
    aff_w = np.zeros((3, 32), np.float32)
    aff_w[:, 5] = [1, 0, -1]  # neuron (c0, y1, x1) feeds 2 non-zero synapses
    g = graph(conv_w, aff_w)
    x = np.zeros((1, 2, 1, 4, 4), np.float32)
    x[0, 0, 0, 0, 0] = 1  # a corner spike reaches a 2x2 block of outputs in each channel
    s = np.zeros((1, 2, 2, 4, 4), np.uint8)
    s[0, 1, 0, 1, 1] = 1
    c = count(g, {"lif": s}, x, analog_input=False)
    conv = next(r for r in c["synapses"] if r["node"] == "conv")
    # channel 0: 4 taps reached, all non-zero; channel 1: the zero tap (0,0) is among them
    # (input (0,0) reaches output (1,1) through tap (0,0)) -> 3
    assert conv["synops_per_sample"] == 7
    assert next(r for r in c["synapses"] if r["node"] == "fc")["synops_per_sample"] == 2
    assert c["totals"]["spikes"] == 1 and c["totals"]["synops"] == 9
    assert c["layers"][0]["layer"] == "input" and c["layers"][0]["synops_out_per_sample"] == 7
    lif_row = next(r for r in c["layers"] if r["layer"] == "lif")
    assert lif_row["neurons"] == 32 and lif_row["neuron_updates_per_sample"] == 64
    assert lif_row["firing_rate"] == pytest.approx(1 / 64)
    assert conv["ann_macs"] == 2 * 16 * 9 and c["totals"]["ann_macs"] == 2 * 16 * 9 + 3 * 32


def test_analog_input_counts_macs_not_synops():
    g = graph(np.ones((2, 1, 3, 3), np.float32), np.ones((3, 32), np.float32))
    x = np.full((2, 3, 1, 4, 4), 0.5, np.float32)
    c = count(g, {"lif": np.zeros((2, 3, 2, 4, 4), np.uint8)}, x, analog_input=True)
    conv = next(r for r in c["synapses"] if r["node"] == "conv")
    assert conv["synops_per_sample"] == 0
    assert conv["analog_macs_per_sample"] == 2 * 16 * 9 * 3  # outputs x fan-in x T
    assert c["totals"]["synops"] == 0


def test_pooling_is_folded_into_the_next_synapse_layer():
    aff_w = np.ones((1, 8), np.float32)
    g = graph(np.ones((2, 1, 3, 3), np.float32), aff_w, pool=True)
    s = np.zeros((1, 1, 2, 4, 4), np.uint8)
    s[0, 0, 0, :2, :2] = 1  # four spikes in one pooling window
    c = count(g, {"lif": s}, np.zeros((1, 1, 1, 4, 4), np.float32), analog_input=False)
    assert next(r for r in c["synapses"] if r["node"] == "fc")["synops_per_sample"] == 4


def test_energy_models_apply_their_published_constants():
    counts = {"synops": 1000, "analog_macs": 10, "neuron_updates": 500, "spikes": 100, "ann_macs": 5000}
    assert snn_energy_pj(counts, HOROWITZ_45NM) == pytest.approx(1000 * 0.9 + 10 * 4.6)
    assert ann_energy_pj(5000) == pytest.approx(5000 * 4.6)
    assert snn_energy_pj(counts, LOIHI1_ENERGY) == pytest.approx(1010 * 23.6 + 100 * 81 + 400 * 52 + 100 * 1.7)
    assert LOIHI1_ENERGY.pre_silicon and not HOROWITZ_45NM.pre_silicon
