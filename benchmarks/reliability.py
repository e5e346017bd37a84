"""Figures for benchmarks/reliability.md: faults, crashes, hostile input, secrets, load held.

Runs the trials of ``tests/test_reliability_trials.py`` (loopback serve-sim only) at a chosen
size and prints one JSON object of figures::

    python benchmarks/reliability.py --rows 40 --kills 20 --out results/reliability.json

``--only files`` runs only the trials of files, paths and processes (issue 18): two writers on
one output, a swapped input on ``--resume``, colliding paths, a full disk, a merge killed
between its renames, ``-o -`` with stderr in a file. Their CLI processes run under
``tests/guarded_cli.py``, which stops a process before it changes any path outside the
trial's folder, and counts as a system file touched.
"""

from __future__ import annotations

import argparse
import errno
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import guarded_cli
import test_reliability_trials as trials

from genrm_rank.cli import main
from genrm_rank.sdg import RowError, RowReader
from genrm_rank.server.app import SimServerConfig, ThreadedSimServers


def fault_trial(work: Path, n_rows: int) -> dict[str, Any]:
    """Decisive judge, every fault kind, one replica killed and back, one 10x slower."""
    rows = work / "in.jsonl"
    qualities = trials.write_rows(rows, n_rows=n_rows)
    base = {
        "latency": "constant",
        "latency_mean": 0.005,
        "qualities": qualities,
        "noise_scale": 0.1,
    }
    with ThreadedSimServers([SimServerConfig(**base, seed=s) for s in range(3)]) as servers:
        assert main(trials.select_argv(rows, work / "clean.jsonl", servers.urls)) == 0
    configs = [
        SimServerConfig(
            **{**base, "latency_mean": 0.05 if s == 2 else 0.005},
            **trials.FAULTS,
            unreadable_rate=0.03,
            truncated_rate=0.03,
            retry_after=0.05,
            hang_seconds=30.0,
            seed=100 + s,
        )
        for s in range(3)
    ]
    peak = {"in_flight": 0}
    with ThreadedSimServers(configs) as servers:
        stop = threading.Event()

        def sample() -> None:  # in flight = running + waiting, over the three servers
            while not stop.wait(0.02):
                now = 0
                for i in range(3):
                    stats = servers.stats(i)
                    now += stats.running + stats.waiting
                peak["in_flight"] = max(peak["in_flight"], now)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        start = time.monotonic()
        with trials.Chaos(servers, 1, after=40, down_s=0.5) as chaos:
            argv = trials.select_argv(rows, work / "faulty.jsonl", servers.urls)
            status = main([*argv, "--summary-json", str(work / "s.json"), "--concurrency", "64"])
        wall = time.monotonic() - start
        stop.set()
        sampler.join()
        served = [servers.stats(i) for i in range(3)]
    summary = json.loads((work / "s.json").read_text())
    clean = [trials.strip_costs(r) for r in trials.read_rows(work / "clean.jsonl")]
    faulty = [trials.strip_costs(r) for r in trials.read_rows(work / "faulty.jsonl")]
    requests = sum(s.requests for s in served)
    injected = {
        k: sum(s.faults.get(k, 0) for s in served) for k in ("500", "503", "429", "hang", "drop")
    }
    bad = summary["failures_by_kind"]
    injected["unreadable"] = bad.get("unreadable", 0)
    injected["truncated"] = bad.get("truncated", 0)
    return {
        "exit_status": status,
        "rows": n_rows,
        "rows_ok": summary["rows_ok"],
        "replica_killed_and_restarted": chaos.killed and chaos.restarted,
        "connection_refused_while_down": summary["transport_faults_by_kind"].get(
            "connection_refused", 0
        ),
        "rows_lost": n_rows - summary["rows_ok"],
        "equal_to_fault_free": faulty == clean,
        "server_requests": requests,
        "requests_per_second": round(requests / wall, 1),
        "peak_in_flight": peak["in_flight"],
        "wall_seconds": round(wall, 2),
        "injected_by_kind": injected,
        "fault_share": round(sum(injected.values()) / requests, 3),
        "summary_transport_faults_by_kind": summary["transport_faults_by_kind"],
        "summary_failures_by_kind": bad,
    }


