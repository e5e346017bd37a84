"""Figures for benchmarks/reliability.md: faults, crashes, hostile input, secrets, load held,
and the security and configuration trials of issue 18.

Runs the trials of ``tests/test_reliability_trials.py`` (loopback serve-sim only) at a chosen
size and prints one JSON object of figures::

    python benchmarks/reliability.py --rows 40 --kills 20 --out results/reliability.json
    python benchmarks/reliability.py --only security --rows 40   # issue 18's trials alone
    python benchmarks/reliability.py --only data       # the data-integrity trials (issue 18)
    python benchmarks/reliability.py --only persistent_faults --rows 40 --concurrency 512

``--only files`` runs only the trials of files, paths and processes (issue 18): two writers on
one output, a swapped input on ``--resume``, colliding paths, a full disk, a merge killed
between its renames, ``-o -`` with stderr in a file. Their CLI processes run under
``tests/guarded_cli.py``, which stops a process before it changes any path outside the
trial's folder, and counts as a system file touched.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import functools
import hashlib
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

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


def security_trials(work: Path, n_rows: int) -> dict[str, Any]:
    """Issue 18: the key's origin and outputs, URL passwords, boolean options, trl before calls."""
    for name in ("echo", "password", "booleans", "trl"):
        (work / name).mkdir()
    return {
        "redirect": trials.redirect_trial(),
        "key_echo": trials.echo_trial(work / "echo"),
        "url_password": trials.password_trial(work / "password"),
        "booleans": trials.boolean_trial(work / "booleans"),
        "trl_multi_turn": trials.trl_trial(work / "trl", n_rows=n_rows),
    }


# --------------------------------------------------------------------------------------------
# Data integrity (issue 18): lone surrogates, a 10,000-candidate row, a 2 GB answer, cache
# consolidation beside a live writer, two runs sharing a cache, a reordered seed file.

REPO = Path(__file__).resolve().parents[1]
CODE = os.environ.get("PYTHONPATH", "").split(os.pathsep)[0] or str(REPO)
"""Where child processes import genrm_rank from: the first PYTHONPATH entry when one is set
(to measure another version: ``PYTHONPATH=/tmp/old python benchmarks/reliability.py``)."""


def _main(argv: list[str]) -> int | str:
    """``genrm-rank ARGV`` in this process: the exit status, or the exception that ended it."""
    try:
        return main(argv)
    except Exception as exc:  # what this trial measures: a run that dies
        return f"crashed: {type(exc).__name__}"


_AS_LIMIT = 4 << 30  # a child that tries to hold gigabytes fails fast instead of swapping


class _Loopback:
    """One aiohttp handler served on 127.0.0.1 from a background thread's event loop."""

    def __init__(self, handler: Any) -> None:
        self.handler = handler
        self.url = ""
        self.requests = 0
        self.bytes_sent = 0
        self.big = True
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        payload = await request.json()
        response: web.StreamResponse = await self.handler(self, request, payload)
        return response

    async def _start(self) -> str:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"http://127.0.0.1:{port}/v1"

    def __enter__(self) -> _Loopback:
        self._thread.start()
        self.url = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)


def _slots(payload: dict[str, Any]) -> tuple[str, str]:
    texts = {m["role"]: m["content"] for m in payload["messages"]}
    return texts.get("response_1", ""), texts.get("response_2", "")


def _answer_bytes(payload: dict[str, Any], reasoning: str) -> bytes:
    """A chat completion (JSON written by hand: ``reasoning`` may hold a raw JSON escape)."""
    first, second = _slots(payload)
    ranking = 2 if len(first) >= len(second) else 5
    content = json.dumps({"score_1": 4, "score_2": 3, "ranking": ranking})
    return (
        '{"choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", '
        f'"reasoning": "{reasoning}", "content": {json.dumps(content)}}}}}], '
        '"usage": {"prompt_tokens": 50, "completion_tokens": 20}}'
    ).encode()


