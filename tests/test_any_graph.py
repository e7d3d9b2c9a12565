"""Any standard NIR graph on Lava (`tna deploy GRAPH.nir --inputs INPUTS.h5 --dt S --out DIR`).

First the meaning of each node type, computed by hand and checked in both references without Lava (the
float reference, deploy/graph/float_sim.py, and the Loihi-exact emulator, deploy/loihi/simulate.py).
Then graphs from other tools and hand-built standard graphs (tests/foreign_graphs.py) deployed on Lava in
both modes, every spike agreeing with the reference of its mode; and the one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import foreign_graphs as fg  # noqa: E402 (tests/ is on sys.path)
import nir
import numpy as np
import pytest

from deploy.any_graph import goldens, prepare
from deploy.graph.float_sim import simulate_float
from deploy.graph.plan import plan_network
from deploy.loihi.fixed_point import fixed_network, quantize_input
from deploy.loihi.simulate import output_values, simulate
from tna.errors import TnaError


def tna(*args, ok=True):
    proc = subprocess.run([sys.executable, "-m", "tna.cli", *map(str, args)], capture_output=True, text=True)
    if ok and proc.returncode != 0:
        raise AssertionError(f"tna {' '.join(map(str, args))} failed:\n{proc.stderr}")
    return proc


def one(n=1):
    return np.ones(n, np.float32)


def chain(neuron, n_in=1, w=1.0, extra=None):
    """Input(n_in) -> Linear(w) -> neuron -> Output: one neuron driven by its inputs."""
    nodes = {"input": nir.Input(input_type={"input": np.array([n_in])}),
             "w": nir.Linear(weight=np.full((1, n_in), w, np.float32)), "n": neuron,
             "output": nir.Output(output_type={"output": np.array([1])})}
    edges = [("input", "w"), ("w", "n"), ("n", "output")]
    if extra:
        extra(nodes, edges)
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def both(graph, x, dt):
    """Spike times of neuron n in the float reference and the emulator (x [T, N, ...])."""
    plan = plan_network(graph, dt=dt, T=len(x))
    f, f_out = simulate_float(plan, x)
    net = fixed_network(plan)
    s, out = simulate(net, quantize_input(np.asarray(x, np.float64), plan.input_scale))
    return plan, f, f_out, {k: np.asarray(v).astype(bool) for k, v in s.items()}, output_values(net, out)


def times(s):
    return np.flatnonzero(np.asarray(s)[:, 0, 0]).tolist()


X = np.ones((10, 1, 1), np.float32)  # 1 at every step, one sample


def test_if_integrates_dt_r_times_the_input():
    # v += dt r x = 1 per step; spike when v > 2.5, then v = 0: steps 2, 5, 8
    g = chain(nir.IF(r=one() * 1000, v_threshold=one() * 2.5, v_reset=one() * 0))
    plan, f, f_out, s, out = both(g, X, 1e-3)
    assert plan.populations["n"].decay == 0 and times(f["n"]) == times(s["n"]) == [2, 5, 8]
    assert plan.output_rule == "count" and f_out[0, 0] == out[0, 0] == 3  # the Output: spikes summed over steps


def test_lif_leaks_toward_v_leak_with_forward_euler():
    # d = dt/tau = 0.5, r = 2: v = 0.5 v + 0.5 (2 x) + 0.5 v_leak; x = 1, v_leak = 0.2: v = 1.1, 1.65, 1.925 > 1.9
    g = chain(nir.LIF(tau=one() * 2e-3, r=one() * 2, v_leak=one() * 0.2, v_threshold=one() * 1.9, v_reset=one() * 0))
    _, f, _, s, _ = both(g, X, 1e-3)
    assert times(f["n"]) == times(s["n"]) == [2, 5, 8]


def test_cubalif_current_then_voltage_and_the_current_carries_over():
    # ds = dm = 0.5: I = 0.5 I + 0.5 x (0.5, 0.75, 0.875, ...), v = 0.5 v + 0.5 I (0.25, 0.5, 0.6875, 0.84)
    g = chain(nir.CubaLIF(tau_syn=one() * 2e-3, tau_mem=one() * 2e-3, r=one(), v_leak=one() * 0, w_in=one(),
                          v_threshold=one() * 0.8, v_reset=one() * 0))
    plan, f, _, s, _ = both(g, X, 1e-3)
    assert plan.populations["n"].syn_decay == pytest.approx(0.5) and times(f["n"])[:1] == times(s["n"])[:1] == [3]
    # the current survives the spike: the second spike comes sooner than the first
    assert np.diff(times(f["n"]))[0] < 4


def test_delay_shifts_by_whole_steps_and_is_zero_before_the_sample():
    def delayed(nodes, edges):
        nodes["d"] = nir.Delay(delay=np.array([3e-3]))
        edges[:] = [("input", "d"), ("d", "w"), ("w", "n"), ("n", "output")]
    g = chain(nir.IF(r=one() * 1000, v_threshold=one() * 0.5, v_reset=one() * 0), extra=delayed)
    _, f, _, s, _ = both(g, X, 1e-3)
    assert times(f["n"]) == times(s["n"]) == [3, 4, 5, 6, 7, 8, 9]
    with pytest.raises(TnaError, match="not a whole number of steps"):
        plan_network(g, dt=2e-3, T=10)


def test_recurrence_carries_the_previous_steps_spikes():
    # a pulse at step 0 only; the neuron's own spike, fed back through weight 1, keeps it firing
    def loop(nodes, edges):
        nodes["rec"] = nir.Linear(weight=np.ones((1, 1), np.float32))
        edges += [("n", "rec"), ("rec", "n")]
    g = chain(nir.IF(r=one() * 1000, v_threshold=one() * 0.5, v_reset=one() * 0), extra=loop)
    x = np.zeros((6, 1, 1), np.float32)
    x[0] = 1
    plan, f, _, s, _ = both(g, x, 1e-3)
    assert plan.populations["n"].recurrent
    assert times(f["n"]) == times(s["n"]) == [0, 1, 2, 3, 4, 5]

    def delayed_loop(nodes, edges):  # the same loop through a 3-step Delay: every 1 + 3 steps
        loop(nodes, edges)
        nodes["d"] = nir.Delay(delay=np.array([3e-3]))
        edges[:] = [e for e in edges if e != ("n", "rec")] + [("n", "d"), ("d", "rec")]
    g = chain(nir.IF(r=one() * 1000, v_threshold=one() * 0.5, v_reset=one() * 0), extra=delayed_loop)
    x = np.zeros((10, 1, 1), np.float32)
    x[0] = 1
    _, f, _, s, _ = both(g, x, 1e-3)
    assert times(f["n"]) == times(s["n"]) == [0, 4, 8]


def test_scale_conv1d_threshold_and_a_weighted_output():
    """Scale folds into the Linear; a Conv1d runs on (C, L); Threshold spikes where its input exceeds it;
    Linear straight into the Output sums its values over the steps."""
    rng = np.random.default_rng(0)
    nodes = {"input": nir.Input(input_type={"input": np.array([1, 8])}),
             "c": nir.Conv1d(input_shape=8, weight=np.ones((2, 1, 3), np.float32), stride=1, padding=1,
                             dilation=1, groups=1, bias=np.zeros(2, np.float32)),
             "th": nir.Threshold(threshold=np.full((2, 8), 1.5, np.float32)),
             "f": nir.Flatten(input_type={"input": np.array([2, 8])}, start_dim=0, end_dim=-1),
             "s": nir.Scale(scale=np.full(16, 2.0, np.float32)),
             "w": nir.Linear(weight=rng.normal(0, 1, (3, 16)).astype(np.float32)),
             "output": nir.Output(output_type={"output": np.array([3])})}
    g = nir.NIRGraph(nodes=nodes, edges=[("input", "c"), ("c", "th"), ("th", "f"), ("f", "s"), ("s", "w"),
                                         ("w", "output")], type_check=False)
    x = np.zeros((4, 1, 1, 8, 1), np.float32)  # [T, N, C, L] as (C, L, 1), the reader's canonical shape
    x[:, 0, 0, 3] = 1
    x[1, 0, 0, 4] = 1
    plan, f, f_out, s, out = both(g, x, 1e-3)
    th = f["th"][:, 0, :, :, 0]  # [T, C, L]: a window sum of 3 > 1.5 only where two inputs meet (step 1)
    assert th[1].sum() == 2 * 2 and th[0].sum() == th[2].sum() == 0
    assert np.array_equal(f["th"], s["th"])
    want = (th.reshape(4, -1).astype(float) * 2) @ nodes["w"].weight.T.astype(float)
    np.testing.assert_allclose(f_out[0], want.sum(0), rtol=1e-6)
    np.testing.assert_allclose(out[0], want.sum(0), rtol=0.02)  # 8-bit weights


def test_nested_and_flat_recurrent_graphs_are_the_same_network():
    x = fg.spike_inputs(2, 64, 12, 0.05).swapaxes(0, 1)
    a = plan_network(fg.recurrent_cubalif(nested=True), dt=1e-4, T=64)
    b = plan_network(fg.recurrent_cubalif(nested=False), dt=1e-4, T=64)
    sa, oa = simulate_float(a, x)
    sb, ob = simulate_float(b, x)
    assert list(sa) == list(sb) == ["lif1.lif", "lif2"] and all(np.array_equal(sa[k], sb[k]) for k in sa)
    assert 0.005 < sa["lif1.lif"].mean() < 0.3


@pytest.mark.parametrize("change,match", [
    (lambda g: g.nodes.update(w=nir.Conv2d(input_shape=(1, 1), weight=np.ones((1, 1, 1, 1)), stride=1, padding=0,
                                           dilation=1, groups=1, bias=np.zeros(1))), "Conv2d needs"),
    (lambda g: g.nodes.update(n=nir.LIF(tau=np.array([1e-3]), r=one(), v_leak=one() * 0, v_threshold=one(),
                                        v_reset=np.array([-0.5], np.float32))), "v_reset != 0"),
    (lambda g: g.nodes.update(n=nir.LIF(tau=np.array([1e-4]), r=one(), v_leak=one() * 0, v_threshold=one(),
                                        v_reset=one() * 0)), "dt/tau = 10 is outside"),
])
def test_what_does_not_map_is_one_line_naming_the_node(change, match):
    g = chain(nir.IF(r=one(), v_threshold=one(), v_reset=one() * 0))
    change(g)
    with pytest.raises(TnaError, match=match) as err:
        plan_network(g, dt=1e-3, T=4)
    assert "\n" not in str(err.value)


def test_a_flatten_must_lead_to_an_affine():
    def flat(nodes, edges):
        nodes["f"] = nir.Flatten(input_type={"input": np.array([1])}, start_dim=0, end_dim=-1)
        nodes["m"] = nir.IF(r=one(), v_threshold=one(), v_reset=one() * 0)
        edges[:] = [("input", "w"), ("w", "n"), ("n", "f"), ("f", "m"), ("m", "output")]
    with pytest.raises(TnaError, match="NIR node f: a Flatten must be followed by an Affine/Linear"):
        plan_network(chain(nir.IF(r=one(), v_threshold=one(), v_reset=one() * 0), extra=flat), dt=1e-3, T=4)


def test_cycles_through_two_layers_and_graded_values_traveling_on_are_refused():
    def two(nodes, edges):
        nodes["w2"] = nir.Linear(weight=np.ones((1, 1), np.float32))
        nodes["m"] = nir.IF(r=one(), v_threshold=one(), v_reset=one() * 0)
        nodes["back"] = nir.Linear(weight=np.ones((1, 1), np.float32))
        edges += [("n", "w2"), ("w2", "m"), ("m", "back"), ("back", "n")]
    with pytest.raises(TnaError, match="cycle through back, m, n, w2 that"):  # the cycle's nodes, not what it feeds
        plan_network(chain(nir.IF(r=one(), v_threshold=one(), v_reset=one() * 0), extra=two), dt=1e-3, T=4)

    def li_on(nodes, edges):
        nodes["w2"] = nir.Linear(weight=np.ones((1, 1), np.float32))
        nodes["m"] = nir.IF(r=one(), v_threshold=one(), v_reset=one() * 0)
        edges[:] = [("input", "w"), ("w", "n"), ("n", "w2"), ("w2", "m"), ("m", "output")]
    with pytest.raises(TnaError, match="non-spiking LI can only feed the Output"):
        plan_network(chain(nir.LI(tau=one() * 1e-3, r=one(), v_leak=one() * 0), extra=li_on), dt=1e-3, T=4)


# ---- on Lava ---------------------------------------------------------------------------------------------
def deploy_both(tmp_path, graph, x, dt, labels=None, spikes=True, **kw):
    """`tna deploy GRAPH.nir --inputs --dt --out` in both modes; asserts every spike agrees in each."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    nir.write(tmp_path / "g.nir", graph)
    fg.write_inputs(tmp_path / "in.h5", x, labels)
    out = tmp_path / "out"
    proc = tna("deploy", tmp_path / "g.nir", "--inputs", tmp_path / "in.h5", "--dt", dt, "--out", out,
               "--mode", "both", *sum(([f"--{k.replace('_', '-')}", v] for k, v in kw.items()), []))
    v = json.loads((out / "verification.json").read_text())
    for mode in ("float", "fixed"):
        r = v["modes"][mode]
        assert r["spike_agreement"] == 1.0 and r["first_divergence"] is None, (mode, r["first_divergence"])
        assert r["output_agreement"] == 1.0 and r["samples"] == len(x)
        assert r["spikes_trained"] == r["spikes_deployed"] > (0 if spikes else -1)
    assert 0.9 < v["fixed_vs_float"]["spike_agreement"] <= 1.0
    assert set(v["mapping_errors"]) >= set(v["modes"]["fixed"]["layers"])
    assert "first divergence: none" in (out / "verification.txt").read_text()
    return v, proc


