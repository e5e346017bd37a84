"""Files, paths and processes of a run (``genrm_rank.cli.run``; issue 18).

What a run may touch: only the files the user named (and their documented sidecars), and the
descriptors the process was given. Runs are in this process (``main``) where a subprocess adds
nothing; the ones that need a process of their own run ``tests/guarded_cli.py``, which stops
the process before it changes any path outside the test's folder (tests run as root).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from genrm_rank.cli import main
from genrm_rank.cli.options import EXIT_BROKEN_PIPE, EXIT_NO_SPACE
from genrm_rank.sdg.output import JsonlSink

GUARDED = [sys.executable, str(Path(__file__).parent / "guarded_cli.py")]
SIMULATED = ["--judge", "simulated", "--seed", "3", "--quiet"]


def write_rows(path: Path, n: int, *, first: int = 0, bad: tuple[int, ...] = ()) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        for i in range(first, first + n):
            if i in bad:
                handle.write(f'{{"id": "bad-{i}", "prompt": "Q", "candidates": []}}\n')
                continue
            texts = [f"Answer {j} to question {i}. " + "more " * (j + i % 3) for j in range(3)]
            handle.write(json.dumps({"id": f"r{i}", "prompt": f"Q{i}?", "candidates": texts}))
            handle.write("\n")


def run(*args: object) -> int:
    try:
        return main([str(a) for a in args])
    except SystemExit as exc:  # argparse
        return int(exc.code or 0)


# -- -o -: rows to standard output, errors to the stderr descriptor ------------------------


def test_dash_errors_go_to_the_stderr_descriptor_and_no_device_is_touched(tmp_path: Path) -> None:
    write_rows(tmp_path / "in.jsonl", 3, bad=(1,))
    stderr_file = tmp_path / "stderr.log"
    stderr_file.write_text("an earlier line\n")  # stderr goes to a non-empty file
    before = os.lstat("/dev/stderr")
    with open(stderr_file, "a") as err:
        r = subprocess.run(
            [*GUARDED, str(tmp_path), "rank", str(tmp_path / "in.jsonl"), "-o", "-", *SIMULATED],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
    logged = stderr_file.read_text()
    assert r.returncode == 1, logged  # one bad row (97: the guard stopped a change)
    assert [json.loads(line)["id"] for line in r.stdout.splitlines()] == ["r0", "r2"]
    lines = logged.splitlines()
    assert lines[0] == "an earlier line"
    assert [json.loads(line)["id"] for line in lines[1:] if line.startswith("{")] == ["bad-1"]
    after = os.lstat("/dev/stderr")
    assert stat.S_ISLNK(after.st_mode) or stat.S_ISCHR(after.st_mode)
    assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)


@pytest.mark.parametrize("mode", [[], ["--overwrite"]])
def test_errors_named_as_dev_stderr_are_appended_to_never_replaced(
    tmp_path: Path, mode: list[str]
) -> None:
    write_rows(tmp_path / "in.jsonl", 3, bad=(1,))
    stderr_file = tmp_path / "stderr.log"
    stderr_file.write_text("an earlier line\n")
    before = os.lstat("/dev/stderr")
    argv = ["rank", str(tmp_path / "in.jsonl"), "-o", str(tmp_path / "out.jsonl")]
    with open(stderr_file, "a") as err:
        r = subprocess.run(
            [*GUARDED, str(tmp_path), *argv, "--errors", "/dev/stderr", *SIMULATED, *mode],
            stderr=err,
            timeout=120,
            cwd=tmp_path,
        )
    lines = stderr_file.read_text().splitlines()
    assert r.returncode == 1, lines  # one bad row (97: the guard stopped a change)
    assert lines[0] == "an earlier line"
    assert [json.loads(line)["id"] for line in lines[1:] if line.startswith("{")] == ["bad-1"]
    after = os.lstat("/dev/stderr")
    assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)


def test_dash_names_no_path_for_the_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_rows(tmp_path / "in.jsonl", 2)
    given: list[dict[str, object]] = []

    class Stop(Exception):
        """Ends the run once the output paths are seen."""

    def record(paths: dict[str, object], **_: object) -> None:
        given.append(dict(paths))
        raise Stop  # never let a run open what it was given here

    monkeypatch.setattr("genrm_rank.cli.run.prepare_output", record)
    with pytest.raises(Stop):
        run("rank", tmp_path / "in.jsonl", "-o", "-", *SIMULATED)
    assert given == [{"out": Path("-"), "errors": None, "rejected": None}]


def test_dash_keeps_an_existing_errors_file_without_overwrite(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """-o - with --errors FILE emptied an existing FILE unasked (a file output refuses it)."""
    write_rows(tmp_path / "in.jsonl", 2)
    errors = tmp_path / "kept.jsonl"
    errors.write_text('{"line": 9}\n')
    argv = ["rank", tmp_path / "in.jsonl", "-o", "-", "--errors", errors, *SIMULATED]
    assert run(*argv) == 2
    assert "--overwrite" in capfd.readouterr().err and errors.read_text() == '{"line": 9}\n'
    assert run(*argv, "--overwrite") == 0
    assert len(capfd.readouterr().out.splitlines()) == 2 and errors.read_text() == ""


def test_dash_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    # About 2 MB of rows, far past a pipe's buffer: the run is writing when the reader leaves.
    with open(tmp_path / "in.jsonl", "w") as handle:
        for i in range(400):
            texts = [f"{i}.{j} " + "long answer " * 400 for j in range(2)]
            handle.write(json.dumps({"id": i, "prompt": "Q?", "candidates": texts}) + "\n")
    proc = subprocess.Popen(
        [*GUARDED, str(tmp_path), "rank", str(tmp_path / "in.jsonl"), "-o", "-", *SIMULATED],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert json.loads(proc.stdout.readline())["id"] == 0  # what `head -1` reads
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == EXIT_BROKEN_PIPE, err
    assert "Traceback" not in err and "BrokenPipeError" not in err


# -- one writer per output ------------------------------------------------------------------


@pytest.mark.parametrize("mode", [[], ["--resume"], ["--overwrite"]])
def test_a_second_run_on_an_output_in_use_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mode: list[str]
) -> None:
    write_rows(tmp_path / "in.jsonl", 4)
    out = tmp_path / "out.jsonl"
    out.write_text('{"id": "r0"}\n' if mode else "")
    with open(out, "a") as held:  # what a running run holds
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        assert run("rank", tmp_path / "in.jsonl", "-o", out, *SIMULATED, *mode) == 2
        assert "being written by another run" in capsys.readouterr().err
        assert out.read_text() == ('{"id": "r0"}\n' if mode else "")
    assert run("rank", tmp_path / "in.jsonl", "-o", out, *SIMULATED, "--overwrite") == 0


def test_a_refused_resume_releases_the_output(tmp_path: Path) -> None:
    write_rows(tmp_path / "in.jsonl", 4)
    out = tmp_path / "out.jsonl"
    assert run("rank", tmp_path / "in.jsonl", "-o", out, *SIMULATED) == 0
    assert run("rank", tmp_path / "in.jsonl", "-o", out, *SIMULATED, "--seed", "4", "--resume") == 2
    with open(out, "a") as handle:  # no descriptor of the refused run holds the lock
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_overwrite_empties_a_linked_output_in_place_and_keeps_the_link(tmp_path: Path) -> None:
    write_rows(tmp_path / "in.jsonl", 3)
    target = tmp_path / "kept" / "rows.jsonl"
    target.parent.mkdir()
    target.write_text('{"id": "old"}\n')
    (tmp_path / "out.jsonl").symlink_to(target)
    assert (
        run("rank", tmp_path / "in.jsonl", "-o", tmp_path / "out.jsonl", *SIMULATED, "--overwrite")
        == 0
    )
    assert (tmp_path / "out.jsonl").is_symlink()  # not unlinked and replaced by a new file
    assert [json.loads(line)["id"] for line in target.read_text().splitlines()] == [
        "r0",
        "r1",
        "r2",
    ]


def test_overwrite_of_an_output_hard_linked_to_the_input_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two names of one file: the run emptied its own input and exited 0 with no row."""
    write_rows(tmp_path / "in.jsonl", 3)
    before = (tmp_path / "in.jsonl").read_bytes()
    os.link(tmp_path / "in.jsonl", tmp_path / "out.jsonl")
    assert (
        run("rank", tmp_path / "in.jsonl", "-o", tmp_path / "out.jsonl", *SIMULATED, "--overwrite")
        == 2
    )
    assert "is also the IN file" in capsys.readouterr().err
    assert (tmp_path / "in.jsonl").read_bytes() == before


