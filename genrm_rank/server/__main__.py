"""``python -m genrm_rank.server``: run simulated vLLM GenRM servers (see :mod:`.cli`)."""

from genrm_rank.server.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
