"""Judges: the only parts of genrm_rank that wait on anything.

- :mod:`~genrm_rank.judges.base`: the :class:`Judge` protocol and :class:`PairRequest`;
- :mod:`~genrm_rank.judges.simulated`, :mod:`~genrm_rank.judges.replay`: a seeded simulated
  GenRM writing real answer text, and answers from a record of real verdicts;
- :mod:`~genrm_rank.judges.openai_http`: OpenAI-compatible servers (vLLM), many replicas, with
  its :mod:`~genrm_rank.judges.routing`, :mod:`~genrm_rank.judges.settings` and
  :mod:`~genrm_rank.judges.transport`;
- :mod:`~genrm_rank.judges.cached`: any judge behind a SQLite verdict cache;
- :mod:`~genrm_rank.judges.vllm_offline`: the GenRM in-process (the ``vllm`` extra).
"""

from genrm_rank.judges.base import BatchJudge, Judge, PairRequest, judge_many
from genrm_rank.judges.cached import CachedBatchJudge, CachedJudge
from genrm_rank.judges.openai_http import OpenAIJudge
from genrm_rank.judges.replay import ReplayJudge, ReplayRecord
from genrm_rank.judges.settings import Health, Limits, Retries, Routing
from genrm_rank.judges.simulated import SimulatedJudge, render_answer
from genrm_rank.judges.transport import AiohttpTransport, Response, Transport
from genrm_rank.judges.vllm_offline import VLLMOfflineJudge

__all__ = [
    "AiohttpTransport",
    "BatchJudge",
    "CachedBatchJudge",
    "CachedJudge",
    "Health",
    "Judge",
    "Limits",
    "OpenAIJudge",
    "PairRequest",
    "ReplayJudge",
    "ReplayRecord",
    "Response",
    "Retries",
    "Routing",
    "SimulatedJudge",
    "Transport",
    "VLLMOfflineJudge",
    "judge_many",
    "render_answer",
]
