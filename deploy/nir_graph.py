"""A trained tna network as a NIR graph: batch-free, every node typed, batch norm folded.

Node names are the torch module paths with '.' -> '_' (a LIF node is named after its `Spiking`
module, a conv after its `Fold`), so spikes recorded in torch and in Lava meet under one name.

    input -> [Conv2d (BN folded) -> LIF]... -> Flatten -> Affine (classifier) -> I (readout) -> output

- Ternary weights are stored as used: codes x (per-channel scale x batch-norm factor), so every
  output channel's non-zero weights share one magnitude and the integer form is recovered
  exactly (`codes = sign(w)`).
- LIF: tau = tau_mem, r = 1, v_leak = 0, v_reset = 0, v_threshold = v_th (per-neuron arrays);
  with dt from the metadata this is exactly `tna.neuron.LIF`'s update.
- A residual block sums two edges into one LIF node (its 2nd conv and the shortcut).
- The readout is an integrator `nir.I` with r = 1/(T dt): after T steps it holds the mean of
  the classifier's output over time, i.e. the logits.
"""

from __future__ import annotations

import nir
import numpy as np
import torch
from torch import nn

from deploy import nir_compat  # noqa: F401  (nir 1.0.8: non-square Conv2d output types)
from tna.errors import TnaError
from tna.models.layers import Fold, QConv2d, QLinear, Spiking, fold_conv_bn
from tna.models.resnet import BasicBlock
from tna.quant import ternarize

FORMAT, VERSION = "tna-nir", 1


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32)


def _conv_out(size: int, k: int, s: int, p: int, d: int = 1) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


class _Builder:
    def __init__(self):
        self.nodes: dict[str, nir.NIRNode] = {}
        self.edges: list[tuple[str, str]] = []

    def add(self, name: str, node: nir.NIRNode, *sources: str) -> str:
        self.nodes[name] = node
        self.edges += [(s, name) for s in sources]
        return name


def _emit_fold(b: _Builder, fold: Fold, name: str, src: str, shape: tuple):
    layers = list(fold)
    i = 0
    while i < len(layers):
        layer = layers[i]
        node = name if i == 0 else f"{name}_{i}"
        if isinstance(layer, QConv2d):
            if not (i + 1 < len(layers) and isinstance(layers[i + 1], nn.BatchNorm2d)):
                raise TnaError(f"{name}: a conv without batch norm is not exportable by this version")
            w, bias = fold_conv_bn(layer, layers[i + 1])
            c, h, wd = shape
            (kh, kw), (sh, sw), (ph, pw) = layer.kernel_size, layer.stride, layer.padding
            src = b.add(node, nir.Conv2d(input_shape=(h, wd), weight=_np(w), stride=(sh, sw), padding=(ph, pw),
                                         dilation=layer.dilation, groups=layer.groups, bias=_np(bias)), src)
            shape = (w.shape[0], _conv_out(h, kh, sh, ph, layer.dilation[0]), _conv_out(wd, kw, sw, pw, layer.dilation[1]))
            i += 2
            continue
        if isinstance(layer, (nn.AvgPool2d, nn.AdaptiveAvgPool2d)):
            c, h, wd = shape
            if isinstance(layer, nn.AdaptiveAvgPool2d):
                if layer.output_size not in (1, (1, 1)):
                    raise TnaError(f"{node}: only global adaptive pooling (output 1x1) is exportable")
                k, s, p = (h, wd), (h, wd), (0, 0)
            else:
                k, s, p = (_pair(layer.kernel_size), _pair(layer.stride or layer.kernel_size), _pair(layer.padding))
            src = b.add(node, nir.AvgPool2d(kernel_size=np.array(k), stride=np.array(s), padding=np.array(p)), src)
            shape = (c, _conv_out(h, k[0], s[0], p[0]), _conv_out(wd, k[1], s[1], p[1]))
        elif isinstance(layer, nn.Flatten):
            src = b.add(node, nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1), src)
            shape = (int(np.prod(shape)),)
        else:
            raise TnaError(f"{node}: {type(layer).__name__} has no NIR mapping in this version")
        i += 1
    return src, shape


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _lif(act: Spiking, name: str, shape: tuple, b: _Builder, *sources: str) -> str:
    if act.neuron is None:
        raise TnaError(f"{name}: a ReLU activation (EnOF's RepAct or an ANN) has no spiking NIR node; "
                       f"deploy a model trained with LIF neurons throughout")
    n = act.neuron
    full = lambda v: np.full(shape, v, dtype=np.float32)  # noqa: E731
    return b.add(name, nir.LIF(tau=full(n.tau_mem), r=full(1.0), v_leak=full(n.v_leak),
                               v_threshold=full(n.v_th), v_reset=full(n.v_reset)), *sources)


def model_to_nir(model: nn.Module, input_shape: tuple, *, T: int, dt: float, encoding: str,
                 input_scale: float, extra_metadata: dict | None = None) -> nir.NIRGraph:
    """Build the NIR graph of a tna network (eval-mode arithmetic: batch norm folded)."""
    model = model.eval()
    b = _Builder()
    src = b.add("input", nir.Input(input_type={"input": np.array(input_shape)}))
    shape = tuple(input_shape)
    for i, m in enumerate(model.body):
        name = f"body_{i}"
        if isinstance(m, Fold):
            src, shape = _emit_fold(b, m, name, src, shape)
        elif isinstance(m, Spiking):
            src = _lif(m, name, shape, b, src)
        elif isinstance(m, BasicBlock):
            x = src
            y, s1 = _emit_fold(b, m.conv1, f"{name}_conv1", x, shape)
            y = _lif(m.act1, f"{name}_act1", s1, b, y)
            y, s2 = _emit_fold(b, m.conv2, f"{name}_conv2", y, s1)
            sc = x if m.shortcut is None else _emit_fold(b, m.shortcut, f"{name}_shortcut", x, shape)[0]
            src, shape = _lif(m.act2, f"{name}_act2", s2, b, y, sc), s2
        else:
            raise TnaError(f"{name}: {type(m).__name__} has no NIR mapping in this version")
    cls = model.classifier
    if not isinstance(cls, QLinear):
        raise TnaError("the classifier must be a linear layer to export")
    w = ternarize(cls.weight) if cls.ternary else cls.weight
    src = b.add("classifier", nir.Affine(weight=_np(w), bias=_np(cls.bias)), src)
    k = (cls.out_features,)
    src = b.add("readout", nir.I(r=np.full(k, 1.0 / (T * dt), dtype=np.float32)), src)
    b.add("output", nir.Output(output_type={"output": np.array(k)}), src)
    metadata = {"format": FORMAT, "version": VERSION, "dt": dt, "T": T, "encoding": encoding,
                "input_scale": input_scale, "reset": "zero", **(extra_metadata or {})}
    return nir.NIRGraph(nodes=b.nodes, edges=b.edges, metadata=metadata)


def lif_nodes(graph: nir.NIRGraph) -> list[str]:
    """Spiking layers in graph order."""
    return [name for name, node in graph.nodes.items() if isinstance(node, nir.LIF)]
