"""Command line of the simulated GenRM server (``genrm-rank serve-sim``).

``python -m genrm_rank.server --port 8000 --replicas 4`` serves on ports 8000-8003 (``--port 0``:
free ports), printing ``serve-sim: ready http://127.0.0.1:PORT/v1 ...`` for each, until stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import ipaddress
import os
import signal
import sys
from collections.abc import Sequence
from typing import get_args, get_type_hints

from genrm_rank.flags import Option
from genrm_rank.server.app import FAULT_KINDS, SimServer, SimServerConfig

__all__ = [
    "SERVE_SIM_OPTIONS",
    "add_serve_sim_arguments",
    "build_arg_parser",
    "config_from_args",
    "exposure_warning",
    "main",
    "serve_sim_main",
]


def _options() -> dict[str | None, tuple[Option, ...]]:
    d, hints = SimServerConfig(), get_type_hints(SimServerConfig)

    def of(name: str, help: str = "", metavar: str | None = None) -> Option:
        """The option setting the config's field ``name``, typed and defaulted as the field."""
        default, choices = getattr(d, name), get_args(hints[name]) or None
        kind = None if isinstance(default, str) else type(default)
        return Option("--" + name.replace("_", "-"), help, kind, default, metavar, choices=choices)

    return {
        "network": (
            Option("--host", "interface to listen on", default="127.0.0.1"),
            Option("--port", "first port; 0 picks free ports", int, 8000),
            Option("--replicas", "servers to start on consecutive ports", int, 1),
            Option(
                "--api-key-env",
                "require 'Authorization: Bearer <key>', the key read from "
                "this environment variable",
                metavar="VAR",
            ),
        ),
        "server": (
            of("model", "served model name"),
            of("max_model_len"),
            of("capacity", "concurrent sequences"),
            of("latency"),
            of("latency_mean", "seconds; 0 = zero-latency mode"),
            of("latency_sigma"),
            of("prefix_cache_size"),
            of("prefix_hit_latency_factor"),
            of("seed", "latency/fault seed (replica i uses seed + i)"),
        ),
        "simulated judge": tuple(
            map(
                of,
                "answer_format reasoning_style noise noise_scale position_bias judge_seed".split(),
            )
        ),
        "fault injection": (
            *(of(f"fault_rate_{kind}", metavar="P") for kind in d.fault_rates()),
            of("unreadable_rate", metavar="P"),
            of("truncated_rate", metavar="P"),
            of("retry_after", "seconds in Retry-After of 429/503"),
            of("hang_seconds"),
            Option(
                "--fault-sequence",
                f"faults for the first requests, in order; each of {', '.join(FAULT_KINDS)}",
                default="",
                metavar="K1,K2,...",
            ),
        ),
    }


SERVE_SIM_OPTIONS = _options()
"""The ``serve-sim`` options by group, for ``genrm-rank serve-sim`` and ``python -m``."""


def add_serve_sim_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``serve-sim`` options to ``parser``; returns it."""
    for title, options in SERVE_SIM_OPTIONS.items():
        group = parser.add_argument_group(title)
        for option in options:
            option.add_to(group)
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
    api_key = os.environ.get(args.api_key_env) if args.api_key_env else None
    if args.api_key_env and not api_key:
        raise ValueError(
            f"Argument '--api-key-env' names {args.api_key_env!r}, which is unset or empty."
        )
    sequence = tuple(k.strip() for k in args.fault_sequence.split(",") if k.strip())
    fields = {f.name for f in dataclasses.fields(SimServerConfig)}
    given = {o.dest for group in SERVE_SIM_OPTIONS.values() for o in group} & fields
    values = {name: getattr(args, name) for name in given - {"fault_sequence"}}
    return SimServerConfig(**values, fault_sequence=sequence, api_key=api_key)


def exposure_warning(host: str, api_key: str | None) -> str | None:
    """A warning for servers reachable beyond this machine without an API key, else ``None``."""
    if api_key is not None or host == "localhost":
        return None
    with contextlib.suppress(ValueError):  # a host name may resolve to any interface
        if ipaddress.ip_address(host.strip("[]")).is_loopback:
            return None
    return (
        f"serve-sim: warning: listening on {host} with no API key: anyone who can reach this "
        "port can use the server; pass --api-key-env VAR, or --host 127.0.0.1"
    )


async def _serve(config: SimServerConfig, host: str, port: int, replicas: int) -> None:
    servers = [
        SimServer(
            dataclasses.replace(config, seed=config.seed + i),
            host=host,
            port=0 if port == 0 else port + i,
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

    ``args``: already parsed by a parser that :func:`add_serve_sim_arguments` extended.
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


main = serve_sim_main
"""Entry point of ``python -m genrm_rank.server``."""