def test_prepare_output_refuses_a_second_writer_until_the_first_closes(tmp_path: Path) -> None:
    from genrm_rank.sdg import prepare_output

    paths = {"out": tmp_path / "o.jsonl", "errors": tmp_path / "o.errors.jsonl"}
    first = prepare_output(paths)
    with pytest.raises(ValueError, match="being written by another run"):
        prepare_output(paths, resume=True)
    first.close()
    prepare_output(paths, resume=True).close()
    os.link(paths["out"], tmp_path / "linked.jsonl")  # one file, two names: written twice
    with pytest.raises(ValueError, match="names one file twice"):
        prepare_output({"out": paths["out"], "errors": tmp_path / "linked.jsonl"})


# -- resume from the same input only --------------------------------------------------------


def test_resume_from_another_input_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_rows(tmp_path / "a.jsonl", 3)
    write_rows(tmp_path / "b.jsonl", 3, first=10)
    out = tmp_path / "out.jsonl"
    assert run("rank", tmp_path / "a.jsonl", "-o", out, *SIMULATED) == 0
    before = out.read_bytes()
    assert run("rank", tmp_path / "b.jsonl", "-o", out, *SIMULATED, "--resume") == 2
    err = capsys.readouterr().err
    assert "written from another input" in err and str(tmp_path / "a.jsonl") in err
    assert out.read_bytes() == before
    # The same bytes under another name are the same input; rows appended to it are new rows.
    os.replace(tmp_path / "a.jsonl", tmp_path / "moved.jsonl")
    write_rows(tmp_path / "moved.jsonl", 2, first=3)
    assert run("rank", tmp_path / "moved.jsonl", "-o", out, *SIMULATED, "--resume") == 0
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == [
        f"r{i}" for i in range(5)
    ]


