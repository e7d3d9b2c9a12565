"""deploy/loihi/fixed_point.py: the integer LIF step (numpy == torch == Lava), and the NIR -> integer mapping;
deploy/loihi/simulate.py: the one integer simulator, the same on numpy and torch."""

import json

import nir
import numpy as np
import pytest
import torch

from deploy.graph.plan import plan_network
from deploy.lavanet.env import run_in_lava
from deploy.loihi import fixed_point as fp
from deploy.loihi.simulate import LoihiSimulator, simulate
from tna.errors import TnaError

DT = 1e-3


def extreme_inputs(rng, steps, n):
    """a_in that wraps u (|a| > 2**17), drives v into the clip, and gives odd negative products."""
    a = rng.integers(-(2**18), 2**18, size=(steps, n))
    a[::3] = rng.integers(-300, 300, size=a[::3].shape)
    a[5:8, : n // 2] = 2**17 - 1  # three steps of the largest non-wrapping input: v clips
    return a.astype(np.int64)


# ---- the step ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("du,dv", [(4095, 2048), (1024, 100), (0, 0), (4095, 4095)])
def test_lif_step_numpy_and_torch_agree(du, dv):
    rng = np.random.default_rng(du + dv)
    n, steps = 64, 40
    a = extreme_inputs(rng, steps, n)
    bias = rng.integers(-4095, 4096, n) << rng.integers(0, 8, n)
    vth = rng.integers(0, 2**17, n)
    u_np = v_np = np.zeros(n, np.int64)
    u_t = v_t = torch.zeros(n, dtype=torch.int64)
    for t in range(steps):
        for th in (vth, None):
            u1, v1, s1 = fp.lif_fixed_step(u_np, v_np, a[t], du, dv, bias, th, np)
            u2, v2, s2 = fp.lif_fixed_step(u_t, v_t, torch.from_numpy(a[t]), du, dv, torch.from_numpy(bias),
                                           None if th is None else torch.from_numpy(th), torch)
            assert u2.dtype == v2.dtype == torch.int64 and s2.dtype == torch.bool
            np.testing.assert_array_equal(u1, u2.numpy())
            np.testing.assert_array_equal(v1, v2.numpy())
            np.testing.assert_array_equal(s1, s2.numpy())
        u_np, v_np, u_t, v_t = u1, v1, u2, v2
        assert np.all(np.abs(v1) <= fp.V_CLIP) and np.all((u1 > -fp.UV_HALF) & (u1 <= fp.UV_HALF))


def test_lif_step_is_lavas_documented_arithmetic():
    # hand-checked values: trunc toward zero, u wraps, v clips, vth << 6, reset to 0
    u, v, s = fp.lif_fixed_step(np.array([0, 0, 0, 0]), np.array([5, -5, 100, 0]), np.array([1, -1, 2**17 + 1, 2**17]),
                                4095, 2048, np.array([0, 0, 0, 0]), np.array([0, 0, 10**5, 2**17 - 1]), np)
    # 2**23 + 64 wraps to 64 - 2**23; exactly 2**23 is kept (Lava wraps only u > 2**23)
    np.testing.assert_array_equal(u, [64, -64, 64 - 2**23, 2**23])
    # trunc(5/2) + 64 = 66 > 0: spike and reset; trunc(-5/2) = -2; v clips to 2**23 - 1 > (2**17 - 1) << 6
    np.testing.assert_array_equal(v, [0, -66, 50 + 64 - 2**23, 0])
    np.testing.assert_array_equal(s, [True, False, False, True])
    u, v, s = fp.lif_fixed_step(np.array([640]), np.array([2**23 - 10]), np.array([0]), 0, 0, np.array([10**6]),
                                None, np)
    assert u[0] == 639 and v[0] == 2**23 - 1 and not s[0]  # du = 0 still decays u; v clips


def test_wrap_and_dense_truncation():
    x = np.array([2**23 - 1, 2**23, 9 * 2**20, -(2**23), -(2**23) - 1])
    want = [2**23 - 1, -(2**23), -7340032, -(2**23), 2**23 - 1]
    np.testing.assert_array_equal(fp.wrap_signed(x), want)
    np.testing.assert_array_equal(fp.wrap_signed(torch.from_numpy(x)).numpy(), want)
    np.testing.assert_array_equal(fp.dense_effective_weights(np.array([1, 3, -3, 300, -300, 254])),
                                  [0, 2, -4, 254, -256, 254])
    np.testing.assert_array_equal(fp.dense_effective_weights(np.array([1, 3, 300])), [1, 3, 255])
    np.testing.assert_array_equal(fp.dense_effective_weights(np.array([-1, -3, -300])), [-1, -3, -255])


LAVA_STEP_SCRIPT = r'''
import json, sys
import numpy as np
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.proc.io.source import RingBuffer as Source
from deploy.lavanet.procs.lif import VthLIF
from deploy.lavanet.procs.recorder import Recorder
p = json.load(open(sys.argv[1]))
a = np.array(p["a"]); steps, n = a.shape
src = Source(data=a.T.copy())
lif = VthLIF(shape=(n,), vth=np.array(p["vth"]), du=p["du"], dv=p["dv"], bias_mant=np.array(p["mant"]),
             bias_exp=np.array(p["exp"]), reset_interval=p["interval"], reset_offset=p["offset"])
rec = Recorder(shape=(n,), num_steps=steps, path=sys.argv[2], dtype="uint8")
src.s_out.connect(lif.a_in)  # direct: no synapse, a_in is exactly the data
lif.s_out.connect(rec.a_in)
lif.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
u, v = lif.u.get().astype(int).tolist(), lif.v.get().astype(int).tolist()
lif.stop()
print(json.dumps({"u": u, "v": v}))
'''


def test_lif_step_matches_lava_vthlif_bit_for_bit(tmp_path):
    """Lava's fixed_pt LIF (our VthLIF: per-neuron vth, periodic reset) on the extreme inputs."""
    rng = np.random.default_rng(7)
    n, steps, interval, offset = 12, 30, 7, 3
    a = extreme_inputs(rng, steps, n)
    mant, exp = rng.integers(-4095, 4096, n), rng.integers(0, 8, n)
    vth = rng.integers(0, 2**17, n)
    vth[:3] = [0, 1000, 2**17 - 1]
    params = dict(a=a.tolist(), vth=vth.tolist(), du=4095, dv=2048, mant=mant.tolist(), exp=exp.tolist(),
                  interval=interval, offset=offset)
    (tmp_path / "p.json").write_text(json.dumps(params))
    script = tmp_path / "step.py"
    script.write_text(LAVA_STEP_SCRIPT)
    proc = run_in_lava(script, [tmp_path / "p.json", tmp_path / "s.npy"], timeout=120)
    lava = json.loads(proc.stdout.strip().splitlines()[-1])
    spikes = np.load(tmp_path / "s.npy")
    u = v = np.zeros(n, np.int64)
    want = []
    for t in range(steps):
        if (t + 1) % interval == offset:  # Lava's time_step is t + 1; reset before the update
            u = v = np.zeros(n, np.int64)
        u, v, s = fp.lif_fixed_step(u, v, a[t], 4095, 2048, mant << exp, vth, np)
        want.append(s)
    np.testing.assert_array_equal(spikes, np.array(want, np.uint8))
    np.testing.assert_array_equal(lava["u"], u)
    np.testing.assert_array_equal(lava["v"], v)
    assert 0 < spikes.sum() < spikes.size


# ---- the mapping ------------------------------------------------------------------------------------
def graph(nodes, edges, T=4, **meta):
    md = dict(format="tna-nir", version=1, dt=DT, T=T, encoding="direct", input_scale=1 / 255, reset="zero", **meta)
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=md)


