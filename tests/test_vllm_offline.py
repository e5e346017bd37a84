"""Tests of genrm_rank.judges.vllm_offline.VLLMOfflineJudge with a stand-in for ``vllm.LLM``.

The stand-in has ``LLM.chat``'s signature (vLLM 0.32) and returns objects shaped like vLLM's
``RequestOutput`` (``.outputs[0].text``, ``.finish_reason``, ``.token_ids``,
``.prompt_token_ids``). Its answers come from an :class:`Oracle`, a function of the messages and
of how often they were asked, so the same oracle can answer over HTTP too: the equivalence tests
run one ranking through the offline judge and through :class:`OpenAIJudge` against a loopback
server, and require the same verdicts, calls and rankings. The real vLLM test is in
``tests/test_vllm_real.py`` (marker ``vllm``).
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from genrm_rank.cache import VerdictCache
from genrm_rank.judges.base import BatchJudge, PairRequest
from genrm_rank.judges.cached import CachedJudge
from genrm_rank.judges.openai_http import OpenAIJudge
from genrm_rank.judges.vllm_offline import VLLMOfflineJudge
from genrm_rank.runner import PromptInput, PromptResult, Runner
from genrm_rank.sdg import prepare_output, process_file, select_rows
from genrm_rank.sdg.filters import SelectThresholds
from genrm_rank.spec import RankSpec
from genrm_rank.verdict import FailureKind

# -- the stand-in ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FakeCompletion:
    text: str
    token_ids: list[int]
    finish_reason: str | None
    index: int = 0


@dataclass(frozen=True)
class FakeRequestOutput:
    prompt_token_ids: list[int]
    outputs: list[FakeCompletion]


@dataclass(frozen=True)
class FakeSamplingParams:
    options: dict[str, Any]


def make_sampling_params(**options: Any) -> FakeSamplingParams:
    return FakeSamplingParams(options)


def _key(messages: list[dict[str, str]]) -> str:
    return json.dumps(messages, sort_keys=True)


def _tokens(text: str, per: int) -> int:
    return max(1, len(text) // per)


@dataclass
class Oracle:
    """Answer text for a conversation: a function of the messages and of the ask number.

    mode "clean": a readable verdict, reasoning inline as ``<think>…</think>``;
    "reask": the first ask of each conversation is unreadable, later asks readable;
    "truncated": always cut at max_tokens inside the reasoning;
    "reasoning_quotes": the reasoning quotes another verdict, the answer after ``</think>``
    is the one to read.
    """

    mode: str = "clean"
    asked: dict[str, int] = field(default_factory=dict)
    generations: int = 0

    def __call__(self, messages: list[dict[str, str]]) -> tuple[str, str]:
        key = _key(messages)
        nth = self.asked.get(key, 0)
        self.asked[key] = nth + 1
        self.generations += 1
        texts = {m["role"]: m["content"] for m in messages}
        score = [int(hashlib.sha256(texts[r].encode()).hexdigest(), 16) % 5 + 1 for r in
                 ("response_1", "response_2")]  # fmt: skip
        ranking = 2 if score[0] > score[1] else 5 if score[0] < score[1] else 3
        verdict = json.dumps({"score_1": score[0], "score_2": score[1], "ranking": ranking})
        if self.mode == "truncated":
            return "<think>weighing the two answers and still weighing", "length"
        if self.mode == "reask" and nth == 0:
            return "<think>hmm</think>I cannot decide.", "stop"
        if self.mode == "reasoning_quotes":
            quoted = '{"score_1": 1, "score_2": 5, "ranking": 6}'
            return f"<think>a draft: {quoted}</think>```json\n{verdict}\n```", "stop"
        return f"<think>compare the answers</think>{verdict}", "stop"


class FakeLLM:
    """Has ``vllm.LLM.chat``'s signature; answers each conversation with the oracle."""

    def __init__(self, oracle: Oracle, *, refuse: str | None = None) -> None:
        self.oracle = oracle
        self.refuse = refuse
        self.calls: list[dict[str, Any]] = []

    def chat(
        self,
        messages: list[Any] | Sequence[list[Any]],
        sampling_params: Any = None,
        use_tqdm: Any = True,
        lora_request: Any = None,
        priority: Any = None,
        chat_template: str | None = None,
        chat_template_content_format: str = "auto",
        add_generation_prompt: bool = True,
        continue_final_message: bool = False,
        tools: list[dict[str, Any]] | None = None,
        chat_template_kwargs: dict[str, Any] | None = None,
        tokenization_kwargs: dict[str, Any] | None = None,
        mm_processor_kwargs: dict[str, Any] | None = None,
    ) -> list[FakeRequestOutput]:
        conversations = list(messages)
        self.calls.append(
            {
                "n": len(conversations),
                "sampling_params": sampling_params,
                "chat_template_kwargs": chat_template_kwargs,
                "use_tqdm": use_tqdm,
            }
        )
        if self.refuse is not None:
            for conversation in conversations:
                if any(self.refuse in m["content"] for m in conversation):
                    # vLLM validates every prompt before it generates any
                    raise ValueError("The decoder prompt (length 5000) is longer than the maximum")
        outputs = []
        for conversation in conversations:
            text, finish = self.oracle(conversation)
            outputs.append(
                FakeRequestOutput(
                    list(range(_tokens(_key(conversation), 4))),
                    [FakeCompletion(text, list(range(_tokens(text, 3))), finish)],
                )
            )
        return outputs


