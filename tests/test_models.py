"""Models: shapes, the compute-once path for direct input, ternary weights in the forward pass."""

import pytest
import torch

from tna.errors import TnaError
from tna.models import build_model
from tna.models.layers import QConv2d, Spiking
from tna.neuron import LIF


@pytest.mark.parametrize("name,shape,width", [("convnet", (1, 28, 28), 1.0), ("convnet", (2, 34, 34), 0.5),
                                              ("vgg11", (3, 32, 32), 0.125), ("resnet20", (3, 32, 32), 0.125)])
def test_shapes_and_backward(name, shape, width):
    torch.manual_seed(0)
    m = build_model(name, shape, 10, neuron=LIF(), width=width, weights="ternary")
    x = torch.rand(3, 2, *shape)
    out = m(x)
    assert out.logits.shape == (2, 10)
    assert out.features.shape[:2] == (3, 2)
    out.logits.sum().backward()
    assert all(p.grad is not None for p in m.parameters())


def test_direct_input_computed_once_equals_per_step():
    torch.manual_seed(0)
    m = build_model("convnet", (1, 28, 28), 10, neuron=LIF(), weights="ternary").eval()
    img = torch.rand(5, 1, 28, 28)
    expanded = img.unsqueeze(0).expand(4, *img.shape)  # what direct encoding hands the model
    assert expanded.stride(0) == 0
    a, b = m(expanded), m(expanded.contiguous())
    assert torch.allclose(a.logits, b.logits, atol=1e-5)
    assert torch.equal(a.features, b.features)


def test_relu_neuron_builds_the_ann_and_repact_replaces_only_the_last_lif():
    ann = build_model("convnet", (1, 28, 28), 10, neuron=None)
    assert all(s.neuron is None for s in ann.modules() if isinstance(s, Spiking))
    snn = build_model("resnet20", (3, 32, 32), 10, neuron=LIF(), width=0.125, repact=True)
    acts = [s for s in snn.modules() if isinstance(s, Spiking)]
    assert acts[-1].neuron is None and all(a.neuron is not None for a in acts[:-1])


def test_ternary_forward_uses_ternary_weights():
    torch.manual_seed(0)
    conv = QConv2d(2, 4, 3, bias=False)
    conv.ternary = True
    x = torch.randn(1, 2, 5, 5)
    from tna.quant import ternarize
    assert torch.allclose(conv(x), torch.nn.functional.conv2d(x, ternarize(conv.weight)))
    assert not torch.allclose(conv(x), torch.nn.functional.conv2d(x, conv.weight))


def test_unknown_model_is_a_user_error():
    with pytest.raises(TnaError, match="unknown model 'nope'; choose one of: convnet"):
        build_model("nope", (1, 28, 28), 10, neuron=LIF())