def lif(shape, v_th=1.0, tau=2e-3):
    full = lambda v: np.full(shape, v, np.float32)  # noqa: E731
    th = full(v_th) if np.isscalar(v_th) else np.asarray(v_th, np.float32)
    return nir.LIF(tau=full(tau), r=full(1.0), v_leak=full(0.0), v_threshold=th, v_reset=full(0.0))


def mlp_graph():
    """input [6] (graded, 1/255) -> Affine (ternary) -> LIF [3] -> Affine -> I [2] -> output."""
    codes1 = np.array([[1, 0, -1, 1, 0, 1], [0, 1, 1, -1, 1, 0], [-1, -1, 0, 1, 1, 1]], np.float32)
    m1 = np.array([0.5, 0.25, 0.75], np.float32)
    codes2 = np.array([[1, -1, 1], [0, 1, -1]], np.float32)
    m2 = np.array([0.75, 1.5], np.float32)
    nodes = {
        "input": nir.Input(input_type={"input": np.array([6])}),
        "fc1": nir.Affine(weight=codes1 * m1[:, None], bias=np.array([0.1, 0.0, -0.2], np.float32)),
        "lif1": lif((3,), v_th=np.array([1.0, 5.0, 2.0])),  # neuron 1 can reach at most 4 * 0.25 < 5
        "fc2": nir.Affine(weight=codes2 * m2[:, None], bias=np.array([0.05, -0.1], np.float32)),
        "readout": nir.I(r=np.full(2, 1 / (4 * DT), np.float32)),
        "output": nir.Output(output_type={"output": np.array([2])}),
    }
    edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "readout"), ("readout", "output")]
    return graph(nodes, edges), codes1, m1, codes2, m2


