"""DelayLine: one step of delay, the identity (aligns the branches of a residual sum); Gate: zero for the
first `hold` model steps of every sample (a delayed or recurrent edge would carry the previous one's). No torch."""

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol


class DelayLine(AbstractProcess):
    """a_out at step t = s_in at step t-1 (graded, unchanged): the delay of one synapse stage."""

    def __init__(self, *, shape):
        super().__init__(shape=tuple(shape))
        self.s_in = InPort(shape=tuple(shape))
        self.a_out = OutPort(shape=tuple(shape))
        self.buf = Var(shape=tuple(shape), init=0)


@implements(proc=DelayLine, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyDelayLineFloat(PyLoihiProcessModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    buf: np.ndarray = LavaPyType(np.ndarray, float)

    def run_spk(self):
        self.a_out.send(self.buf)
        self.buf[:] = self.s_in.recv()


@implements(proc=DelayLine, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyDelayLineFixed(PyLoihiProcessModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32)
    buf: np.ndarray = LavaPyType(np.ndarray, np.int32)

    def run_spk(self):
        self.a_out.send(self.buf)
        self.buf[:] = self.s_in.recv()


class Gate(AbstractProcess):
    """a_out = s_in in the same step, except zero at the first `hold` model steps of every sample: model
    step k = (time_step - offset) mod period, the clock of the population it feeds."""

    def __init__(self, *, shape, hold: int, period: int, offset: int):
        super().__init__(shape=tuple(shape))
        self.s_in = InPort(shape=tuple(shape))
        self.a_out = OutPort(shape=tuple(shape))
        self.proc_params["hold"], self.proc_params["period"] = int(hold), int(period)
        self.proc_params["offset"] = int(offset)


class _GateModel(PyLoihiProcessModel):
    def run_spk(self):
        x = self.s_in.recv()
        p = self.proc_params
        if (self.time_step - p["offset"]) % p["period"] < p["hold"]:
            x = np.zeros_like(x)
        self.a_out.send(x)


@implements(proc=Gate, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyGateFloat(_GateModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)


@implements(proc=Gate, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyGateFixed(_GateModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32)
