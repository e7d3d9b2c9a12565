"""Plain training: cross-entropy on the base network's time-averaged logits."""

from torch.nn import functional as F

from tna.strategies.base import StepOut, Strategy


class Baseline(Strategy):
    name = "baseline"

    def forward(self, x, y):
        logits = self.base(self.encode(x)).logits
        ce = F.cross_entropy(logits, y)
        return StepOut(ce, logits, {"ce": ce.detach()})