def test_hand_made_graph_parameters():
    g, codes1, m1, codes2, m2 = mlp_graph()
    net = fp.fixed_network(g)
    p = net.populations["lif1"]
    d, sigma = 0.5, 1 / 255
    assert (p.du, p.dv, p.latency) == (4095, 2048, 1)
    assert p.K % 2 == 0 and p.K >= 2  # a Dense needs even weights (Lava drops their lowest bit)
    w = p.edges[0].ops[-1].weight_int
    np.testing.assert_array_equal(w, p.K * codes1)  # exactly K * codes
    lam = 64 * p.K / (d * sigma * m1.astype(np.float64))
    np.testing.assert_allclose(p.scale, lam)
    np.testing.assert_array_equal(p.silent, [False, True, False])  # never fires: the largest vth
    np.testing.assert_array_equal(p.vth, [np.round(lam[0] / 64), fp.VTH_MAX, np.round(lam[2] * 2 / 64)])
    np.testing.assert_array_equal(p.bias, p.bias_mant << p.bias_exp)
    np.testing.assert_allclose(p.bias, lam * d * np.array([0.1, 0.0, -0.2]), atol=2.0 ** p.bias_exp.max())
    # K is as large as the ranges allow: graded input in [-255, 255], so |a| <= K * 4 * 255 ...
    assert p.v_bound <= fp.V_BOUND and p.a_bound.max() <= fp.A_MAX and p.vth.max() <= fp.VTH_MAX
    assert p.binding, "K + 2 must break some range"
    # readout: one scale for all classes, the smaller unit gets exactly K * codes
    r = net.populations["readout"]
    assert r.dv == 0 and r.vth is None and np.all(r.scale == r.scale.flat[0]) and r.latency == 2
    assert net.readout_scale == r.scale.flat[0]
    op = r.edges[0].ops[-1]
    wr, grid = op.weight_int, 2 << op.weight_exp  # Dense: even mantissas << exp
    np.testing.assert_array_equal(wr[0], r.K * codes2[0])
    np.testing.assert_array_equal(wr[1], grid * np.round(r.K * m2[1] / m2[0] / grid) * codes2[1])
    np.testing.assert_allclose(net.readout_scale, 64 * r.K / (DT * 250 * m2[0]))
    assert np.abs(op.weight_mant).max() <= fp.DENSE_W_MANT_MAX
    np.testing.assert_array_equal(fp.dense_effective_weights(op.weight_mant), op.weight_mant)


def assert_loihi_synapses(op):
    """Every weight is an 8-bit mantissa times the stage's power of two, with the smallest exponent."""
    mant, e = op.weight_mant, op.weight_exp
    mmax = fp.DENSE_W_MANT_MAX if op.kind == "dense" else fp.W_MANT_MAX
    assert 0 <= e <= fp.W_EXP_MAX
    np.testing.assert_array_equal(mant << e, op.weight_int)
    assert np.abs(mant).max() <= mmax
    if e > 0:  # one exponent less would not fit
        assert np.abs(op.weight_int).max() > mmax << (e - 1)
    if op.kind == "dense":
        assert np.all(mant % 2 == 0)


