"""A judge that runs the GenRM in-process with vLLM's offline ``LLM``: no server, no port.

Each batch the runner sends (``batch_size`` comparisons, see :class:`~genrm_rank.runner.Runner`)
becomes **one** ``llm.chat(...)`` call, which vLLM schedules as one continuous batch; batches run
one at a time in a worker thread, so give the runner a ``batch_size`` near vLLM's
``max_num_seqs``. Retries, budgets, the verdict cache and resume work as with the HTTP judge.
The output text holds the reasoning and ``</think>`` before the answer, and is read by
:func:`~genrm_rank.parsing.parse_verdict` as the HTTP judge reads ``content``.

What a call pays, and what can go wrong::

    an answer (readable or not)  -> parsed; attempts = 1; usage from the output's token counts
    vLLM refuses the batch before generating (VLLMClientError, or ValueError in older vLLM)
                                 -> halves sent again, down to the request at fault:
                                    Verdict.failed("rejected", attempts=0), as an HTTP 400
    anything else (a dead engine, out of memory)
                                 -> raised: it is not one request's problem
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from genrm_rank import validate as check
from genrm_rank.judges.base import PairRequest
from genrm_rank.parsing import parse_verdict, resolve_thinking
from genrm_rank.verdict import FailureKind, Usage, Verdict

__all__ = ["VLLMOfflineJudge"]

_ERROR_TEXT_LIMIT = 500


def _default_sampling_params_type() -> Callable[..., Any]:
    try:
        from vllm import SamplingParams
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "VLLMOfflineJudge needs vLLM: pip install 'genrm-rank[vllm]' (or pass "
            "'sampling_params_type')."
        ) from exc
    return SamplingParams  # type: ignore[no-any-return]


def _refusal_types() -> tuple[type[BaseException], ...]:
    """What vLLM raises for a request it refuses before generating (its 4xx errors)."""
    try:
        from vllm.exceptions import VLLMClientError  # vLLM >= 0.11: VLLMValidationError, ...
    except ImportError:  # older vLLM raises ValueError; a stand-in may too
        return (ValueError,)
    return (ValueError, VLLMClientError)


def _structured_outputs(value: Any) -> Any:
    """A ``structured_outputs`` mapping as vLLM's ``StructuredOutputsParams`` (else as given)."""
    if not isinstance(value, Mapping):
        return value
    from vllm.sampling_params import StructuredOutputsParams

    return StructuredOutputsParams(**dict(value))


def _read_output(output: Any, thinking: bool = True) -> Verdict:
    """One ``RequestOutput`` as a verdict, read as the HTTP judge reads ``message.content``."""
    completions = getattr(output, "outputs", None)
    if not completions:
        error = "vLLM returned no completion for this request"
        return Verdict.failed(FailureKind.EMPTY, error=error)
    completion = completions[0]
    text = completion.text
    if not isinstance(text, str):
        raise TypeError(f"vLLM output text is {type(text).__name__}, not a string.")
    prompt_ids = getattr(output, "prompt_token_ids", None)
    usage = Usage(len(prompt_ids or ()), len(completion.token_ids or ()))
    finish = completion.finish_reason
    finish = None if finish is None else str(finish)
    return parse_verdict(text, None, finish, usage=usage, thinking=thinking)


