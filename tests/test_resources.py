"""Resource counts on hand-built NIR graphs (counted by hand below), the fit on each target, and the
real convnet / resnet20 exports."""

import nir
import numpy as np
import pytest
import torch

from deploy.graph.from_model import model_to_nir
from deploy.report import targets
from deploy.report.fit import fit, get_target
from deploy.report.report import fit_report
from deploy.report.resources import resources
from tna.errors import TnaError
from tna.models import build_model
from tna.neuron import LIF


def lif(shape):
    f = lambda v: np.full(shape, v, dtype=np.float32)  # noqa: E731
    return nir.LIF(tau=f(2e-3), r=f(1.0), v_leak=f(0.0), v_threshold=f(1.0), v_reset=f(0.0))


def graph(nodes, edges, encoding="direct"):
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": 1e-3, "T": 4, "encoding": encoding})


def inp(shape):
    return nir.Input(input_type={"input": np.array(shape)})


def conv_graph():
    """input (1,4,4) -> conv 3x3 pad 1 (2 channels) -> LIF (2,4,4) -> flatten -> affine (3, 32) -> I (3).

    conv channel 0: only the centre tap (+0.5); channel 1: all 9 taps (+-1).
    affine row 0: all 32 inputs (0.25); row 1: the first 8 (-0.5); row 2: none.
    """
    w = np.zeros((2, 1, 3, 3), np.float32)
    w[0, 0, 1, 1] = 0.5
    w[1, 0] = np.array([[1, -1, 1], [-1, 1, -1], [1, -1, 1]])
    a = np.zeros((3, 32), np.float32)
    a[0] = 0.25
    a[1, :8] = -0.5
    nodes = {"input": inp((1, 4, 4)),
             "conv": nir.Conv2d(input_shape=(4, 4), weight=w, stride=1, padding=1, dilation=1, groups=1,
                                bias=np.zeros(2, np.float32)),
             "lif": lif((2, 4, 4)),
             "flat": nir.Flatten(input_type={"input": np.array((2, 4, 4))}, start_dim=0, end_dim=-1),
             "fc": nir.Affine(weight=a, bias=np.zeros(3, np.float32)),
             "readout": nir.I(r=np.full(3, 250.0, np.float32)),
             "output": nir.Output(output_type={"output": np.array([3])})}
    edges = [("input", "conv"), ("conv", "lif"), ("lif", "flat"), ("flat", "fc"), ("fc", "readout"),
             ("readout", "output")]
    return graph(nodes, edges)


def residual_graph():
    """input (4) -> diag -> a (4) -> all-ones -> b (4), plus a -> b directly; b -> full-precision fc -> I (2)."""
    nodes = {"input": inp((4,)), "fc1": nir.Affine(weight=np.eye(4, dtype=np.float32) * 0.5, bias=np.zeros(4)),
             "a": lif((4,)), "fc2": nir.Affine(weight=np.ones((4, 4), np.float32), bias=np.zeros(4)),
             "b": lif((4,)),
             "fc3": nir.Affine(weight=np.array([[0.1, 0.2, 0.3, 0.4], [0.5, 0.0, -0.7, 0.1]], np.float32),
                               bias=np.zeros(2)),
             "readout": nir.I(r=np.full(2, 250.0, np.float32)),
             "output": nir.Output(output_type={"output": np.array([2])})}
    edges = [("input", "fc1"), ("fc1", "a"), ("a", "fc2"), ("fc2", "b"), ("a", "b"), ("b", "fc3"),
             ("fc3", "readout"), ("readout", "output")]
    return graph(nodes, edges, encoding="rate")


