"""``genrm-rank merge``: the files of ``--shard i/n`` runs back into one run's files.

A thin shell over :func:`genrm_rank.sdg.merge.merge_shards`; see ``docs/deployment.md`` for the
Slurm array-job recipe. It is restartable: a merge killed at any point is finished by running
the same command again, and a second merge to the same output is refused while one runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from genrm_rank.cli.options import EXIT_OK, PROG, UsageError
from genrm_rank.sdg.merge import merge_shards
from genrm_rank.sdg.output import sidecar_path


def add_merge_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``merge`` subcommand's arguments."""
    parser.add_argument("input", type=Path, metavar="IN.jsonl", help="the input every shard read")
    parser.add_argument(
        "shards",
        type=Path,
        nargs="+",
        metavar="SHARD.jsonl",
        help="each shard's output, shard 0 first (its errors and rejected files are found "
        "beside it: SHARD.errors.jsonl, SHARD.rejected.jsonl)",
    )
    parser.add_argument(
        "-o", "--output", type=Path, required=True, metavar="OUT.jsonl", help="merged output"
    )
    parser.add_argument(
        "--errors",
        type=Path,
        default=None,
        metavar="FILE",
        help="merged errors file (default: OUT.errors.jsonl)",
    )
    parser.add_argument(
        "--rejected",
        type=Path,
        default=None,
        metavar="FILE",
        help="merged rejected file (default: OUT.rejected.jsonl when a shard has one)",
    )
    parser.add_argument(
        "--id-field", metavar="NAME", default="id", help="row id field (default: %(default)s)"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace existing output files instead of refusing"
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no summary line")


def cmd_merge(args: argparse.Namespace) -> int:
    """Merge shard outputs; exit 0, or 2 with the reason when the shards do not merge."""
    if not args.input.is_file():
        raise UsageError(f"argument IN.jsonl: no such file: {args.input}")
    shards = []
    for path in args.shards:
        if not path.is_file():
            raise UsageError(f"argument SHARD.jsonl: no such file: {path}")
        shards.append(
            {
                "out": path,
                "errors": sidecar_path(path, "errors"),
                "rejected": sidecar_path(path, "rejected"),
            }
        )
    rejected = args.rejected
    if rejected is None and any(Path(s["rejected"]).exists() for s in shards):
        rejected = sidecar_path(args.output, "rejected")
    output = {
        "out": args.output,
        "errors": args.errors or sidecar_path(args.output, "errors"),
        "rejected": rejected,
    }
    counts = merge_shards(
        args.input, shards, output, id_field=args.id_field, overwrite=args.overwrite
    )
    if not args.quiet:
        print(
            f"{PROG} merge: {len(shards)} shards -> {args.output}: {counts.rows} rows "
            f"({counts.out_lines} lines), {counts.errors} errors, {counts.rejected} rejected, "
            f"{counts.blank} blank lines",
            file=sys.stderr,
        )
    return EXIT_OK
