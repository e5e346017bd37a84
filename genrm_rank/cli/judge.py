"""The judge the options describe: ``--endpoint``, ``--judge simulated``, ``--cache``."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genrm_rank.cache import VerdictCache
from genrm_rank.cli.options import PROG, UsageError
from genrm_rank.judges.base import Judge
from genrm_rank.judges.cached import CachedJudge
from genrm_rank.judges.discovery import served_model


def _discover_model(
    endpoint: str,
    api_key_env: str | None,
    api_key_file: Path | None,
    *,
    verify_tls: bool = True,
) -> str:
    """The model the first endpoint serves, asked with the key the options name."""
    if api_key_file is None:
        return served_model(endpoint, os.environ.get(api_key_env or ""), verify_tls=verify_tls)
    try:
        key = api_key_file.read_text().strip() or None
    except OSError as exc:
        raise UsageError(
            f"argument --api-key-file: cannot read {api_key_file}: {exc.strerror}"
        ) from None
    return served_model(endpoint, key, verify_tls=verify_tls)


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
        from genrm_rank.judges.openai_http import OpenAIJudge
        from genrm_rank.judges.settings import Health, Limits, Retries

        if not getattr(args, "verify_tls", True):
            print(
                f"{PROG}: warning: TLS certificates are not verified (--no-verify-tls): the "
                "API key and the prompts may go to whoever answers",
                file=sys.stderr,
            )
        model = args.model or _discover_model(
            args.endpoint[0],
            args.api_key_env,
            getattr(args, "api_key_file", None),
            verify_tls=getattr(args, "verify_tls", True),
        )
        judge = OpenAIJudge(
            args.endpoint,
            model=model,
            api_key_env=args.api_key_env,
            api_key_file=getattr(args, "api_key_file", None),
            verify_tls=getattr(args, "verify_tls", True),
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
