"""Smoke test of the Lava installation (runs in the Lava environment, no torch).

Builds RingBuffer source -> Dense (graded input) -> LIF -> RingBuffer sink, runs it for STEPS
steps in floating_pt and in fixed_pt (bit-accurate Loihi), and checks the spikes and final LIF
state against a pure-numpy re-implementation of Lava's LIF update (lava/proc/lif/models.py),
including the one-step delay of Dense. Prints one JSON line and exits 0 when everything
matches; exits 1 with a one-line message on stderr otherwise.

    .venv-lava/bin/python deploy/lavanet/smoke.py
    {"ok": true, "steps": 20, "spikes": {"floating_pt": 14, "fixed_pt": 15}, ...}

Lava is imported inside functions only, so importing this module never needs lava.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

STEPS = 20
N_IN, N_OUT = 4, 3
MODES = ("floating_pt", "fixed_pt")


def _params(mode: str) -> dict:
    """Inputs, weights and neuron parameters for one mode (fixed_pt: integers only)."""
    rng = np.random.default_rng(0)
    if mode == "floating_pt":
        return dict(
            x=rng.random((N_IN, STEPS)),
            w=np.array([[0.9, 0.4, -0.3, 0.2], [0.5, -0.6, 0.7, 0.3], [-0.2, 0.3, 0.4, 0.6]]),
            du=0.5, dv=0.25, vth=2.5, bias_mant=np.array([0.0, 0.05, -0.05]), bias_exp=0,
        )
    # Even weights in [-256, 254]: the fixed_pt Dense drops the lowest bit of mixed-sign weights
    # (num_weight_bits=8), so even weights pass through unchanged.
    return dict(
        x=rng.integers(0, 16, size=(N_IN, STEPS)),
        w=np.array([[40, 16, -12, 8], [20, -24, 28, 12], [-8, 12, 16, 26]]),
        du=1024, dv=512, vth=3000, bias_mant=np.array([0, 64, -64]), bias_exp=1,
    )


def reference(mode: str, p: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spikes (N_OUT, STEPS) and final u, v of Lava's LIF, re-implemented in numpy.

    floating_pt: u = u*(1-du) + a;  v = v*(1-dv) + u + bias_mant;  s = v > vth;  v[s] = 0
    fixed_pt:    u = trunc(u*(4096-(du+1)) / 4096) + (a << 6), wrapped to 24 bits
                 v = trunc(v*(4096-dv) / 4096) + u + (bias_mant << bias_exp), clipped to 24 bits
                 s = v > (vth << 6);  v[s] = 0          (trunc = toward zero)
    with a[t] = W @ x[t-1] (Dense delivers one step late; a[0] = 0).
    """
    x, w = p["x"], p["w"]
    spikes = np.zeros((N_OUT, STEPS), dtype=int)
    if mode == "floating_pt":
        u = np.zeros(N_OUT)
        v = np.zeros(N_OUT)
        for t in range(STEPS):
            a = w.dot(x[:, t - 1]) if t > 0 else np.zeros(N_OUT)
            u = u * (1 - p["du"]) + a
            v = v * (1 - p["dv"]) + u + p["bias_mant"]
            s = v > p["vth"]
            v[s] = 0
            spikes[:, t] = s
        return spikes, u, v

    def decay(state, keep):  # sign-magnitude: (|x| * keep) >> 12, then the sign back
        prod = state * keep
        return np.sign(prod) * (np.abs(prod) >> 12)

    half = 2**23
    u = np.zeros(N_OUT, dtype=np.int64)
    v = np.zeros(N_OUT, dtype=np.int64)
    bias = p["bias_mant"].astype(np.int64) << p["bias_exp"]
    for t in range(STEPS):
        a = w.astype(np.int64).dot(x[:, t - 1]) if t > 0 else np.zeros(N_OUT, dtype=np.int64)
        u = decay(u, 4096 - (p["du"] + 1)) + (a << 6)
        u = np.where(u > half, u - 2 * half, np.where(u <= -half, u + 2 * half, u))
        v = np.clip(decay(v, 4096 - p["dv"]) + u + bias, -half + 1, half - 1)
        s = v > (p["vth"] << 6)
        v[s] = 0
        spikes[:, t] = s
    return spikes, u, v


def run_lava(mode: str, p: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The same network in Lava: spikes (N_OUT, STEPS) and final u, v."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.lif.process import LIF

    src = Source(data=p["x"])
    dense = Dense(weights=p["w"], num_message_bits=8)  # > 0: graded input, not cast to bool
    lif = LIF(shape=(N_OUT,), du=p["du"], dv=p["dv"], vth=p["vth"],
              bias_mant=p["bias_mant"], bias_exp=p["bias_exp"])
    sink = Sink(shape=(N_OUT,), buffer=STEPS)
    src.s_out.connect(dense.s_in)
    dense.a_out.connect(lif.a_in)
    lif.s_out.connect(sink.a_in)
    try:
        lif.run(condition=RunSteps(num_steps=STEPS), run_cfg=Loihi2SimCfg(select_tag=mode))
        return sink.data.get().astype(int), lif.u.get(), lif.v.get()
    finally:
        lif.stop()


def check() -> dict:
    """Run both modes; return the summary, or raise RuntimeError saying what differs."""
    start = time.perf_counter()
    counts = {}
    for mode in MODES:
        p = _params(mode)
        spikes, u, v = run_lava(mode, p)
        ref_spikes, ref_u, ref_v = reference(mode, p)
        if not np.array_equal(spikes, ref_spikes):
            t = int(np.argwhere((spikes != ref_spikes).any(axis=0))[0, 0])
            raise RuntimeError(
                f"{mode}: Lava spikes differ from the reference LIF first at step {t + 1} "
                f"(lava {spikes[:, t].tolist()}, reference {ref_spikes[:, t].tolist()})"
            )
        same = all(np.allclose(a, b, rtol=1e-12, atol=0) for a, b in ((u, ref_u), (v, ref_v)))
        if not same:
            raise RuntimeError(
                f"{mode}: final LIF state differs "
                f"(lava u={u}, v={v}; reference u={ref_u}, v={ref_v})"
            )
        if spikes.sum() == 0:
            raise RuntimeError(f"{mode}: no spikes at all, so the check proves nothing")
        counts[mode] = int(spikes.sum())
    seconds = round(time.perf_counter() - start, 2)
    return {"ok": True, "steps": STEPS, "spikes": counts, "seconds": seconds}


def main() -> int:
    try:
        from importlib.metadata import version

        summary = check()
        summary["lava_nc"] = version("lava-nc")
    except Exception as err:  # noqa: BLE001 - any failure means the install is not usable
        msg = f"{type(err).__name__}: {err}".replace("\n", " ")
        print(json.dumps({"ok": False, "error": msg}))
        print(f"Lava smoke test failed: {msg}", file=sys.stderr)
        return 1
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
