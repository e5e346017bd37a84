"""genrm_rank: best-of-N selection and tournament ranking with pairwise generative reward models.

Pairwise GenRM verdicts (NVIDIA Nemotron GenRMs served by vLLM) become a best-of-N choice
(:func:`select_best`), a full ranking with confidence (:func:`rank`), group rewards for RL
(:func:`group_rewards`), a model leaderboard (:func:`leaderboard`), or a filtered dataset (the
``genrm-rank`` CLI). Judge calls are the currency: every result says how many it spent.
"""

from genrm_rank.api import (
    GroupRewards,
    PromptInput,
    agroup_rewards,
    arank,
    arank_many,
    aselect_best,
    group_rewards,
    leaderboard,
    rank,
    select_best,
)
from genrm_rank.cache import CachedJudge, VerdictCache
from genrm_rank.consistency import ConsistencyReport, consistency_report
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
from genrm_rank.judges.openai_http import OpenAIJudge
from genrm_rank.judges.replay import ReplayJudge
from genrm_rank.judges.simulated import SimulatedJudge
from genrm_rank.messages import build_messages
from genrm_rank.orchestrator import JudgeStatistics, Orchestrator, PromptJob, PromptRun
from genrm_rank.parsing import parse_verdict
from genrm_rank.results import CandidateScore, Ranking, Selection
from genrm_rank.strategies import make_strategy
from genrm_rank.verdict import FailureKind, RubricScore, Usage, Verdict

__version__ = "0.1.0"

__all__ = [
    "BatchJudge",
    "BudgetExhaustedError",
    "CachedJudge",
    "CandidateScore",
    "ComparisonGraphError",
    "ConsistencyReport",
    "EndpointsUnavailableError",
    "FailureKind",
    "GenRMRankError",
    "GroupRewards",
    "Judge",
    "JudgeError",
    "JudgeStatistics",
    "OpenAIJudge",
    "Orchestrator",
    "PairRequest",
    "PromptInput",
    "PromptJob",
    "PromptRun",
    "Ranking",
    "ReplayJudge",
    "ReplayMissError",
    "RubricScore",
    "Selection",
    "SimulatedJudge",
    "Usage",
    "Verdict",
    "VerdictCache",
    "VerdictError",
    "agroup_rewards",
    "arank",
    "arank_many",
    "aselect_best",
    "build_messages",
    "consistency_report",
    "group_rewards",
    "judge_many",
    "leaderboard",
    "make_strategy",
    "parse_verdict",
    "rank",
    "select_best",
]