def test_conv_graph_counts_by_hand():
    r = resources(conv_graph())
    lay = {x["name"]: x for x in r["layers"]}
    # 4x4 map, 3x3 kernel, padding 1: in-bounds taps are 4 at corners, 6 on edges, 9 inside
    taps = 4 * 4 + 8 * 6 + 4 * 9  # = 100 per (output channel, input channel)
    assert lay["lif"]["neurons"] == 32
    assert lay["lif"]["synapses_dense"] == 2 * taps
    assert lay["lif"]["synapses_nonzero"] == 16 + taps  # centre tap always in bounds; all 9 taps
    assert lay["lif"]["fan_in"] == 9
    assert lay["lif"]["weight_bits"] == [2]
    assert r["inputs"][0]["fan_out"] == 1 + 9  # channel 0's centre tap + channel 1's 3x3 receptive fields
    assert lay["readout"]["neurons"] == 3
    assert lay["readout"]["synapses_dense"] == 96
    assert lay["readout"]["synapses_nonzero"] == 32 + 8
    assert lay["readout"]["fan_in"] == 32
    assert lay["lif"]["fan_out"] == 2  # flat index 0..7 feed rows 0 and 1, the others row 0 only
    t = r["totals"]
    assert (t["neurons"], t["spiking_neurons"], t["synapses_nonzero"], t["synapses_dense"]) == (35, 32, 156, 296)
    assert t["sparse_weight_bits"] == 2 * 156
    assert t["entropy_weight_bits"] == pytest.approx(296 * np.log2(3))
    assert r["features"]["conv2d"] and r["features"]["analog_input"] and not r["features"]["residual_add"]


def test_residual_and_full_precision_by_hand():
    r = resources(residual_graph())
    lay = {x["name"]: x for x in r["layers"]}
    b = lay["b"]
    assert [m["kind"] for m in b["maps"]] == ["dense", "identity"]
    assert (b["synapses_nonzero"], b["synapses_dense"], b["fan_in"]) == (16 + 4, 16 + 4, 4 + 1)
    assert b["weight_bits"] == [2, 8]  # the shortcut's scale relative to fc2 needs 8 bits
    assert lay["a"]["fan_out"] == 4 + 1
    assert lay["a"]["fan_in"] == 1 and lay["a"]["synapses_nonzero"] == 4
    assert lay["readout"]["weight_bits"] == [8] and lay["readout"]["synapses_nonzero"] == 7
    assert r["features"]["residual_add"] and not r["features"]["analog_input"]


def test_pooling_is_folded_into_the_next_layer():
    a = np.zeros((2, 4), np.float32)
    a[0] = 0.3
    a[1, 0] = 0.3
    w = np.zeros((1, 1, 1, 1), np.float32) + 1.0
    nodes = {"input": inp((1, 4, 4)),
             "conv": nir.Conv2d(input_shape=(4, 4), weight=w, stride=1, padding=0, dilation=1, groups=1,
                                bias=np.zeros(1)),
             "lif": lif((1, 4, 4)),
             "pool": nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
             "flat": nir.Flatten(input_type={"input": np.array((1, 2, 2))}, start_dim=0, end_dim=-1),
             "fc": nir.Affine(weight=a, bias=np.zeros(2)), "readout": nir.I(r=np.ones(2, np.float32)),
             "output": nir.Output(output_type={"output": np.array([2])})}
    edges = [("input", "conv"), ("conv", "lif"), ("lif", "pool"), ("pool", "flat"), ("flat", "fc"),
             ("fc", "readout"), ("readout", "output")]
    r = resources(graph(nodes, edges))
    ro = r["layers"][-1]
    assert (ro["fan_in"], ro["synapses_nonzero"], ro["synapses_dense"]) == (16, 16 + 4, 32)
    assert ro["weight_bits"] == [2]  # 0.3/4 on every tap: still one magnitude per row
    assert r["layers"][0]["fan_out"] == 2  # the top-left window feeds both outputs
    assert r["features"]["avg_pool"]


