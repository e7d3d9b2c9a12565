"""Custom Lava Processes and ProcessModels used by the tna Lava network (deploy/lavanet/network.py).

Lava's compiler imports every module of this package, and execs every .py file in this folder,
when it looks for ProcessModels: keep every module here torch-free, side-effect-free at import,
and free of relative imports (see docs/lava_notes.md, "Where to put custom Processes").

- `lif.VthLIF`: Lava's LIF with a per-neuron threshold and a periodic reset of u and v.
- `lif.Readout`: the integrator readout (LIF dynamics, never spikes) that sends its v every step.
- `recorder.Recorder`: a sink that keeps every received vector and writes them to an .npy file
  at its last step (reading a RingBuffer sink through Var.get moves one value per message).
- `delay.DelayLine`: one step of delay, the identity (aligns branches of different depth).
- `delay.Gate`: the identity, but zero at the first `hold` model steps of every sample (a recurrent
  edge, hold 1, or a delayed one, hold = its steps, would otherwise carry the previous sample's).
"""
