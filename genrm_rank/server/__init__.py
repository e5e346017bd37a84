"""``serve-sim``: a simulated vLLM server with a GenRM loaded, for tests and benchmarks.

:mod:`~genrm_rank.server.app` holds the server (its ``__all__`` is exported here), and
:mod:`~genrm_rank.server.cli` its command line (``python -m genrm_rank.server``, ``genrm-rank
serve-sim``).
"""

from genrm_rank.server.app import *  # noqa: F403
from genrm_rank.server.app import __all__ as _APP
from genrm_rank.server.cli import (
    add_serve_sim_arguments,
    build_arg_parser,
    config_from_args,
    serve_sim_main,
)

__all__ = [
    *_APP,
    "add_serve_sim_arguments",
    "build_arg_parser",
    "config_from_args",
    "serve_sim_main",
]
__all__.sort(key=lambda n: (not n.isupper(), not n[0].isupper(), n))