@torch.no_grad()
def test_conv_counts_match_brute_force():
    rng = np.random.default_rng(0)
    w = (rng.integers(-1, 2, size=(3, 2, 3, 3)) * 0.7).astype(np.float32)
    for stride, pad in [(1, 1), (2, 1), (2, 0)]:
        nodes = {"input": inp((2, 7, 6)),
                 "conv": nir.Conv2d(input_shape=(7, 6), weight=w, stride=stride, padding=pad, dilation=1, groups=1,
                                    bias=np.zeros(3)),
                 "lif": lif((3, (7 + 2 * pad - 3) // stride + 1, (6 + 2 * pad - 3) // stride + 1))}
        r = resources(graph(nodes, [("input", "conv"), ("conv", "lif")]))
        co, ho, wo = r["layers"][0]["shape"]
        fan_in, nnz, dense, fan_out = np.zeros((co, ho, wo)), 0, 0, np.zeros((2, 7, 6))
        for o, yo, xo, i, ky, kx in np.ndindex(co, ho, wo, 2, 3, 3):
            y, x = yo * stride - pad + ky, xo * stride - pad + kx
            if 0 <= y < 7 and 0 <= x < 6:
                dense += 1
                if w[o, i, ky, kx]:
                    nnz += 1
                    fan_in[o, yo, xo] += 1
                    fan_out[i, y, x] += 1
        lay = r["layers"][0]
        assert (lay["synapses_dense"], lay["synapses_nonzero"], lay["fan_in"]) == (dense, nnz, fan_in.max())
        assert r["inputs"][0]["fan_out"] == fan_out.max()


@torch.no_grad()
def test_pooling_before_a_conv_matches_brute_force():
    rng = np.random.default_rng(1)
    w = (rng.integers(-1, 2, size=(3, 2, 3, 3)) * 0.4).astype(np.float32)
    nodes = {"input": inp((2, 6, 5)),
             "pool": nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
             "conv": nir.Conv2d(input_shape=(3, 2), weight=w, stride=1, padding=1, dilation=1, groups=1,
                                bias=np.zeros(3)),
             "lif": lif((3, 3, 2))}
    r = resources(graph(nodes, [("input", "pool"), ("pool", "conv"), ("conv", "lif")]))
    pairs = {}  # (target, source) -> summed effective weight
    for o, yo, xo, i, ky, kx, a, b in np.ndindex(3, 3, 2, 2, 3, 3, 2, 2):
        yp, xp = yo - 1 + ky, xo - 1 + kx
        if 0 <= yp < 3 and 0 <= xp < 2:
            key = ((o, yo, xo), (i, 2 * yp + a, 2 * xp + b))
            pairs[key] = pairs.get(key, 0.0) + w[o, i, ky, kx] / 4
    nz = [k for k, v in pairs.items() if v != 0]
    fan_in = max(sum(1 for t, _ in nz if t == tgt) for tgt in {t for t, _ in pairs})
    fan_out = max(sum(1 for _, s in nz if s == src) for src in {s for _, s in pairs})
    lay = r["layers"][0]
    assert (lay["synapses_dense"], lay["synapses_nonzero"], lay["fan_in"]) == (len(pairs), len(nz), fan_in)
    assert r["inputs"][0]["fan_out"] == fan_out
    assert lay["weight_bits"] == [2] and r["features"]["avg_pool"]


def dense_chain(n_in, n_hidden, weight, n_out=10):
    nodes = {"input": inp((n_in,)), "fc1": nir.Affine(weight=weight, bias=np.zeros(n_hidden)),
             "hidden": lif((n_hidden,)), "fc2": nir.Affine(weight=np.ones((n_out, n_hidden), np.float32),
                                                           bias=np.zeros(n_out)),
             "readout": nir.I(r=np.ones(n_out, np.float32)),
             "output": nir.Output(output_type={"output": np.array([n_out])})}
    edges = [("input", "fc1"), ("fc1", "hidden"), ("hidden", "fc2"), ("fc2", "readout"), ("readout", "output")]
    return graph(nodes, edges, encoding="rate")


def test_oversized_fan_in_does_not_fit_loihi1():
    g = dense_chain(5000, 100, np.full((100, 5000), 0.5, np.float32))
    r = fit(g, "loihi1")
    assert not r["fits"] and not r["deployable"]
    assert r["binding"].startswith("input axons per core (hidden:")
    assert "5000" in r["binding"]
    r2 = fit(g, "loihi2")  # no published axon limit: memory decides
    assert r2["fits"] and r2["chips"] == 1
    assert {x["name"]: x["binding"] for x in r2["layers"]}["hidden"] == "synaptic memory per core"


def test_neurons_per_core_and_chips():
    w = np.zeros((3000, 10), np.float32)
    w[np.arange(3000), np.arange(3000) % 10] = 1.0
    r = fit(dense_chain(10, 3000, w), "loihi1")
    hidden = {x["name"]: x for x in r["layers"]}["hidden"]
    assert r["fits"] and hidden["cores"] == 3 and hidden["binding"] == "neurons per core"
    nodes = {"input": inp((200_000,)), "big": lif((200_000,))}
    r = fit(graph(nodes, [("input", "big")], encoding="rate"), "loihi1")  # identity synapses only
    assert (r["cores"], r["chips"], r["binding"]) == (196, 2, "neurons per core")  # 196 cores > 128 per chip


def test_speck_and_xylo_on_small_graphs():
    r = fit(conv_graph(), "speck")
    lay = {x["name"]: x for x in r["layers"]}
    assert (lay["lif"]["kernel_memory"], lay["lif"]["neuron_memory"]) == (1 * 2 ** (4 + 1), 2 * 2 ** (2 + 2))
    assert (lay["readout"]["kernel_memory"], lay["readout"]["neuron_memory"]) == (2 * 2 ** (4 + 2), 3)
    assert r["fits"] and r["cores"] == 2 and not r["deployable"]
    assert any(u.startswith("lif_current_free") for u in r["unsupported"])
    x = fit(residual_graph(), "xylo")
    assert x["fits"] and x["cores"] == 1
    x = fit(conv_graph(), "xylo")
    assert x["fits"] and any(u.startswith("conv2d") for u in x["unsupported"])


def test_user_errors():
    with pytest.raises(TnaError, match="unknown hardware target"):
        get_target("truenorth")
    nodes = {"input": inp((4,)), "s": nir.Scale(scale=np.ones(4)), "a": lif((4,))}
    with pytest.raises(TnaError, match="nir.Scale"):
        resources(graph(nodes, [("input", "s"), ("s", "a")]))


def test_every_target_figure_names_its_source():
    for t in targets.TARGETS:
        for name, value in vars(t).items():
            if isinstance(value, targets.Fig) and value is not targets.NA:
                assert value.source in targets.SOURCES, (t.key, name)
        for name, value in vars(t.support).items():
            assert value.source in targets.SOURCES, (t.key, name)


def export(name, shape):
    torch.manual_seed(0)
    m = build_model(name, shape, 10, neuron=LIF(), weights="ternary")
    return model_to_nir(m.eval(), shape, T=4, dt=1e-3, encoding="direct", input_scale=1 / 255)


def test_real_convnet():
    g = export("convnet", (1, 28, 28))
    r = resources(g)
    assert [x["neurons"] for x in r["layers"]] == [16 * 28 * 28, 32 * 14 * 14, 32 * 7 * 7, 10]
    assert r["layers"][-1]["synapses_dense"] == 10 * 32 * 7 * 7
    assert all(x["weight_bits"] == [2] for x in r["layers"])
    assert r["totals"]["synapses_nonzero"] < r["totals"]["synapses_dense"]  # ternary zeros
    l2 = fit(g, "loihi2")
    assert l2["fits"] and l2["chips"] == 1
    l1 = fit(g, "loihi1")
    assert l1["fits"] and l1["chips"] == 1 and not l1["deployable"]  # binary spikes: no direct analog input
    assert any(u.startswith("analog_input") for u in l1["unsupported"])
    report = fit_report(g)
    for t in targets.TARGETS:
        assert t.name in report


def test_real_resnet20():
    g = export("resnet20", (3, 32, 32))
    r = resources(g)
    assert r["totals"]["neurons"] == 7 * 64 * 1024 + 6 * 128 * 256 + 6 * 256 * 64 + 10
    assert r["features"]["residual_add"] and r["features"]["avg_pool"]
    ro = r["layers"][-1]
    assert ro["synapses_dense"] == 10 * 256 * 64  # the global average pool is folded into the classifier
    l1 = fit(g, "loihi1")
    assert not l1["fits"] and l1["binding"].startswith("input axons per core (readout:")
    l2 = fit(g, "loihi2")
    assert l2["fits"] and l2["chips"] > 1
    sp = fit(g, "speck")
    assert not sp["fits"] and sp["binding"].startswith("cores per chip")
