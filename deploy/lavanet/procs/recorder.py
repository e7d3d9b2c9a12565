"""Recorder: a sink that writes what it receives to a file. No torch.

A Lava RingBuffer sink is read with `data.get()`, which moves one value per message (~30 us each
here): far too slow for every spike of a convnet. The Recorder keeps what it receives in its own
memory and saves it with numpy at its last step (temporary name, then rename), so the runner reads
one .npy file per population after the run.
"""

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from tna.runs import atomic_path


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
            with atomic_path(self.proc_params["path"]) as tmp, open(tmp, "wb") as f:
                np.save(f, self._buf)


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
