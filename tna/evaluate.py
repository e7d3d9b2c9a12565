"""Test accuracy of one or more networks on a data loader."""

from __future__ import annotations

import torch


@torch.no_grad()
def accuracy(networks: dict, loader, encode, device="cpu") -> dict[str, float]:
    """Fraction of correctly classified samples, per network (all see the same encoded input)."""
    modes = {name: net.training for name, net in networks.items()}
    for net in networks.values():
        net.eval()
    correct = {name: 0 for name in networks}
    total = 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        xt = encode(x)
        for name, net in networks.items():
            correct[name] += (net(xt).logits.argmax(1) == y).sum().item()
        total += y.numel()
    for name, net in networks.items():
        net.train(modes[name])
    return {name: c / max(total, 1) for name, c in correct.items()}
