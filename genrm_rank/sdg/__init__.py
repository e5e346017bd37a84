"""SDG filtering: rank the rows of synthetic-data files, keep the best or chosen/rejected pairs.

The Python door for synthetic-data-generation (SDG) pipelines, and what the ``genrm-rank`` CLI's
``rank``, ``select`` and ``pairs`` commands are a thin shell over. Built for files of hundreds of
thousands of rows, ranked over hours on shared clusters where jobs get killed:

- :mod:`~genrm_rank.sdg.rows`: rows read and validated (a bad row is an error row naming the
  line and the reason, never a stop);
- :mod:`~genrm_rank.sdg.filters`: selection thresholds, preference-pair policies, and the
  output row formats;
- :mod:`~genrm_rank.sdg.output`: durable JSONL written in input order, a torn end recovered on
  resume;
- :mod:`~genrm_rank.sdg.pipeline`: :func:`process_file`, which feeds rows to the one runner
  with a :class:`~genrm_rank.spec.RankSpec` and writes what they produced.
- :mod:`~genrm_rank.sdg.merge`: :func:`merge_shards`, the files of ``shard=(i, n)`` runs back
  into one run's files, in input order.

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
    PAIR_FORMATS,
    PAIR_POLICIES,
    RANK_FORMATS,
    SELECT_FORMATS,
    Formatter,
    PairFormat,
    PairPolicy,
    PreferencePair,
    RankFormat,
    SelectDecision,
    SelectFormat,
    SelectThresholds,
    decide_selection,
    finite_or_none,
    margin_of,
    pair_rows,
    preference_pairs,
    rank_rows,
    runner_up_margin,
    select_rows,
)
from genrm_rank.sdg.merge import MergeCounts, merge_shards
from genrm_rank.sdg.output import (
    STDOUT,
    Block,
    JsonlSink,
    Recovered,
    ReorderBuffer,
    Sink,
    StreamSink,
    drop_retried_errors,
    recover,
)
from genrm_rank.sdg.pipeline import (
    OutputFiles,
    RunCounters,
    RunOutcome,
    prepare_output,
    process_file,
)
from genrm_rank.sdg.rows import (
    DEFAULT_PROMPT_FIELDS,
    IdIndex,
    Row,
    RowError,
    RowReader,
    RowSpec,
    count_lines,
    id_key,
    iter_lines,
    parse_shard,
)

__all__ = [
    "DEFAULT_PROMPT_FIELDS",
    "PAIR_FORMATS",
    "PAIR_POLICIES",
    "RANK_FORMATS",
    "SELECT_FORMATS",
    "STDOUT",
    "Block",
    "Formatter",
    "IdIndex",
    "JsonlSink",
    "MergeCounts",
    "OutputFiles",
    "PairFormat",
    "PairPolicy",
    "PreferencePair",
    "RankFormat",
    "Recovered",
    "ReorderBuffer",
    "Row",
    "RowError",
    "RowReader",
    "RowSpec",
    "RunCounters",
    "RunOutcome",
    "SelectDecision",
    "SelectFormat",
    "SelectThresholds",
    "Sink",
    "StreamSink",
    "count_lines",
    "decide_selection",
    "drop_retried_errors",
    "finite_or_none",
    "id_key",
    "iter_lines",
    "margin_of",
    "merge_shards",
    "pair_rows",
    "parse_shard",
    "preference_pairs",
    "prepare_output",
    "process_file",
    "rank_rows",
    "recover",
    "runner_up_margin",
    "select_rows",
]
