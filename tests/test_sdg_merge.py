"""Tests of genrm_rank.sdg.merge (``merge_shards``) and the ``genrm-rank merge`` command.

The central property: ``--shard i/n`` runs merged back give the single run's files, byte for
byte, for every output kind (rank, select with a rejected file, pairs with groups of lines),
errors file included. The judge is the deterministic ``--judge simulated``.
"""

from __future__ import annotations

import fcntl
import gzip
import json
import os
from pathlib import Path

import pytest

from genrm_rank.cli import main
from genrm_rank.sdg import merge_shards
from genrm_rank.sdg.output import RunCounters


def _write_input(path: Path, n: int = 23) -> None:
    lines = []
    for i in range(n):
        if i == 4:
            lines.append("")  # blank: not a row
        elif i == 7:
            lines.append('{"id": "bad", "prompt": ')  # malformed JSON: an errors row
        elif i == 11:
            lines.append(json.dumps({"id": f"r{i}", "prompt": "q"}))  # no candidates
        else:
            k = 2 + i % 3
            texts = [f"answer {i}.{j} " + "detail " * ((i * 7 + j * 3) % 5) for j in range(k)]
            row = {"id": f"r{i}", "prompt": f"Question {i}?", "candidates": texts}
            lines.append(json.dumps(row))
    path.write_text("\n".join(lines) + "\n")


COMMANDS = {
    "rank": ["rank"],
    "select": ["select", "--min-score", "3.6", "--rejected", "{out}.rejected.jsonl"],
    "pairs": ["pairs", "--all-pairs", "--min-margin", "0.5"],
}


def _run(tmp: Path, command: str, out: str, *extra: str) -> int:
    args = [a.replace("{out}", str(tmp / out)) for a in COMMANDS[command]]
    return main(
        [
            *args[:1],
            str(tmp / "in.jsonl"),
            "-o",
            str(tmp / f"{out}.jsonl"),
            *args[1:],
            "--judge",
            "simulated",
            "--seed",
            "5",
            "--quiet",
            *extra,
        ]
    )


def _run_shard(tmp: Path, command: str, i: int, n: int) -> int:
    """Run shard ``i`` of ``n``; its exit status is 1 exactly when it wrote failed rows (the
    input's two bad rows fall in some shards), else 0. Returns its failed rows."""
    status = _run(tmp, command, f"shard{i}", "--shard", f"{i}/{n}")
    errors = tmp / f"shard{i}.errors.jsonl"
    failed = len(errors.read_text().splitlines()) if errors.exists() else 0
    assert status == (1 if failed else 0), (status, failed)
    return failed


def _files(tmp: Path, stem: str) -> dict[str, bytes]:
    return {
        suffix: (tmp / f"{stem}{suffix}").read_bytes()
        for suffix in (".jsonl", ".errors.jsonl", ".rejected.jsonl")
        if (tmp / f"{stem}{suffix}").exists()
    }


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("n", [1, 3])
def test_sharded_then_merged_equals_the_single_run_byte_for_byte(
    tmp_path: Path, command: str, n: int
) -> None:
    _write_input(tmp_path / "in.jsonl")
    assert _run(tmp_path, command, "single") == 1  # the two bad rows fail
    assert sum(_run_shard(tmp_path, command, i, n) for i in range(n)) == 2
    shards = [str(tmp_path / f"shard{i}.jsonl") for i in range(n)]
    merged = str(tmp_path / "merged.jsonl")
    assert main(["merge", str(tmp_path / "in.jsonl"), *shards, "-o", merged, "-q"]) == 0
    single, together = _files(tmp_path, "single"), _files(tmp_path, "merged")
    assert set(together) == set(single)
    assert together == single
    assert len(single[".errors.jsonl"].splitlines()) == 2
    if command != "rank":
        assert single[".rejected.jsonl"]  # the thresholds did reject rows
    if command == "pairs":  # groups of several pair lines per row were kept whole
        ids = [json.loads(line)["id"] for line in single[".jsonl"].splitlines()]
        assert len(ids) > len(set(ids))


def _shards(tmp_path: Path, n: int = 3) -> list[dict[str, Path]]:
    _write_input(tmp_path / "in.jsonl")
    assert sum(_run_shard(tmp_path, "rank", i, n) for i in range(n)) == 2
    return [
        {"out": tmp_path / f"shard{i}.jsonl", "errors": tmp_path / f"shard{i}.errors.jsonl"}
        for i in range(n)
    ]