def _child(argv: list[str], *, limit: int | None = _AS_LIMIT) -> dict[str, Any]:
    """``genrm-rank ARGV`` in a child process: exit status, wall seconds, peak RSS (MiB)."""

    def cap() -> None:
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    env = {**os.environ, "PYTHONPATH": CODE, "OPENBLAS_NUM_THREADS": "1"}
    code = "import sys; from genrm_rank.cli import main; sys.exit(main(sys.argv[1:]))"
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        cwd="/",  # not this checkout: CODE is what the child imports
        preexec_fn=cap,
    )
    assert proc.stderr is not None
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "exit_status": proc.returncode,
        "wall_seconds": round(time.monotonic() - start, 2),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
        "traceback": "Traceback" in stderr.decode("utf-8", "replace"),
    }


def _read(path: Path) -> list[dict[str, Any]]:
    """The rows of a JSONL output; none when the run died before writing it."""
    return trials.read_rows(path) if path.exists() else []


def surrogate_trial(work: Path, n_rows: int = 30, in_rows: bool = True) -> dict[str, Any]:
    """Lone surrogates in every answer's reasoning and (``in_rows``) in an id and a
    pass-through field."""
    rows = work / "in.jsonl"
    trials.write_rows(rows, n_rows=n_rows)
    lines = rows.read_text().splitlines()
    if in_rows:
        bad_id, bad_field = 5, 11
        row = json.loads(lines[bad_id])
        row["id"] = "q5\ud800"
        lines[bad_id] = json.dumps(row)  # ensure_ascii: written as the escape "\ud800"
        row = json.loads(lines[bad_field])
        row["note"] = "pass-through \udfff"
        lines[bad_field] = json.dumps(row)
    rows.write_text("\n".join(lines) + "\n")

    async def handler(server: _Loopback, request: web.Request, payload: dict[str, Any]) -> Any:
        body = _answer_bytes(payload, "weighing both \\ud800 answers")
        return web.Response(body=body, content_type="application/json")

    out, err, cache = work / "out.jsonl", work / "errors.jsonl", work / "cache.db"
    with _Loopback(handler) as server:
        base = [
            "rank", str(rows), "--errors", str(err), "--cache", str(cache), "--judgements",
            "--model", "sim-genrm", "--endpoint", server.url, "--seed", "0", "--quiet",
        ]  # fmt: skip
        first = _main([*base, "-o", str(out)])
        paid = server.requests
        resumed = _main([*base, "-o", str(out), "--resume"])
        paid_resume = server.requests - paid
        rerun = _main([*base, "-o", str(work / "rerun.jsonl"), "--errors", str(work / "e2.jsonl")])
        paid_rerun = server.requests - paid - paid_resume
    written = _ids(out)
    errors = _read(err)
    settled = len(written) + len(errors)
    strict = True
    for path in (out, err, work / "rerun.jsonl"):
        if not path.exists():
            continue
        try:
            path.read_bytes().decode("utf-8", "strict")
        except UnicodeDecodeError:
            strict = False
    reasoning = [j["reasoning"] for r in _read(out) for j in r["genrm"].get("judgements", [])]
    conn = sqlite3.connect(cache)
    integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
    unencodable = 0
    for (blob,) in conn.execute("SELECT verdict FROM verdicts"):
        try:
            json.dumps(json.loads(blob), ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            unencodable += 1
    cached = conn.execute("SELECT COUNT(*) FROM verdicts").fetchone()[0]
    conn.close()
    same = [trials.strip_costs(r) for r in _read(work / "rerun.jsonl")] == [
        trials.strip_costs(r) for r in _read(out)
    ]
    return {
        "rows": n_rows,
        "exit_status_first_run": first,
        "rows_ranked": len(written),
        "rows_in_errors_file": [(e["line"], e["kind"]) for e in errors],
        "rows_lost": n_rows - settled,
        "rows_duplicated": settled
        - len({*map(json.dumps, written), *(str(e["line"]) for e in errors)}),
        "outputs_strict_utf8": strict,
        "reasoning_with_replacement_char": sum("\ufffd" in r for r in reasoning),
        "judge_calls_paid": paid,
        "exit_status_resume": resumed,
        "calls_paid_by_resume": paid_resume,
        "exit_status_rerun_from_cache": rerun,
        "calls_paid_by_rerun": paid_rerun,
        "rerun_equal_to_first_run": same,
        "cache_verdicts": cached,
        "cache_integrity_check": integrity,
        "cache_verdicts_unencodable": unencodable,
    }


def _wide_rows(path: Path, n_rows: int, wide: int | None) -> None:
    trials.write_rows(path, n_rows=n_rows)
    if wide is None:
        return
    lines = path.read_text().splitlines()
    lines.insert(n_rows // 2, json.dumps({
        "id": "wide", "prompt": "Which one?", "candidates": [f"candidate {j}" for j in range(wide)],
    }))  # fmt: skip
    path.write_text("\n".join(lines) + "\n")


