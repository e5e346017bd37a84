"""The judge the options describe: ``--endpoint``, ``--judge simulated``, ``--cache``."""

from __future__ import annotations

import argparse
import json
import os
import re
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from http.client import HTTPMessage
from pathlib import Path
from typing import IO, Any

from genrm_rank.cache import VerdictCache
from genrm_rank.cli.options import PROG, UsageError
from genrm_rank.judges.base import Judge
from genrm_rank.judges.cached import CachedJudge
from genrm_rank.redaction import redact

# --------------------------------------------------------------------------------------------
# Judges


class ServerDownError(Exception):
    """The server could not be reached at all before the run (the CLI exits 4)."""


# Library messages name arguments; the CLI names its flags instead.
_FLAGS = (
    ("argument 'rows.id_field'", "--id-field"),
    ("argument 'rows.prompt_fields'", "--prompt-field"),
    ("argument 'rows.candidates_field'", "--candidates-field"),
    ("argument 'rows.id_from_line'", "--id-from-line"),
    ("argument 'rows.allow_templated'", "--allow-templated-prompt"),
    ("argument 'inputs.candidate_field'", "--candidate-field"),
    ("argument 'inputs.align_by'", "--align-by"),
    ("argument 'inputs.messages_field'", "--prompt-field"),
    ("argument 'inputs.group_by'", "--group-by"),
    ("Argument 'split'", "argument --split"),
    ("argument 'model'", "--model"),
    ("argument 'endpoints'", "--endpoint"),
    ("api_key_env (an environment variable) or api_key_file", "--api-key-env or --api-key-file"),
    ("api_key_env/api_key_file", "--api-key-env/--api-key-file"),
    ("pass verify_tls=False", "pass --no-verify-tls"),
    ("with api_key_env or api_key_file", "with --api-key-env or --api-key-file"),
    ("thinking=False", "--no-thinking"),
    ("argument 'concurrency'", "--concurrency"),
    ("argument 'timeout'", "--timeout"),
    ("the judge's 'max_tokens'", "--max-new-tokens"),
)


_OUTPUT_FLAGS = {"out": "--output", "errors": "--errors", "rejected": "--rejected"}
_PARAMETERS = {
    "timeout": "--timeout",
    "max_tokens": "--max-new-tokens",
    "max_resends": "--max-resends",
    "down_timeout": "--down-timeout",
    "extra_body": "--extra-body",
    "completion_tokens_per_call": "--expect-completion-tokens",
    "tokens_per_second_per_replica": "--throughput",
    "gpus_per_replica": "--gpus-per-replica",
    "price_per_gpu_hour": "--price-per-gpu-hour",
    "expected_calls_per_row": "--expect-calls-per-row",
}
"""Parameters of the judge and the cost plan that the CLI sets from one flag each."""
_PATTERNS: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (re.compile(r"Argument 'endpoints\[\d+\]'"), lambda m: "argument --endpoint"),
    (re.compile(r"Arguments 'resume' and 'overwrite'"), lambda m: "--resume and --overwrite"),
    # prepare_output's and merge_shards' files, after the flag the CLI already named
    (re.compile(r"(argument --[\w-]+: )Argument 'paths'(?:\[[^\]]*\])?:? ?"), lambda m: m[1]),
    (
        re.compile(r"Argument '(?:paths|output)\['(\w+)'\]'"),
        lambda m: f"argument {_OUTPUT_FLAGS.get(m[1], '--output')}",
    ),
    (re.compile(r"Argument '(?:paths|output)'"), lambda m: "argument --output"),
    (re.compile(r"pass overwrite=True"), lambda m: "pass --overwrite"),
    (
        re.compile(r"Argument '(" + "|".join(_PARAMETERS) + r")'"),
        lambda m: f"argument {_PARAMETERS[m[1]]}",
    ),
    (re.compile(r"Argument 'format' is '([\w-]+)', which"), lambda m: f"--format {m[1]}, which"),
    (re.compile(r"\bformat '([\w-]+)' holds"), lambda m: f"--format {m[1]} holds"),
)


def cli_words(message: str) -> str:
    """A library message with its argument names replaced by the CLI's flags."""
    for pattern, replace in _PATTERNS:
        message = pattern.sub(replace, message)
    for words, flag in _FLAGS:
        message = message.replace(words, flag)
    return message


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port or default


class _SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects, but sends the API key only to the origin it was given for."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and _origin(new.full_url) != _origin(req.full_url):
            new.remove_header("Authorization")
        return new


def _discover_model(
    endpoint: str,
    api_key_env: str | None,
    api_key_file: Path | None,
    *,
    verify_tls: bool = True,
    timeout: float = 10.0,
) -> str:
    url = endpoint.rstrip("/") + "/models"
    request = urllib.request.Request(url)
    if api_key_file is not None:
        try:
            key: str | None = api_key_file.read_text().strip() or None
        except OSError as exc:
            raise UsageError(
                f"argument --api-key-file: cannot read {api_key_file}: {exc.strerror}"
            ) from None
    else:
        key = os.environ.get(api_key_env) if api_key_env else None
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    handlers: list[urllib.request.BaseHandler] = [_SameOriginRedirects()]
    if not verify_tls:
        handlers.append(urllib.request.HTTPSHandler(context=ssl._create_unverified_context()))
    try:
        with urllib.request.build_opener(*handlers).open(request, timeout=timeout) as response:
            body = json.load(response)
        return str(body["data"][0]["id"])
    except urllib.error.HTTPError as exc:  # the server answered: in its own words
        words = redact(exc.read().decode("utf-8", "replace").strip()[:500], key)
        hint = ""
        if exc.code in (401, 403):
            hint = "; no API key was sent" if not key else "; the API key sent was refused"
        elif exc.code == 404 and not endpoint.rstrip("/").endswith("/v1"):
            hint = f"; did you mean {endpoint.rstrip('/')}/v1?"
        raise UsageError(
            f"argument --model: not given, and {url} answered HTTP {exc.code}: {words}{hint}"
        ) from None
    except (urllib.error.URLError, OSError) as exc:  # nobody answered: the server is down
        reason = redact(str(getattr(exc, "reason", exc)), key)
        raise ServerDownError(f"{url} could not be reached: {reason}") from None
    except Exception as exc:  # an answer without a model list: the user must say which model
        raise UsageError(
            f"argument --model: not given, and {url} did not list a model ({redact(str(exc), key)})"
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
    if args.endpoint:  # checked before discovery, which would quote a URL's password
        from genrm_rank.judges.openai_http import check_endpoints

        try:
            check_endpoints(args.endpoint)
        except ValueError as exc:
            raise UsageError(cli_words(str(exc))) from None
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
        try:
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
                max_resends=args.max_resends,
                down_timeout=args.down_timeout,
                thinking=getattr(args, "thinking", None),
                max_in_flight_per_endpoint=max(1, getattr(args, "concurrency", 64)),
            )
        except (TypeError, ValueError) as exc:
            raise UsageError(cli_words(str(exc))) from None
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