def test_if_cnn_on_dvs_frames_at_1ms(tmp_path):
    """A hand-built IF + Conv2d + SumPool2d CNN on [2, 34, 34] mnist5k-dvs frames, 1 ms steps, T = 300."""
    x, y = fg.dvs_inputs(2, 300)
    v, _ = deploy_both(tmp_path, fg.if_cnn_trained(), x, 1e-3, y)
    assert v["modes"]["float"]["accuracy_trained"] is not None
    assert v["modes"]["fixed"]["lava"]["steps"] >= 600


def test_lif_mlp_and_a_norse_round_trip(tmp_path):
    """A standard LIF MLP, and the same graph after Norse: from_nir -> to_nir (tests/foreign_graphs.py)."""
    x = fg.spike_inputs(3, 40, 40, 0.2)
    deploy_both(tmp_path / "a", fg.lif_mlp(), x, 1e-3)
    deploy_both(tmp_path / "b", fg.norse_roundtrip(), x, 1e-3)


def test_lif_mlps_from_snntorch_and_norse_exporters(tmp_path):
    """snnTorch's export_to_nir (written for its dt, 1e-4) and Norse's to_nir (1e-3) of LIF MLPs."""
    for name, graph, dt in (("snn", fg.snntorch_exported("leaky_mlp"), 1e-4), ("norse", fg.norse_exported(), 1e-3)):
        shape = plan_network(graph, dt=dt, T=1).input_shape
        deploy_both(tmp_path / name, graph, fg.spike_inputs(3, 50, shape, 0.1), dt)


