"""Knowledge distillation (Hinton et al. 2015) from a trained, frozen teacher.

    loss = (1 - w) * CE(student, y) + w * tau^2 * KL( softmax(teacher/tau) || softmax(student/tau) )

The tau^2 factor keeps the soft-target gradients on the scale of the hard-target ones.
"""

from torch.nn import functional as F

from tna.strategies.base import StepOut, Strategy
from tna.strategies.teacher import Teacher


class KnowledgeDistillation(Strategy):
    name = "kd"
    match_term = "w_kd"

    def __init__(self, base, encode, teacher: Teacher, temperature: float, weight: float):
        super().__init__(base, encode)
        self.teacher = teacher
        self.temperature, self.weight = temperature, weight

    def forward(self, x, y):
        logits = self.base(self.encode(x)).logits
        t_logits = self.teacher(x).logits
        tau = self.temperature
        ce = F.cross_entropy(logits, y)
        kl = F.kl_div(F.log_softmax(logits / tau, -1), F.log_softmax(t_logits / tau, -1),
                      reduction="batchmean", log_target=True) * tau**2
        loss = (1 - self.weight) * ce + self.weight * kl
        return StepOut(loss, logits, {"ce": ce.detach(), "kd": kl.detach(), "w_kd": (self.weight * kl).detach()})
