"""Export to NIR, and the NIR round trip back into torch reproducing the trained model's spikes."""

import nir
import numpy as np
import pytest
import torch

from deploy.graph.executor import run as run_float
from deploy.graph.from_model import lif_nodes, model_to_nir
from tna.errors import TnaError
from tna.models import build_model
from tna.models.layers import Spiking
from tna.neuron import LIF


def trained_like(name, shape, width, weights="ternary", seed=0):
    """A model with non-trivial batch-norm statistics, as after training."""
    torch.manual_seed(seed)
    m = build_model(name, shape, 10, neuron=LIF(), width=width, weights=weights)
    bns = [mod for mod in m.modules() if isinstance(mod, torch.nn.BatchNorm2d)]
    for bn in bns:
        bn.momentum = None  # running statistics = the average over the passes below
    m.train()
    with torch.no_grad():
        for _ in range(3):
            m(torch.rand(4, 8, *shape) * 2)
        for bn in bns:
            bn.weight.uniform_(1.0, 2.0)
            bn.bias.uniform_(0.0, 0.8)
    return m.eval()


def model_spikes(model, x):
    rec = {}
    hooks = [m.register_forward_hook(lambda mod, i, o, n=n: rec.__setitem__(n.replace(".", "_"), o))
             for n, m in model.named_modules() if isinstance(m, Spiking)]
    with torch.no_grad():
        out = model(x)
    for h in hooks:
        h.remove()
    return rec, out.logits


@pytest.mark.parametrize("name,shape,width,weights", [
    ("convnet", (1, 28, 28), 1.0, "ternary"), ("convnet", (2, 34, 34), 0.5, "full"),
    ("vgg11", (3, 32, 32), 0.125, "ternary"), ("resnet20", (3, 32, 32), 0.125, "ternary")])
def test_round_trip_reproduces_every_spike(tmp_path, name, shape, width, weights):
    model = trained_like(name, shape, width, weights)
    g = model_to_nir(model, shape, T=4, dt=1e-3, encoding="direct", input_scale=1 / 255)
    nir.write(tmp_path / "m.nir", g)
    g = nir.read(tmp_path / "m.nir")  # type-checked read: batch-free shapes, typed nodes
    x = (torch.rand(6, *shape) * 2).unsqueeze(0).expand(4, 6, *shape)
    ref, logits = model_spikes(model, x)
    spikes, out = run_float(g, x.contiguous())
    assert set(spikes) == set(ref) == set(lif_nodes(g))
    for k in ref:
        assert torch.equal(spikes[k], ref[k]), k
    assert 0.01 < np.mean([s.mean().item() for s in spikes.values()]) < 0.9  # not silent, not saturated
    assert torch.allclose(out, logits, atol=1e-4)
    assert torch.equal(out.argmax(1), logits.argmax(1))


def test_graph_content_and_metadata():
    model = trained_like("resnet20", (3, 32, 32), 0.125)
    g = model_to_nir(model, (3, 32, 32), T=4, dt=1e-3, encoding="direct", input_scale=1.0)
    assert g.metadata["format"] == "tna-nir" and g.metadata["T"] == 4 and g.metadata["dt"] == 1e-3
    convs = {k: n for k, n in g.nodes.items() if isinstance(n, nir.Conv2d)}
    assert all(n.input_shape is not None for n in convs.values())
    for n in convs.values():  # ternary: one magnitude per output channel
        mags = [np.unique(np.abs(w[w != 0])) for w in n.weight]
        assert all(len(m) <= 1 for m in mags)
    # residual blocks: two edges into each block's output LIF
    into = {}
    for s, t in g.edges:
        into.setdefault(t, []).append(s)
    assert into["body_2_act2"] == ["body_2_conv2", "body_1"]  # identity shortcut from the stem's LIF
    assert sorted(into["body_5_act2"]) == ["body_5_conv2", "body_5_shortcut"]  # 1x1 conv shortcut
    assert isinstance(g.nodes["readout"], nir.I) and np.allclose(g.nodes["readout"].r, 1 / (4 * 1e-3))
    lif = g.nodes["body_1"]
    assert lif.tau.shape == (8, 32, 32) and np.all(lif.v_threshold == 1.0) and np.all(lif.v_reset == 0)


def test_relu_layers_are_refused():
    model = build_model("convnet", (1, 28, 28), 10, neuron=LIF(), repact=True)
    with pytest.raises(TnaError, match="ReLU"):
        model_to_nir(model, (1, 28, 28), T=4, dt=1e-3, encoding="direct", input_scale=1.0)


def test_enof_and_ann_runs_are_refused_with_the_reason_and_the_alternative():
    """EnOF's RepAct makes the last activation a ReLU: NIR has no ReLU node, so the run cannot be
    exported; the one-line refusal says why and what to train instead (the same network without RepAct)."""
    from types import SimpleNamespace

    from deploy.graph.from_model import graph_of
    from tna.config import TrainConfig

    shape = SimpleNamespace(input_shape=(1, 28, 28), num_classes=10)
    model = build_model("convnet", (1, 28, 28), 10, neuron=LIF(), repact=True)
    run = SimpleNamespace(config=TrainConfig(strategy="enof", teacher="runs/ann"), shape=shape, model=model,
                          encoding="direct", input_scale=1 / 255)
    with pytest.raises(TnaError) as err:
        graph_of(run)
    msg = str(err.value)
    assert "EnOF" in msg and "RepAct" in msg and "NIR has no ReLU node" in msg and "\n" not in msg
    assert "--strategy kd --teacher runs/ann" in msg
    run.config = TrainConfig(neuron="relu", strategy="baseline")
    with pytest.raises(TnaError, match="ANN .--neuron relu.: NIR has no ReLU node"):
        graph_of(run)