@pytest.mark.parametrize("builder", ["nested_bias", "snntorch_rsynaptic"])
def test_recurrent_cubalif_at_1e4(tmp_path, builder):
    """The NIR paper's Braille network shape: a recurrent CubaLIF layer (here with a bias into its current)
    at dt = 1e-4, and snnTorch's own export of an RSynaptic network."""
    graph = fg.recurrent_cubalif(rec_bias=True) if builder == "nested_bias" else fg.snntorch_exported("rsynaptic")
    n_in = 12 if builder == "nested_bias" else int(np.prod(plan_network(graph, dt=1e-4, T=1).input_shape))
    v, _ = deploy_both(tmp_path, graph, fg.spike_inputs(2, 200, n_in, 0.05), 1e-4)
    rec = [k for k in v["modes"]["fixed"]["layers"] if "lif1" in k]
    assert rec and v["modes"]["fixed"]["layers"][rec[0]]["spikes_deployed"] > 0


def test_float_lava_is_bit_exact_where_v_lands_on_the_threshold(tmp_path):
    """Weights 0.3 after an AvgPool2d (1/9): v hits the threshold 0.3 to the last bit, often; only Lava's
    own order of summation (deploy/graph/float_sim.py) decides those spikes as Lava does. Also a graph
    with no spiking layer at all (an LI readout): the spike comparison is vacuous, the outputs agree."""
    rng = np.random.default_rng(1)
    f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
    ifn = lambda shape, th: nir.IF(r=np.full(shape, 1000, np.float32), v_threshold=np.full(shape, th, np.float32))  # noqa: E731
    w = lambda shape: 0.3 * rng.choice([-1, 0, 1, 1], size=shape)  # noqa: E731
    g = nir.NIRGraph(nodes={
        "input": nir.Input(input_type={"input": np.array([2, 4, 4])}),
        "c": nir.Conv2d(input_shape=(4, 4), weight=f32(w((3, 2, 3, 3))), stride=1, padding=1, dilation=1, groups=1,
                        bias=np.zeros(3, np.float32)),
        "n": ifn((3, 4, 4), 0.5),
        "p": nir.AvgPool2d(kernel_size=np.array([3, 3]), stride=np.array([2, 2]), padding=np.array([1, 1])),
        "c2": nir.Conv2d(input_shape=(2, 2), weight=f32(w((2, 3, 3, 3))), stride=1, padding=1, dilation=1,
                         groups=1, bias=np.zeros(2, np.float32)),
        "m": ifn((2, 2, 2), 0.3), "output": nir.Output(output_type={"output": np.array([2, 2, 2])})},
        edges=[("input", "c"), ("c", "n"), ("n", "p"), ("p", "c2"), ("c2", "m"), ("m", "output")], type_check=False)
    x = (rng.random((3, 20, 2, 4, 4)) < 0.3).astype(np.float32)
    deploy_both(tmp_path / "tie", g, x, 1e-3)
    li = chain(nir.LI(tau=one() * 2e-3, r=one(), v_leak=one() * 0), n_in=3)
    v, _ = deploy_both(tmp_path / "li", li, np.random.default_rng(0).uniform(0, 1, (2, 6, 3)).astype(np.float32),
                       1e-3, spikes=False)
    assert v["modes"]["float"]["spiking_layers"] == 0


