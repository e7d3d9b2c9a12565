"""A trained tna network as a NIR graph: batch-free, every node typed, batch norm folded.

    graph = graph_of(run)          # a finished run (tna.build.TrainedRun), with its deployment metadata
    graph = model_to_nir(model, input_shape, T=..., dt=..., encoding=..., input_scale=...)

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

from deploy.graph import compat  # noqa: F401  (nir 1.0.8: non-square Conv2d output types)
from deploy.graph.plan import FORMAT
from deploy.graph.read import conv_len, pair
from tna.errors import TnaError
from tna.models.layers import Fold, QConv2d, QLinear, Spiking, fold_conv_bn
from tna.models.resnet import BasicBlock
from tna.quant import ternarize

VERSION = 1
# Why a network with a ReLU cannot be exported, said once (`deployable`, `_lif`)
RELU_REASON = ("NIR has no ReLU node and tna maps every activation to a spiking population (Lava/Loihi LIF); "
               "a real-valued activation would need graded, non-spiking units that no standard NIR graph expresses")


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32)


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
            shape = (w.shape[0], conv_len(h, kh, sh, ph, layer.dilation[0]),
                     conv_len(wd, kw, sw, pw, layer.dilation[1]))
            i += 2
            continue
        if isinstance(layer, (nn.AvgPool2d, nn.AdaptiveAvgPool2d)):
            c, h, wd = shape
            if isinstance(layer, nn.AdaptiveAvgPool2d):
                if layer.output_size not in (1, (1, 1)):
                    raise TnaError(f"{node}: only global adaptive pooling (output 1x1) is exportable")
                k, s, p = (h, wd), (h, wd), (0, 0)
            else:
                k = pair(layer.kernel_size, "kernel_size", node)
                s = pair(layer.stride or layer.kernel_size, "stride", node)
                p = pair(layer.padding, "padding", node)
            src = b.add(node, nir.AvgPool2d(kernel_size=np.array(k), stride=np.array(s), padding=np.array(p)), src)
            shape = (c, conv_len(h, k[0], s[0], p[0]), conv_len(wd, k[1], s[1], p[1]))
        elif isinstance(layer, nn.Flatten):
            src = b.add(node, nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1), src)
            shape = (int(np.prod(shape)),)
        else:
            raise TnaError(f"{node}: {type(layer).__name__} has no NIR mapping in this version")
        i += 1
    return src, shape


def _lif(act: Spiking, name: str, shape: tuple, b: _Builder, *sources: str) -> str:
    if act.neuron is None:
        raise TnaError(f"{name} is a ReLU activation, which cannot be exported: {RELU_REASON}; "
                       f"deploy a network trained with LIF neurons throughout")
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


def deployable(config) -> None:
    """Refuse, in one line that names the reason and the alternative, a run whose network has a ReLU:
    an ANN (--neuron relu), or EnOF, whose RepAct replaces the last LIF with a ReLU."""
    if config.neuron == "relu":
        raise TnaError(f"this run is an ANN (--neuron relu): {RELU_REASON}; deploy a spiking run (--neuron lif)")
    if config.strategy == "enof":
        raise TnaError(f"this run was trained with EnOF, whose RepAct makes its last activation a ReLU: "
                       f"{RELU_REASON}; to deploy, train the same network without RepAct, e.g. "
                       f"'tna train --strategy kd --teacher {config.teacher or 'ANN_RUN'}' (the same teacher, "
                       f"distilled) or '--strategy tna'")


def graph_of(run, synapses: str | None = None) -> nir.NIRGraph:
    """A trained run's network as a NIR graph (in memory), with everything deployment needs to know.

    `run`: tna.build.TrainedRun (config, shape, model, encoding, input_scale). `synapses` (default:
    the run's) says how fixed point stores weights (deploy/loihi/fixed_point.py)."""
    cfg = run.config
    deployable(cfg)
    return model_to_nir(run.model, run.shape.input_shape, T=cfg.T, dt=cfg.dt, encoding=run.encoding,
                        input_scale=run.input_scale,
                        extra_metadata={"model": cfg.model, "dataset": cfg.dataset, "strategy": cfg.strategy,
                                        "weights": cfg.weights, "num_classes": run.shape.num_classes,
                                        "synapses": synapses or cfg.synapses})