def conv_graph(rng, full_precision=False, shortcut="identity"):
    """A residual block: input -> conv -> stem LIF -> conv -> LIF -> conv (+ shortcut) -> LIF -> readout."""
    def tern(shape, lo=0.2, hi=0.6):
        codes = rng.choice([-1.0, 0.0, 1.0], size=shape)
        return (codes * rng.uniform(lo, hi, (shape[0],) + (1,) * (len(shape) - 1))).astype(np.float32)

    conv = lambda w, s=1, p=1, hw=(8, 8): nir.Conv2d(  # noqa: E731
        input_shape=hw, weight=w, stride=(s, s), padding=(p, p), dilation=(1, 1), groups=1,
        bias=rng.uniform(-0.1, 0.1, w.shape[0]).astype(np.float32))
    w0 = rng.normal(0, 0.5, (4, 2, 3, 3)).astype(np.float32) if full_precision else tern((4, 2, 3, 3))
    nodes = {
        "input": nir.Input(input_type={"input": np.array([2, 8, 8])}),
        "conv0": conv(w0), "stem": lif((4, 8, 8)),
        "conv1": conv(tern((4, 4, 3, 3))), "act1": lif((4, 8, 8)),
        "conv2": conv(tern((4, 4, 3, 3), 0.05, 0.3)), "act2": lif((4, 8, 8)),
        "flat": nir.Flatten(input_type={"input": np.array([4, 8, 8])}, start_dim=0, end_dim=-1),
        "fc": nir.Affine(weight=tern((3, 256), 0.01, 0.05), bias=np.zeros(3, np.float32)),
        "readout": nir.I(r=np.full(3, 1 / (4 * DT), np.float32)),
        "output": nir.Output(output_type={"output": np.array([3])}),
    }
    edges = [("input", "conv0"), ("conv0", "stem"), ("stem", "conv1"), ("conv1", "act1"), ("act1", "conv2"),
             ("conv2", "act2"), ("act2", "flat"), ("flat", "fc"), ("fc", "readout"), ("readout", "output")]
    if shortcut == "identity":
        edges.append(("stem", "act2"))
    else:
        nodes["sc"] = conv(tern((4, 4, 1, 1), 0.1, 0.2), p=0)
        edges += [("stem", "sc"), ("sc", "act2")]
    return graph(nodes, edges)


@pytest.mark.parametrize("synapses", ["loihi", "wide"])
@pytest.mark.parametrize("shortcut", ["identity", "conv1x1"])
def test_residual_edges_share_the_population_scale(shortcut, synapses):
    g = conv_graph(np.random.default_rng(1), shortcut=shortcut)
    g.metadata["synapses"] = synapses
    net = fp.fixed_network(g)
    assert net.plan.synapses == synapses
    p = net.populations["act2"]
    main, short = p.edges if p.edges[0].source == "act1" else p.edges[::-1]
    assert [op.kind for op in short.ops] == (["scale"] if shortcut == "identity" else ["conv"])
    assert p.latency == 3 and net.populations["stem"].latency == 1  # the shortcut is padded by Lava
    w2 = g.nodes["conv2"].weight.astype(np.float64)
    m2 = np.abs(w2).reshape(4, -1).max(1)
    wi = short.ops[-1].weight_int
    grid = 1 << short.ops[-1].weight_exp  # 8-bit mantissas: rounded on the stage's grid
    if shortcut == "identity":  # weight 1 on spikes: an integer multiplier per channel, K / m2_c
        np.testing.assert_array_equal(wi, grid * np.round(p.K / m2 / grid))
    else:
        ws = g.nodes["sc"].weight.astype(np.float64)
        ms = np.abs(ws).reshape(4, -1).max(1)
        primary = np.minimum(m2, ms)
        np.testing.assert_array_equal(wi, grid * np.round(p.K * ms / primary / grid)[:, None, None, None] * np.sign(ws))
    for e in p.edges:
        if synapses == "loihi":  # every stage storable on the chip
            assert_loihi_synapses(e.ops[-1])
        else:  # wide: plain integers, rounded to the nearest (the exact multipliers K / m)
            assert e.ops[-1].weight_exp == 0
    # the smaller-unit edge of each channel carries exactly K * codes
    np.testing.assert_array_equal(np.abs(main.ops[-1].weight_int).reshape(4, -1).max(1)[m2 <= (1 if shortcut == "identity" else ms)],
                                  p.K)
    np.testing.assert_allclose(p.scale[:, 0, 0], 64 * p.K / (0.5 * np.minimum(m2, 1 if shortcut == "identity" else ms)))