def wide_row_trial(work: Path, n_rows: int = 20, wide: int = 10_000) -> dict[str, Any]:
    """A row of 10,000 candidates among normal rows, round-robin, in a child process."""
    figures: dict[str, Any] = {"rows": n_rows, "wide_row_candidates": wide}
    for name, extra in (("without_wide_row", None), ("with_wide_row", wide)):
        rows = work / f"{name}.jsonl"
        _wide_rows(rows, n_rows, extra)
        out, err = work / f"{name}.out.jsonl", work / f"{name}.err.jsonl"
        argv = [
            "select", str(rows), "-o", str(out), "--errors", str(err), "--judge", "simulated",
            "--strategy", "round_robin", "--quiet",
        ]  # fmt: skip
        run = _child(argv)
        run["rows_ranked"] = len(_ids(out))
        run["errors"] = [(e["id"], e["kind"]) for e in _read(err)]
        figures[name] = run
        figures[f"{name}_dry_run"] = _child([*argv, "--overwrite", "--dry-run"])
    return figures


def big_body_trial(work: Path, n_rows: int = 20, size: int = 2 << 30) -> dict[str, Any]:
    """Answers of 2 GiB (streamed lazily by the server) for one row's requests."""
    rows = work / "in.jsonl"
    trials.write_rows(rows, n_rows=n_rows)
    chunk = b" " * (1 << 20)

    async def handler(server: _Loopback, request: web.Request, payload: dict[str, Any]) -> Any:
        if not server.big or not any(
            "Question 3?" in str(m["content"]) for m in payload["messages"]
        ):
            body = _answer_bytes(payload, "fine")
            return web.Response(body=body, content_type="application/json")
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        try:
            for _ in range(size // len(chunk)):
                await response.write(chunk)
                server.bytes_sent += len(chunk)
        except (ConnectionError, RuntimeError):
            pass  # the client stopped reading
        return response

    figures: dict[str, Any] = {"rows": n_rows, "body_bytes_offered": size}
    with _Loopback(handler) as server:
        out, err = work / "out.jsonl", work / "errors.jsonl"
        argv = [
            "select", str(rows), "-o", str(out), "--errors", str(err), "--model", "sim-genrm",
            "--endpoint", server.url, "--seed", "0", "--quiet", "--timeout", "60",
        ]  # fmt: skip
        server.big = False  # the same run with every answer small: the memory baseline
        baseline = _child([*argv, "--overwrite"])
        server.big, server.requests = True, 0
        figures.update(_child([*argv, "--overwrite"]))
        figures["peak_rss_mib_all_answers_small"] = baseline["peak_rss_mib"]
        figures["server_requests"] = server.requests
        figures["body_bytes_sent_in_all"] = server.bytes_sent
    figures["rows_ranked"] = len(_ids(out))
    figures["errors"] = [(e["id"], e["kind"]) for e in _read(err)]
    figures["rows_lost"] = n_rows - figures["rows_ranked"] - len(figures["errors"])
    return figures


CONSOLIDATION_WRITER = """
import sys
from pathlib import Path
from genrm_rank.integrations.ray import _ShardCache
from genrm_rank.verdict import Verdict

cache = _ShardCache(Path(sys.argv[1]), None)
for i in range(int(sys.argv[2])):
    cache.put(f"live{i}", Verdict(score_1=4, score_2=2, ranking=1 + i % 6, raw="x" * 2000))
cache.close()
"""


def consolidation_trial(work: Path, n_verdicts: int = 3000) -> dict[str, Any]:
    """consolidate_caches over and over while an actor's cache is written and the base read."""
    from genrm_rank.integrations.ray import BASE_CACHE, _ShardCache, consolidate_caches
    from genrm_rank.verdict import Verdict

    seed = _ShardCache(work / "verdicts.earlier.db", None)
    seed.put_many((f"old{i}", Verdict(score_1=4, score_2=2, ranking=2)) for i in range(100))
    seed.close()
    consolidate_caches(work)
    stop = threading.Event()
    reads = {"queries": 0, "errors": 0}

    def reader() -> None:  # an actor reading the base as it does: immutable, read-only
        base = work / BASE_CACHE
        while not stop.is_set():
            try:
                conn = sqlite3.connect(f"file:{base}?mode=ro&immutable=1", uri=True)
                for _ in range(20):
                    conn.execute("SELECT COUNT(*), SUM(LENGTH(verdict)) FROM verdicts").fetchone()
                    reads["queries"] += 1
                conn.close()
            except sqlite3.DatabaseError:
                reads["errors"] += 1

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CONSOLIDATION_WRITER,
            str(work / "verdicts.live.db"),
            str(n_verdicts),
        ],
        env={**os.environ, "PYTHONPATH": CODE},
        cwd="/",  # not this checkout: CODE is what the child imports
    )
    consolidations = 0
    while writer.poll() is None:
        consolidate_caches(work)
        consolidations += 1
        time.sleep(0.01)
    stop.set()
    thread.join()
    consolidate_caches(work)  # the writer has finished: its file is folded now
    conn = sqlite3.connect(work / BASE_CACHE)
    live = conn.execute("SELECT COUNT(*) FROM verdicts WHERE key LIKE 'live%'").fetchone()[0]
    old = conn.execute("SELECT COUNT(*) FROM verdicts WHERE key LIKE 'old%'").fetchone()[0]
    integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
    conn.close()
    return {
        "writer_exit_status": writer.returncode,
        "verdicts_written": n_verdicts,
        "consolidations_during_the_write": consolidations,
        "verdicts_lost": n_verdicts - live + (100 - old),
        "base_reads": reads["queries"],
        "base_reads_failed": reads["errors"],
        "base_integrity_check": integrity,
        "files_left": sorted(p.name for p in work.glob("verdicts.*.db")),
    }


