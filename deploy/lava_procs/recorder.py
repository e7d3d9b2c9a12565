"""Recorder (a sink that writes its data to a file) and DelayLine (one step, identity). No torch.

A Lava RingBuffer sink is read with `data.get()`, which moves one value per message (~30 us each
here): far too slow for every spike of a convnet. The Recorder keeps what it receives in its own
memory and saves it with numpy at its last step (temporary name, then rename), so the runner reads
one .npy file per population after the run.
"""

import os

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


class Recorder(AbstractProcess):
    """Receives a vector every step; at step `num_steps` saves all of them, [num_steps, *shape],
    as `dtype` to `path` (.npy)."""

    def __init__(self, *, shape, num_steps, path, dtype="uint8"):
        super().__init__(shape=tuple(shape), num_steps=int(num_steps), path=str(path), dtype=str(dtype))
        self.a_in = InPort(shape=tuple(shape))


class _RecorderModel(PyLoihiProcessModel):
    def __init__(self, proc_params):
        super().__init__(proc_params)
        p = self.proc_params
        self._buf = np.zeros((p["num_steps"],) + tuple(p["shape"]), dtype=p["dtype"])

    def run_spk(self):
        x = self.a_in.recv()
        t = self.time_step - 1
        n = self._buf.shape[0]
        if t < n:
            self._buf[t] = x
        if t == n - 1:
            path = self.proc_params["path"]
            tmp = f"{path}.tmp{os.getpid()}.npy"
            np.save(tmp, self._buf)
            os.replace(tmp, path)


@implements(proc=Recorder, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyRecorderFloat(_RecorderModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)


@implements(proc=Recorder, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyRecorderFixed(_RecorderModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32)


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