def test_graph_errors_are_one_line_and_write_nothing(tmp_path):
    g = chain(nir.IF(r=one(), v_threshold=one(), v_reset=one() * 0))
    nir.write(tmp_path / "g.nir", g)
    fg.write_inputs(tmp_path / "in.h5", np.ones((2, 4, 1), np.float32))
    fg.write_inputs(tmp_path / "bad.h5", np.ones((2, 4, 3), np.float32))
    out = tmp_path / "out"
    for args, match in [((), "pass --dt SECONDS"),
                        (("--dt", "1e-3", "--inputs", tmp_path / "bad.h5"), "the graph's Input takes (1,)"),
                        (("--dt", "-1"), "--dt must be a positive number"),
                        (("--dt", "1e-3", "--samples", "0"), "--samples must be at least 1")]:
        base = ["--inputs", tmp_path / "in.h5", "--out", out]
        proc = tna("deploy", tmp_path / "g.nir", *base, *args, ok=False)
        assert proc.returncode == 2 and match in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, \
            proc.stderr
        assert not out.exists()
    proc = tna("deploy", tmp_path / "in.h5", "--inputs", tmp_path / "in.h5", "--dt", "1e-3", "--out", out, ok=False)
    assert proc.returncode == 2 and "not a NIR graph" in proc.stderr and not out.exists()
    # damaged values: NaN inputs, a NaN weight, an unsupported cycle; and --out naming a file
    x = np.ones((2, 4, 1), np.float32)
    x[1, 2, 0] = np.nan
    fg.write_inputs(tmp_path / "nan.h5", x)
    nan_graph = chain(nir.IF(r=one(), v_threshold=one(), v_reset=one() * 0), w=float("nan"))
    nir.write(tmp_path / "nan.nir", nan_graph)
    (tmp_path / "a_file").write_text("x")
    for graph, inputs, o, match in [(tmp_path / "g.nir", tmp_path / "nan.h5", out, "NaN or infinite"),
                                    (tmp_path / "nan.nir", tmp_path / "in.h5", out, "w: weight holds NaN"),
                                    (tmp_path / "g.nir", tmp_path / "in.h5", tmp_path / "a_file", "is a file")]:
        proc = tna("deploy", graph, "--inputs", inputs, "--dt", "1e-3", "--out", o, ok=False)
        assert proc.returncode == 2 and match in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, \
            proc.stderr
        assert not out.exists()