def shared_cache_trial(work: Path, n_rows: int = 20) -> dict[str, Any]:
    """Two runs at once on one cache, each against its own noisy server; then a rerun."""
    rows = work / "in.jsonl"
    trials.write_rows(rows, n_rows=n_rows)
    cache = work / "shared.db"
    config = {"latency": "constant", "latency_mean": 0.01, "noise_scale": 3.0}
    servers = ThreadedSimServers(
        [SimServerConfig(**config, seed=s, judge_seed=s) for s in (1, 2, 3)]
    )
    with servers:

        def argv(name: str, url: str) -> list[str]:
            return [
                "select", str(rows), "-o", str(work / f"{name}.jsonl"), "--cache", str(cache),
                "--model", "sim-genrm", "--endpoint", url, "--seed", "0", "--quiet",
                "--strategy", "round_robin", "--concurrency", "8",
            ]  # fmt: skip

        env = {**os.environ, "PYTHONPATH": CODE}
        code = "import sys; from genrm_rank.cli import main; sys.exit(main(sys.argv[1:]))"
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", code, *argv(n, servers.urls[i])], env=env, cwd="/"
            )
            for i, n in enumerate(("a", "b"))
        ]
        statuses = [p.wait(timeout=600) for p in procs]
        paid = [servers.stats(i).requests for i in range(2)]
        rerun = _main(argv("rerun", servers.urls[2]))
        paid_rerun = servers.stats(2).requests
    got = {
        n: [trials.strip_costs(r) for r in _read(work / f"{n}.jsonl")] for n in ("a", "b", "rerun")
    }
    conn = sqlite3.connect(cache)
    stored = conn.execute("SELECT COUNT(*) FROM verdicts").fetchone()[0]
    conn.close()
    differ = {
        pair: sum(x != y for x, y in zip(got[pair[0]], got[pair[1]], strict=True))
        for pair in (("a", "b"), ("rerun", "a"), ("rerun", "b"))
    }
    return {
        "rows": n_rows,
        "exit_statuses": [*statuses, rerun],
        "calls_paid_by_run_a_and_b": paid,
        "verdicts_in_cache": stored,
        "verdicts_paid_twice": sum(paid) - stored,
        "calls_paid_by_rerun": paid_rerun,
        "rows_differing_a_vs_b": differ[("a", "b")],
        "rows_differing_rerun_vs_a": differ[("rerun", "a")],
        "rows_differing_rerun_vs_b": differ[("rerun", "b")],
    }


