"""The NIR -> Lava mapper, one layer type at a time, in both Lava modes.

Each case builds a tiny NIR graph and a reference.h5 by hand (numpy), runs deploy/lava_run.py in
the Lava environment (floating_pt and fixed_pt), and compares every spike with
- float mode: a straightforward numpy implementation of the NIR semantics below (>= 99.9% and,
  for these graphs, exact);
- fixed mode: the one integer simulator (deploy/loihi/simulate.py) on numpy: exact.
Plus the user errors of lava_run.py (one line, exit code 2).
"""

import json
import zlib

import h5py
import nir
import numpy as np
import pytest

from deploy import files
from deploy.lavanet.env import REPO_ROOT, run_in_lava
from deploy.loihi import fixed_point as fp
from deploy.loihi.simulate import conv2d_np, simulate
from tna.errors import TnaError

LAVA_RUN = REPO_ROOT / "deploy" / "lava_run.py"
DT = 1e-3


# ---- the NIR semantics in numpy (float64) ---------------------------------------------------------
def _pair(v):
    a = np.atleast_1d(np.asarray(v)).astype(int).ravel().tolist()
    return tuple(a * 2 if len(a) == 1 else a)


def nir_reference(g: nir.NIRGraph, x: np.ndarray):
    """Run x [N, T, *shape] through the graph: LIF v += dt/tau (v_leak - v + r I), z = v > v_th,
    v = v_reset where z; I: v += dt r I; conv = torch cross-correlation; I = sum of input edges."""
    dt = float(g.metadata["dt"])
    preds = {n: [] for n in g.nodes}
    for s, t in g.edges:
        preds[t].append(s)
    order, seen = [], set()

    def visit(n):
        if n not in seen:
            for p in preds[n]:
                visit(p)
            seen.add(n)
            order.append(n)

    for n in g.nodes:
        visit(n)
    N, T = x.shape[:2]
    state, spikes, out = {}, {}, None
    for t in range(T):
        val = {}
        for n in order:
            node, kind = g.nodes[n], type(g.nodes[n]).__name__
            ins = [val[p] for p in preds[n]]
            if kind == "Input":
                val[n] = x[:, t].astype(np.float64)
            elif kind == "Conv2d":
                w = np.asarray(node.weight, np.float64)
                y = conv2d_np(ins[0], w, _pair(node.stride), _pair(node.padding), _pair(node.dilation), int(node.groups))
                val[n] = y + np.asarray(node.bias, np.float64).reshape(1, -1, 1, 1)
            elif kind == "AvgPool2d":
                k = _pair(node.kernel_size)
                c = ins[0].shape[1]
                val[n] = conv2d_np(ins[0], np.ones((c, 1) + k) / (k[0] * k[1]), _pair(node.stride),
                                      _pair(node.padding), (1, 1), c)
            elif kind == "Flatten":
                val[n] = ins[0].reshape(N, -1)
            elif kind == "Affine":
                val[n] = ins[0] @ np.asarray(node.weight, np.float64).T + np.asarray(node.bias, np.float64)
            elif kind == "LIF":
                i_in = sum(ins)
                v = state.get(n, np.zeros_like(i_in))
                v = v + dt / np.asarray(node.tau, np.float64) * (np.asarray(node.v_leak) - v + np.asarray(node.r) * i_in)
                z = v > np.asarray(node.v_threshold)
                state[n] = np.where(z, np.asarray(node.v_reset, np.float64), v)
                val[n] = z.astype(np.float64)
                spikes.setdefault(n, np.zeros((N, T) + z.shape[1:], np.uint8))[:, t] = z
            elif kind == "I":
                v = state.get(n, 0.0) + dt * np.asarray(node.r, np.float64) * sum(ins)
                state[n] = val[n] = v
            elif kind == "Output":
                out = ins[0]
    return spikes, out


# ---- tiny graphs ------------------------------------------------------------------------------------
def ternary(rng, shape, scale=1.0, density=0.6):
    """Ternary weights: per output channel one magnitude m_c (codes in {-1, 0, 1})."""
    codes = rng.choice([-1.0, 0.0, 1.0], size=shape, p=[density * 0.4, 1 - density, density * 0.6])
    fan = np.prod(shape[1:]) * density
    m = rng.uniform(0.6, 1.4, size=(shape[0],) + (1,) * (len(shape) - 1)) * scale * 2.2 / np.sqrt(fan)
    return (codes * m).astype(np.float32)