def offline_judge(oracle: Oracle, **kw: Any) -> VLLMOfflineJudge:
    opts: dict[str, Any] = {"model": "tiny", "sampling_params_type": make_sampling_params}
    opts.update(kw)
    return VLLMOfflineJudge(FakeLLM(oracle, refuse=opts.pop("refuse", None)), **opts)


# -- a loopback server answering with the same oracle --------------------------------------------


@pytest.fixture
async def oracle_server(chat_server: Any) -> Any:
    async def make(oracle: Oracle) -> str:
        async def chat(request: web.Request) -> web.Response:
            body = await request.json()
            text, finish = oracle(body["messages"])
            usage = {
                "prompt_tokens": _tokens(_key(body["messages"]), 4),
                "completion_tokens": _tokens(text, 3),
            }
            message = {"role": "assistant", "content": text}
            return web.json_response(
                {
                    "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                    "usage": usage,
                }
            )

        url: str = await chat_server(chat)
        return url

    return make


PROMPTS = [
    PromptInput(
        f"Question {i}: which is better?",
        [f"answer {i}.{k}" for k in range(4)],
        prompt_id=f"p{i}",
    )
    for i in range(6)
]


async def run_all(runner: Runner) -> list[PromptResult]:
    results = [r async for r in runner.run(PROMPTS)]
    return sorted(results, key=lambda r: r.prompt.prompt_id)


def summary(results: list[PromptResult]) -> list[tuple[Any, ...]]:
    out = []
    for r in results:
        assert r.ranking is not None
        verdicts = sorted(
            ((j.first, j.second, j.sample, repr(j.verdict)) for j in r.ranking.judgements),
        )
        out.append((r.prompt.prompt_id, r.ranking.best, r.ranking.order, r.ranking.calls, verdicts))
    return out


# -- tests ---------------------------------------------------------------------------------------


def test_is_a_batch_judge_and_imports_no_vllm() -> None:
    judge = offline_judge(Oracle())
    assert isinstance(judge, BatchJudge)
    assert "vllm" not in sys.modules  # a stand-in LLM and sampling type need no vLLM


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"llm": None}, "'llm' and 'llm_options'"),
        ({"llm": FakeLLM(Oracle()), "llm_options": {"model": "x"}}, "'llm' and 'llm_options'"),
        ({"llm": object()}, "Argument 'llm' must be a vllm.LLM"),
        ({"llm": FakeLLM(Oracle()), "model": None}, "Argument 'model'"),
        ({"llm": FakeLLM(Oracle()), "max_tokens": 0}, "Argument 'max_tokens'"),
        ({"llm": FakeLLM(Oracle()), "sampling_options": [1]}, "Argument 'sampling_options'"),
        ({"llm": FakeLLM(Oracle()), "chat_template_kwargs": 3}, "Argument 'chat_template_kwargs'"),
        ({"llm": FakeLLM(Oracle()), "template_token_allowance": -1}, "template_token_allowance"),
    ],
)
def test_validation_names_the_argument(kwargs: dict[str, Any], fragment: str) -> None:
    opts: dict[str, Any] = {"model": "tiny", "sampling_params_type": make_sampling_params}
    opts.update(kwargs)
    llm = opts.pop("llm")
    with pytest.raises((TypeError, ValueError), match=fragment):
        VLLMOfflineJudge(llm, **opts)