class VLLMOfflineJudge:
    """Judge pairs with a GenRM loaded in this process by vLLM's offline ``LLM``.

    Parameters
    ----------
    llm : vllm.LLM, optional
        A loaded model. Give this or ``llm_options``, not both.
    llm_options : mapping, optional
        Keyword arguments of ``vllm.LLM`` (``model``, ``tensor_parallel_size``, ...): the model
        is loaded here.
    model : str, optional
        The model's name in :meth:`namespace`; default ``llm_options["model"]``.
    temperature, top_p, max_tokens : float, float, int
        Sampling parameters (the model card's ``1.0, 0.95, 24576`` by default).
    sampling_options : mapping, optional
        Further ``SamplingParams`` arguments, overriding the three above; a
        ``structured_outputs`` mapping becomes vLLM's ``StructuredOutputsParams``.
    chat_template_kwargs : mapping, optional
        Passed to ``llm.chat`` (the HTTP judge sends them in ``extra_body``).
    template_token_allowance : int
        Tokens allowed for the chat template's own text in :meth:`call_token_bound`.
    thinking : bool, optional
        Whether the answer is read only after ``</think>`` (see
        :func:`~genrm_rank.parsing.parse_verdict`); default: unless ``chat_template_kwargs``
        turns thinking off.
    sampling_params_type : callable, optional
        What builds the sampling parameters (``vllm.SamplingParams`` by default; tests pass a
        stand-in).

    Examples
    --------
    ::

        judge = VLLMOfflineJudge(llm_options={"model": "nvidia/Qwen3-Nemotron-235B-A22B-GenRM",
                                              "tensor_parallel_size": 8})
        results = [r async for r in Runner(judge, spec, batch_size=256, concurrency=1024).run(p)]
    """

    def __init__(
        self,
        llm: Any = None,
        *,
        llm_options: Mapping[str, Any] | None = None,
        model: str | None = None,
        temperature: float = 1.0,
        top_p: float = 0.95,
        max_tokens: int = 24576,
        sampling_options: Mapping[str, Any] | None = None,
        chat_template_kwargs: Mapping[str, Any] | None = None,
        template_token_allowance: int = 4096,
        thinking: bool | None = None,
        sampling_params_type: Callable[..., Any] | None = None,
    ) -> None:
        if (llm is None) == (llm_options is None):
            raise ValueError(
                "Arguments 'llm' and 'llm_options' exclude each other and one is needed; "
                f"got llm={'set' if llm is not None else None}, "
                f"llm_options={'set' if llm_options is not None else None}."
            )
        if llm_options is not None:
            check.mapping("llm_options", llm_options)
        if llm is not None and not callable(getattr(llm, "chat", None)):
            raise TypeError(
                f"Argument 'llm' must be a vllm.LLM (with a chat() method), not "
                f"{type(llm).__name__}."
            )
        if model is None and llm_options is not None:
            model = llm_options.get("model")
        if not isinstance(model, str) or not model:
            raise ValueError(
                f"Argument 'model' must be a non-empty string (the model's name), not {model!r}."
            )
        check.count("max_tokens", max_tokens, 1)
        check.count("template_token_allowance", template_token_allowance, 0)
        check.mapping("sampling_options", sampling_options, optional=True)
        check.mapping("chat_template_kwargs", chat_template_kwargs, optional=True)
        self.model = model
        self.temperature = float(temperature)
        self.top_p = float(top_p)
        self.max_tokens = max_tokens
        self.sampling_options: dict[str, Any] = dict(sampling_options or {})
        self.chat_template_kwargs: dict[str, Any] | None = (
            dict(chat_template_kwargs) if chat_template_kwargs is not None else None
        )
        self.template_token_allowance = template_token_allowance
        if thinking is not None and not isinstance(thinking, bool):
            raise TypeError(f"Argument 'thinking' must be a bool or None, not {thinking!r}.")
        self.thinking, self.thinking_given = resolve_thinking(thinking, self.chat_template_kwargs)
        make = sampling_params_type or _default_sampling_params_type()
        options = {"temperature": self.temperature, "top_p": self.top_p, "max_tokens": max_tokens}
        options |= self.sampling_options
        if sampling_params_type is None and "structured_outputs" in options:
            options["structured_outputs"] = _structured_outputs(options["structured_outputs"])
        self.sampling_params: Any = make(**options)
        if llm is None:
            from vllm import LLM

            llm = LLM(**dict(llm_options or {}))
        self.llm: Any = llm
        self.chat_calls = 0
        """``llm.chat`` calls made (batches, including the halves of a refused batch)."""
        self._refusals = _refusal_types()
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return (
            f"VLLMOfflineJudge(model={self.model!r}, temperature={self.temperature:g}, "
            f"top_p={self.top_p:g}, max_tokens={self.max_tokens}, chat_calls={self.chat_calls})"
        )

    def namespace(self) -> dict[str, Any]:
        """What besides the messages changes the answer (for
        :class:`~genrm_rank.judges.cached.CachedJudge`), sampling options as given."""
        return {
            "judge": "vllm_offline",
            "model": self.model,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "sampling_options": self.sampling_options,
            "chat_template_kwargs": self.chat_template_kwargs or {},
            # answers read another way (thinking given against the kwargs): keys of their own
            **({"thinking": self.thinking} if self.thinking_given else {}),
        }

    def call_token_bound(self, request: PairRequest) -> int:
        """Most tokens one call of ``request`` can use: its messages' UTF-8 bytes,
        :attr:`template_token_allowance` and ``max_tokens`` (as the HTTP judge's)."""
        content = sum(len(m["content"].encode()) + 8 for m in request.messages())
        return content + self.template_token_allowance + self.max_tokens

    def _bound_lock(self) -> asyncio.Lock:
        """The batch lock of the running loop, created on first use."""
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        return self._lock

    def _chat(self, conversations: list[list[dict[str, str]]]) -> list[Any]:
        self.chat_calls += 1
        outputs = self.llm.chat(
            conversations,
            sampling_params=self.sampling_params,
            use_tqdm=False,
            chat_template_kwargs=self.chat_template_kwargs,
        )
        if len(outputs) != len(conversations):
            raise RuntimeError(
                f"llm.chat returned {len(outputs)} outputs for {len(conversations)} conversations."
            )
        return list(outputs)

    async def _generate(self, requests: Sequence[PairRequest]) -> list[Verdict]:
        conversations = [r.messages() for r in requests]
        try:
            outputs = await asyncio.to_thread(self._chat, conversations)
        except self._refusals as exc:  # refused before generating: find the request at fault
            if len(requests) == 1:
                message = str(exc).strip() or type(exc).__name__
                if len(message) > _ERROR_TEXT_LIMIT:
                    message = message[:_ERROR_TEXT_LIMIT] + "..."
                error = f"vLLM refused: {message}"
                return [Verdict.failed(FailureKind.REJECTED, error=error, attempts=0)]
            half = len(requests) // 2
            return await self._generate(requests[:half]) + await self._generate(requests[half:])
        return [_read_output(output, self.thinking) for output in outputs]

    async def judge_batch(self, requests: Sequence[PairRequest]) -> list[Verdict]:
        """Judge every request in one ``llm.chat`` call (one batch at a time, in a worker
        thread); the i-th verdict answers the i-th."""
        for i, request in enumerate(requests):
            check.instance(f"requests[{i}]", request, PairRequest)
        if not requests:
            return []
        async with self._bound_lock():
            return await self._generate(list(requests))

    async def judge(self, request: PairRequest) -> Verdict:
        """Judge one request (a batch of one)."""
        check.instance("request", request, PairRequest)
        (verdict,) = await self.judge_batch([request])
        return verdict