def test_resume_of_a_run_file_without_inputs_still_works(tmp_path: Path) -> None:
    write_rows(tmp_path / "in.jsonl", 3)
    out = tmp_path / "out.jsonl"
    assert run("rank", tmp_path / "in.jsonl", "-o", out, *SIMULATED) == 0
    run_file = tmp_path / "out.run.json"
    settings = json.loads(run_file.read_text())
    del settings["input"]  # written before inputs were recorded
    run_file.write_text(json.dumps(settings))
    assert run("rank", tmp_path / "in.jsonl", "-o", out, *SIMULATED, "--resume") == 0


# -- every path a run writes differs from every other one and from every input ---------------


@pytest.mark.parametrize(
    ("extra", "flag", "victim"),
    [
        (["--summary-json", "in.jsonl"], "--summary-json", "in.jsonl"),
        (["--summary-json", "out.jsonl", "--overwrite"], "--summary-json", "out.jsonl"),
        (["--cache", "out.jsonl", "--overwrite"], "--cache", "out.jsonl"),
        (["--summary-json", "v.db"], "--summary-json", "v.db"),
        (["--errors", "in.jsonl"], "--errors", "in.jsonl"),
        (["--summary-json", "out.run.json", "--overwrite"], "--summary-json", "out.run.json"),
        (["--principle-file", "out.jsonl", "--overwrite"], "--output", "out.jsonl"),
        (["--errors", "v.db"], "--cache", "v.db"),
    ],
)
def test_paths_that_collide_are_refused_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], flag: str, victim: str
) -> None:
    write_rows(tmp_path / "in.jsonl", 3)
    for name in ("out.jsonl", "out.run.json", "v.db"):
        (tmp_path / name).write_text(f"precious {name}\n")
    files = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    argv = ["rank", "in.jsonl", "-o", "out.jsonl", *SIMULATED, "--cache", "v.db", *extra]
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        assert run(*argv) == 2
    finally:
        os.chdir(cwd)
    err = capsys.readouterr().err
    assert f"argument {flag}: {victim} is also" in err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == files


def test_dry_run_summary_is_not_written_over_the_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_rows(tmp_path / "in.jsonl", 3)
    before = (tmp_path / "in.jsonl").read_bytes()
    argv = ["rank", tmp_path / "in.jsonl", "-o", tmp_path / "out.jsonl", *SIMULATED, "--dry-run"]
    assert run(*argv, "--summary-json", tmp_path / "in.jsonl") == 2
    assert "argument --summary-json" in capsys.readouterr().err
    assert (tmp_path / "in.jsonl").read_bytes() == before


