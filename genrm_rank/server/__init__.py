"""``serve-sim``: a simulated vLLM server with a GenRM loaded, for tests and benchmarks.

- :mod:`~genrm_rank.server.app`: :class:`SimServer`, :class:`SimServerConfig`,
  :class:`ThreadedSimServers`.
- :mod:`~genrm_rank.server.cli`: the command line (``python -m genrm_rank.server``, wired into
  ``genrm-rank serve-sim``).
"""

from genrm_rank.server.app import (
    FAULT_KINDS,
    FaultKind,
    LatencyDistribution,
    SimServer,
    SimServerConfig,
    SimServerStats,
    ThreadedSimServers,
)
from genrm_rank.server.cli import (
    add_serve_sim_arguments,
    build_arg_parser,
    config_from_args,
    serve_sim_main,
)

__all__ = [
    "FAULT_KINDS",
    "FaultKind",
    "LatencyDistribution",
    "SimServer",
    "SimServerConfig",
    "SimServerStats",
    "ThreadedSimServers",
    "add_serve_sim_arguments",
    "build_arg_parser",
    "config_from_args",
    "serve_sim_main",
]
