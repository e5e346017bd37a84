"""The judge the options describe: ``--endpoint``, ``--judge simulated``, ``--cache``."""

from __future__ import annotations

import argparse
import contextlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genrm_rank.cache import VerdictCache
from genrm_rank.cli.options import PROG, UsageError
from genrm_rank.judges.base import Judge
from genrm_rank.judges.cached import CachedJudge
from genrm_rank.judges.discovery import served_model


@dataclass
class JudgeSetup:
    """The run's judge (the cache's, when there is one), the judge inside it (``inner``), what
    identifies its verdicts in the cache and the run file (``namespace``), and the cache."""

    judge: Judge
    inner: Any
    namespace: dict[str, Any]
    cache: VerdictCache | None = None

    @property
    def cached(self) -> CachedJudge | None:
        return self.judge if isinstance(self.judge, CachedJudge) else None

    def opened(self) -> contextlib.AbstractAsyncContextManager[Any]:
        """The judge's own context (its HTTP sessions), or none."""
        judge: Any = self.judge
        return judge if hasattr(judge, "__aenter__") else contextlib.nullcontext()


def make_judge(args: argparse.Namespace, *, cache_path: Path | None = None) -> JudgeSetup:
    """The judge the options describe, wrapped in the verdict cache when ``cache_path`` is set."""
    kind = args.judge or ("http" if args.endpoint else None)
    if kind is None:
        raise UsageError(
            "argument --endpoint: no judge given; pass --endpoint URL (a GenRM server) or "
            "--judge simulated"
        )
    if kind == "simulated" and args.endpoint:
        raise UsageError("argument --endpoint: not allowed with --judge simulated")
    if kind == "http" and not args.endpoint:
        raise UsageError("argument --endpoint: --judge http needs at least one --endpoint URL")
    judge: Any
    if kind == "simulated":  # serve-sim's answers with its defaults: qualities from text hashes
        from genrm_rank.judges.simulated import SimulatedJudge

        judge = SimulatedJudge(seed=args.sim_seed)
        model = args.model or "sim-genrm"
        namespace = {"judge": "simulated", "model": model, "sim_seed": args.sim_seed}
    else:
        from genrm_rank.judges.openai_http import OpenAIJudge, check_endpoints, resolve_api_key
        from genrm_rank.judges.settings import Health, Limits, Retries

        check_endpoints(args.endpoint)  # before discovery, which would quote a URL's password
        verify_tls = getattr(args, "verify_tls", True)
        if not verify_tls:
            print(
                f"{PROG}: warning: TLS certificates are not verified (--no-verify-tls): the "
                "API key and the prompts may go to whoever answers",
                file=sys.stderr,
            )
        key = resolve_api_key(None, args.api_key_env, getattr(args, "api_key_file", None))
        model = args.model or served_model(args.endpoint[0], key, verify_tls=verify_tls)
        sampling = {"temperature": args.temperature, "top_p": args.top_p}
        judge = OpenAIJudge(
            args.endpoint,
            model=model,
            api_key=key,
            api_key_env=None,
            verify_tls=verify_tls,
            max_tokens=args.max_new_tokens,
            extra_body=args.extra_body,
            timeout=args.timeout,
            retries=Retries(max_resends=args.max_resends),
            health=Health(down_timeout=args.down_timeout),
            thinking=getattr(args, "thinking", None),
            limits=Limits(max_in_flight_per_endpoint=max(1, getattr(args, "concurrency", 64))),
            **sampling,
        )
        namespace = {"judge": "openai_http", "model": model, **sampling}
        namespace.update(max_tokens=args.max_new_tokens, extra_body=args.extra_body or {})
    setup = JudgeSetup(judge, judge, namespace)
    if cache_path is not None:
        if getattr(judge, "thinking_given", False):
            # --no-thinking reads the same answers another way: its verdicts get keys of their
            # own (left out otherwise, so that the caches written before still answer)
            namespace = {**namespace, "thinking": judge.thinking}
        try:
            setup.cache = VerdictCache(cache_path)
        except Exception as exc:
            raise UsageError(f"argument --cache: cannot open {cache_path}: {exc}") from None
        setup.judge = CachedJudge(judge, setup.cache, namespace=namespace)
    return setup
