"""Drive :class:`~genrm_rank.judges.vllm_offline.VLLMOfflineJudge` on the tiny model, in-process.

Run it under the vLLM virtualenv's python with the repository on ``PYTHONPATH``::

    PYTHONPATH=. .venv-vllm/bin/python tests/vllm_support/offline_judge_run.py MODEL_DIR REPORT.json

It loads one ``vllm.LLM`` and writes a JSON report to ``REPORT.json``, which
``tests/test_vllm_offline_real.py`` checks. ``GENRM_EXTRA_SITE``, when set, is appended to
``sys.path`` (after the venv's own packages): the test points it at a folder holding the
project's pure additions (scipy, aiolimiter) that vLLM's venv lacks.

What it runs (a few dozen requests, one LLM instance):

* ``main``: 4 prompts x 4 candidates, round robin with both orders (48 calls) through the
  :class:`~genrm_rank.runner.Runner` in batches of 16, with a JSON-schema structured output;
  then the same again through a :class:`~genrm_rank.judges.cached.CachedJudge` twice (the second
  pass must pay nothing);
* ``refused``: a batch of 3 holding one prompt longer than max-model-len;
* ``truncated``: a regex that cannot close the reasoning, cut by ``max_tokens``;
* ``think``: a regex forcing ``<think>letters</think>`` then a verdict: the reasoning is split
  from the answer as the HTTP judge splits ``content``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # run as a script or collected
from verdict_schema import MODEL, SCHEMA  # beside this script; standard library only

THINK_REGEX = r'<think>[a-z]{2,6}</think>\{"score_1": [1-5], "score_2": [1-5], "ranking": [1-6]\}'


def _verdict(v: Any) -> dict[str, Any]:
    return {
        "ok": v.ok,
        "failure": None if v.failure is None else str(v.failure.value),
        "ranking": v.ranking,
        "score_1": v.score_1,
        "score_2": v.score_2,
        "attempts": v.attempts,
        "reasoning": v.reasoning,
        "raw": v.raw,
        "error": v.error,
        "finish_reason": v.finish_reason,
        "prompt_tokens": None if v.usage is None else v.usage.prompt_tokens,
        "completion_tokens": None if v.usage is None else v.usage.completion_tokens,
    }


async def _rank(judge: Any, prompts: list[Any]) -> tuple[list[dict[str, Any]], int]:
    from genrm_rank.runner import Runner
    from genrm_rank.spec import RankSpec

    runner = Runner(judge, RankSpec(strategy="round_robin", seed=0), batch_size=16, concurrency=48)
    out = []
    async for result in runner.run(prompts):
        ranking = result.ranking
        out.append(
            {
                "prompt_id": result.prompt.prompt_id,
                "best": None if ranking is None else ranking.best,
                "calls": None if ranking is None else ranking.calls,
                "cached": None if ranking is None else ranking.cached,
                "verdicts": []
                if ranking is None
                else [_verdict(j.verdict) for j in ranking.judgements],
            }
        )
    return sorted(out, key=lambda r: r["prompt_id"]), runner.stats.calls


async def _main(llm: Any) -> dict[str, Any]:
    from genrm_rank.cache import VerdictCache
    from genrm_rank.judges.base import PairRequest
    from genrm_rank.judges.cached import CachedJudge
    from genrm_rank.judges.vllm_offline import VLLMOfflineJudge
    from genrm_rank.runner import PromptInput

    report: dict[str, Any] = {}
    prompts = [
        PromptInput(f"Question {i}: name a colour.", [f"red {i}", f"blue {i}", "green", "none"],
                    prompt_id=f"p{i}")
        for i in range(4)
    ]  # fmt: skip
    structured = {"structured_outputs": {"json": SCHEMA}, "seed": 0}
    # The tiny random model does not think: its structured output is the answer itself.
    judge = VLLMOfflineJudge(
        llm, model=MODEL, max_tokens=64, sampling_options=structured, thinking=False
    )
    t0 = time.monotonic()
    report["main"], report["main_calls"] = await _rank(judge, prompts)
    report["main_chat_calls"] = judge.chat_calls
    report["main_s"] = time.monotonic() - t0

    cached_judge = VLLMOfflineJudge(
        llm, model=MODEL, max_tokens=64, sampling_options=structured, thinking=False
    )
    with VerdictCache(":memory:") as cache:
        wrapped = CachedJudge(cached_judge, cache, namespace=cached_judge.namespace())
        first, _ = await _rank(wrapped, prompts)
        chat_after_first = cached_judge.chat_calls
        second, second_calls = await _rank(wrapped, prompts)
    report["cache"] = {
        "first_chat_calls": chat_after_first,
        "second_chat_calls": cached_judge.chat_calls - chat_after_first,
        "second_paid_calls": second_calls,
        "same_best": [r["best"] for r in first] == [r["best"] for r in second],
        "second_cached": sum(r["cached"] for r in second),
    }

    refused = await judge.judge_batch(
        [
            PairRequest("short one", "a", "b"),
            PairRequest("word " * 3000, "a", "b"),
            PairRequest("short two", "c", "d"),
        ]
    )
    report["refused"] = [_verdict(v) for v in refused]

    cut = VLLMOfflineJudge(
        llm,
        model=MODEL,
        max_tokens=5,
        sampling_options={"structured_outputs": {"regex": "[a-z]{40}"}},
    )
    report["truncated"] = _verdict(await cut.judge(PairRequest("Which?", "yes", "no")))

    think = VLLMOfflineJudge(
        llm,
        model=MODEL,
        max_tokens=96,
        sampling_options={"structured_outputs": {"regex": THINK_REGEX}},
    )
    report["think"] = _verdict(await think.judge(PairRequest("Which?", "yes", "no")))
    return report


def main(model_dir: str, report_path: str) -> int:
    extra = os.environ.get("GENRM_EXTRA_SITE")
    if extra:
        sys.path.append(extra)
    from vllm import LLM

    import genrm_rank.judges.vllm_offline  # noqa: F401  (fail before the slow model load)

    t0 = time.monotonic()
    llm = LLM(
        model=model_dir,
        dtype="float32",
        max_model_len=2048,
        enforce_eager=True,
        seed=0,
        structured_outputs_config={"backend": "xgrammar", "disable_any_whitespace": True},
    )
    load_s = time.monotonic() - t0
    report = asyncio.run(_main(llm))
    report["load_s"] = load_s
    with open(report_path, "w", encoding="utf-8") as handle:
        json.dump(report, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
