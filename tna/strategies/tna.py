"""Twin Network Augmentation (Deckers et al. 2024, arXiv 2409.15849).

The base network trains together with a twin of the same architecture and its own random init:

    loss = CE(base, y) + CE(twin, y) + alpha * MSE(base logits, twin logits)

Both networks learn; only the base is kept (and deployed). The paper found a small alpha best
(1e-5 on CIFAR-100). The twin may differ in precision and width (`twin_weights`, `twin_width`).
"""

from torch.nn import functional as F

from tna.strategies.base import StepOut, Strategy


class TwinNetworkAugmentation(Strategy):
    name = "tna"

    def __init__(self, base, encode, twin, alpha: float, reduction: str = "mean"):
        super().__init__(base, encode)
        self.twin = twin
        self.alpha, self.reduction = alpha, reduction

    def forward(self, x, y):
        xt = self.encode(x)  # one encoding for both: they see the same spikes
        logits, t_logits = self.base(xt).logits, self.twin(xt).logits
        ce, ce_twin = F.cross_entropy(logits, y), F.cross_entropy(t_logits, y)
        mse = F.mse_loss(logits, t_logits, reduction=self.reduction)
        loss = ce + ce_twin + self.alpha * mse
        return StepOut(loss, logits, {"ce": ce.detach(), "ce_twin": ce_twin.detach(), "mse": mse.detach()})

    def networks(self):
        return {"base": self.base, "twin": self.twin}