def test_report_keeps_an_existing_file_that_is_not_a_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_rows(tmp_path / "in.jsonl", 3)
    out = tmp_path / "out.jsonl"
    assert run("rank", tmp_path / "in.jsonl", "-o", out, *SIMULATED) == 0
    notes = tmp_path / "notes.html"
    notes.write_text("my notes\n")
    assert run("report", out, "-o", notes) == 2
    assert "--overwrite" in capsys.readouterr().err and notes.read_text() == "my notes\n"
    assert run("report", out, "-o", tmp_path / "out.errors.jsonl") == 2  # a file it reads
    assert run("report", out) == 0
    assert run("report", out) == 0  # its own report is rewritten
    assert run("report", out, "-o", notes, "--overwrite") == 0
    assert "genrm-rank report" in notes.read_text()
    before = out.read_bytes()
    os.link(out, tmp_path / "view.html")  # the output under another name: never written over
    assert run("report", out, "-o", tmp_path / "view.html", "--overwrite") == 2
    assert "must not be a file the report reads ('path')" in capsys.readouterr().err
    assert out.read_bytes() == before


# -- inputs that are not regular files -------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda tmp: Path("/dev/null"), "is a character device, not a regular file"),
        (lambda tmp: Path("/dev/zero"), "is a character device, not a regular file"),
        (lambda tmp: (os.mkfifo(tmp / "fifo"), tmp / "fifo")[1], "is a FIFO (named pipe)"),
        (lambda tmp: tmp / "missing.jsonl", "is no such file"),
    ],
)
def test_an_input_that_is_not_a_regular_file_is_named_for_what_it_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: object, words: str
) -> None:
    source = make(tmp_path)  # type: ignore[operator]
    assert run("rank", source, "-o", tmp_path / "out.jsonl", *SIMULATED) == 2
    assert f"argument IN: {source} {words}" in capsys.readouterr().err


# -- a full disk ----------------------------------------------------------------------------


def test_a_full_disk_exits_resumable_and_resume_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_rows(tmp_path / "in.jsonl", 12, bad=(5,))
    argv = ["rank", tmp_path / "in.jsonl", *SIMULATED, "--concurrency", "2"]
    assert run(*argv, "-o", tmp_path / "ref.jsonl") == 1
    out = tmp_path / "out.jsonl"
    real_write = JsonlSink.write
    writes = {"n": 0}

    def fill_up(self: JsonlSink, data: bytes, rows: int = 1) -> None:
        writes["n"] += 1
        if writes["n"] < 7:
            real_write(self, data, rows)
            return
        real_write(self, data[: len(data) // 2], rows)  # the disk fills mid-row
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))

    monkeypatch.setattr(JsonlSink, "write", fill_up)
    assert run(*argv, "-o", out) == EXIT_NO_SPACE
    err = capsys.readouterr().err
    assert "no space left on the device" in err and "--resume" in err and "Traceback" not in err
    monkeypatch.setattr(JsonlSink, "write", real_write)  # space freed
    assert run(*argv, "-o", out, "--resume") == 0  # the bad row was written before the disk filled
    assert out.read_bytes() == (tmp_path / "ref.jsonl").read_bytes()
    errors = (tmp_path / "out.errors.jsonl").read_bytes()
    assert errors == (tmp_path / "ref.errors.jsonl").read_bytes()


