"""genrm_rank: best-of-N selection and tournament ranking with pairwise generative reward models.

Pairwise GenRM verdicts (NVIDIA Nemotron GenRMs served by vLLM) become a best-of-N choice, a full
ranking with confidence, group rewards for RL, or a filtered dataset.
"""

from genrm_rank.errors import (
    BudgetExhaustedError,
    ComparisonGraphError,
    EndpointsUnavailableError,
    GenRMRankError,
    JudgeError,
    ReplayMissError,
    VerdictError,
)
from genrm_rank.judges.base import BatchJudge, Judge, PairRequest, judge_many
from genrm_rank.judges.replay import ReplayJudge
from genrm_rank.judges.simulated import SimulatedJudge
from genrm_rank.messages import build_messages
from genrm_rank.parsing import parse_verdict
from genrm_rank.verdict import FailureKind, RubricScore, Usage, Verdict

__version__ = "0.1.0"

__all__ = [
    "BatchJudge",
    "BudgetExhaustedError",
    "ComparisonGraphError",
    "EndpointsUnavailableError",
    "FailureKind",
    "GenRMRankError",
    "Judge",
    "JudgeError",
    "PairRequest",
    "ReplayJudge",
    "ReplayMissError",
    "RubricScore",
    "SimulatedJudge",
    "Usage",
    "Verdict",
    "VerdictError",
    "build_messages",
    "judge_many",
    "parse_verdict",
]
