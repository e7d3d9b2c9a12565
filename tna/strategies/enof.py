"""EnOF-SNN (Guo et al., NeurIPS 2024): enhance the SNN's output feature with a trained ANN.

- LAF loss: the SNN's feature (time-averaged input of its classifier) and the ANN's feature both
  go through the *ANN's trained classifier*; the SNN's resulting distribution is pulled to the
  ANN's with KL divergence:  LAF = tau^2 * KL( softmax(C_ann(f_ann)/tau) || softmax(C_ann(f_snn)/tau) )
- RepAct: the SNN's last LIF activation is replaced by ReLU (`model_options`), so the feature
  it hands the classifier is real-valued.

    loss = CE(student, y) + w * LAF
"""

from torch.nn import functional as F

from tna.errors import TnaError
from tna.strategies.base import StepOut, Strategy
from tna.strategies.teacher import Teacher


class EnOF(Strategy):
    name = "enof"
    model_options = {"repact": True}
    match_term = "w_laf"

    def __init__(self, base, encode, teacher: Teacher, temperature: float, weight: float):
        super().__init__(base, encode)
        s_dim, t_dim = base.classifier.in_features, teacher.model.classifier.in_features
        if s_dim != t_dim:
            raise TnaError(f"EnOF needs the teacher ANN to have the student's feature size "
                           f"({s_dim}), the teacher has {t_dim}; train it with the same --model and --width")
        self.teacher = teacher
        self.temperature, self.weight = temperature, weight

    def forward(self, x, y):
        out = self.base(self.encode(x))
        t_out = self.teacher(x)
        classify = self.teacher.model.classifier  # frozen: gradients flow only into the SNN feature
        tau = self.temperature
        s_cls = classify(out.features.mean(0))
        laf = F.kl_div(F.log_softmax(s_cls / tau, -1), F.log_softmax(t_out.logits / tau, -1),
                       reduction="batchmean", log_target=True) * tau**2
        ce = F.cross_entropy(out.logits, y)
        w_laf = self.weight * laf
        return StepOut(ce + w_laf, out.logits, {"ce": ce.detach(), "laf": laf.detach(), "w_laf": w_laf.detach()})