def test_a_full_disk_before_the_first_row_exits_resumable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The disk is full when the run file is written: exit 5 (it was a traceback, exit 1,
    which says some rows failed), and the rerun with --resume completes."""
    from genrm_rank.sdg import runfiles

    write_rows(tmp_path / "in.jsonl", 3)
    argv = ["rank", tmp_path / "in.jsonl", *SIMULATED, "-o", tmp_path / "out.jsonl"]
    real = runfiles.write_atomically

    def full(path: Path, data: bytes, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(runfiles, "write_atomically", full)
    assert run(*argv) == EXIT_NO_SPACE
    err = capsys.readouterr().err
    assert "no space left on the device (" in err and "out.run.json" in err
    monkeypatch.setattr(runfiles, "write_atomically", real)
    assert run(*argv, "--resume") == 0
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 3


def test_a_full_cache_exits_resumable_and_resume_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """SQLite's own "database or disk is full" (the cache file capped with max_page_count): the
    run stops as for a full output, not with a traceback or with every later row failed."""
    from genrm_rank.cache import VerdictCache

    write_rows(tmp_path / "in.jsonl", 40)
    argv = ["rank", tmp_path / "in.jsonl", *SIMULATED, "--concurrency", "2"]
    assert run(*argv, "-o", tmp_path / "ref.jsonl") == 0
    out, cache = tmp_path / "out.jsonl", tmp_path / "verdicts.db"
    real_open = VerdictCache._open

    def capped(self: VerdictCache, conn: Any, timeout: float) -> str:
        mode = real_open(self, conn, timeout)
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages + 8}")
        return mode

    monkeypatch.setattr(VerdictCache, "_open", capped)
    assert run(*argv, "-o", out, "--cache", cache) == EXIT_NO_SPACE
    err = capsys.readouterr().err
    assert "no space left" in err and str(cache) in err and "Traceback" not in err
    done = len(out.read_text().splitlines())
    assert 0 < done < 40 and not (tmp_path / "out.errors.jsonl").exists()
    monkeypatch.setattr(VerdictCache, "_open", real_open)  # space freed
    assert run(*argv, "-o", out, "--cache", cache, "--resume") == 0
    # Verdicts stored before the stop are served free on resume: the rows equal the
    # uninterrupted run's once what was paid (calls, cached, tokens) is set aside.
    from test_reliability_trials import read_rows, strip_costs

    assert [strip_costs(r) for r in read_rows(out)] == [
        strip_costs(r) for r in read_rows(tmp_path / "ref.jsonl")
    ]


# -- the demo -------------------------------------------------------------------------------


def test_demo_leaves_nothing_in_the_temporary_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert run("demo", "--quiet", "--latency", "0") == 0
    assert list(tmp_path.iterdir()) == []


# -- kills at known rows --------------------------------------------------------------------


@pytest.mark.slow
def test_sigkill_at_known_rows_then_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    write_rows(tmp_path / "in.jsonl", 120, bad=(7, 50, 51, 99))
    common = ["--judge", "simulated", "--strategy", "knockout", "--concurrency", "8", "--quiet"]
    assert run("select", tmp_path / "in.jsonl", "-o", tmp_path / "ref.jsonl", *common) == 1
    out = tmp_path / "out.jsonl"
    argv = [*GUARDED, str(tmp_path)]
    resume = ["select", str(tmp_path / "in.jsonl"), "-o", str(out), "--resume", *common]
    # Each run is killed right after its k-th row of output (torn: in the middle of it).
    for k, torn in ((1, False), (17, True), (30, False), (2, True)):
        kill = ["--after-rows", str(k), *(["--torn"] if torn else [])]
        r = subprocess.run([*argv, *kill, *resume], capture_output=True, text=True, timeout=120)
        assert r.returncode == -signal.SIGKILL, r.stderr
    assert len(out.read_text().splitlines()) < 116  # the kills left rows to do
    assert run(*resume, "--summary-json", tmp_path / "s.json") == 1
    assert out.read_bytes() == (tmp_path / "ref.jsonl").read_bytes()
    errors = (tmp_path / "out.errors.jsonl").read_bytes()
    assert errors == (tmp_path / "ref.errors.jsonl").read_bytes()
    assert json.loads((tmp_path / "s.json").read_text())["rows_skipped"] > 0


@pytest.mark.parametrize(("missing", "name"), [("input", "IN.jsonl"), ("shard", "SHARD.jsonl")])
def test_merge_names_the_file_that_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], missing: str, name: str
) -> None:
    """The CLI checks the input; a missing shard is merge_shards' to refuse, named by its flag."""
    present, absent = tmp_path / "present.jsonl", tmp_path / "absent.jsonl"
    present.write_text('{"id": 1}\n')
    paths = (absent, present) if missing == "input" else (present, absent)
    assert run("merge", *paths, "-o", tmp_path / "merged.jsonl") == 2
    assert f"argument {name}: no such file: {absent}" in capsys.readouterr().err
