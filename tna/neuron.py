"""The neuron: one definition of the LIF dynamics, shared by training, export and verification.

The model is Norse's current-free ("box") leaky integrate-and-fire neuron, forward-Euler
discretised with step `dt`:

    v[t] = v[t-1] + dt/tau_mem * (v_leak - v[t-1] + x[t])     # leak and integrate
    z[t] = v[t] > v_th                                          # spike (strictly greater)
    v[t] = v_reset  where z[t]                                  # reset to a value

With the defaults (dt = 1 ms, tau_mem = 2 ms) the decay `dt/tau_mem` is 0.5, the common
"tau = 2" LIF of the SNN literature, and exactly representable as a 12-bit Loihi decay (2048/4096).
In Lava's terms (`v = v*(1-dv) + u + bias`) this is dv = dt/tau_mem with the input scaled by dv:
the exporter folds that factor into the synaptic weights.

Training calls Norse's step function (`lif_box_feed_forward_step`) once per time step; the
surrogate gradient is Norse's `threshold(method, alpha)`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import warnings

import torch

with warnings.catch_warnings():  # norse 1.1.0 uses the deprecated torch.jit.script at import
    warnings.simplefilter("ignore", FutureWarning)
    from norse.torch.functional.lif_box import (
        LIFBoxFeedForwardState,
        LIFBoxParameters,
        lif_box_feed_forward_step,
    )

SURROGATES = ("triangle", "super", "tanh", "circ")


@dataclass(frozen=True)
class LIF:
    """Parameters of the LIF neuron and its discretisation (seconds, volts in model units)."""

    tau_mem: float = 2e-3
    dt: float = 1e-3
    v_th: float = 1.0
    v_leak: float = 0.0
    v_reset: float = 0.0
    surrogate: str = "triangle"
    alpha: float = 1.0  # surrogate sharpness (Norse's `alpha`)

    @property
    def decay(self) -> float:
        """dt / tau_mem: the fraction of the gap to (v_leak + x) closed per step (Lava's dv)."""
        return self.dt / self.tau_mem

    def norse(self) -> LIFBoxParameters:
        """Norse parameters in units of one time step (dt = 1), so the decay is exact in float32."""
        return LIFBoxParameters(
            tau_mem_inv=torch.as_tensor(self.decay),
            v_leak=torch.as_tensor(self.v_leak),
            v_th=torch.as_tensor(self.v_th),
            v_reset=torch.as_tensor(self.v_reset),
            method=self.surrogate,
            alpha=self.alpha,
        )

    def to_dict(self) -> dict:
        return asdict(self)


def lif_sequence(x: torch.Tensor, neuron: LIF, record_v: bool = False):
    """Run the neuron over a whole sequence x[T, ...] starting from v = v_leak.

    Returns spikes [T, ...] (and the membrane trace [T, ...] after reset if `record_v`).
    """
    p = neuron.norse()
    state = LIFBoxFeedForwardState(v=torch.full_like(x[0], neuron.v_leak))
    spikes, volts = [], []
    for x_t in x:
        z, state = lif_box_feed_forward_step(x_t, state, p, dt=1.0)
        spikes.append(z)
        if record_v:
            volts.append(state.v)
    z = torch.stack(spikes)
    return (z, torch.stack(volts)) if record_v else z
