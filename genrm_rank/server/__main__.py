"""``python -m genrm_rank.server``: simulated vLLM GenRM servers (:mod:`~genrm_rank.server.cli`)."""

from genrm_rank.server.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
