"""The foreign NIR graphs and inputs of tests/foreign_graphs.py are what they claim to be.

Fixtures only (the mapper's own tests use them): every graph survives nir.write + nir.read with type
checking, shapes chain up, the nested/flat recurrent forms are as documented, the stock-exporter failures
are the recorded ones, and the inputs have the right shapes, values and labels.
"""

import h5py
import nir
import numpy as np
import pytest

import foreign_graphs as fg

HAND_BUILT = {
    "if_cnn": fg.if_cnn,
    "lif_mlp": fg.lif_mlp,
    "lif_mlp_dvs": lambda: fg.lif_mlp(n_in=(2, 34, 34)),
    "recurrent_cubalif": fg.recurrent_cubalif,
    "recurrent_cubalif_flat": lambda: fg.recurrent_cubalif(nested=False),
    "recurrent_cubalif_li": lambda: fg.recurrent_cubalif(readout="cubali", rec_bias=True),
}


def _kinds(graph):
    return {k: type(v).__name__ for k, v in graph.nodes.items()}


def _assert_same(a: nir.NIRGraph, b: nir.NIRGraph, rtol: float = 0.0):
    assert _kinds(a) == _kinds(b)
    assert sorted(map(tuple, a.edges)) == sorted(map(tuple, b.edges))
    for k, na in a.nodes.items():
        nb = b.nodes[k]
        if isinstance(na, nir.NIRGraph):
            _assert_same(na, nb, rtol)
            continue
        for attr, va in vars(na).items():
            if isinstance(va, np.ndarray):
                np.testing.assert_allclose(va, getattr(nb, attr), rtol=rtol, atol=0, err_msg=f"{k}.{attr}")


@pytest.mark.parametrize("name", sorted(HAND_BUILT))
def test_hand_built_graphs_write_and_read_type_checked(name, tmp_path):
    g = HAND_BUILT[name]()
    back = fg.roundtrip(g, tmp_path / f"{name}.nir")  # nir.read type-checks by default
    _assert_same(g, back)
    assert not back.metadata  # foreign graphs carry no dt/T


def test_if_cnn_shapes():
    g = fg.if_cnn()
    n = g.nodes
    assert list(n["input"].output_type["output"]) == [2, 34, 34]
    assert list(n["if1"].input_type["input"]) == [8, 34, 34]
    assert list(n["pool1"].output_type["output"]) == [8, 17, 17]
    assert list(n["if2"].input_type["input"]) == [16, 17, 17]
    assert list(n["flatten"].output_type["output"]) == [1024]
    assert n["flatten"].start_dim == 0
    assert n["fc"].weight.shape == (10, 1024)
    assert list(n["output"].output_type["output"]) == [10]
    assert tuple(n["conv1"].padding) == (1, 1) and n["conv1"].bias.shape == (8,)
    for k in ("if1", "if2", "if3"):
        assert n[k].r.shape == n[k].v_threshold.shape == tuple(n[k].input_type["input"])


def test_recurrent_cubalif_nested_form_after_read(tmp_path):
    g = fg.roundtrip(fg.recurrent_cubalif(), tmp_path / "rec.nir")
    sub = g.nodes["lif1"]
    assert isinstance(sub, nir.NIRGraph)
    assert _kinds(sub) == {"input": "Input", "lif": "CubaLIF", "w_rec": "Affine", "output": "Output"}
    assert ("w_rec", "lif") in sub.edges and ("lif", "w_rec") in sub.edges
    assert ("fc1", "lif1") in g.edges and ("lif1", "fc2") in g.edges  # outer edges name the subgraph
    assert isinstance(g.nodes["fc1"], nir.Linear) and g.nodes["fc1"].weight.shape == (38, 12)
    assert sub.nodes["lif"].tau_mem.shape == (38,) and float(sub.nodes["lif"].tau_syn[0]) == pytest.approx(5e-3)


def test_recurrent_cubalif_flat_form_is_snntorch_naming():
    g = fg.recurrent_cubalif(nested=False)
    assert {"lif1.lif", "lif1.w_rec"} <= set(g.nodes)
    assert ("lif1.w_rec", "lif1.lif") in g.edges and ("fc1", "lif1.lif") in g.edges


def test_hand_built_graphs_spike_at_moderate_rates():
    x12 = fg.spike_inputs(8, 256, 12, 0.05, seed=1)
    for g in (fg.recurrent_cubalif(), fg.recurrent_cubalif(nested=False)):
        r = fg.reference_rates(g, x12, 1e-4)
        assert 0.02 <= r["lif1.lif"] <= 0.2 and r["lif2"] > 0
    r = fg.reference_rates(fg.lif_mlp(), fg.spike_inputs(8, 200, 40, 0.1, seed=1), 1e-3)
    assert 0.01 <= r["lif1"] <= 0.2 and 0.01 <= r["lif2"] <= 0.2
    x, _ = fg.dvs_inputs(2)
    r = fg.reference_rates(fg.if_cnn(), x[:, :150], 1e-3)
    assert all(0.005 <= r[k] <= 0.25 for k in ("if1", "if2", "if3")), r