def test_prepare_puts_dt_T_grid_and_calibration_into_the_graph(tmp_path):
    nir.write(tmp_path / "g.nir", fg.lif_mlp())
    x = np.random.default_rng(0).uniform(0, 1, (2, 8, 40)).astype(np.float32)
    fg.write_inputs(tmp_path / "in.h5", x)
    p = prepare(tmp_path / "g.nir", tmp_path / "in.h5", 1e-3)
    graph, plan, net = p.graph, p.plan, p.net
    assert p.labels is None and plan.T == 8 and plan.dt == 1e-3 and not plan.tna
    assert plan.input_scale == pytest.approx(float(x.max()) / 255)  # analog inputs: 8-bit grid
    assert "calibration" in graph.metadata and fixed_network(plan_network(graph)).populations.keys() == \
        net.populations.keys()
    gold = goldens(p)
    assert gold["float"][1].shape == gold["loihi"][1].shape == (2, 10)


def test_round_trip_our_export_through_norse_onto_lava(tmp_path):
    """Our export (--consumer norse) -> Norse from_nir -> Norse's own to_nir (repaired as documented in
    tests/foreign_graphs.py) -> `tna deploy GRAPH.nir`: every spike agrees in both modes, and float Lava
    gives the trained model's class and (to float rounding) its spikes."""
    import torch
    from test_nir_export import model_spikes, trained_like

    from deploy.graph.consumers import for_consumer
    from deploy.graph.from_model import model_to_nir

    model = trained_like("convnet", (1, 28, 28), 0.5)
    ours = model_to_nir(model, (1, 28, 28), T=4, dt=1e-3, encoding="direct", input_scale=1 / 255)
    graph = fg.norse_roundtrip_of(for_consumer(ours, "norse"), dt=1e-3)
    assert not graph.metadata and {type(n).__name__ for n in graph.nodes.values()} >= {"Conv2d", "LIF", "Affine"}
    x = (torch.randint(0, 256, (4, 1, 28, 28)) / 255.0).unsqueeze(1).expand(4, 4, 1, 28, 28).contiguous()
    v, _ = deploy_both(tmp_path, graph, x.numpy(), 1e-3)
    ref, logits = model_spikes(model, x.transpose(0, 1))
    with __import__("h5py").File(tmp_path / "out" / "lava_float.h5") as f:
        lava_class = f["logits"][:].argmax(1)
        agree = [(f[f"spikes/{k}"][:] == ref[k].transpose(0, 1).numpy()).mean() for k in ref]
    assert np.array_equal(lava_class, logits.argmax(1).numpy())
    assert min(agree) > 0.999, agree
    print("round trip: spike agreement with the trained model per layer", agree)
