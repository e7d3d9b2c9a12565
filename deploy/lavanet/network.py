"""A tna NIR graph as a Lava process network, in floating_pt or bit-accurate fixed_pt (no torch).

    net = build(graph, "fixed", inputs, record_dir=tmp)     # inputs: float [N, T, *input_shape]
    result = net.run()                                      # compiles once, runs all N samples
    result.spikes["lif1"]  -> uint8 [N, T, C, H, W] (torch layout, step t = the model's step t)
    result.logits          -> float64 [N, K] (or None without an integrator readout)

    run_files("model.nir", "reference.h5", "fixed", "lava_fixed.h5")   # what deploy/lava_run.py does

The topology and the float numbers come from `deploy/graph/plan.py` (`plan_network`), the integers
from `deploy/loihi/fixed_point.py` (`fixed_network`); this module only turns them into Lava processes:

- input: one RingBuffer source with all N samples back to back (T steps each, then L zero steps
  to flush the pipeline; graded values, `num_message_bits` 24 on the first synapse stage);
- every op of an edge is one Lava synapse process (one step of delay): Conv (conv, sum pooling,
  per-channel scale as a depthwise 1x1 conv) or Dense (affine, with flatten and pooling folded
  into its matrix, columns permuted from torch's (C, H, W) flatten to Lava's (W, H, C));
- each population is a `VthLIF` (or the `Readout`), resetting u and v every T steps at offset
  (1 + L) mod T, L = its latency (synapse stages from the input); shorter edges into it are padded
  with `DelayLine`s, so all its inputs for a model step arrive in the same Lava step;
- several edges into one population connect several OutPorts to its one InPort (summed);
- a `Recorder` on every LIF (spikes) and on the readout's v writes an .npy file at the end.

Torch (C, H, W) is Lava (X, Y, C) = (W, H, C); torch's cross-correlation kernel becomes Lava's
flipped (true) convolution kernel: w_lava = w[:, :, ::-1, ::-1].transpose(0, 3, 2, 1).
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deploy import files
from deploy.graph.plan import ONE, NetworkPlan, plan_network
from deploy.loihi.fixed_point import FixedNetwork, fixed_network
from tna.errors import TnaError
from tna.runs import atomic_path, check_writable

MODES = {"float": "floating_pt", "fixed": "fixed_pt"}
GRADED_BITS = 24


def lava_shape(shape: tuple) -> tuple:
    """torch (C, H, W) -> Lava (W, H, C); 1-D unchanged."""
    return tuple(shape[::-1]) if len(shape) == 3 else tuple(shape)


def to_lava(a: np.ndarray, shape: tuple) -> np.ndarray:
    """A per-neuron parameter of torch shape (C, H, W) -> Lava (W, H, C) (broadcast first; 1-D unchanged)."""
    a = np.broadcast_to(np.asarray(a), shape)
    return np.ascontiguousarray(a.transpose(2, 1, 0)) if len(shape) == 3 else np.array(a)


def frames_to_lava(a: np.ndarray) -> np.ndarray:
    """Frames [n, C, H, W] -> [n, W, H, C] (1-D unchanged)."""
    if a.ndim == 4:
        return np.ascontiguousarray(a.transpose(0, 3, 2, 1))
    return a


def from_lava(a: np.ndarray, n_lead: int) -> np.ndarray:
    """[..lead.., W, H, C] -> [..lead.., C, H, W] (1-D unchanged)."""
    if a.ndim - n_lead == 3:
        return np.ascontiguousarray(np.moveaxis(a, [n_lead, n_lead + 2], [n_lead + 2, n_lead]))
    return a


def _conv_weight_lava(w: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(0, 3, 2, 1))


def _dense_weight_lava(w: np.ndarray, in_shape: tuple) -> np.ndarray:
    if len(in_shape) == 3:
        c, h, wd = in_shape
        return np.ascontiguousarray(w.reshape(w.shape[0], c, h, wd).transpose(0, 3, 2, 1).reshape(w.shape[0], -1))
    return w


@dataclass
class LavaResult:
    spikes: dict            # lif name -> uint8 [N, T, *shape] (torch layout)
    logits: np.ndarray | None
    compile_seconds: float
    run_seconds: float
    steps: int
    latency: dict           # population -> latency (Lava steps)


class LavaNetwork:
    """The built (not yet compiled) Lava processes for one graph, mode and input batch."""

    def __init__(self, plan: NetworkPlan, mode: str, inputs: np.ndarray, record_dir: str | Path,
                 fixed: FixedNetwork | None = None, progress: bool = False):
        if mode not in MODES:
            raise TnaError(f"unknown mode '{mode}'; use float or fixed")
        self.plan, self.mode, self.fixed = plan, mode, fixed
        self.progress = progress
        self.record_dir = Path(record_dir)
        x = np.asarray(inputs)
        if x.ndim < 2 or tuple(x.shape[2:]) != tuple(plan.input_shape):
            raise TnaError(f"inputs have shape {x.shape}; the graph expects [N, T, {', '.join(map(str, plan.input_shape))}]")
        if x.shape[1] != plan.T:
            raise TnaError(f"inputs have T = {x.shape[1]} steps but the graph's metadata says T = {plan.T}; "
                           "export the reference with the same T")
        self.N, self.T = int(x.shape[0]), int(x.shape[1])
        self.L = plan.max_latency
        self.steps = self.N * self.T + self.L
        self._build(self._source_data(x))

    # -- input ---------------------------------------------------------------------------------------
    def _source_data(self, x: np.ndarray) -> np.ndarray:
        plan = self.plan
        x = x.astype(np.float64)
        if self.mode == "fixed":
            q = x / plan.input_scale
            xi = np.round(q)
            off = float(np.abs(q - xi).max(initial=0))
            if off > 1e-3 and plan.tna:  # any other graph's inputs are quantised to its input grid
                raise TnaError(f"input values are not multiples of input_scale={plan.input_scale:g} "
                               f"(off by up to {off:.3g} units); fix the graph's input_scale metadata")
            lo, hi = plan.input_range
            if xi.size and (xi.min() < lo or xi.max() > hi):
                raise TnaError(f"input integers span [{int(xi.min())}, {int(xi.max())}] but the fixed-point mapping "
                               f"assumes [{lo}, {hi}]; add metadata input_range=[min, max] (input units) to the graph")
            x = xi.astype(np.int64)
        flat = x.reshape((self.N * self.T,) + tuple(plan.input_shape))
        flat = np.concatenate([flat, np.zeros((self.L,) + flat.shape[1:], flat.dtype)])
        lav = frames_to_lava(flat)  # [steps, *lava_shape]
        return np.ascontiguousarray(np.moveaxis(lav, 0, -1))  # Lava: time last

    # -- processes -----------------------------------------------------------------------------------
    def _build(self, data: np.ndarray):
        from lava.proc.io.source import RingBuffer as Source

        from deploy.lavanet.procs.lif import Readout, VthLIF
        from deploy.lavanet.procs.recorder import Recorder

        plan, fixed, T = self.plan, self.fixed, self.T
        self.source = Source(data=data)
        self.pops, self.recorders = {}, {}
        out_port = {plan.input_name: (self.source.s_out, plan.input_shape)}
        if any(e.source == ONE for p in plan.populations.values() for e in p.edges):  # biases into a current
            self.one = Source(data=np.ones((1, self.steps)))
            out_port[ONE] = (self.one.s_out, (1,))
        self.record_dir.mkdir(parents=True, exist_ok=True)
        for name, pop in plan.populations.items():
            shp = lava_shape(pop.shape)
            common = dict(shape=shp, reset_interval=T, reset_offset=(1 + pop.latency) % T)
            if self.mode == "float":
                params = dict(du=float(pop.syn_decay), dv=float(pop.decay), bias_mant=to_lava(pop.bias, pop.shape),
                              bias_exp=0)
                vth = None if pop.threshold is None else to_lava(pop.threshold, pop.shape).astype(np.float64)
            else:
                fp = fixed.populations[name]
                params = dict(du=int(fp.du), dv=int(fp.dv), bias_mant=to_lava(fp.bias_mant, pop.shape),
                              bias_exp=to_lava(fp.bias_exp, pop.shape))
                vth = None if fp.vth is None else to_lava(fp.vth, pop.shape)
            if pop.kind == "lif":
                proc = VthLIF(vth=vth, name=name, **common, **params)
                rec = Recorder(shape=shp, num_steps=self.steps, path=self.record_dir / f"{name}.npy", dtype="uint8")
                proc.s_out.connect(rec.a_in)
            else:
                proc = Readout(name=name, **common, **params)
                rec = Recorder(shape=shp, num_steps=self.steps, path=self.record_dir / f"{name}.npy", dtype="float64")
                proc.v_out.connect(rec.a_in)
            self.pops[name], self.recorders[name] = proc, rec
            edges = fixed.populations[name].edges if self.mode == "fixed" else pop.edges
            src_lat = {e.source: (0 if e.source == plan.input_name else plan.populations[e.source].latency)
                       for e in edges if e.source != ONE}
            out_port[name] = (proc.s_out, pop.shape)
            gate = dict(period=T, offset=(1 + pop.latency) % T)  # model step k = (time_step - offset) mod T
            for e in edges:
                port, shape = out_port[e.source]
                graded = e.source == plan.input_name
                # a recurrent edge is one step late by design; the constant bias source needs no alignment
                lag = 0 if e.recurrent or e.source == ONE else pop.latency - src_lat[e.source] - len(e.ops)
                for _ in range(lag + e.delay):
                    port = self._delay(port, shape)
                for i, op in enumerate(e.ops):
                    last = i == len(e.ops) - 1
                    port, shape = self._op(op, port, graded, pop if last else None)
                    graded = True  # after any stage the values are integers/sums, not 0/1
                if tuple(shape) != tuple(pop.shape):
                    raise TnaError(f"internal: edge {e.source} -> {name} ends with shape {shape}, not {pop.shape}")
                hold = int(e.recurrent) + e.delay  # steps that would carry the previous sample: zero
                if hold:
                    port = self._gate(port, shape, hold, **gate)
                port.connect(proc.a_in)
        self._first = self.source

    def _delay(self, port, shape):
        from deploy.lavanet.procs.delay import DelayLine

        d = DelayLine(shape=lava_shape(shape))
        port.connect(d.s_in)
        return d.a_out

    def _gate(self, port, shape, hold: int, period: int, offset: int):
        from deploy.lavanet.procs.delay import Gate

        g = Gate(shape=lava_shape(shape), hold=hold, period=period, offset=offset)
        port.connect(g.s_in)
        return g.a_out

    def _op(self, op, port, graded: bool, pop):
        """One synapse stage; `pop` is the target population when this is the edge's last op."""
        from lava.proc.conv.process import Conv
        from lava.proc.dense.process import Dense

        bits = GRADED_BITS if graded else 0
        fixed = self.mode == "fixed"
        gain = None if pop is None else pop.gain  # float mode: the last op carries d*r (or dt*r)
        if op.kind == "dense":
            # fixed: 8-bit mantissas and the stage's exponent, which Lava's Dense applies to its sum
            w = op.weight_mant if fixed else op.weight * gain[:, None]
            extra = dict(weight_exp=op.weight_exp) if fixed else {}
            proc = Dense(weights=_dense_weight_lava(np.asarray(w), op.in_shape), num_message_bits=bits, **extra)
            port.flatten().connect(proc.s_in) if len(op.in_shape) == 3 else port.connect(proc.s_in)
            return proc.a_out, op.out_shape
        one_d = len(op.in_shape) == 1
        in_lava = (1, 1, op.in_shape[0]) if one_d else lava_shape(op.in_shape)
        c = op.in_shape[0]
        if op.kind == "conv":
            # fixed: mantissa << exp as one integer; Lava's Conv ignores weight_exp (docs/lava_notes.md)
            w = op.weight_int if fixed else op.weight * gain.reshape(-1, 1, 1, 1)
            kw = dict(weight=_conv_weight_lava(np.asarray(w)), stride=op.stride[::-1], padding=op.padding[::-1],
                      dilation=op.dilation[::-1], groups=op.groups)
        elif op.kind == "sumpool":
            kh, kw_ = op.kernel
            w = np.ones((c, kw_, kh, 1), dtype=np.int64 if fixed else np.float64)
            if not fixed:
                w = w / op.divisor  # AvgPool2d: 1/(kh kw); fixed point carries it in the next stage's unit
            kw = dict(weight=w, stride=op.stride[::-1], padding=op.padding[::-1], dilation=(1, 1), groups=c)
        elif op.kind == "scale":
            w = op.weight_int if fixed else op.weight * gain
            kw = dict(weight=np.asarray(w).reshape(c, 1, 1, 1), groups=c)
        else:
            raise TnaError(f"internal: unknown op kind {op.kind}")
        proc = Conv(input_shape=in_lava, num_message_bits=bits, **kw)
        (port.reshape(in_lava) if one_d else port).connect(proc.s_in)
        out = proc.a_out.reshape((op.out_shape[0],)) if one_d else proc.a_out
        return out, op.out_shape

    # -- run -----------------------------------------------------------------------------------------
    def run(self) -> LavaResult:
        from lava.magma.core.run_conditions import RunSteps
        from lava.magma.core.run_configs import Loihi2SimCfg

        proc = self._first
        t0 = time.perf_counter()
        proc.create_runtime(run_cfg=Loihi2SimCfg(select_tag=MODES[self.mode]))
        t1 = time.perf_counter()
        try:
            chunks = max(1, min(20, self.steps // (self.T * 8))) if self.progress else 1
            done = 0
            for i in range(chunks):
                n = (self.steps * (i + 1)) // chunks - done
                if n > 0:
                    proc.run(condition=RunSteps(num_steps=n))
                    done += n
                if self.progress and chunks > 1:
                    el = time.perf_counter() - t1
                    print(f"lava {self.mode}: step {done}/{self.steps} ({el:.1f} s)", file=sys.stderr, flush=True)
            t2 = time.perf_counter()
        finally:
            proc.stop()
        return self._collect(t1 - t0, t2 - t1)

    def _collect(self, compile_s: float, run_s: float) -> LavaResult:
        plan, N, T = self.plan, self.N, self.T
        spikes, logits = {}, None
        for name, pop in plan.populations.items():
            path = self.record_dir / f"{name}.npy"
            if not path.exists():
                raise TnaError(f"Lava did not write the record of {name} ({path}); the run did not finish")
            rec = np.load(path)  # [steps, *lava_shape]
            if pop.kind == "lif":
                idx = (np.arange(N)[:, None] * T + np.arange(T)[None, :] + pop.latency).ravel()
                s = rec[idx].reshape((N, T) + rec.shape[1:])
                spikes[name] = from_lava(s, 2).astype(np.uint8)
            elif name == plan.readout:
                steps = np.arange(N)[:, None] * T + np.arange(T)[None, :] + pop.latency  # [N, T]
                v = from_lava(rec[steps.ravel()], 1).reshape(N, T, -1)
                v = v[:, -1] if plan.output_rule == "last" else v.sum(axis=1, dtype=np.int64 if self.mode == "fixed"
                                                                          else np.float64)
                v = v.astype(np.float64)
                if self.mode == "fixed":
                    v = v / self.fixed.readout_scale
                logits = v
        if plan.output_rule == "count":
            logits = spikes[plan.output_source].reshape(N, T, -1).sum(axis=1).astype(np.float64)
        lat = {n: p.latency for n, p in plan.populations.items()}
        return LavaResult(spikes, logits, compile_s, run_s, self.steps, lat)


def build(graph, mode: str, inputs: np.ndarray, *, record_dir, progress: bool = False) -> LavaNetwork:
    """The Lava network for a NIR graph (nir.NIRGraph or a NetworkPlan) in mode float|fixed."""
    plan = graph if isinstance(graph, NetworkPlan) else plan_network(graph)
    fixed = fixed_network(plan) if mode == "fixed" else None
    return LavaNetwork(plan, mode, inputs, record_dir, fixed, progress)


def run_files(model: str | Path, reference: str | Path, mode: str, out: str | Path, samples: int | None = None,
              progress: bool = True) -> dict:
    """Run a model.nir on the first `samples` inputs of a reference.h5 and write Lava's spikes and
    logits to `out` (deploy/files.py). Returns the summary (the output's attrs, latency, path)."""
    if mode not in MODES:
        raise TnaError(f"unknown mode '{mode}'; use float or fixed")
    if samples is not None and samples < 1:
        raise TnaError(f"--samples must be at least 1, got {samples}")
    out = Path(out)
    for given, what in ((model, "MODEL.nir"), (reference, "REFERENCE.h5")):
        if Path(out).resolve() == Path(given).resolve() or files.same_file(out, given):
            raise TnaError(f"--out {out} is the {what} input; write Lava's output to another file")
    if out.is_dir():
        raise TnaError(f"--out {out} is a folder; give the file to write, e.g. {out / 'lava_fixed.h5'}")
    check_writable(out.parent)  # before any work
    graph = files.read_graph(model)
    x = files.read_inputs(reference, samples)
    source = {**files.reference_source(reference, x.shape[0]), "reference_digest": files.file_digest(reference),
              "model_digest": files.file_digest(model, "NIR graph")}
    with tempfile.TemporaryDirectory(prefix="tna-lava-") as rec_dir:
        net = build(graph, mode, x, record_dir=rec_dir, progress=progress)
        if progress:
            print(f"lava {mode}: {len(net.plan.populations)} populations, {x.shape[0]} samples x {net.T} steps "
                  f"+ {net.L} pipeline steps", file=sys.stderr, flush=True)
        result = net.run()
    n = x.shape[0]
    attrs = {"mode": mode, "samples": n, "steps": result.steps, "compile_seconds": round(result.compile_seconds, 4),
             "run_seconds": round(result.run_seconds, 4),
             "seconds_per_sample": round(result.run_seconds / max(n, 1), 5), "latency": result.latency,
             "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **source}
    with atomic_path(out) as tmp:
        files.write_lava_output(tmp, result.spikes, result.logits, attrs)
    return {**attrs, "out": str(out)}