def test_if_cnn_trained_weights():
    if not fg.IF_CNN_WEIGHTS.exists():
        pytest.skip("no trained weights")
    g = fg.if_cnn_trained()
    assert g.nodes["conv1"].weight.shape == (8, 2, 3, 3) and g.nodes["fc"].weight.dtype == np.float32
    info = fg.if_cnn_training_info()
    assert info["acc_fine_300x1ms_300test"] > 0.6  # chance is 0.1
    x, y = fg.dvs_inputs(20)
    _, counts = fg.reference_run(g, x, 1e-3)  # the NIR graph itself, 1 ms steps
    assert (counts.argmax(1) == y).mean() >= 0.6


@pytest.mark.parametrize("kind", ["leaky_mlp", "rsynaptic"])
def test_snntorch_exported(kind, tmp_path):
    pytest.importorskip("snntorch")
    g = fg.snntorch_exported(kind)
    back = fg.roundtrip(g, tmp_path / "g.nir")
    _assert_same(g, back)
    failures = fg.EXPORT_FAILURES[f"snntorch_exported({kind})"]
    assert any("Type inference error" in f for f in failures)
    if kind == "rsynaptic":  # snnTorch + nirtorch inline the RSynaptic subgraph with dotted names
        assert isinstance(g.nodes["lif1.lif"], nir.CubaLIF) and isinstance(g.nodes["lif1.w_rec"], nir.Affine)
        assert ("lif1.w_rec", "lif1.lif") in g.edges
        lif = g.nodes["lif1.lif"]
        np.testing.assert_allclose(lif.r, lif.tau_mem / 1e-4, rtol=1e-4)  # snnTorch's dt = 1e-4 convention
        assert 0.005 <= fg.reference_rates(g, fg.spike_inputs(8, 256, 12, 0.05, seed=1), 1e-4)["lif1.lif"] <= 0.2
    else:
        assert _kinds(g) == {"input": "Input", "0": "Affine", "1": "LIF", "2": "Affine", "3": "LIF",
                             "output": "Output"}


@pytest.mark.parametrize("kind", ["lifbox", "lif"])
def test_norse_exported(kind, tmp_path):
    pytest.importorskip("norse")
    g = fg.norse_exported(kind)
    _assert_same(g, fg.roundtrip(g, tmp_path / "g.nir"))
    neuron = g.nodes["1"]
    assert isinstance(neuron, nir.LIF if kind == "lifbox" else nir.CubaLIF)
    tau = neuron.tau if kind == "lifbox" else neuron.tau_mem
    np.testing.assert_allclose(tau, 1e-2, rtol=1e-5)  # Norse's default 1/tau_mem_inv, after the fix
    assert any("Scalar datasets" in f for f in fg.EXPORT_FAILURES[f"norse_exported({kind})"])


def test_norse_roundtrip_reproduces_the_source_graph(tmp_path):
    pytest.importorskip("norse")
    g = fg.norse_roundtrip()
    src = fg.lif_mlp()
    _assert_same(src, fg.roundtrip(g, tmp_path / "g.nir"), rtol=1e-6)  # tau: float32 (2e-5 / 1e-3)
    assert any("are None" in f for f in fg.EXPORT_FAILURES["norse_roundtrip"])


def test_dvs_inputs():
    x, y = fg.dvs_inputs(20)
    assert x.shape == (20, 300, 2, 34, 34) and x.dtype == np.float32
    assert set(np.unique(x)) <= {0.0, 1.0}
    assert y.dtype == np.int64 and list(y) == list(range(10)) * 2
    assert 0.002 < x.mean() < 0.02  # ~0.5 % of the pixels per 1 ms frame
    x5, y5 = fg.dvs_inputs(5)
    np.testing.assert_array_equal(x5, x[:5])


def test_dvs_file_matches_the_dataset():
    pytest.importorskip("torch")
    x, y = fg.dvs_inputs(3, source="file")
    xe, ye = fg.dvs_inputs(3, source="events")  # the dataset's own frame function on the cached events
    np.testing.assert_array_equal(x, xe)
    np.testing.assert_array_equal(y, ye)


def test_spike_inputs_and_write_inputs(tmp_path):
    x = fg.spike_inputs(3, 50, 12, 0.1, seed=0)
    assert x.shape == (3, 50, 12) and x.dtype == np.float32 and set(np.unique(x)) <= {0.0, 1.0}
    assert 0.05 < x.mean() < 0.15
    np.testing.assert_array_equal(x, fg.spike_inputs(3, 50, 12, 0.1, seed=0))
    p = fg.write_inputs(tmp_path / "in.h5", x, labels=[0, 1, 2])
    with h5py.File(p) as f:
        assert f["input"].dtype == np.float32 and f["input"].shape == (3, 50, 12)
        assert f["labels"].dtype == np.int64 and list(f["labels"][:]) == [0, 1, 2]
    p2 = fg.write_inputs(tmp_path / "in2.h5", fg.spike_inputs(2, 4, (2, 34, 34), 0.01))
    with h5py.File(p2) as f:
        assert f["input"].shape == (2, 4, 2, 34, 34) and "labels" not in f
    with pytest.raises(ValueError):
        fg.write_inputs(tmp_path / "bad.h5", x, labels=[0])