def test_ranges_hold_for_every_population():
    for seed, full in [(0, False), (1, True), (2, False)]:
        net = fp.fixed_network(conv_graph(np.random.default_rng(seed), full_precision=full, shortcut="conv1x1"))
        for name, p in net.populations.items():
            assert p.a_bound.max() <= fp.A_MAX, name
            assert p.v_bound <= fp.V_BOUND, name
            assert np.all(np.abs(p.bias_mant) <= fp.BIAS_MANT_MAX) and np.all((0 <= p.bias_exp) & (p.bias_exp <= 7))
            if p.vth is not None:
                assert p.vth.min() >= 0 and p.vth.max() <= fp.VTH_MAX
            assert p.K >= 1 and p.binding, name
            # K is on the synapse grid: one 8-bit mantissa << exp (Dense: even)
            dense = any(e.ops[-1].kind == "dense" for e in p.edges)
            k_exp = max(0, p.K.bit_length() - 8)
            assert p.K >> k_exp << k_exp == p.K and (not dense or (p.K >> k_exp) % 2 == 0), name
            for e in p.edges:
                op = e.ops[-1]
                assert_loihi_synapses(op)
                if op.kind == "dense":
                    np.testing.assert_array_equal(fp.dense_effective_weights(op.weight_mant), op.weight_mant)
        stem = net.populations["stem"].edges[0].ops[0]
        if full:  # full precision: 8-bit mantissas per stage, error <= 1/2 grid step
            assert np.abs(stem.weight_mant).max() <= fp.W_MANT_MAX
            lam = net.populations["stem"].scale[:, 0, 0]
            approx = stem.weight_int * 64 / (lam * 0.5 * (1 / 255))[:, None, None, None]
            unit = (1 << stem.weight_exp) * 64 / (lam * 0.5 / 255)
            assert np.all(np.abs(approx - stem.weight) <= 0.5 * unit[:, None, None, None] + 1e-12)
        else:
            codes = np.sign(stem.weight)
            k = net.populations["stem"].K
            np.testing.assert_array_equal(stem.weight_int, k * codes)


def test_mapping_is_a_pure_function_of_the_graph(tmp_path):
    g = conv_graph(np.random.default_rng(3))
    nir.write(tmp_path / "g.nir", g)
    a, b = fp.fixed_network(g), fp.fixed_network(nir.read(tmp_path / "g.nir"))
    for name in a.populations:
        pa, pb = a.populations[name], b.populations[name]
        assert pa.K == pb.K and pa.dv == pb.dv
        for x, y in [(pa.vth, pb.vth), (pa.bias, pb.bias)] + [
                (ea.ops[-1].weight_int, eb.ops[-1].weight_int) for ea, eb in zip(pa.edges, pb.edges)]:
            assert (x is None and y is None) or np.array_equal(x, y)


