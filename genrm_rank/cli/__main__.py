"""``python -m genrm_rank.cli``: the ``genrm-rank`` command line."""

from genrm_rank.cli import main

raise SystemExit(main())