def hostile_trial() -> dict[str, Any]:
    reader = RowReader()
    kinds: dict[str, int] = {}
    crashes = 0
    for i, (raw, _) in enumerate(trials.HOSTILE_CORPUS):
        try:
            result = reader.parse(i + 1, raw.replace(b'"id": 1,', f'"id": {i},'.encode()))
        except Exception:
            crashes += 1
            continue
        if isinstance(result, RowError):
            kinds[result.kind] = kinds.get(result.kind, 0) + 1
    return {
        "corpus_lines": len(trials.HOSTILE_CORPUS),
        "row_errors_by_kind": kinds,
        "crashes": crashes,
    }


# --------------------------------------------------------------------------------------------
# Files, paths and processes (issue 18)

GUARDED = [sys.executable, str(Path(guarded_cli.__file__).resolve())]
SYSTEM_PATHS = ("/dev/stderr", "/dev/stdout", "/dev/stdin", "/dev/null", "/dev/zero")


def _system_state() -> dict[str, tuple[int, int, int]]:
    """What the system paths a run could damage are (inode, mode, size), by path."""
    state = {}
    for name in SYSTEM_PATHS:
        st = os.lstat(name)
        state[name] = (st.st_ino, st.st_mode, st.st_size)
    return state


def _guarded(work: Path, *args: object, **kwargs: Any) -> subprocess.Popen[bytes]:
    """A CLI process that may change files under ``work`` only (exit 97 otherwise)."""
    return subprocess.Popen(
        [*GUARDED, str(work), *map(str, args)],
        stdout=kwargs.pop("stdout", subprocess.DEVNULL),
        stderr=kwargs.pop("stderr", subprocess.PIPE),
        **kwargs,
    )


def _ids(path: Path) -> list[str]:
    """The row ids of an output file; a line that is not a row (torn, foreign) is skipped."""
    ids = []
    for line in path.read_text().splitlines() if path.exists() else ():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and "id" in row:
            ids.append(row["id"])
    return ids


def _loss(expected: list[str], got: list[str]) -> dict[str, int]:
    counts = Counter(got)
    return {
        "rows_lost": sum(1 for i in expected if counts[i] == 0),
        "rows_duplicated": sum(n - 1 for n in counts.values() if n > 1),
        "rows_foreign": sum(n for i, n in counts.items() if i not in set(expected)),
    }


def _last_line(err: bytes) -> str:
    lines = err.decode(errors="replace").strip().splitlines()
    return lines[-1][:200] if lines else ""


