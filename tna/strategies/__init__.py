"""Training strategies behind one interface: baseline, kd, enof, tna."""

from tna.strategies.base import StepOut, Strategy
from tna.strategies.baseline import Baseline
from tna.strategies.enof import EnOF
from tna.strategies.kd import KnowledgeDistillation
from tna.strategies.teacher import Teacher
from tna.strategies.tna import TwinNetworkAugmentation

STRATEGIES = {s.name: s for s in (Baseline, KnowledgeDistillation, EnOF, TwinNetworkAugmentation)}

__all__ = ["STRATEGIES", "StepOut", "Strategy", "Teacher"]