def test_one_simulator_is_the_same_on_numpy_and_torch():
    """deploy/loihi/simulate.py on numpy int64 and on torch (batched, exact float stages): integer for
    integer, spikes and the readout; and LoihiSimulator.run_float (the golden `loihi` reference)."""
    g = conv_graph(np.random.default_rng(4))
    net = fp.fixed_network(g)
    rng = np.random.default_rng(5)
    for x_int in (np.repeat(rng.integers(0, 256, (1, 3, 2, 8, 8)), 4, axis=0),  # constant over time (direct)
                  rng.integers(-255, 256, (4, 3, 2, 8, 8))):                    # changing every step
        want, v_want = simulate(net, x_int)
        got, v_got = simulate(net, torch.from_numpy(x_int))
        assert set(got) == set(want) == set(net.plan.lif_names)
        for name in want:
            np.testing.assert_array_equal(got[name].numpy().astype(bool), want[name])
        np.testing.assert_array_equal(v_got.numpy(), v_want)
        assert 0 < np.mean([w.mean() for w in want.values()]) < 0.9
    x = torch.from_numpy(x_int * net.plan.input_scale)  # [T, N, ...] as it enters the network
    spikes, logits = LoihiSimulator(g).run_float(x)
    for name in want:
        np.testing.assert_array_equal(spikes[name].numpy().astype(bool), want[name])
    np.testing.assert_array_equal(logits.numpy(), (v_want / net.readout_scale).astype(np.float32))
    np.testing.assert_allclose(logits.numpy(), v_want / net.readout_scale, rtol=1e-6)


def _stage_int64(op, x):
    """One stage in plain int64 numpy, as Lava computes it (an independent reference)."""
    from deploy.loihi.simulate import conv2d_np

    if op.kind == "dense":
        return x.reshape(len(x), -1) @ op.weight_int.T
    if op.kind == "scale":
        y = x * op.weight_int.reshape((1, -1) + (1,) * (x.ndim - 2))
    elif op.kind == "sumpool":
        c = op.in_shape[0]
        y = conv2d_np(x, np.ones((c, 1) + tuple(op.kernel), np.int64), op.stride, op.padding, (1, 1), c)
    else:
        y = conv2d_np(x, op.weight_int, op.stride, op.padding, op.dilation, op.groups)
    return fp.wrap_signed(y, 24)


@pytest.mark.parametrize("shortcut", ["identity", "conv1x1"])
def test_simulator_is_lavas_step_by_step_arithmetic(shortcut):
    """The simulator (layer by layer over all steps, exact float stages, `lif_fixed_run`) = every
    population stepped once per time step in int64 with `lif_fixed_step` (Lava's order and types),
    on graphs with a residual sum and a readout; on numpy and on torch."""
    g = conv_graph(np.random.default_rng(6), shortcut=shortcut)
    net = fp.fixed_network(g)
    x_int = np.random.default_rng(7).integers(-255, 256, (5, 2, 2, 8, 8))
    state = {k: (np.zeros((2,) + p.shape, np.int64),) * 2 for k, p in net.populations.items()}
    want = {k: [] for k in net.plan.lif_names}
    for t in range(5):
        act = {net.plan.input_name: x_int[t]}
        for name, p in net.populations.items():
            a = np.zeros((2,) + p.shape, np.int64)
            for e in p.edges:
                y = act[e.source].astype(np.int64)
                for op in e.ops:
                    y = _stage_int64(op, y)
                a = a + y.reshape(a.shape)
            u, v, s = fp.lif_fixed_step(*state[name], a, p.du, p.dv, p.bias, p.vth, np)
            state[name], act[name] = (u, v), s
            if name in want:
                want[name].append(s)
    v_want = state[net.plan.readout][1].reshape(2, -1)
    for x in (x_int, torch.from_numpy(x_int)):
        got, v_got = simulate(net, x)
        for name in want:
            np.testing.assert_array_equal(np.asarray(got[name]).astype(bool), np.stack(want[name]), err_msg=name)
        np.testing.assert_array_equal(np.asarray(v_got), v_want)
    assert 0 < np.mean([np.mean(w) for w in want.values()]) < 0.9


def as_torch(z: np.ndarray) -> torch.Tensor:
    """The same array as a tensor; a stride-0 view (the same input at every step) stays one."""
    if z.ndim and z.strides[0] == 0:
        return torch.from_numpy(np.array(z[:1])).expand(z.shape)
    return torch.from_numpy(z)