def _out(tmp_path: Path) -> dict[str, Path]:
    return {"out": tmp_path / "m.jsonl", "errors": tmp_path / "m.errors.jsonl"}


def test_counts(tmp_path: Path) -> None:
    counts = merge_shards(tmp_path / "in.jsonl", _shards(tmp_path), _out(tmp_path))
    assert counts == RunCounters(lines=23, ok=20, pair_lines=20, failed=2, rejected=0, blank=1)


def test_shards_of_a_compressed_input_merge_as_its_plain_lines(tmp_path: Path) -> None:
    """The merge reads its input as the shard runs did (open_input), gzip included."""
    shards = _shards(tmp_path)
    plain = tmp_path / "in.jsonl"
    packed = tmp_path / "in.jsonl.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    counts = merge_shards(packed, shards, _out(tmp_path))
    assert counts == RunCounters(lines=23, ok=20, pair_lines=20, failed=2, rejected=0, blank=1)
    shard_rows = b"".join(sorted(s["out"].read_bytes() for s in shards))
    assert sorted((tmp_path / "m.jsonl").read_bytes().splitlines()) == sorted(
        shard_rows.splitlines()
    )


def test_an_incomplete_shard_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    shards = _shards(tmp_path)
    lines = shards[1]["out"].read_bytes().splitlines(keepends=True)
    shards[1]["out"].write_bytes(b"".join(lines[:-1]))
    with pytest.raises(ValueError, match=r"shard 1 has no result for input line 23 .*incomplete"):
        merge_shards(tmp_path / "in.jsonl", shards, _out(tmp_path))
    assert not any(tmp_path.glob("m.*"))


def test_a_torn_shard_is_refused(tmp_path: Path) -> None:
    shards = _shards(tmp_path)
    data = shards[2]["out"].read_bytes()
    shards[2]["out"].write_bytes(data[:-10])
    with pytest.raises(ValueError, match=r"shard 2 .* torn line"):
        merge_shards(tmp_path / "in.jsonl", shards, _out(tmp_path))


def test_another_shard_count_is_refused(tmp_path: Path) -> None:
    shards = _shards(tmp_path)
    with pytest.raises(ValueError, match="shard 0 has no result for input line 3 "):
        merge_shards(tmp_path / "in.jsonl", shards[:2], _out(tmp_path))


def test_an_id_in_two_shards_is_refused(tmp_path: Path) -> None:
    rows = [{"id": "same" if i in (0, 1) else f"r{i}", "prompt": "q", "candidates": ["a", "b"]}
            for i in range(4)]  # fmt: skip
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for i in range(2):
        assert _run(tmp_path, "rank", f"s{i}", "--shard", f"{i}/2") == 0
    shards = [{"out": tmp_path / f"s{i}.jsonl"} for i in range(2)]
    with pytest.raises(ValueError, match="lines 1 and 2, in two shards"):
        merge_shards(tmp_path / "in.jsonl", shards, _out(tmp_path))
    assert _run(tmp_path, "rank", "whole") == 1  # the single run rejects the duplicate


def test_existing_output_needs_overwrite(tmp_path: Path) -> None:
    shards = _shards(tmp_path)
    out = _out(tmp_path)
    out["out"].write_text('{"id": "someone else\'s row"}\n')
    with pytest.raises(ValueError, match="already exists"):
        merge_shards(tmp_path / "in.jsonl", shards, out)
    assert out["out"].read_text() == '{"id": "someone else\'s row"}\n'
    assert sorted(p.name for p in tmp_path.glob("m.*")) == ["m.jsonl"]  # no temporary left
    merge_shards(tmp_path / "in.jsonl", shards, out, overwrite=True)


def _merged(tmp_path: Path) -> dict[str, bytes]:
    return {name: path.read_bytes() for name, path in _out(tmp_path).items()}


