"""Command line of the simulated GenRM server (``genrm-rank serve-sim``).

``python -m genrm_rank.server --port 8000 --replicas 4 --capacity 64 --latency-mean 0.3`` starts
four servers on ports 8000-8003 (``--port 0``: free ports) and prints one line per server,
``serve-sim: ready http://127.0.0.1:PORT/v1 ...``, then serves until interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import replace

from genrm_rank.server.app import FAULT_KINDS, SimServer, SimServerConfig

__all__ = [
    "add_serve_sim_arguments",
    "build_arg_parser",
    "config_from_args",
    "exposure_warning",
    "main",
    "serve_sim_main",
]


def add_serve_sim_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``serve-sim`` options to ``parser`` (for the ``genrm-rank`` CLI); returns it."""
    d = SimServerConfig()
    net = parser.add_argument_group("network")
    net.add_argument(
        "--host", default="127.0.0.1", help="interface to listen on (default: %(default)s)"
    )
    net.add_argument(
        "--port",
        type=int,
        default=8000,
        help="first port; 0 picks free ports (default: %(default)s)",
    )
    net.add_argument(
        "--replicas",
        type=int,
        default=1,
        help="servers to start on consecutive ports (default: %(default)s)",
    )
    net.add_argument(
        "--api-key-env",
        default=None,
        metavar="VAR",
        help="require 'Authorization: Bearer <key>', the key read from this environment variable",
    )
    srv = parser.add_argument_group("server")
    srv.add_argument("--model", default=d.model, help="served model name (default: %(default)s)")
    srv.add_argument("--max-model-len", type=int, default=d.max_model_len)
    srv.add_argument(
        "--capacity",
        type=int,
        default=d.capacity,
        help="concurrent sequences (default: %(default)s)",
    )
    srv.add_argument(
        "--latency", choices=("lognormal", "constant", "exponential"), default=d.latency
    )
    srv.add_argument(
        "--latency-mean", type=float, default=d.latency_mean, help="seconds; 0 = zero-latency mode"
    )
    srv.add_argument("--latency-sigma", type=float, default=d.latency_sigma)
    srv.add_argument("--prefix-cache-size", type=int, default=d.prefix_cache_size)
    srv.add_argument("--prefix-hit-latency-factor", type=float, default=d.prefix_hit_latency_factor)
    srv.add_argument(
        "--seed", type=int, default=d.seed, help="latency/fault seed (replica i uses seed + i)"
    )
    jdg = parser.add_argument_group("simulated judge")
    jdg.add_argument(
        "--answer-format", choices=("json", "rubric", "boxed"), default=d.answer_format
    )
    jdg.add_argument(
        "--reasoning-style",
        choices=("reasoning", "reasoning_content", "think", "bare", "none"),
        default=d.reasoning_style,
    )
    jdg.add_argument("--noise", choices=("bradley_terry", "thurstone"), default=d.noise)
    jdg.add_argument("--noise-scale", type=float, default=d.noise_scale)
    jdg.add_argument("--position-bias", type=float, default=d.position_bias)
    jdg.add_argument("--judge-seed", type=int, default=d.judge_seed)
    flt = parser.add_argument_group("fault injection")
    for kind in ("500", "503", "429", "hang", "drop", "html", "empty-choices"):
        flt.add_argument(f"--fault-rate-{kind}", type=float, default=0.0, metavar="P")
    flt.add_argument("--unreadable-rate", type=float, default=0.0, metavar="P")
    flt.add_argument("--truncated-rate", type=float, default=0.0, metavar="P")
    flt.add_argument(
        "--retry-after", type=float, default=d.retry_after, help="seconds in Retry-After of 429/503"
    )
    flt.add_argument("--hang-seconds", type=float, default=d.hang_seconds)
    flt.add_argument(
        "--fault-sequence",
        default="",
        metavar="K1,K2,...",
        help=f"faults for the first requests, in order; each of {', '.join(FAULT_KINDS)}",
    )
    return parser


