"""SDG filtering: rank the rows of synthetic-data files, keep the best or chosen/rejected pairs.

What a pipeline author needs, and the ``genrm-rank`` CLI's ``rank``, ``select`` and ``pairs``
commands are a thin shell over: how rows are read (:mod:`~genrm_rank.sdg.rows`), what is
written (:mod:`~genrm_rank.sdg.filters`), the run (:mod:`~genrm_rank.sdg.pipeline`) and
:func:`merge_shards`. The rest stays importable from its module.

Example (the CLI's ``genrm-rank select IN -o OUT --min-score 3.5``, in Python)::

    from genrm_rank import RankSpec
    from genrm_rank.sdg import SelectThresholds, prepare_output, process_file, select_rows

    files = prepare_output({"out": "best.jsonl", "errors": "best.errors.jsonl"}, resume=True)
    outcome = await process_file(
        "sdg.jsonl", judge=judge, spec=RankSpec(strategy="knockout"),
        formatter=select_rows(SelectThresholds(min_score=3.5)), sinks=files.sinks,
        skip_keys=files.skip_keys, skip_lines=files.skip_lines,
    )
"""

from genrm_rank.sdg.filters import (
    SelectThresholds,
    pair_rows,
    preference_pairs,
    rank_rows,
    select_rows,
)
from genrm_rank.sdg.merge import merge_shards
from genrm_rank.sdg.pipeline import RunOutcome, prepare_output, process_file
from genrm_rank.sdg.rows import Row, RowError, RowReader, RowSpec

__all__ = [
    "Row",
    "RowError",
    "RowReader",
    "RowSpec",
    "RunOutcome",
    "SelectThresholds",
    "merge_shards",
    "pair_rows",
    "preference_pairs",
    "prepare_output",
    "process_file",
    "rank_rows",
    "select_rows",
]
