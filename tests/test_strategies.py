"""Each strategy computes exactly its documented loss, and trains what it should."""

import pytest
import torch
from torch.nn import functional as F

from tna.errors import TnaError
from tna.models import build_model
from tna.neuron import LIF
from tna.strategies import STRATEGIES, Teacher


def enc(x):
    return x.unsqueeze(0).expand(3, *x.shape)


def net(seed, neuron=LIF(), **kw):
    torch.manual_seed(seed)
    return build_model("convnet", (1, 12, 12), 4, neuron=neuron, width=0.5, **kw)


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(1)
    return torch.rand(6, 1, 12, 12, generator=g) * 2, torch.tensor([0, 1, 2, 3, 0, 1])


def test_registry_has_the_four_strategies():
    assert set(STRATEGIES) == {"baseline", "kd", "enof", "tna"}


def test_baseline_is_cross_entropy(batch):
    x, y = batch
    base = net(0)
    out = STRATEGIES["baseline"](base, enc)(x, y)
    assert torch.allclose(out.loss, F.cross_entropy(base(enc(x)).logits, y))


def test_kd_is_hinton_distillation(batch):
    x, y = batch
    base, teacher = net(0), Teacher(net(5, neuron=None), lambda x: x.unsqueeze(0))
    out = STRATEGIES["kd"](base, enc, teacher, temperature=4.0, weight=0.3)(x, y)
    s, t = base(enc(x)).logits, teacher.model(x.unsqueeze(0)).logits
    p_t = F.softmax(t / 4, -1)
    kl = (p_t * (p_t.log() - F.log_softmax(s / 4, -1))).sum(-1).mean() * 16
    assert torch.allclose(out.loss, 0.7 * F.cross_entropy(s, y) + 0.3 * kl, atol=1e-6)
    out.loss.backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert base.classifier.weight.grad.abs().sum() > 0


def test_enof_laf_uses_the_teachers_classifier_and_repact(batch):
    x, y = batch
    ann = net(5, neuron=None)
    teacher = Teacher(ann, lambda x: x.unsqueeze(0))
    base = net(0, repact=True)
    strat = STRATEGIES["enof"](base, enc, teacher, temperature=2.0, weight=0.5)
    out = strat(x, y)
    s_out = base(enc(x))
    p_t = F.softmax(ann(x.unsqueeze(0)).logits / 2, -1)
    q_s = F.log_softmax(ann.classifier(s_out.features.mean(0)) / 2, -1)
    laf = (p_t * (p_t.log() - q_s)).sum(-1).mean() * 4
    assert torch.allclose(out.loss, F.cross_entropy(s_out.logits, y) + 0.5 * laf, atol=1e-6)
    assert s_out.features.min() >= 0 and not torch.all((s_out.features == 0) | (s_out.features == 1))  # ReLU, not spikes
    out.loss.backward()
    assert all(p.grad is None for p in ann.parameters())
    assert not any(k.startswith("teacher.") for k in strat.trainable_state())


def test_enof_rejects_a_teacher_of_another_shape():
    with pytest.raises(TnaError, match="feature size"):
        STRATEGIES["enof"](net(0, repact=True), enc, Teacher(build_model("convnet", (1, 12, 12), 4, neuron=None),
                                                              lambda x: x), 1.0, 1.0)


def test_tna_is_two_cross_entropies_plus_alpha_mse(batch):
    x, y = batch
    base, twin = net(0), net(1)
    strat = STRATEGIES["tna"](base, enc, twin, alpha=0.25, reduction="sum")
    out = strat(x, y)
    b, t = base(enc(x)).logits, twin(enc(x)).logits
    expected = F.cross_entropy(b, y) + F.cross_entropy(t, y) + 0.25 * ((b - t) ** 2).sum()
    assert torch.allclose(out.loss, expected, atol=1e-5)
    out.loss.backward()
    assert base.classifier.weight.grad.abs().sum() > 0 and twin.classifier.weight.grad.abs().sum() > 0
    assert set(strat.networks()) == {"base", "twin"}
    assert not torch.equal(base.classifier.weight, twin.classifier.weight)  # own init


def test_tna_alpha_couples_the_twins(batch):
    """With alpha = 0 the base's gradient is the baseline's; alpha > 0 adds the MSE pull."""
    x, y = batch
    grads = []
    for alpha in (0.0, 1.0):
        base, twin = net(0), net(1)
        STRATEGIES["tna"](base, enc, twin, alpha=alpha)(x, y).loss.backward()
        grads.append(base.classifier.weight.grad.clone())
    base = net(0)
    STRATEGIES["baseline"](base, enc)(x, y).loss.backward()
    assert torch.allclose(grads[0], base.classifier.weight.grad)
    assert not torch.allclose(grads[1], grads[0])


@pytest.mark.parametrize("reduction,divisor", [("batchmean", 6), ("mean", 6 * 4), ("sum", 1)])
def test_tna_mse_reductions(batch, reduction, divisor):
    """batchmean = the authors' normalisation: sum over classes, mean over the batch (6 samples, 4 classes)."""
    x, y = batch
    base, twin = net(0), net(1)
    out = STRATEGIES["tna"](base, enc, twin, alpha=2.0, reduction=reduction)(x, y)
    sq = ((base(enc(x)).logits - twin(enc(x)).logits) ** 2).sum()
    assert torch.allclose(out.logs["mse"], sq / divisor, rtol=1e-5)
    assert torch.allclose(out.logs["alpha_mse"], 2.0 * sq / divisor, rtol=1e-5)


def test_each_strategy_names_its_matching_term_as_it_enters_the_loss(batch):
    x, y = batch
    teacher = Teacher(net(5, neuron=None), lambda x: x.unsqueeze(0))
    cases = {"baseline": (STRATEGIES["baseline"](net(0), enc), None),
             "kd": (STRATEGIES["kd"](net(0), enc, teacher, 4.0, 0.3), lambda o: 0.3 * o.logs["kd"]),
             "enof": (STRATEGIES["enof"](net(0, repact=True), enc, teacher, 1.0, 0.5), lambda o: 0.5 * o.logs["laf"]),
             "tna": (STRATEGIES["tna"](net(0), enc, net(1), 0.1), lambda o: o.loss - o.logs["ce"] - o.logs["ce_twin"])}
    for name, (strat, expected) in cases.items():
        out = strat(x, y)
        if expected is None:
            assert strat.match_term is None
            continue
        assert torch.allclose(out.logs[strat.match_term], expected(out), rtol=1e-5), name
        assert out.logs[strat.match_term] > 0