def build_arg_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m genrm_rank.server``."""
    parser = argparse.ArgumentParser(
        prog="python -m genrm_rank.server",
        description="Simulated vLLM servers with a GenRM loaded (OpenAI chat API, faults).",
    )
    return add_serve_sim_arguments(parser)


def config_from_args(args: argparse.Namespace) -> SimServerConfig:
    """The :class:`SimServerConfig` the parsed options describe; ``ValueError`` if invalid."""
    api_key = None
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env)
        if not api_key:
            raise ValueError(
                f"Argument '--api-key-env' names {args.api_key_env!r}, which is unset or empty."
            )
    sequence = tuple(k.strip() for k in args.fault_sequence.split(",") if k.strip())
    return SimServerConfig(
        model=args.model,
        max_model_len=args.max_model_len,
        capacity=args.capacity,
        latency=args.latency,
        latency_mean=args.latency_mean,
        latency_sigma=args.latency_sigma,
        prefix_cache_size=args.prefix_cache_size,
        prefix_hit_latency_factor=args.prefix_hit_latency_factor,
        answer_format=args.answer_format,
        reasoning_style=args.reasoning_style,
        noise=args.noise,
        noise_scale=args.noise_scale,
        position_bias=args.position_bias,
        unreadable_rate=args.unreadable_rate,
        truncated_rate=args.truncated_rate,
        judge_seed=args.judge_seed,
        fault_rate_500=args.fault_rate_500,
        fault_rate_503=args.fault_rate_503,
        fault_rate_429=args.fault_rate_429,
        fault_rate_hang=args.fault_rate_hang,
        fault_rate_drop=args.fault_rate_drop,
        fault_rate_html=args.fault_rate_html,
        fault_rate_empty_choices=args.fault_rate_empty_choices,
        retry_after=args.retry_after,
        hang_seconds=args.hang_seconds,
        fault_sequence=sequence,
        api_key=api_key,
        seed=args.seed,
    )


def exposure_warning(host: str, api_key: str | None) -> str | None:
    """A warning when the servers listen beyond this machine (``0.0.0.0``, a LAN address)
    without ``--api-key-env``: anyone who can reach the port may use them; ``None`` otherwise."""
    if api_key is not None or host == "localhost":
        return None
    try:
        if ipaddress.ip_address(host.strip("[]")).is_loopback:
            return None
    except ValueError:
        pass  # a host name: it may resolve to any interface
    return (
        f"serve-sim: warning: listening on {host} with no API key: anyone who can reach this "
        "port can use the server; pass --api-key-env VAR, or --host 127.0.0.1"
    )


async def _serve(config: SimServerConfig, host: str, port: int, replicas: int) -> None:
    servers = [
        SimServer(
            replace(config, seed=config.seed + i), host=host, port=0 if port == 0 else port + i
        )
        for i in range(replicas)
    ]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        for server in servers:
            await server.start()
            print(
                f"serve-sim: ready {server.url} model={config.model} capacity={config.capacity} "
                f"latency_mean={config.latency_mean}",
                flush=True,
            )
        await stop.wait()
    finally:
        for server in servers:
            await server.stop()


def serve_sim_main(
    argv: Sequence[str] | None = None, *, args: argparse.Namespace | None = None
) -> int:
    """Run ``serve-sim`` until SIGINT/SIGTERM; returns the exit status.

    Give either ``argv`` (parsed with :func:`build_arg_parser`) or already parsed ``args`` from a
    parser extended by :func:`add_serve_sim_arguments`.
    """
    if args is None:
        args = build_arg_parser().parse_args(argv)
    try:
        config = config_from_args(args)
        if args.replicas < 1:
            raise ValueError(f"Argument '--replicas' must be >= 1, not {args.replicas}.")
    except ValueError as exc:
        print(f"serve-sim: error: {exc}", file=sys.stderr)
        return 2
    warning = exposure_warning(args.host, config.api_key)
    if warning is not None:
        print(warning, file=sys.stderr, flush=True)
    try:
        asyncio.run(_serve(config, args.host, args.port, args.replicas))
    except KeyboardInterrupt:
        return 0  # Ctrl-C is how a foreground serve-sim is stopped
    except OSError as exc:
        print(f"serve-sim: error: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m genrm_rank.server``."""
    return serve_sim_main(argv)