class G:
    """A small graph builder: nodes, edges, shapes."""

    def __init__(self, shape, seed=0):
        self.rng = np.random.default_rng(seed)
        self.nodes = {"input": nir.Input(input_type={"input": np.array(shape)})}
        self.edges, self.shape = [], {"input": tuple(shape)}

    def add(self, name, node, src, shape):
        self.nodes[name] = node
        for s in ([src] if isinstance(src, str) else src):
            self.edges.append((s, name))
        self.shape[name] = tuple(shape)
        return name

    def conv(self, name, src, cout, k=3, stride=1, padding=1, bias=0.1, scale=1.0, weight=None):
        c, h, w = self.shape[src]
        k, stride, padding = _pair(k), _pair(stride), _pair(padding)
        wt = ternary(self.rng, (cout, c) + k, scale) if weight is None else weight
        b = self.rng.uniform(-bias, bias, cout).astype(np.float32)
        ho, wo = ((h + 2 * padding[0] - k[0]) // stride[0] + 1, (w + 2 * padding[1] - k[1]) // stride[1] + 1)
        return self.add(name, nir.Conv2d(input_shape=(h, w), weight=wt, stride=stride, padding=padding,
                                         dilation=(1, 1), groups=1, bias=b), src, (cout, ho, wo))

    def lif(self, name, src, tau=2e-3, v_th=1.0, **kw):
        shape = self.shape[src if isinstance(src, str) else src[0]]
        full = lambda v: np.full(shape, v, np.float32)  # noqa: E731
        th = full(v_th) if np.isscalar(v_th) else v_th
        return self.add(name, nir.LIF(tau=full(tau), r=full(1.0), v_leak=full(kw.get("v_leak", 0.0)),
                                      v_threshold=th, v_reset=full(kw.get("v_reset", 0.0))), src, shape)

    def flatten(self, name, src):
        shp = self.shape[src]
        return self.add(name, nir.Flatten(input_type={"input": np.array(shp)}, start_dim=0, end_dim=-1), src,
                        (int(np.prod(shp)),))

    def affine(self, name, src, out, bias=0.1, scale=1.0):
        n = self.shape[src][0]
        return self.add(name, nir.Affine(weight=ternary(self.rng, (out, n), scale),
                                         bias=self.rng.uniform(-bias, bias, out).astype(np.float32)), src, (out,))

    def pool(self, name, src, k, stride=None, padding=0):
        c, h, w = self.shape[src]
        k, s, p = _pair(k), _pair(stride or k), _pair(padding)
        return self.add(name, nir.AvgPool2d(kernel_size=np.array(k), stride=np.array(s), padding=np.array(p)), src,
                        (c, (h + 2 * p[0] - k[0]) // s[0] + 1, (w + 2 * p[1] - k[1]) // s[1] + 1))

    def readout(self, src, T):
        k = self.shape[src][0]
        self.add("readout", nir.I(r=np.full(k, 1.0 / (T * DT), np.float32)), src, (k,))
        return self.out("readout")

    def out(self, src):
        self.add("output", nir.Output(output_type={"output": np.array(self.shape[src])}), src, self.shape[src])
        return self

    def graph(self, T, encoding="direct", input_scale=1 / 255, **meta):
        md = dict(format="tna-nir", version=1, dt=DT, T=T, encoding=encoding, input_scale=input_scale, reset="zero", **meta)
        return nir.NIRGraph(nodes=self.nodes, edges=self.edges, metadata=md)


def graded(rng, n, T, shape):
    """Direct (mnist-like) input: pixel/255, the same frame at every step."""
    x = rng.integers(0, 256, size=(n, 1) + tuple(shape)) / 255
    return np.repeat(x, T, axis=1).astype(np.float32)


def spikes_in(rng, n, T, shape, p=0.4):
    return (rng.random((n, T) + tuple(shape)) < p).astype(np.float32)


def case_conv(rng):
    g = G((1, 8, 7))
    g.lif("lif1", g.conv("conv1", "input", 6))
    return g.out("lif1").graph(T=4), graded(rng, 3, 4, (1, 8, 7))


def case_conv_stride(rng):
    g = G((2, 9, 11))
    c = g.conv("conv1", "input", 5, k=3, stride=(2, 1), padding=(1, 0))  # NIR 1.0.8 types only square kernels
    g.lif("lif1", c)
    g.lif("lif2", g.conv("conv2", "lif1", 4, stride=2, scale=1.5))
    return g.out("lif2").graph(T=5), graded(rng, 3, 5, (2, 9, 11))


def case_dense_after_flatten(rng):
    g = G((2, 5, 4))
    g.lif("lif1", g.conv("conv1", "input", 3))
    g.lif("lif2", g.affine("fc1", g.flatten("flat", "lif1"), 12, scale=1.3))
    return g.out("lif2").graph(T=4), graded(rng, 4, 4, (2, 5, 4))


def case_avgpool_conv(rng):
    g = G((1, 8, 8))
    g.lif("lif1", g.conv("conv1", "input", 4))
    g.lif("lif2", g.conv("conv2", g.pool("pool", "lif1", 2), 5, scale=2.0))
    return g.out("lif2").graph(T=4), graded(rng, 3, 4, (1, 8, 8))


def case_global_pool_affine(rng):
    g = G((1, 6, 6))
    g.lif("lif1", g.conv("conv1", "input", 6))
    f = g.flatten("flat", g.pool("gap", "lif1", (6, 6)))
    g.lif("lif2", g.affine("fc", f, 7, scale=2.5))
    return g.out("lif2").graph(T=5), graded(rng, 3, 5, (1, 6, 6))


def case_residual_identity(rng):
    g = G((1, 8, 8))
    g.lif("stem", g.conv("conv0", "input", 4))
    g.lif("act1", g.conv("b_conv1", "stem", 4))
    c2 = g.conv("b_conv2", "act1", 4, scale=0.8)
    g.lif("act2", [c2, "stem"])  # identity shortcut: the stem's spikes, weight 1
    return g.out("act2").graph(T=4), graded(rng, 3, 4, (1, 8, 8))


def case_residual_conv_shortcut(rng):
    g = G((1, 8, 8))
    g.lif("stem", g.conv("conv0", "input", 3))
    g.lif("act1", g.conv("b_conv1", "stem", 5, stride=2))
    c2 = g.conv("b_conv2", "act1", 5, scale=0.8)
    sc = g.conv("b_shortcut", "stem", 5, k=1, stride=2, padding=0, scale=0.7)
    g.lif("act2", [c2, sc])
    return g.out("act2").graph(T=4), graded(rng, 3, 4, (1, 8, 8))


def case_readout(rng):
    g = G((2, 4, 4))
    g.lif("lif1", g.conv("conv1", "input", 4))
    g.readout(g.affine("classifier", g.flatten("flat", "lif1"), 5, bias=0.3), T=4)
    return g.graph(T=4), graded(rng, 5, 4, (2, 4, 4))


def case_spike_input(rng):
    g = G((2, 6, 5))
    g.lif("lif1", g.conv("conv1", "input", 4, scale=2.0))
    g.lif("lif2", g.affine("fc", g.flatten("flat", "lif1"), 6, scale=1.5))
    return g.out("lif2").graph(T=6, encoding="rate", input_scale=1.0), spikes_in(rng, 3, 6, (2, 6, 5))


def case_residual_wide(rng):
    """As case_residual_identity, with synapses: wide (conv weights any integer, no 8-bit grid)."""
    g, x = case_residual_identity(rng)
    g.metadata["synapses"] = "wide"
    return g, x


CASES = {
    "conv": case_conv,
    "conv_stride": case_conv_stride,
    "dense_after_flatten": case_dense_after_flatten,
    "avgpool_conv": case_avgpool_conv,
    "global_pool_affine": case_global_pool_affine,
    "residual_identity": case_residual_identity,
    "residual_conv_shortcut": case_residual_conv_shortcut,
    "readout": case_readout,
    "spike_input": case_spike_input,
    "residual_wide": case_residual_wide,
}


def test_cases_exercise_weight_exponents():
    """The Lava runs above cover 8-bit mantissas with exponents > 0 in Conv and in Dense stages
    (Lava's Dense applies weight_exp itself), and a residual sum on the wide grid."""
    exps = {"conv": set(), "dense": set(), "scale": set()}
    for name, make in CASES.items():
        graph, _ = make(np.random.default_rng(zlib.crc32(name.encode())))
        net = fp.fixed_network(graph)
        for e in net.edges:
            op = e.ops[-1]
            exps[op.kind].add(op.weight_exp)
            if net.plan.synapses == "loihi" or op.kind == "dense":
                assert np.abs(op.weight_mant).max() <= fp.W_MANT_MAX, name
    assert max(exps["conv"]) > 0 and max(exps["dense"]) > 0 and max(exps["scale"]) > 0, exps


def write_case(tmp_path, graph, x):
    model, ref = tmp_path / "model.nir", tmp_path / "reference.h5"
    files.write_graph(model, graph)
    with h5py.File(ref, "w") as f:
        f.create_dataset("input", data=x)
        f.create_dataset("labels", data=np.zeros(len(x), np.int64))
    files.seal(ref)
    return model, ref


def lava_run(model, ref, mode, out, *extra):
    proc = run_in_lava(LAVA_RUN, [model, ref, "--mode", mode, "--out", out, "--quiet", *extra], timeout=300)
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case", list(CASES))
def test_layer_type_in_both_modes(tmp_path, case):
    graph, x = CASES[case](np.random.default_rng(zlib.crc32(case.encode())))
    model, ref = write_case(tmp_path, graph, x)
    graph = nir.read(model)
    want_float, logits_float = nir_reference(graph, x)
    net = fp.fixed_network(graph)
    want_fixed, v_fixed = simulate(net, fp.quantize_input(x.astype(np.float64), net.plan.input_scale).swapaxes(0, 1))
    want_fixed = {k: s.swapaxes(0, 1).astype(np.uint8) for k, s in want_fixed.items()}  # [N, T, ...] as Lava writes
    assert set(want_float) == set(net.plan.lif_names)
    active = np.mean([s.mean() for s in want_float.values()])
    assert 0.02 < active < 0.8, f"test graph {case} is too quiet or saturated ({active:.3f})"

    for mode in ("float", "fixed"):
        out = tmp_path / f"{mode}.h5"
        summary = lava_run(model, ref, mode, out)
        assert summary["mode"] == mode and summary["samples"] == len(x)
        with h5py.File(out, "r") as f:
            assert f.attrs["mode"] == mode and f.attrs["samples"] == len(x)
            for key in ("compile_seconds", "run_seconds", "seconds_per_sample"):
                assert f.attrs[key] >= 0
            for name in net.plan.lif_names:
                got = f[f"spikes/{name}"][:]
                assert got.dtype == np.uint8 and got.shape == want_float[name].shape, name
                if mode == "float":
                    agree = (got == want_float[name]).mean()
                    assert agree >= 0.999, f"{case} {name}: float agreement {agree:.5f}"
                else:
                    np.testing.assert_array_equal(got, want_fixed[name], err_msg=f"{case} {name} fixed")
            if net.plan.readout:
                logits = f["logits"][:]
                assert logits.shape == (len(x), graph.nodes["readout"].r.shape[0])
                if mode == "float":
                    np.testing.assert_allclose(logits, logits_float, rtol=1e-9, atol=1e-9)
                else:
                    np.testing.assert_array_equal(logits, v_fixed / net.readout_scale)
                    assert (logits.argmax(1) == logits_float.argmax(1)).mean() >= 0.8
            else:
                assert "logits" not in f


# ---- user errors ------------------------------------------------------------------------------------
@pytest.fixture()
def good_case(tmp_path):
    graph, x = case_conv(np.random.default_rng(0))
    return write_case(tmp_path, graph, x)


def _fails(tmp_path, model, ref, match, mode="fixed", node=""):
    with pytest.raises(TnaError) as err:
        run_in_lava(LAVA_RUN, [model, ref, "--mode", mode, "--out", tmp_path / "o.h5", "--quiet"], timeout=120)
    msg = str(err.value)
    assert "(exit 2)" in msg and "error: " in msg and "\n" not in msg, msg
    assert match in msg and node in msg, msg
    assert not (tmp_path / "o.h5").exists()


def test_not_a_nir_file(tmp_path, good_case):
    bogus = tmp_path / "model.txt"
    bogus.write_text("not a graph\n")
    _fails(tmp_path, bogus, good_case[1], "not an HDF5 file")


def test_hdf5_but_not_nir(tmp_path, good_case):
    _fails(tmp_path, good_case[1], good_case[1], "not a NIR graph")


def test_nir_but_not_tna(tmp_path, good_case):
    g = nir.read(good_case[0])
    foreign = tmp_path / "foreign.nir"
    nir.write(foreign, nir.NIRGraph(nodes=g.nodes, edges=g.edges, metadata={"dt": 1e-3}))
    _fails(tmp_path, foreign, good_case[1], "not a tna export")


def test_reference_without_input(tmp_path, good_case):
    ref = tmp_path / "noinput.h5"
    with h5py.File(ref, "w") as f:
        f.create_dataset("labels", data=np.zeros(2, np.int64))
    _fails(tmp_path, good_case[0], ref, "has no 'input' dataset")


@pytest.mark.parametrize("what,match", [("v_reset", "v_reset != 0"),
                                        ("cuba", "a bias into a CubaLIF's synaptic current")])
def test_unsupported_neuron_names_the_node(tmp_path, good_case, what, match):
    g = nir.read(good_case[0])
    lif = g.nodes["lif1"]
    if what == "cuba":
        node = nir.CubaLIF(tau_syn=lif.tau, tau_mem=lif.tau, r=lif.r, v_leak=lif.v_leak,
                           v_threshold=lif.v_threshold, v_reset=lif.v_reset)
    else:
        node = nir.LIF(tau=lif.tau, r=lif.r, v_leak=lif.v_leak, v_threshold=lif.v_threshold, v_reset=lif.v_reset)
        setattr(node, what, np.full_like(lif.tau, 0.1))
    nodes = {**g.nodes, "lif1": node}
    bad = tmp_path / "bad.nir"
    files.write_graph(bad, nir.NIRGraph(nodes=nodes, edges=g.edges, metadata=g.metadata))
    _fails(tmp_path, bad, good_case[1], match, mode="float", node="lif1")