async def test_one_chat_call_per_batch_with_sampling_and_template_kwargs() -> None:
    oracle = Oracle()
    judge = offline_judge(
        oracle,
        temperature=0.6,
        top_p=0.9,
        max_tokens=512,
        sampling_options={"top_k": 20, "seed": 7},
        chat_template_kwargs={"enable_thinking": True},
    )
    runner = Runner(judge, RankSpec(strategy="round_robin"), batch_size=8, concurrency=16)
    results = await run_all(runner)
    calls = judge.llm.calls
    assert all(r.ok for r in results)
    assert sum(c["n"] for c in calls) == oracle.generations == runner.stats.calls == 6 * 12
    assert len(calls) == judge.chat_calls
    assert max(c["n"] for c in calls) == 8
    assert len(calls) <= 12  # 72 requests in batches of at most 8: not one call per request
    assert {c["use_tqdm"] for c in calls} == {False}
    assert all(c["chat_template_kwargs"] == {"enable_thinking": True} for c in calls)
    params = calls[0]["sampling_params"].options
    assert params == {"temperature": 0.6, "top_p": 0.9, "max_tokens": 512, "top_k": 20, "seed": 7}


async def test_answers_read_as_the_http_judge_reads_them() -> None:
    judge = offline_judge(Oracle("reasoning_quotes"))
    request = PairRequest("Which?", "alpha", "beta")
    verdict = await judge.judge(request)
    assert verdict.ok and verdict.attempts == 1
    assert verdict.reasoning == 'a draft: {"score_1": 1, "score_2": 5, "ranking": 6}'
    assert verdict.ranking != 6.0
    output = judge.llm.oracle  # usage from the output's token counts
    assert output.generations == 1
    assert verdict.usage is not None and verdict.usage.completion_tokens > 0
    assert verdict.usage.prompt_tokens == _tokens(_key(request.messages()), 4)

    truncated = await offline_judge(Oracle("truncated")).judge(request)
    assert truncated.failure is FailureKind.TRUNCATED and truncated.finish_reason == "length"
    assert truncated.raw == "<think>weighing the two answers and still weighing"

    unreadable = await offline_judge(Oracle("reask")).judge(request)
    assert unreadable.failure is FailureKind.UNREADABLE and unreadable.raw is not None
    assert unreadable.attempts == 1


async def test_a_refused_prompt_is_rejected_alone_and_the_rest_are_judged() -> None:
    oracle = Oracle()
    judge = offline_judge(oracle, refuse="TOO LONG")
    requests = [PairRequest(f"q{i}", "a", "b") for i in range(5)]
    requests[3] = PairRequest("TOO LONG", "a", "b")
    verdicts = await judge.judge_batch(requests)
    assert [v.ok for v in verdicts] == [True, True, True, False, True]
    assert verdicts[3].failure is FailureKind.REJECTED and verdicts[3].attempts == 0
    assert "longer than the maximum" in (verdicts[3].error or "")
    assert oracle.generations == 4  # the refused prompt generated nothing


@pytest.mark.parametrize("mode", ["clean", "reask", "truncated"])
async def test_same_verdicts_calls_and_rankings_as_the_http_judge(
    oracle_server: Any, mode: str
) -> None:
    # Which calls a binding budget leaves out depends on the order verdicts come back in (a
    # batch against a window of HTTP requests), so the re-ask case gets room for every re-ask.
    budget = 30 if mode == "reask" else 20
    spec = RankSpec(strategy="round_robin", budget=budget, retries=1, seed=3)
    offline = offline_judge(Oracle(mode), max_tokens=24576)
    offline_results = await run_all(Runner(offline, spec, batch_size=8, concurrency=16))
    url = await oracle_server(Oracle(mode))
    async with OpenAIJudge(url, model="tiny", api_key_env=None) as http:
        http_results = await run_all(Runner(http, spec, concurrency=16))
    assert summary(offline_results) == summary(http_results)
    calls = [r.ranking.calls for r in offline_results if r.ranking is not None]
    assert max(calls) <= budget  # the budget is a ceiling on paid generations
    if mode == "reask":
        assert all(c == 24 for c in calls)  # 12 asks + 12 re-asks
    if mode == "truncated":
        assert all(r.ranking is not None and r.ranking.best is None for r in offline_results)


