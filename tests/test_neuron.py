"""The LIF definition: Norse's step reproduces the documented update, spike and reset."""

import torch

from tna.neuron import LIF, lif_sequence


def reference(x, decay, v_th, v_reset=0.0):
    v, zs, vs = torch.zeros_like(x[0]), [], []
    for x_t in x:
        v = v + decay * (x_t - v)
        z = (v > v_th).float()
        v = torch.where(z > 0, torch.full_like(v, v_reset), v)
        zs.append(z)
        vs.append(v)
    return torch.stack(zs), torch.stack(vs)


def test_lif_matches_documented_update():
    torch.manual_seed(0)
    x = torch.rand(16, 3, 50) * 3
    neuron = LIF(tau_mem=4e-3, dt=1e-3, v_th=0.7)
    z, v = lif_sequence(x, neuron, record_v=True)
    z_ref, v_ref = reference(x, 0.25, 0.7)
    assert torch.equal(z, z_ref)
    assert torch.allclose(v, v_ref, atol=1e-6)
    assert 0 < z.mean() < 1  # the test exercises both spiking and silent steps


def test_default_decay_is_exactly_one_half():
    neuron = LIF()
    assert neuron.decay == 0.5
    # constant input 1.0 -> v = 0.5, 0.75, 0.875, ... never exceeds v_th = 1.0
    z, v = lif_sequence(torch.ones(6, 1), neuron, record_v=True)
    assert z.sum() == 0
    assert v[:3, 0].tolist() == [0.5, 0.75, 0.875]


def test_threshold_is_strict_and_reset_is_to_v_reset():
    neuron = LIF(tau_mem=1e-3, dt=1e-3, v_th=1.0, v_reset=0.0)  # decay 1: v = x
    z, v = lif_sequence(torch.tensor([[1.0], [1.0001], [0.5]]), neuron, record_v=True)
    assert z[:, 0].tolist() == [0.0, 1.0, 0.0]  # v == v_th does not spike
    assert v[1, 0] == 0.0


def test_surrogate_gradient_flows():
    x = (torch.rand(8, 4, 10) * 2).requires_grad_()
    lif_sequence(x, LIF()).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
