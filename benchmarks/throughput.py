"""Training throughput (images/s) of the spiking ResNet-20: one SNN, the TNA pair, and a Norse
reference that steps the whole network once per time step, measured in the same run.

    .venv/bin/python benchmarks/throughput.py --device cuda                 # the issue's setting
    .venv/bin/python benchmarks/throughput.py --device cuda --compile --bf16
    .venv/bin/python benchmarks/throughput.py --width 0.25 --batch 32       # a quick CPU look

Setting (defaults): widths 64/128/256, T = 4, batch 128, random 32x32x3 images, direct input,
ternary weights, AdamW; one training step = forward + backward + optimiser step.
- layer-wise (tna): conv/BN on all T*B frames at once, only the neuron loops over time, and the
  first layer runs once for direct input.
- step-wise (Norse reference): the same network and weights called once per time step with the
  neuron state carried between calls, the way Norse's stateful modules are used.
Reference points (H100, ../shared/STACK.md): Norse step-wise ~1,400-1,560 img/s, SpikingJelly 2.0
~3,640 img/s; targets: one SNN >= 7,300 img/s, the TNA pair >= 3,600 img/s.
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
from torch import nn

from tna.models import build_model
from tna.models.layers import Spiking
from tna.neuron import LIF
from tna.strategies import STRATEGIES
from norse.torch.functional.lif_box import LIFBoxFeedForwardState, lif_box_feed_forward_step


class CarriedLIF(nn.Module):
    """Norse's usage: one step per call, state kept in the module between calls."""

    def __init__(self, neuron: LIF):
        super().__init__()
        self.p, self.state = neuron.norse(), None

    def forward(self, x):  # x [1, B, ...]
        if self.state is None:
            self.state = LIFBoxFeedForwardState(v=torch.zeros_like(x[0]))
        z, self.state = lif_box_feed_forward_step(x[0], self.state, self.p, dt=1.0)
        return z.unsqueeze(0)


class Stepwise(nn.Module):
    """Run a tna model one time step at a time (T calls of the whole network)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = copy.deepcopy(model)
        for name, m in list(self.model.named_modules()):
            if isinstance(m, Spiking) and m.neuron is not None:
                parent = self.model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else self.model
                setattr(parent, name.rsplit(".", 1)[-1], CarriedLIF(m.neuron))

    def forward(self, x):
        for m in self.model.modules():
            if isinstance(m, CarriedLIF):
                m.state = None
        outs = [self.model(x[t:t + 1].contiguous()) for t in range(x.shape[0])]
        logits = torch.stack([o.logits for o in outs]).mean(0)
        return type(outs[0])(logits, torch.cat([o.features for o in outs]))


def measure(strategy: nn.Module, x, y, iters: int, warmup: int, bf16: bool) -> float:
    opt = torch.optim.AdamW([p for p in strategy.parameters() if p.requires_grad], lr=1e-3)
    dev = x.device

    def step():
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
            loss = strategy(x, y).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return iters * x.shape[0] / (time.perf_counter() - t0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("-T", type=int, default=4)
    p.add_argument("--width", type=float, default=1.0, help="multiplier on widths 64/128/256")
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--compile", action="store_true", help="torch.compile the layer-wise strategies")
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast")
    args = p.parse_args(argv)
    dev = torch.device(args.device)
    torch.manual_seed(0)
    x = torch.rand(args.batch, 3, 32, 32, device=dev)
    y = torch.randint(0, 10, (args.batch,), device=dev)
    T = args.T

    def encode(img):
        return img.unsqueeze(0).expand(T, *img.shape)

    def net(seed):
        torch.manual_seed(seed)
        return build_model("resnet20", (3, 32, 32), 10, neuron=LIF(), width=args.width, weights="ternary").to(dev)

    base = net(0)
    rows = [
        ("one SNN, layer-wise (tna)", STRATEGIES["baseline"](base, encode)),
        ("TNA pair, layer-wise (tna)", STRATEGIES["tna"](net(0), encode, net(1), alpha=1e-5)),
        ("one SNN, step-wise (Norse reference)", STRATEGIES["baseline"](Stepwise(base), encode)),
    ]
    print(f"spiking ResNet-20 x{args.width} (widths {[round(w * args.width) for w in (64, 128, 256)]}), T={T}, "
          f"batch {args.batch}, {dev}{', bf16' if args.bf16 else ''}{', compiled' if args.compile else ''}")
    print(f"{'':<40}{'img/s':>10}")
    for name, strategy in rows:
        if args.compile and "layer-wise" in name:
            strategy = torch.compile(strategy)
        print(f"{name:<40}{measure(strategy, x, y, args.iters, args.warmup, args.bf16):>10.1f}", flush=True)
    if dev.type == "cuda":
        print(f"device: {torch.cuda.get_device_name(dev)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