def reordered_files_trial(work: Path, n_rows: int = 40, moved: int = 10) -> dict[str, Any]:
    """--candidates-from-files with one seed file partly reordered."""
    paths = []
    for k in range(3):
        path = work / f"output-rs{k}.jsonl"
        rows = [
            {"problem": f"Question {i}?", "qid": i, "generation": f"answer {i}.{k}"}
            for i in range(n_rows)
        ]
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        paths.append(path)
    lines = paths[1].read_text().splitlines(keepends=True)
    head = lines[:moved]
    paths[1].write_text("".join([*head[1:], head[0], *lines[moved:]]))  # rows 1..10 rotated
    out, err = work / "best.jsonl", work / "errors.jsonl"
    status = _main([
        "select", *map(str, paths), "-o", str(out), "--errors", str(err), "--judge", "simulated",
        "--candidates-from-files", "--candidate-field", "generation", "--prompt-field", "problem",
        "--id-field", "qid", "--quiet",
    ])  # fmt: skip
    got = _read(out)
    corrupted = sum(  # candidates are objects naming their file, holding the sample as text
        any(not c["text"].startswith(f"answer {r['qid']}.") for c in r["candidates"]) for r in got
    )
    errors = _read(err)
    return {
        "rows": n_rows,
        "rows_moved_in_one_file": moved,
        "exit_status": status,
        "rows_ranked": len(got),
        "rows_refused_misaligned": sum(e["kind"] == "misaligned" for e in errors),
        "rows_corrupted": corrupted,
        "rows_lost": n_rows - len(got) - len(errors),
    }


def data_trials(work: Path) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for name, trial in (
        ("surrogates", surrogate_trial),
        ("surrogates_in_reasoning_only", functools.partial(surrogate_trial, in_rows=False)),
        ("wide_row", wide_row_trial),
        ("big_body", big_body_trial),
        ("consolidation", consolidation_trial),
        ("shared_cache", shared_cache_trial),
        ("reordered_files", reordered_files_trial),
    ):
        (work / name).mkdir()
        figures[name] = trial(work / name)
        print(name, json.dumps(figures[name]), file=sys.stderr, flush=True)
    return figures


def core_trials(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Issue 11's trials: faults survived under load, crashes, hostile input."""
    (work / "faults").mkdir()
    (work / "crashes").mkdir()
    return {
        "faults": fault_trial(work / "faults", args.rows),
        "crashes": {
            k: v
            for k, v in trials.run_crash_trials(
                work / "crashes", n_rows=args.rows, kills=args.kills, seed=args.seed
            ).items()
            if k != "ids"
        },
        "hostile": hostile_trial(),
    }


GROUPS: dict[str, Callable[[Path, argparse.Namespace], dict[str, Any]]] = {
    "core": core_trials,
    "security": lambda work, args: security_trials(work, args.rows),
    "data": lambda work, _: data_trials(work),
    "files": lambda work, args: files_trials(work, args.rows),
    "persistent_faults": lambda work, args: persistent_fault_trial(
        work, args.rows, args.concurrency
    ),
}
"""The groups of trials, by the name ``--only`` takes; each writes under its own folder."""
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


def persistent_fault_trial(work: Path, n_rows: int, concurrency: int) -> dict[str, Any]:
    """Issue 18: each persistent fault, what the run paid before it stopped, and the resume."""
    return {
        kind: {
            k: v
            for k, v in trials.run_persistent_fault_trial(
                work / kind, kind, n_rows=n_rows, concurrency=concurrency
            ).items()
            if k != "message"
        }
        for kind in trials.PERSISTENT_FAULTS
    }


def main_() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=40)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--only",
        choices=sorted(GROUPS),
        action="append",
        default=None,
        help="run these groups of trials only (repeatable; default: all)",
    )
    parser.add_argument("--concurrency", type=int, default=64, help="of the persistent-fault runs")
    args = parser.parse_args()
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="genrm-reliability-") as folder:
        for name in args.only or list(GROUPS):
            work = Path(folder) / name
            work.mkdir()
            found = GROUPS[name](work, args)
            figures.update(found if name == "core" else {name: found})
    text = json.dumps(figures, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main_())
