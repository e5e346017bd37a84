"""The judge the options describe: ``--endpoint``, ``--judge simulated``, ``--cache``."""

from __future__ import annotations

import argparse
import json
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genrm_rank.cache import VerdictCache
from genrm_rank.cli.options import UsageError
from genrm_rank.judges.base import Judge
from genrm_rank.judges.cached import CachedJudge

# --------------------------------------------------------------------------------------------
# Judges


def _discover_model(endpoint: str, api_key_env: str | None, timeout: float = 10.0) -> str:
    url = endpoint.rstrip("/") + "/models"
    request = urllib.request.Request(url)
    key = os.environ.get(api_key_env) if api_key_env else None
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = json.load(response)
        return str(body["data"][0]["id"])
    except Exception as exc:  # any failure: the user must say which model
        raise UsageError(
            f"argument --model: not given, and {url} did not list a model ({exc})"
        ) from None


@dataclass
class JudgeSetup:
    judge: Judge
    kind: str
    namespace: dict[str, Any]
    cached: Any = None
    cache: Any = None
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
    for url in args.endpoint:
        if not url.startswith(("http://", "https://")):
            raise UsageError(f"argument --endpoint: must be an http(s) URL, not {url!r}")
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

        model = args.model or _discover_model(args.endpoint[0], args.api_key_env)
        try:
            judge = OpenAIJudge(
                args.endpoint,
                model=model,
                api_key_env=args.api_key_env,
                temperature=args.temperature,
                top_p=args.top_p,
                max_tokens=args.max_new_tokens,
                extra_body=args.extra_body,
                timeout=args.timeout,
                max_resends=args.max_resends,
                down_timeout=args.down_timeout,
                max_in_flight_per_endpoint=max(1, getattr(args, "concurrency", 64)),
            )
        except (TypeError, ValueError) as exc:
            raise UsageError(str(exc)) from None
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
