"""Twin Network Augmentation (Deckers et al. 2024, arXiv 2409.15849).

The base network trains together with a twin of the same architecture and its own random init:

    loss = CE(base, y) + CE(twin, y) + alpha * MSE(base logits, twin logits)

Both networks learn; only the base is kept (and deployed). The twin may differ in precision and
width (`twin_weights`, `twin_width`).

What alpha means depends on two conventions, both fixed here:
- reduction: "batchmean" (default) sums the squared difference over the classes and averages over
  the batch, as the authors' code does (`MSELoss(reduction='sum')(out, twin_out) / batch_size`);
  "mean" divides that by the number of classes too (torch's default), "sum" does not average at all.
- logit scale: our logits are the readout *averaged* over the T time steps (|logit| ~ 1-10). A
  readout that sums over T would make the same MSE T^2 larger.
The paper's alpha = 1e-5 was chosen for its own scale on CIFAR-100; ours is chosen on validation
(benchmarks/alpha_sweep.py). The logged `match_share` says how strong the coupling really is.
"""

from torch.nn import functional as F

from tna.strategies.base import StepOut, Strategy

REDUCTIONS = ("batchmean", "mean", "sum")


def logit_mse(a, b, reduction: str = "batchmean"):
    """Squared logit distance under one of `REDUCTIONS` (see the module docstring)."""
    if reduction == "batchmean":
        return F.mse_loss(a, b, reduction="sum") / a.shape[0]
    return F.mse_loss(a, b, reduction=reduction)


class TwinNetworkAugmentation(Strategy):
    name = "tna"
    match_term = "alpha_mse"

    def __init__(self, base, encode, twin, alpha: float, reduction: str = "batchmean"):
        super().__init__(base, encode)
        self.twin = twin
        self.alpha, self.reduction = alpha, reduction

    def forward(self, x, y):
        xt = self.encode(x)  # one encoding for both: they see the same spikes
        logits, t_logits = self.base(xt).logits, self.twin(xt).logits
        ce, ce_twin = F.cross_entropy(logits, y), F.cross_entropy(t_logits, y)
        mse = logit_mse(logits, t_logits, self.reduction)
        match = self.alpha * mse
        return StepOut(ce + ce_twin + match, logits, {"ce": ce.detach(), "ce_twin": ce_twin.detach(),
                                                      "mse": mse.detach(), "alpha_mse": match.detach()})

    def networks(self):
        return {"base": self.base, "twin": self.twin}
