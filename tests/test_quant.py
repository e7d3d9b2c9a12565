"""Ternary quantisation: the codes, the scales, the straight-through gradient, the memory count."""

import pytest
import torch

from tna.models import build_model
from tna.neuron import LIF
from tna.quant import dequantize, export_ternary, ternarize, ternary_codes, weight_memory


def test_codes_follow_the_twn_rule_per_channel():
    w = torch.tensor([[0.1, -0.9, 0.5, 0.02], [2.0, -2.0, 0.1, 0.0]])
    codes, scale = ternary_codes(w)
    # channel 0: delta = 0.7 * 0.38 = 0.266 -> |w| > delta at -0.9, 0.5; scale = mean(0.9, 0.5)
    assert codes[0].tolist() == [0, -1, 1, 0]
    assert codes[1].tolist() == [1, -1, 0, 0]
    assert scale.tolist() == pytest.approx([0.7, 2.0])
    assert codes.dtype == torch.int8
    assert torch.allclose(dequantize(codes, scale), torch.tensor([[0, -0.7, 0.7, 0], [2.0, -2.0, 0, 0]]))


def test_ternarize_forward_is_ternary_and_gradient_is_identity():
    torch.manual_seed(0)
    w = torch.randn(8, 3, 3, 3, requires_grad=True)
    q = ternarize(w)
    codes, scale = ternary_codes(w)
    assert torch.allclose(q, dequantize(codes, scale))
    per_channel = [set(q[c].abs().unique().tolist()) - {0.0} for c in range(8)]
    assert all(len(s) == 1 for s in per_channel)  # one magnitude per output channel
    g = torch.randn_like(w)
    (q * g).sum().backward()
    assert torch.equal(w.grad, g)


def test_export_and_memory_of_a_ternary_model():
    m = build_model("convnet", (1, 28, 28), 10, neuron=LIF(), weights="ternary")
    ex = export_ternary(m)
    assert set(ex) == {"body.0.0", "body.2.0", "body.4.0", "classifier"}
    for name, d in ex.items():
        assert set(d["codes"].unique().tolist()) <= {-1, 0, 1}
        assert d["scale"].shape[0] == d["codes"].shape[0]
    mem = weight_memory(m)
    conv1 = mem["layers"][0]
    assert conv1["weights"] == 16 * 9 and conv1["precision"] == "ternary"
    assert conv1["bytes"] == (2 * 144 + 32 * 16) // 8  # 2-bit codes + one fp32 scale per channel
    assert mem["full_precision_bytes"] == 4 * sum(r["weights"] for r in mem["layers"])
    assert mem["compression"] > 10


def test_ends_policy_keeps_first_and_last_full():
    m = build_model("convnet", (1, 28, 28), 10, neuron=LIF(), weights="ternary", ends="full")
    assert set(export_ternary(m)) == {"body.2.0", "body.4.0"}
    assert export_ternary(build_model("convnet", (1, 28, 28), 10, neuron=LIF(), weights="full")) == {}