@pytest.mark.parametrize("dv", [2048, 1024, 100, 0])
def test_lif_run_is_the_step_repeated(dv):
    """lif_fixed_run (in-place float steps where the ranges allow, else lif_fixed_step) = lif_fixed_step
    T times, on numpy and torch: inputs inside the ranges, and extreme ones (u wraps, v clips)."""
    rng = np.random.default_rng(dv)
    n, T = 200, 12
    bias = rng.integers(-4095, 4096, n) << rng.integers(0, 3, n)
    vth = rng.integers(0, 2**16, n)
    for a in (rng.integers(-2000, 2000, (T, n)), np.broadcast_to(rng.integers(-2000, 2000, (1, n)), (T, n)),
              extreme_inputs(rng, T, n)):  # changing, the same at every step (a stride-0 view), out of range
        for th in (vth, None):
            u = v = np.zeros(n, np.int64)
            want = []
            for t in range(T):
                u, v, s = fp.lif_fixed_step(u, v, a[t], 4095, dv, bias, th, np)
                want.append(s)
            for xp, arr in ((np, lambda z: z), (torch, as_torch)):
                spikes, v_run = fp.lif_fixed_run(arr(a), 4095, dv, arr(bias), None if th is None else arr(th), xp)
                np.testing.assert_array_equal(np.asarray(spikes).astype(bool), np.stack(want))
                np.testing.assert_array_equal(np.asarray(v_run), v)
            if th is not None:
                assert 0 < np.mean(want) < 1


@pytest.mark.parametrize("change,match", [
    (lambda n: n.update(lif1=nir.CubaLIF(tau_syn=np.array([1.0, 1.0, 2.0]), tau_mem=np.ones(3), r=np.ones(3),
                                         v_leak=np.zeros(3), v_threshold=np.ones(3))),
     "lif1: tau_syn must be one value per layer"),
    (lambda n: setattr(n["lif1"], "v_reset", np.full(3, -0.5)), "lif1: LIF with v_reset != 0"),
    (lambda n: setattr(n["lif1"], "tau", np.array([2e-3, 2e-3, 4e-3])), "lif1: tau must be one value per layer"),
])
def test_unsupported_parameters_are_one_line_errors(change, match):
    g, *_ = mlp_graph()
    nodes = dict(g.nodes)
    change(nodes)
    with pytest.raises(TnaError, match=match) as err:
        fp.fixed_network(graph(nodes, g.edges))
    assert "\n" not in str(err.value)


def test_graphs_without_a_time_step_or_with_two_weights_in_a_row_are_refused():
    g, *_ = mlp_graph()
    with pytest.raises(TnaError, match=r"NIR stores no dt\); pass --dt"):
        plan_network(nir.NIRGraph(nodes=g.nodes, edges=g.edges, metadata={}))
    nodes = dict(g.nodes)
    nodes["fc1b"] = nir.Affine(weight=np.eye(3, dtype=np.float32), bias=np.zeros(3, np.float32))
    edges = [e for e in g.edges if e != ("fc1", "lif1")] + [("fc1", "fc1b"), ("fc1b", "lif1")]
    with pytest.raises(TnaError, match="two synaptic layers in a row"):
        plan_network(graph(nodes, edges))


def test_wide_synapses_keep_residual_multipliers_exact_and_loihi_stores_them_in_8_bits():
    """The two synapse settings differ only where 8 bits cannot hold a residual sum's multipliers."""
    g = conv_graph(np.random.default_rng(1))
    loihi = fp.fixed_network(g)
    g.metadata["synapses"] = "wide"
    wide = fp.fixed_network(g)
    big = [n for n, p in wide.populations.items() if p.edges and max(np.abs(e.ops[-1].weight_int).max()
                                                                      for e in p.edges) > fp.W_MANT_MAX]
    assert big, "the test graph should need more than 8 bits somewhere"
    for n in big:
        for e in loihi.populations[n].edges:
            assert np.abs(e.ops[-1].weight_mant).max() <= fp.W_MANT_MAX


def test_unknown_synapses_metadata_is_a_clear_error():
    g = conv_graph(np.random.default_rng(1))
    g.metadata["synapses"] = "16bit"
    with pytest.raises(TnaError, match="synapses='16bit' is not one of loihi, wide"):
        fp.fixed_network(g)
