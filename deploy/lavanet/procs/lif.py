"""LIF with per-neuron thresholds and a periodic reset, and the integrator readout (Lava, no torch).

Both reuse Lava's own LIF arithmetic (`AbstractPyLifModelFloat/Fixed.subthr_dynamics`), so the
fixed_pt model is Lava's bit-accurate Loihi update; only the threshold (one per neuron) and the
reset of u and v every `reset_interval` steps at `reset_offset` (LIFReset's rule, applied before
the update) are added. Samples then run back to back in one Lava run.
"""

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.ports import PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import OutPort
from lava.magma.core.process.variable import Var
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.lif.models import AbstractPyLifModelFixed, AbstractPyLifModelFloat
from lava.proc.lif.process import LIF


class VthLIF(LIF):
    """Lava's LIF with `vth` of the neurons' shape; reset_interval = 0: never reset u, v."""

    def __init__(self, *, shape, vth, reset_interval=0, reset_offset=0, **kwargs):
        super().__init__(shape=shape, **kwargs)
        self.vth = Var(shape=shape, init=vth)
        self.proc_params["reset_interval"] = int(reset_interval)
        self.proc_params["reset_offset"] = int(reset_offset)


class Readout(LIF):
    """The integrator readout: LIF dynamics (use dv = 0), never spikes, sends v on `v_out`."""

    def __init__(self, *, shape, reset_interval=0, reset_offset=0, **kwargs):
        super().__init__(shape=shape, **kwargs)
        self.v_out = OutPort(shape=shape)
        self.proc_params["reset_interval"] = int(reset_interval)
        self.proc_params["reset_offset"] = int(reset_offset)


class _Periodic:
    """LIFReset's rule: zero u and v when time_step % interval == offset (before the update)."""

    def _maybe_reset(self):
        n = self.proc_params["reset_interval"]
        if n and self.time_step % n == self.proc_params["reset_offset"] % n:
            self.u[:] = 0
            self.v[:] = 0


@implements(proc=VthLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyVthLIFFloat(_Periodic, AbstractPyLifModelFloat):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    vth: np.ndarray = LavaPyType(np.ndarray, float)

    def run_spk(self):
        a_in = self.a_in.recv()
        self._maybe_reset()
        self.subthr_dynamics(activation_in=a_in)
        s = self.v > self.vth
        self.v[s] = 0
        self.s_out.send(s)


@implements(proc=VthLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi", "fixed_pt")
class PyVthLIFFixed(_Periodic, AbstractPyLifModelFixed):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    vth: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=17)

    def run_spk(self):
        a_in = self.a_in.recv()
        self._maybe_reset()
        self.scale_bias()
        self.subthr_dynamics(activation_in=a_in)
        s = self.v > np.left_shift(self.vth, self.vth_shift)
        self.v[s] = 0
        self.s_out.send(s)


@implements(proc=Readout, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyReadoutFloat(_Periodic, AbstractPyLifModelFloat):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    v_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    vth: float = LavaPyType(float, float)

    def run_spk(self):
        a_in = self.a_in.recv()
        self._maybe_reset()
        self.subthr_dynamics(activation_in=a_in)
        self.s_out.send(np.zeros(self.v.shape))
        self.v_out.send(self.v)


@implements(proc=Readout, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi", "fixed_pt")
class PyReadoutFixed(_Periodic, AbstractPyLifModelFixed):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    v_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    vth: int = LavaPyType(int, np.int32, precision=17)

    def run_spk(self):
        a_in = self.a_in.recv()
        self._maybe_reset()
        self.scale_bias()
        self.subthr_dynamics(activation_in=a_in)
        self.s_out.send(np.zeros(self.v.shape, dtype=np.int32))
        self.v_out.send(self.v)
