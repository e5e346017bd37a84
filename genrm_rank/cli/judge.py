"""The judge the options describe: ``--endpoint``, ``--judge simulated``, ``--cache``."""

from __future__ import annotations

import argparse
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
    """The run's judge (``judge``, the cache's when there is one), what identifies its verdicts
    in the cache and the run file (``namespace``), the verdict cache, and the judge inside."""

    judge: Judge
    kind: str
    namespace: dict[str, Any]
    cached: CachedJudge | None = None
    cache: VerdictCache | None = None
    inner: Any = None


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
    if args.endpoint:  # checked before discovery, which would quote a URL's password
        from genrm_rank.judges.openai_http import check_endpoints

        check_endpoints(args.endpoint)
    judge: Any
    if kind == "simulated":
        from genrm_rank.judges.simulated import SimulatedJudge

        # The same answers as serve-sim with its defaults: qualities from each text's hash.
        model = args.model or "sim-genrm"
        judge = SimulatedJudge(seed=args.sim_seed)
        namespace: dict[str, Any] = {
            "judge": "simulated",
            "model": model,
            "sim_seed": args.sim_seed,
        }
    else:
        from genrm_rank.judges.openai_http import OpenAIJudge, resolve_api_key
        from genrm_rank.judges.settings import Health, Limits, Retries

        if not getattr(args, "verify_tls", True):
            print(
                f"{PROG}: warning: TLS certificates are not verified (--no-verify-tls): the "
                "API key and the prompts may go to whoever answers",
                file=sys.stderr,
            )
        verify_tls = getattr(args, "verify_tls", True)
        key = resolve_api_key(None, args.api_key_env, getattr(args, "api_key_file", None))
        model = args.model or served_model(args.endpoint[0], key, verify_tls=verify_tls)
        judge = OpenAIJudge(
            args.endpoint,
            model=model,
            api_key=key,
            api_key_env=None,
            verify_tls=verify_tls,
            temperature=args.temperature,
            top_p=args.top_p,
            max_tokens=args.max_new_tokens,
            extra_body=args.extra_body,
            timeout=args.timeout,
            retries=Retries(max_resends=args.max_resends),
            health=Health(down_timeout=args.down_timeout),
            thinking=getattr(args, "thinking", None),
            limits=Limits(max_in_flight_per_endpoint=max(1, getattr(args, "concurrency", 64))),
        )
        namespace = {
            "judge": "openai_http",
            "model": model,
            "temperature": args.temperature,
            "top_p": args.top_p,
            "max_tokens": args.max_new_tokens,
            "extra_body": args.extra_body or {},
        }
    setup = JudgeSetup(judge, kind, namespace, inner=judge)
    if cache_path is not None:
        try:
            cache = VerdictCache(cache_path)
        except Exception as exc:
            raise UsageError(f"argument --cache: cannot open {cache_path}: {exc}") from None
        setup.cache = cache
        setup.cached = setup.judge = CachedJudge(judge, cache, namespace=namespace)
    return setup
