"""A fix for the `nir` package that tna's graphs need, applied when this module is imported.

nir 1.0.8 (the newest release; its main branch too) gives `nir.Conv2d` the output type computed with
the kernel's FIRST spatial size on both axes (`weight.shape[2]`). Any non-square kernel, such as the
(k, 1) kernels that `convnet1d` uses for 1-D convolutions, gets a wrong output type, so building the
graph or `nir.read`-ing it fails type checking ("type mismatch: ... [[32 40 -3]]"). The graph itself
is valid NIR: the weight array fixes the kernel. `patch()` keeps nir's own `__post_init__` and then
recomputes the output type with both kernel sizes; a square kernel gets exactly the type it got before,
and once nir computes it right the patch is not installed. Every tna module that builds, reads or
walks NIR graphs imports this module (both environments); another program reading a graph with a
non-square kernel needs the same fix or `nir.read(path, type_check=False)`.
"""

from __future__ import annotations

import nir
import numpy as np
from nir.ir.utils import calculate_conv_output


def _nir_is_wrong() -> bool:
    probe = nir.Conv2d(input_shape=(5, 1), weight=np.zeros((1, 1, 3, 1)), stride=1, padding=(1, 0),
                       dilation=1, groups=1, bias=np.zeros(1))
    return list(np.asarray(probe.output_type["output"]).ravel()) != [1, 5, 1]


def patch() -> None:
    """Install the fix once (idempotent)."""
    cls = nir.Conv2d
    if getattr(cls.__post_init__, "_tna_fixed", False) or not _nir_is_wrong():
        return
    original = cls.__post_init__

    def __post_init__(self):
        original(self)
        if self.input_shape is not None:
            size = calculate_conv_output(self.input_shape, self.padding, self.dilation,
                                         tuple(int(k) for k in np.shape(self.weight)[2:]), self.stride)
            self.output_type = {"output": np.array([np.shape(self.weight)[0], *size])}

    __post_init__._tna_fixed = True
    cls.__post_init__ = __post_init__


patch()