def _write_rows(path: Path, n: int) -> None:
    rows = [
        {"id": f"r{i}", "prompt": f"Prompt {i}?", "candidates": [f"c{i}.{k}" for k in range(3)]}
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


async def _run_file(
    tmp: Path, name: str, judge: Any, *, resume: bool = False, max_calls: int | None = None
) -> str:
    paths = {"out": tmp / f"{name}.jsonl", "errors": tmp / f"{name}.errors.jsonl"}
    files = prepare_output(paths, resume=resume)
    outcome = await process_file(
        tmp / "in.jsonl",
        judge=judge,
        spec=RankSpec(strategy="round_robin", seed=1),
        formatter=select_rows(SelectThresholds()),
        sinks=files.sinks,
        skip_keys=files.skip_keys,
        skip_lines=files.skip_lines,
        concurrency=8,
        max_calls=max_calls,
    )
    return outcome.status


ACCOUNTING = ("calls", "cached", "prompt_tokens", "completion_tokens")


def decisions(path: Path) -> list[dict[str, Any]]:
    """The rows with the ranking's accounting (paid vs cached calls and tokens) left out."""
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for row in rows:
        for key in ACCOUNTING:
            del row["genrm"][key]
    return rows


async def test_cache_and_resume_pay_only_for_what_is_missing(tmp_path: Path) -> None:
    _write_rows(tmp_path / "in.jsonl", 10)

    def cached(oracle: Oracle, cache: VerdictCache) -> CachedJudge:
        inner = offline_judge(oracle)
        return CachedJudge(inner, cache, namespace=inner.namespace())

    whole = Oracle()
    with VerdictCache(tmp_path / "whole.db") as cache:
        assert await _run_file(tmp_path, "whole", cached(whole, cache)) == "complete"
    assert whole.generations == 10 * 6

    rerun = Oracle()
    with VerdictCache(tmp_path / "whole.db") as cache:
        assert await _run_file(tmp_path, "rerun", cached(rerun, cache)) == "complete"
    assert rerun.generations == 0
    assert decisions(tmp_path / "rerun.jsonl") == decisions(tmp_path / "whole.jsonl")

    first, second = Oracle(), Oracle()
    with VerdictCache(tmp_path / "split.db") as cache:
        assert await _run_file(tmp_path, "split", cached(first, cache), max_calls=25) == "cap"
        assert 0 < first.generations <= 25
        status = await _run_file(tmp_path, "split", cached(second, cache), resume=True)
    assert status == "complete"
    assert first.generations + second.generations == whole.generations
    assert decisions(tmp_path / "split.jsonl") == decisions(tmp_path / "whole.jsonl")
    rows = [json.loads(line) for line in (tmp_path / "split.jsonl").read_text().splitlines()]
    # a verdict paid before the cap, for a row left unfinished, is served from the cache
    assert sum(r["genrm"]["calls"] + r["genrm"]["cached"] for r in rows) == whole.generations


def test_namespace_is_json_and_names_the_sampling() -> None:
    judge = offline_judge(
        Oracle(), sampling_options={"structured_outputs": {"json": {"type": "object"}}}
    )
    namespace = judge.namespace()
    assert json.loads(json.dumps(namespace)) == namespace
    assert namespace["model"] == "tiny" and namespace["judge"] == "vllm_offline"
    assert namespace["sampling_options"] == {"structured_outputs": {"json": {"type": "object"}}}


def test_namespace_names_thinking_given_against_the_template_kwargs() -> None:
    # the same generations are read another way: a cache must keep the two apart
    default = offline_judge(Oracle()).namespace()
    off = {"enable_thinking": False}
    assert offline_judge(Oracle(), thinking=True).namespace() == default
    assert offline_judge(Oracle(), thinking=False).namespace() == {**default, "thinking": False}
    by_kwargs = offline_judge(Oracle(), chat_template_kwargs=off).namespace()
    assert "thinking" not in by_kwargs
    assert offline_judge(Oracle(), chat_template_kwargs=off, thinking=False).namespace() == (
        by_kwargs
    )
    forced = offline_judge(Oracle(), chat_template_kwargs=off, thinking=True).namespace()
    assert forced == {**by_kwargs, "thinking": True}
