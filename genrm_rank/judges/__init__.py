"""Judges: the only parts of genrm_rank that wait on anything.

- :mod:`~genrm_rank.judges.base`: the :class:`Judge` protocol and :class:`PairRequest`.
- :mod:`~genrm_rank.judges.simulated`: a seeded simulated GenRM writing real answer text.
- :mod:`~genrm_rank.judges.replay`: answers from a record of real verdicts.
- :mod:`~genrm_rank.judges.openai_http`: any OpenAI-compatible server (vLLM), many replicas.
- :mod:`~genrm_rank.judges.routing`: least-loaded routing with prefix affinity.
- :mod:`~genrm_rank.judges.cached`: any judge behind a SQLite verdict cache.
- :mod:`~genrm_rank.judges.vllm_offline`: the GenRM in-process with vLLM's offline ``LLM``
  (the ``vllm`` extra; vLLM is imported only when the judge is built).
"""

from genrm_rank.judges.base import BatchJudge, Judge, PairRequest, judge_many
from genrm_rank.judges.cached import CachedBatchJudge, CachedJudge
from genrm_rank.judges.openai_http import OpenAIJudge
from genrm_rank.judges.replay import ReplayJudge, ReplayRecord
from genrm_rank.judges.simulated import SimulatedJudge, render_answer
from genrm_rank.judges.vllm_offline import VLLMOfflineJudge

__all__ = [
    "BatchJudge",
    "CachedBatchJudge",
    "CachedJudge",
    "Judge",
    "OpenAIJudge",
    "PairRequest",
    "ReplayJudge",
    "ReplayRecord",
    "SimulatedJudge",
    "VLLMOfflineJudge",
    "judge_many",
    "render_answer",
]