def _sha(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def two_writers_trial(work: Path, n_rows: int, *, resume: bool) -> dict[str, Any]:
    """Two runs on one output started 0.3 s apart (the issue's case), both to the end."""
    rows = work / "in.jsonl"
    qualities = trials.write_rows(rows, n_rows=n_rows)
    out = work / "out.jsonl"
    config = SimServerConfig(latency="constant", latency_mean=0.1, qualities=qualities)
    extra = ["--concurrency", "2", *(["--resume"] if resume else [])]
    with ThreadedSimServers([config]) as servers:
        argv = trials.select_argv(rows, out, servers.urls, *extra)
        first = _guarded(work, *argv)
        time.sleep(0.3)
        second = _guarded(work, *argv)
        _, second_err = second.communicate(timeout=300)
        second_ended_first = first.poll() is None
        _, first_err = first.communicate(timeout=300)
    statuses = sorted([first.returncode, second.returncode])
    refused = [e for e in (first_err, second_err) if b"error:" in e]
    return {
        "exits_sorted": statuses,
        "refused_as_in_use": sum(b"being written by another run" in e for e in refused),
        "refused_as_existing": sum(b"already exists" in e for e in refused),
        "refused_while_the_other_ran": second_ended_first,
        "message": _last_line(refused[0]) if refused else "",
        **_loss([f"q{i}" for i in range(n_rows)], _ids(out)),
    }


def swapped_input_trial(work: Path, n_rows: int) -> dict[str, Any]:
    """``rank A -o out`` stopped by a cap, then ``rank B -o out --resume``, then A resumed."""
    a, b = work / "a.jsonl", work / "b.jsonl"
    trials.write_rows(a, n_rows=n_rows, seed=0)
    with open(b, "w") as handle:
        for i in range(n_rows):
            row = {"id": f"b{i}", "prompt": f"Other {i}?", "candidates": [f"x{i}", f"y{i}"]}
            handle.write(json.dumps(row) + "\n")
    out = work / "out.jsonl"
    common = ["--judge", "simulated", "--seed", "0", "--quiet"]
    capped = _guarded(work, "rank", a, "-o", out, *common, "--max-calls", str(3 * n_rows))
    capped.communicate(timeout=300)
    before = _sha(out)
    swapped = _guarded(work, "rank", b, "-o", out, *common, "--resume")
    _, err = swapped.communicate(timeout=300)
    refused_unchanged = _sha(out) == before
    finish = _guarded(work, "rank", a, "-o", out, *common, "--resume")
    finish.communicate(timeout=300)
    return {
        "exit_capped_run": capped.returncode,
        "exit_resume_from_other_input": swapped.returncode,
        "refused_with": _last_line(err),
        "output_unchanged_by_refused_run": refused_unchanged,
        "exit_resume_from_same_input": finish.returncode,
        **_loss([f"q{i}" for i in range(n_rows)], _ids(out)),
    }


def collision_trial(work: Path, n_rows: int) -> dict[str, Any]:
    """Each colliding path once: was the run refused, and is the victim unchanged?"""
    rows = work / "in.jsonl"
    trials.write_rows(rows, n_rows=n_rows)
    common = ["--judge", "simulated", "--seed", "0", "--quiet"]
    cache = work / "verdicts.db"
    first = _guarded(work, "rank", rows, "-o", work / "out.jsonl", *common, "--cache", cache)
    first.communicate(timeout=300)
    import sqlite3

    def verdicts() -> int:
        with sqlite3.connect(cache) as conn:
            listed = conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            tables = [t for (t,) in listed]
            return sum(conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables)

    cached = verdicts()
    (work / "notes.html").write_text("my notes\n")
    cases = {
        "summary_json_is_the_input": (
            ["rank", rows, "-o", work / "o2.jsonl", *common, "--summary-json", rows],
            rows,
        ),
        "summary_json_is_the_output": (
            [
                "rank",
                rows,
                "-o",
                work / "out.jsonl",
                *common,
                "--overwrite",
                "--summary-json",
                work / "out.jsonl",
            ],
            work / "out.jsonl",
        ),
        "cache_is_the_output_with_overwrite": (
            ["rank", rows, "-o", cache, *common, "--cache", cache, "--overwrite"],
            cache,
        ),
        "report_onto_an_existing_file": (
            ["report", work / "out.jsonl", "-o", work / "notes.html"],
            work / "notes.html",
        ),
    }
    figures: dict[str, Any] = {}
    for name, (argv, victim) in cases.items():
        before = _sha(victim)
        proc = _guarded(work, *argv)
        _, err = proc.communicate(timeout=300)
        figures[name] = {
            "exit": proc.returncode,
            "victim_unchanged": _sha(victim) == before,
            "message": _last_line(err),
        }
    figures["cache_verdicts_before_after"] = [cached, verdicts()]
    figures.update(_loss([f"q{i}" for i in range(n_rows)], _ids(work / "out.jsonl")))
    return figures


def disk_full_trial(work: Path, n_rows: int, fill_after: int) -> dict[str, Any]:
    """The disk fills up mid-row after ``fill_after`` writes (simulated); then resume."""
    from genrm_rank.sdg.output import JsonlSink

    rows = work / "in.jsonl"
    trials.write_rows(rows, n_rows=n_rows)
    common = ["rank", str(rows), "--judge", "simulated", "--seed", "0", "--quiet"]
    assert main([*common, "-o", str(work / "ref.jsonl")]) == 0
    out = work / "out.jsonl"
    real_write = JsonlSink.write
    writes = {"n": 0}

    def fill_up(self: JsonlSink, data: bytes, count: int = 1) -> None:
        writes["n"] += 1
        if writes["n"] <= fill_after:
            real_write(self, data, count)
            return
        real_write(self, data[: len(data) // 2], count)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))

    JsonlSink.write = fill_up  # type: ignore[method-assign]
    try:
        full = main([*common, "-o", str(out)])
    finally:
        JsonlSink.write = real_write  # type: ignore[method-assign]
    torn = not out.read_bytes().endswith(b"\n")
    rows_before = len(_ids_complete(out))
    resumed = main([*common, "-o", str(out), "--resume"])
    return {
        "exit_when_full": full,
        "rows_written_before_full": rows_before,
        "torn_row_left": torn,
        "exit_resume": resumed,
        "equal_to_uninterrupted_run": out.read_bytes() == (work / "ref.jsonl").read_bytes(),
        **_loss([f"q{i}" for i in range(n_rows)], _ids(out)),
    }


def _ids_complete(path: Path) -> list[str]:
    data = path.read_bytes()
    return [json.loads(line)["id"] for line in data[: data.rfind(b"\n") + 1].splitlines()]


MERGE_KILLER = """
import os, signal, sys
sys.path.insert(0, sys.argv[1])
import guarded_cli
guarded_cli.install(sys.argv[2])
real = os.replace
done = []
def replace(src, dst):
    if len(done) == int(sys.argv[3]):
        os.kill(os.getpid(), signal.SIGKILL)
    done.append(dst)
    real(src, dst)
os.replace = replace
from genrm_rank.cli import main
raise SystemExit(main(sys.argv[4:]))
"""


def merge_trial(work: Path, n_rows: int) -> dict[str, Any]:
    """A merge SIGKILLed between its two renames, then rerun; two merges at once."""
    rows = work / "in.jsonl"
    trials.write_rows(rows, n_rows=n_rows)
    common = ["rank", str(rows), "--judge", "simulated", "--seed", "0", "--quiet"]
    assert main([*common, "-o", str(work / "whole.jsonl")]) == 0
    for i in range(3):
        assert main([*common, "-o", str(work / f"s{i}.jsonl"), "--shard", f"{i}/3"]) == 0
    merge = ["merge", str(rows), *(str(work / f"s{i}.jsonl") for i in range(3)), "-q"]
    tests = str(Path(guarded_cli.__file__).resolve().parent)
    killed = subprocess.run(
        [sys.executable, "-c", MERGE_KILLER, tests, str(work), "1", *merge, "-o",
         str(work / "m.jsonl")],
        capture_output=True, timeout=300,
    )  # fmt: skip
    after_kill = sorted(p.name for p in work.glob("m.*"))
    rerun = _guarded(work, *merge, "-o", work / "m.jsonl")
    _, rerun_err = rerun.communicate(timeout=300)
    together = [_guarded(work, *merge, "-o", work / "c.jsonl") for _ in range(2)]
    outcomes = [(p.wait(timeout=300), p.communicate()[1].decode()) for p in together]
    return {
        "exit_killed_merge": killed.returncode,
        "files_after_kill": after_kill,
        "exit_rerun": rerun.returncode,
        "rerun_error": rerun_err.decode().strip()[:160],
        "equal_to_single_run": (work / "m.jsonl").read_bytes()
        == (work / "whole.jsonl").read_bytes(),
        "concurrent_merges_exits": sorted(code for code, _ in outcomes),
        "concurrent_merges_tracebacks": sum("Traceback" in err for _, err in outcomes),
        "concurrent_result_equal": (work / "c.jsonl").read_bytes()
        == (work / "whole.jsonl").read_bytes(),
        **_loss([f"q{i}" for i in range(n_rows)], _ids(work / "m.jsonl")),
    }


def dash_stderr_trial(work: Path, n_rows: int) -> dict[str, Any]:
    """``-o -`` with stderr redirected to a non-empty file (the run that replaced /dev/stderr)."""
    rows = work / "in.jsonl"
    trials.write_rows(rows, n_rows=n_rows)
    with open(rows, "a") as handle:
        handle.write('{"id": "bad", "prompt": "Q", "candidates": []}\n')
    log = work / "stderr.log"
    log.write_text("an earlier line\n")
    with open(log, "a") as err, open(work / "stdout.jsonl", "wb") as out:
        proc = _guarded(
            work, "rank", rows, "-o", "-", "--judge", "simulated", "--quiet", stdout=out, stderr=err
        )
        proc.wait(timeout=300)
    error_rows = [line for line in log.read_text().splitlines() if line.startswith("{")]
    return {
        "exit": proc.returncode,
        "error_rows_on_stderr": len(error_rows),
        **_loss([f"q{i}" for i in range(n_rows)], _ids(work / "stdout.jsonl")),
    }


def files_trials(work: Path, n_rows: int) -> dict[str, Any]:
    """Every trial of issue 18, each in its own folder; system paths checked around them all."""
    before = _system_state()
    runs = {
        "two_writers": lambda w: two_writers_trial(w, n_rows, resume=False),
        "two_resumes": lambda w: two_writers_trial(w, n_rows, resume=True),
        "swapped_input": lambda w: swapped_input_trial(w, n_rows),
        "collisions": lambda w: collision_trial(w, n_rows),
        "disk_full": lambda w: disk_full_trial(w, n_rows, fill_after=n_rows // 3),
        "merge": lambda w: merge_trial(w, n_rows),
        "dash_with_stderr_in_a_file": lambda w: dash_stderr_trial(w, n_rows),
    }
    figures: dict[str, Any] = {}
    for name, trial in runs.items():
        folder = work / name
        folder.mkdir()
        try:
            figures[name] = trial(folder)
        except Exception as exc:  # a defect the trial found (run on an older version, say)
            figures[name] = {"trial_failed": f"{type(exc).__name__}: {exc}"[:200]}
    after = _system_state()
    figures["system_files_touched"] = sum(before[k] != after[k] for k in SYSTEM_PATHS)
    figures["guard_stops"] = sum(
        1 for f in figures.values() if isinstance(f, dict) and 97 in _exits(f)
    )
    return figures


def _exits(figures: dict[str, Any]) -> list[int]:
    found = []
    for key, value in figures.items():
        if key.startswith("exit") and isinstance(value, int):
            found.append(value)
        elif isinstance(value, dict):
            found.extend(_exits(value))
        elif key.startswith("exits") or (key.endswith("_exits") and isinstance(value, list)):
            found.extend(value)
    return found


def main_() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=40)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--only", choices=["files"], default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="genrm-reliability-") as folder:
        work = Path(folder)
        (work / "files").mkdir()
        files = files_trials(work / "files", args.rows)
        if args.only == "files":
            text = json.dumps({"files": files}, indent=2)
            print(text)
            if args.out is not None:
                args.out.write_text(text + "\n")
            return 0
        (work / "faults").mkdir()
        (work / "crashes").mkdir()
        figures = {
            "faults": fault_trial(work / "faults", args.rows),
            "crashes": {
                k: v
                for k, v in trials.run_crash_trials(
                    work / "crashes", n_rows=args.rows, kills=args.kills, seed=args.seed
                ).items()
                if k != "ids"
            },
            "hostile": hostile_trial(),
            "files": files,
        }
    text = json.dumps(figures, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main_())