def test_a_merge_killed_between_its_renames_is_finished_by_a_rerun(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shards = _shards(tmp_path)
    merge_shards(tmp_path / "in.jsonl", shards, _out(tmp_path))
    expected = _merged(tmp_path)
    for path in _out(tmp_path).values():
        path.unlink()
    real_replace = os.replace
    renames: list[str] = []

    class Killed(BaseException):
        """A kill between two renames of the merge."""

    def replace_once(src: object, dst: object) -> None:
        if renames:
            raise Killed  # the process dies after its first rename
        renames.append(str(dst))
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", replace_once)
    with pytest.raises(Killed):
        merge_shards(tmp_path / "in.jsonl", shards, _out(tmp_path))
    monkeypatch.setattr(os, "replace", real_replace)
    assert renames == [str(_out(tmp_path)["errors"])] and not _out(tmp_path)["out"].exists()
    merge_shards(tmp_path / "in.jsonl", shards, _out(tmp_path))  # the same command again
    assert _merged(tmp_path) == expected
    merge_shards(tmp_path / "in.jsonl", shards, _out(tmp_path))  # and once more: no change
    assert _merged(tmp_path) == expected
    assert sorted(p.name for p in tmp_path.glob("m.*")) == ["m.errors.jsonl", "m.jsonl"]


def test_a_second_merge_to_the_same_output_is_refused_while_one_runs(tmp_path: Path) -> None:
    shards = _shards(tmp_path)
    temp = tmp_path / "m.jsonl.merging"
    with open(temp, "wb") as held:  # what a running merge holds
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        with pytest.raises(ValueError, match="another merge is writing"):
            merge_shards(tmp_path / "in.jsonl", shards, _out(tmp_path))
        assert temp.exists() and not (tmp_path / "m.jsonl").exists()
    merge_shards(tmp_path / "in.jsonl", shards, _out(tmp_path))
    assert not temp.exists()


@pytest.mark.parametrize(
    ("shards", "output", "error", "fragment"),
    [
        ([], None, ValueError, "Argument 'shards' must be a non-empty sequence"),
        (["x.jsonl"], None, TypeError, r"Argument 'shards\[0\]' must be a mapping"),
        ([{"out": "missing.jsonl"}], None, ValueError, "no such file"),
        ([{"out": "in.jsonl", "log": "x"}], None, ValueError, "unknown keys"),
        (None, {"out": "m.jsonl"}, TypeError, "Argument 'output' must be a mapping"),
        (None, {"out": "in.jsonl", "errors": "e.jsonl"}, ValueError, "is also an input"),
    ],
)
def test_bad_arguments_name_the_argument(
    tmp_path: Path, shards: list[object] | None, output: dict[str, str] | None, error: type,
    fragment: str,
) -> None:  # fmt: skip
    _write_input(tmp_path / "in.jsonl")

    def local(value: object) -> object:
        if isinstance(value, dict):
            return {k: tmp_path / v for k, v in value.items()}
        return value

    given = [local(s) for s in shards] if shards is not None else [{"out": tmp_path / "in.jsonl"}]
    out = local(output) if output is not None else _out(tmp_path)
    with pytest.raises(error, match=fragment):
        merge_shards(tmp_path / "in.jsonl", given, out)  # type: ignore[arg-type]


def test_cli_reports_a_refused_merge_as_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shards = _shards(tmp_path)
    argv = ["merge", str(tmp_path / "in.jsonl"), *(str(s["out"]) for s in shards[:2])]
    assert main([*argv, "-o", str(tmp_path / "m.jsonl")]) == 2
    assert "genrm-rank merge: error: argument SHARD.jsonl: shard 0" in capsys.readouterr().err


def test_a_shard_run_with_other_settings_is_refused(tmp_path: Path) -> None:
    """Shard 1 ran with another seed: its rows merged silently into a file that is no single
    run's output. Its run file says so, and a shard without one (the library's) is not held."""
    shards = _shards(tmp_path)
    shards[1]["out"].with_name("shard1.run.json").unlink()
    merge_shards(tmp_path / "in.jsonl", shards, _out(tmp_path))  # no run file: not compared
    assert _run(tmp_path, "rank", "shard1", "--shard", "1/3", "--seed", "6", "--overwrite") in (
        0,
        1,
    )
    with pytest.raises(
        ValueError,
        match=r"shard 1 \(.*shard1.jsonl\) was run with other settings "
        r"than shard 0 \(spec.seed: 5 -> 6\)",
    ):
        merge_shards(tmp_path / "in.jsonl", shards, _out(tmp_path), overwrite=True)


def test_an_input_named_as_the_merges_temporary_file_is_kept(tmp_path: Path) -> None:
    """``m.jsonl.merging`` is where the merge writes ``m.jsonl``: a shard of that name was
    emptied, then removed."""
    shards = _shards(tmp_path)
    shards[2]["out"] = shards[2]["out"].rename(tmp_path / "m.jsonl.merging")
    before = shards[2]["out"].read_bytes()
    with pytest.raises(ValueError, match=r"its temporary file .*m.jsonl.merging is an input"):
        merge_shards(tmp_path / "in.jsonl", shards, _out(tmp_path))
    assert shards[2]["out"].read_bytes() == before
