"""genrm_rank: best-of-N selection and tournament ranking with pairwise generative reward models.

Pairwise GenRM verdicts (NVIDIA Nemotron GenRMs served by vLLM) become a best-of-N choice
(:func:`select_best`), a full ranking with confidence (:func:`rank`), group rewards for RL
(:func:`group_rewards`), a model leaderboard (:func:`leaderboard`), or a filtered dataset
(:mod:`genrm_rank.sdg` in Python, the ``genrm-rank`` CLI). Every door takes a :class:`RankSpec`
and goes through one :class:`Runner`; every result says how many judge calls it paid. The top
level holds the entry points and the values users touch; the plumbing lives in submodules.
"""

from genrm_rank.aggregators import BradleyTerryFit, Comparisons, LeaderboardTable, bradley_terry
from genrm_rank.api import (
    GroupRewards,
    agroup_rewards,
    arank,
    arank_many,
    aselect_best,
    group_rewards,
    leaderboard,
    rank,
    select_best,
)
from genrm_rank.cache import VerdictCache
from genrm_rank.consistency import ConsistencyReport
from genrm_rank.errors import (
    ComparisonGraphError,
    EndpointsUnavailableError,
    GenRMRankError,
    JudgeConfigurationError,
    JudgeError,
    ReplayMissError,
    SystematicFailureError,
    VerdictError,
)
from genrm_rank.judge_profile import JudgeProfile, learn_judge_profile
from genrm_rank.judges.base import BatchJudge, Judge, PairRequest
from genrm_rank.judges.cached import CachedJudge
from genrm_rank.judges.openai_http import OpenAIJudge
from genrm_rank.judges.replay import ReplayJudge
from genrm_rank.judges.simulated import SimulatedJudge
from genrm_rank.messages import build_messages
from genrm_rank.parsing import parse_verdict
from genrm_rank.results import CandidateScore, Ranking
from genrm_rank.runner import PromptInput, PromptResult, Runner
from genrm_rank.spec import RankSpec
from genrm_rank.verdict import FailureKind, RubricScore, Usage, Verdict

__version__ = "0.2.0"

__all__ = [
    "BatchJudge",
    "BradleyTerryFit",
    "CachedJudge",
    "CandidateScore",
    "ComparisonGraphError",
    "Comparisons",
    "ConsistencyReport",
    "EndpointsUnavailableError",
    "FailureKind",
    "GenRMRankError",
    "GroupRewards",
    "Judge",
    "JudgeConfigurationError",
    "JudgeError",
    "JudgeProfile",
    "LeaderboardTable",
    "OpenAIJudge",
    "PairRequest",
    "PromptInput",
    "PromptResult",
    "RankSpec",
    "Ranking",
    "ReplayJudge",
    "ReplayMissError",
    "RubricScore",
    "Runner",
    "SimulatedJudge",
    "SystematicFailureError",
    "Usage",
    "Verdict",
    "VerdictCache",
    "VerdictError",
    "agroup_rewards",
    "arank",
    "arank_many",
    "aselect_best",
    "bradley_terry",
    "build_messages",
    "group_rewards",
    "leaderboard",
    "learn_judge_profile",
    "parse_verdict",
    "rank",
    "select_best",
]
