"""Shared by the examples: use ``--endpoint URL`` if given, else start serve-sim in-process."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator

from genrm_rank.server.app import SimServerConfig, ThreadedSimServers


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument(
        "--endpoint", default=None, help="GenRM server base URL (default: start serve-sim here)"
    )
    p.add_argument("--model", default="sim-genrm", help="served model name (default: %(default)s)")
    return p


@contextlib.contextmanager
def endpoint(url: str | None) -> Iterator[str]:
    """Yield ``url``, or the URL of a simulated GenRM server started for the duration."""
    if url:
        yield url
        return
    with ThreadedSimServers([SimServerConfig(latency_mean=0.01)]) as servers:
        print(
            f"(no --endpoint: started serve-sim at {servers.urls[0]}; its simulated judge "
            "prefers texts pseudo-randomly)"
        )
        yield servers.urls[0]
