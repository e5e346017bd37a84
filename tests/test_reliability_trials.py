"""Reliability trials (issue 11), at a size CI can run: faults, crashes, hostile input, secrets.

Everything runs on loopback against serve-sim (``genrm_rank.server``), bounded in time and size.
``benchmarks/reliability.py`` runs the same trials larger and writes their figures.

Why the outputs of a faulty and a fault-free run can be compared at all
-----------------------------------------------------------------------
serve-sim's judge draws each answer from ``(seed, messages, how often these messages were
answered)``. Transport faults (500, 503, 429, hangs, drops) are drawn before the judge is asked,
so a request that finally gets through gets the same answer as in a fault-free run. An
unreadable or truncated answer, though, uses up a draw: its re-ask is a fresh sample. So the
trial with every kind of fault uses a *decisive* judge, whose verdict cannot be moved by its
noise (latent qualities 20 or more apart at noise scale 0.1, scores clipped at 1 and 5): its
answer is a function of the request, and the rows must be equal once the fields that count what
was paid (calls, tokens, failed calls) are set aside. A second trial keeps the noisy judge and
only the transport faults, where equality holds for every draw.
"""

from __future__ import annotations

import contextlib
import http.server
import io
import json
import os
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genrm_rank.cli import EXIT_OK, main
from genrm_rank.server.app import SimServerConfig, ThreadedSimServers

N_ROWS = 12
N_CANDIDATES = 4
COST_FIELDS = frozenset({"calls", "cached", "failed_calls", "prompt_tokens", "completion_tokens"})


def write_rows(path: Path, n_rows: int = N_ROWS, seed: int = 0) -> dict[str, float]:
    """Rows of distinct candidates; returns decisive latent qualities by text."""
    rng = random.Random(seed)
    qualities: dict[str, float] = {}
    with path.open("w", encoding="utf-8") as handle:
        for i in range(n_rows):
            levels = [-30.0, -10.0, 10.0, 30.0]
            rng.shuffle(levels)
            texts = [f"Answer {k} to question {i}: " + "words " * (k + 1) for k in range(4)]
            qualities.update(zip(texts, levels, strict=True))
            row = {"id": f"q{i}", "prompt": f"Question {i}?", "candidates": texts}
            handle.write(json.dumps(row) + "\n")
    return qualities


def strip_costs(value: Any) -> Any:
    """A row without the fields that count what was paid."""
    if isinstance(value, dict):
        return {k: strip_costs(v) for k, v in value.items() if k not in COST_FIELDS}
    if isinstance(value, list):
        return [strip_costs(v) for v in value]
    return value


def read_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def select_argv(rows: Path, out: Path, urls: list[str], *extra: str) -> list[str]:
    argv = ["select", str(rows), "-o", str(out), "--model", "sim-genrm", "--seed", "0", "--quiet"]
    for url in urls:
        argv += ["--endpoint", url]
    # At 22% faults, 2 paid re-asks (the default) leave about one verdict in 200 unanswered:
    # a run this faulty is given 8.
    limits = ["--timeout", "2", "--max-resends", "8", "--retries", "8", "--down-timeout", "60"]
    return [*argv, *limits, *extra]


class Chaos:
    """Kills one server once the servers have taken ``after`` requests; restarts it later."""

    def __init__(self, servers: ThreadedSimServers, index: int, after: int, down_s: float) -> None:
        self.servers, self.index, self.after, self.down_s = servers, index, after, down_s
        self.killed = self.restarted = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def total_requests(self) -> int:
        return sum(self.servers.stats(i).requests for i in range(len(self.servers.servers)))

    def _run(self) -> None:
        deadline = time.monotonic() + 60.0
        while not self._stop.is_set() and time.monotonic() < deadline:
            if self.total_requests() >= self.after:
                self.servers.stop_server(self.index)
                self.killed = True
                self._stop.wait(self.down_s)
                self.servers.start_server(self.index)
                self.restarted = True
                return
            self._stop.wait(0.01)

    def __enter__(self) -> Chaos:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


@pytest.fixture
def rows_file(tmp_path: Path) -> Iterator[tuple[Path, dict[str, float]]]:
    path = tmp_path / "in.jsonl"
    yield path, write_rows(path)


FAULTS = {
    "fault_rate_500": 0.07,
    "fault_rate_503": 0.07,
    "fault_rate_429": 0.07,
    "fault_rate_hang": 0.02,
    "fault_rate_drop": 0.07,
}
"""30% of requests answered with a fault, by kind (the issue asks for at least 20%)."""


@pytest.mark.parametrize("judge", ["decisive", "noisy"])
def test_faults_every_row_completes_and_output_equals_the_fault_free_run(
    tmp_path: Path, rows_file: tuple[Path, dict[str, float]], judge: str
) -> None:
    rows, qualities = rows_file
    answers: dict[str, Any] = (
        {"qualities": qualities, "noise_scale": 0.1} if judge == "decisive" else {}
    )
    # The decisive judge also answers unreadably or truncated 3% of the time each.
    bad_answers = {"unreadable_rate": 0.03, "truncated_rate": 0.03} if judge == "decisive" else {}
    base = {"latency": "constant", "latency_mean": 0.005, **answers}
    clean = [SimServerConfig(**base, seed=s) for s in range(3)]
    with ThreadedSimServers(clean) as servers:
        assert main(select_argv(rows, tmp_path / "clean.jsonl", servers.urls)) == EXIT_OK
    faulty = [
        SimServerConfig(
            **{**base, "latency_mean": 0.05 if s == 2 else 0.005},  # one replica 10x slower
            **FAULTS,
            **bad_answers,
            retry_after=0.05,
            hang_seconds=30.0,
            seed=100 + s,
        )
        for s in range(3)
    ]
    summary_path = tmp_path / "summary.json"
    with ThreadedSimServers(faulty) as servers, Chaos(servers, 1, after=40, down_s=0.5) as chaos:
        argv = select_argv(rows, tmp_path / "faulty.jsonl", servers.urls)
        status = main([*argv, "--summary-json", str(summary_path)])
        served = [servers.stats(i) for i in range(3)]
    assert status == EXIT_OK
    assert chaos.killed and chaos.restarted
    summary = json.loads(summary_path.read_text())
    assert summary["rows_ok"] == N_ROWS and summary["rows_failed"] == 0
    assert not (tmp_path / "faulty.errors.jsonl").exists()
    clean_rows = read_rows(tmp_path / "clean.jsonl")
    faulty_rows = read_rows(tmp_path / "faulty.jsonl")
    assert [strip_costs(r) for r in faulty_rows] == [strip_costs(r) for r in clean_rows]
    # Every injected transport fault is counted by kind in the summary.
    injected = {k: sum(s.faults.get(k, 0) for s in served) for k in ("500", "503", "429", "hang")}
    transport = summary["transport_faults_by_kind"]
    for kind in ("500", "503", "429"):
        assert transport.get(f"http_{kind}", 0) == injected[kind], (kind, transport, injected)
    # A hang is seen as a timeout, or as a dropped connection when its server is killed.
    injected["drop"] = sum(s.faults.get("drop", 0) for s in served)
    seen = transport.get("timeout", 0) + transport.get("connection_dropped", 0)
    assert seen >= injected["hang"] + injected["drop"] > 0
    requests = sum(s.requests for s in served)
    faults = sum(injected.values())
    if judge == "decisive":
        bad = summary["failures_by_kind"]  # "unavailable": a paid transport fault, re-asked
        assert set(bad) <= {"unreadable", "truncated", "unavailable"}
        faults += bad.get("unreadable", 0) + bad.get("truncated", 0)
    # The servers draw faults at random (30% configured): with ~90 requests the realised share
    # has a standard deviation of about 5 points, so 15% is a bound that holds (z > 3).
    assert sum(FAULTS.values()) >= 0.2
    assert faults / requests >= 0.15, (faults, requests)


# ------------------------------------------------------------------------------------------
# Persistent faults (issue 18): stop after a few requests, resumable; resume completes every row

PERSISTENT_FAULTS: dict[str, tuple[dict[str, Any], list[str], str]] = {
    # kind: (the faulty server's settings, the run's options, words the stop must say)
    "429_always": ({"fault_rate_429": 1.0, "retry_after": 0.01}, [], "HTTP 429"),
    "500_always": ({"fault_rate_500": 1.0}, [], "HTTP 500"),
    "html_200": ({"fault_rate_html": 1.0}, [], "a proxy or login page?"),
    "empty_choices": ({"fault_rate_empty_choices": 1.0}, [], "'choices' is empty"),
    "hung_server": (
        {"fault_rate_hang": 1.0, "hang_seconds": 30.0},
        ["--timeout", "0.5"],
        "--timeout",
    ),
    "reasoning_stripped": ({"reasoning_style": "none"}, [], "--no-thinking"),
    "wrong_key": ({"api_key": "the-right-key"}, [], "HTTP 401"),
    "unknown_model": ({}, ["--model", "nope"], "the server serves ['sim-genrm']"),
    "wrong_path": ({}, ["--wrong-path"], "did you mean"),
}
"""Each kind of persistent fault: a server that fails every request the same way."""


def run_persistent_fault_trial(
    work: Path, kind: str, *, n_rows: int = N_ROWS, concurrency: int = 64
) -> dict[str, Any]:
    """Run ``select`` against a server with one persistent fault, then ``--resume`` it against a
    healthy one. Returns what the faulty run paid (every HTTP request its server received), its
    exit status and message, and what the resumed run wrote."""
    config, options, _ = PERSISTENT_FAULTS[kind]
    work.mkdir(parents=True, exist_ok=True)
    rows, out, summary = work / "in.jsonl", work / "out.jsonl", work / "summary.json"
    qualities = write_rows(rows, n_rows=n_rows)
    key_file = work / "key.txt"
    key_file.write_text("a-wrong-key\n")
    base = {"latency": "constant", "latency_mean": 0.002, "qualities": qualities}
    model = "nope" if "--model" in options else "sim-genrm"
    argv = ["select", str(rows), "-o", str(out), "--seed", "0", "--quiet", "--concurrency"]
    argv += [str(concurrency), "--summary-json", str(summary), "--api-key-file", str(key_file)]
    faulty = [o for o in options if o not in ("--model", "nope", "--wrong-path")]
    with ThreadedSimServers([SimServerConfig(**base, **config)]) as servers:
        url = servers.urls[0]
        if "--wrong-path" in options:
            url = servers.servers[0].root_url  # the base URL without /v1
        started = time.monotonic()
        status = main([*argv, *faulty, "--model", model, "--endpoint", url])
        wall = time.monotonic() - started
        paid = servers.stats(0).by_path
    stopped = json.loads(summary.read_text())
    key_file.write_text("any-key\n")  # the healthy server takes no key
    with ThreadedSimServers([SimServerConfig(**base)]) as servers:
        resumed = main([*argv, "--model", "sim-genrm", "--endpoint", servers.urls[0], "--resume"])
    ids = [r["id"] for r in read_rows(out)] if out.exists() else []
    errors = work / "out.errors.jsonl"
    return {
        "exit_status": status,
        "chat_requests": sum(v for k, v in paid.items() if k.startswith("POST")),
        "all_requests": sum(paid.values()),
        "wall_seconds": round(wall, 2),
        "status": stopped["status"],
        "message": stopped["message"],
        "resume_exit_status": resumed,
        "rows": n_rows,
        "rows_out": len(ids),
        "rows_lost": len(set(f"q{i}" for i in range(n_rows)) - set(ids)),
        "rows_duplicated": len(ids) - len(set(ids)),
        "error_lines_after_resume": len(read_rows(errors)) if errors.exists() else 0,
    }


@pytest.mark.parametrize("kind", sorted(PERSISTENT_FAULTS))
def test_a_persistent_fault_costs_a_few_requests_and_resume_completes_every_row(
    tmp_path: Path, kind: str
) -> None:
    figures = run_persistent_fault_trial(tmp_path, kind)
    misconfigured = kind in ("wrong_key", "unknown_model", "wrong_path")
    assert figures["exit_status"] == (2 if misconfigured else 4), figures["message"]
    assert PERSISTENT_FAULTS[kind][2] in figures["message"]
    # A wrong key, model or path: at most one chat request per endpoint. Any other persistent
    # fault: 8 failed verdicts and at most 8 calls in flight when the run stops; a 429 is
    # resent for free, but no more once 16 came before any answer: at most 16 + 8 + 8.
    bound = 1 if misconfigured else 16 + 8 + 8 if kind == "429_always" else 16
    assert figures["chat_requests"] <= bound
    assert figures["resume_exit_status"] == EXIT_OK
    assert figures["rows_out"] == N_ROWS and figures["rows_lost"] == 0
    assert figures["rows_duplicated"] == 0 and figures["error_lines_after_resume"] == 0


def test_answers_without_reasoning_are_read_with_no_thinking(tmp_path: Path) -> None:
    rows, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_rows(rows, n_rows=4)
    config = SimServerConfig(latency="constant", latency_mean=0.0, reasoning_style="none")
    with ThreadedSimServers([config]) as servers:
        argv = ["select", str(rows), "-o", str(out), "--model", "sim-genrm", "--quiet"]
        assert main([*argv, "--endpoint", servers.urls[0]]) == 4
        assert main([*argv, "--endpoint", servers.urls[0], "--resume", "--no-thinking"]) == 0
    assert [r["id"] for r in read_rows(out)] == [f"q{i}" for i in range(4)]


# ------------------------------------------------------------------------------------------
# Crashes: SIGKILL at known rows, resume each time


def _complete_lines(data: bytes) -> bytes:
    return data[: data.rfind(b"\n") + 1]


def run_crash_trials(
    tmp_path: Path, *, n_rows: int, kills: int, seed: int, concurrency: int = 4
) -> dict[str, Any]:
    """Kill ``genrm-rank select --cache --resume`` ``kills`` times, then let it finish.

    Each run kills itself (SIGKILL, ``tests/guarded_cli.py``) right after its first or second
    row of output (drawn with ``seed``), half the time in the middle of writing it, with other
    requests in flight: a known point, so the trial does not depend on timing (issue 18). After
    each kill: the complete lines written before must be a byte prefix of the file, and the
    cache must pass SQLite's integrity check. Returns the figures.
    """
    import os
    import signal
    import sqlite3
    import subprocess
    import sys

    rows = tmp_path / "crash-in.jsonl"
    qualities = write_rows(rows, n_rows=n_rows, seed=seed)
    config = SimServerConfig(
        latency="constant", latency_mean=0.01, qualities=qualities, noise_scale=0.1
    )
    rng = random.Random(seed)
    figures: dict[str, Any] = {"kills": 0, "runs": 0, "prefix_checks": 0, "integrity_checks": 0}
    with ThreadedSimServers([config]) as servers:
        reference = tmp_path / "reference.jsonl"
        assert main(select_argv(rows, reference, servers.urls, "--concurrency", "4")) == EXIT_OK
        reference_requests = servers.stats(0).requests
        out, cache = tmp_path / "crash-out.jsonl", tmp_path / "crash.db"
        guarded = [sys.executable, str(Path(__file__).parent / "guarded_cli.py"), str(tmp_path)]
        argv = select_argv(rows, out, servers.urls, "--concurrency", str(concurrency))
        argv += ["--cache", str(cache), "--resume"]
        before = b""
        for _ in range(kills + 1):  # a run makes at most two rows before its kill
            kill = []
            if figures["kills"] < kills:
                kill = ["--after-rows", str(rng.randint(1, 2))]
                kill += ["--torn"] if rng.random() < 0.5 else []
            process = subprocess.Popen(
                [*guarded, *kill, *argv],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=dict(os.environ),
            )
            figures["runs"] += 1
            _, err = process.communicate(timeout=120)
            figures["kills"] += process.returncode == -signal.SIGKILL
            now = out.read_bytes() if out.exists() else b""
            assert now.startswith(before), "rows already written changed"
            figures["prefix_checks"] += 1
            before = _complete_lines(now)
            if cache.exists():
                with sqlite3.connect(cache) as conn:
                    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
                figures["integrity_checks"] += 1
            if process.returncode == EXIT_OK:
                break
            assert process.returncode == -signal.SIGKILL, err.decode(errors="replace")
        figures["exit_status"] = process.returncode
        figures["requests"] = servers.stats(0).requests - reference_requests
    figures["reference_requests"] = reference_requests
    figures["wasted_requests"] = figures["requests"] - reference_requests
    final = read_rows(out)
    figures["rows"] = len(final)
    figures["ids"] = [r["id"] for r in final]
    figures["equal_to_reference"] = [strip_costs(r) for r in final] == [
        strip_costs(r) for r in read_rows(reference)
    ]
    return figures


@pytest.mark.slow
def test_crashes_resume_without_losing_duplicating_or_changing_rows(tmp_path: Path) -> None:
    figures = run_crash_trials(tmp_path, n_rows=40, kills=20, seed=1)
    assert figures["kills"] == 20  # each at a known row (no timing)
    assert figures["exit_status"] == EXIT_OK
    assert figures["ids"] == [f"q{i}" for i in range(40)]  # none missing, none twice, in order
    assert figures["equal_to_reference"]
    # Verdicts are cached as they come: a kill wastes at most the requests then in flight.
    assert 0 <= figures["wasted_requests"] <= figures["kills"] * 4


# ------------------------------------------------------------------------------------------
# Hostile input: a per-row error for every bad line, never a crash

ROW_ERROR_KINDS = {
    "malformed_json",
    "missing_field",
    "bad_field",
    "too_few_candidates",
    "duplicate_candidate",
    "duplicate_id",
    "too_long",
    "bad_encoding",
}

BIG = 3_000_000  # characters: rows of several megabytes

HOSTILE_CORPUS: list[tuple[bytes, str]] = [
    (b'{"id": 1, "prompt": "q", "candidates": ["a", "b"', "malformed_json"),
    (b"not json at all", "malformed_json"),
    (b"[1, 2, 3]", "malformed_json"),
    (b'"a string"', "malformed_json"),
    (b"null", "malformed_json"),
    (b'{"id": 1, "prompt": 5, "candidates": ["a", "b"]}', "bad_field"),
    (b'{"id": 1, "prompt": "q", "candidates": "ab"}', "bad_field"),
    (b'{"id": 1, "prompt": "q", "candidates": [1, 2]}', "bad_field"),
    (b'{"id": 1, "prompt": "q", "candidates": [{}, {}]}', "bad_field"),
    (b'{"id": 1, "prompt": "q", "candidates": [null, "b"]}', "too_few_candidates"),  # null dropped
    (b'{"id": 1, "prompt": "q", "candidates": ["only one"]}', "too_few_candidates"),
    (b'{"id": 1, "prompt": "q", "candidates": []}', "too_few_candidates"),
    (b'{"id": 1, "prompt": "q", "candidates": ["a", "b"], "id": [1]}', "bad_field"),
    (b'{"id": 1, "prompt": "q", "candidates": ["a", "b"]}\xff\xfe', "bad_encoding"),
    (b'{"id": 1, "prompt": "\xc3\x28", "candidates": ["a", "b"]}', "bad_encoding"),
    (b'{"id": 1, "prompt": "q", "candidates": ["a", "b"]} trailing', "malformed_json"),
    (b'{"id": 1, "prompt": "q", "candidates": ["a", "b"], "x": NaN}', "malformed_json"),
    (b'{"id": 1, "prompt": "q", "candidates": ["a", "b"], "x": -Infinity}', "malformed_json"),
    (b'{"id": 1, "prompt": "q", "candidates": ["a", "b"], "x": 1e999}', "malformed_json"),
    (
        b'{"id": 1, "prompt": "q", "candidates": ["a", "b"], "x": ' + b"7" * 5000 + b"}",
        "malformed_json",
    ),
    (b'{"id": 1, "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "malformed_json"),  # valid, deep
    (b'{"id": 1, "prompt": "q", "candidates": ["\\ud800", "b"]}', "bad_encoding"),
    (b'{"id": 1, "prompt": "\\udfff", "candidates": ["a", "b"]}', "bad_encoding"),
    (b'{"id": 1, "prompt": "q", "candidates": ["' + b"x" * BIG + b'", "b"]}', "too_long"),
    (b'{"id": 1, "prompt": "' + b"p" * BIG + b'", "candidates": ["a", "b"]}', "too_long"),
    (b'{"id": 1, ' + b'"k": [' * 100_000 + b"]" * 100_000 + b"}", "malformed_json"),  # deep nesting
]


@pytest.mark.parametrize(("raw", "kind"), HOSTILE_CORPUS, ids=[k for _, k in HOSTILE_CORPUS])
def test_hostile_corpus_gives_a_clear_row_error(raw: bytes, kind: str) -> None:
    from genrm_rank.sdg import RowError, RowReader

    result = RowReader().parse(7, raw)
    assert isinstance(result, RowError), result
    assert result.line == 7 and result.kind in ROW_ERROR_KINDS and len(result.reason) > 10
    assert result.kind == kind, (result.kind, result.reason)
    json.dumps(result.to_dict())  # writable to the errors file
    assert result.raw is None or len(result.raw) <= 1000  # the start of a line, not all of it


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=300))
def test_fuzz_row_reader_on_bytes(raw: bytes) -> None:
    from genrm_rank.sdg import Row, RowError, RowReader

    result = RowReader().parse(1, raw)
    assert result is None or isinstance(result, (Row, RowError))
    if isinstance(result, RowError):
        assert result.kind in ROW_ERROR_KINDS and result.reason
        json.dumps(result.to_dict())


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(
    row=st.fixed_dictionaries(
        {},
        optional={
            "id": JSON_VALUES,
            "prompt": JSON_VALUES,
            "candidates": JSON_VALUES | st.lists(JSON_VALUES, max_size=4),
            "principle": JSON_VALUES,
        },
    )
)
def test_fuzz_row_reader_on_json_of_wrong_types(row: dict[str, Any]) -> None:
    from genrm_rank.sdg import Row, RowError, RowReader

    raw = json.dumps(row).encode()
    result = RowReader().parse(1, raw)
    assert isinstance(result, (Row, RowError))
    if isinstance(result, RowError):
        assert result.kind in ROW_ERROR_KINDS and result.reason
        json.dumps(result.to_dict())
    else:
        assert all(isinstance(t, str) for t in result.candidates) and len(result.candidates) >= 2


ANY_TEXT = st.text(st.characters(blacklist_categories=()), max_size=400)  # surrogates too


@settings(max_examples=400, deadline=None)
@given(
    content=st.none() | ANY_TEXT,
    reasoning=st.none() | ANY_TEXT,
    finish=st.sampled_from([None, "stop", "length", "abort", "", "tool_calls"]),
    thinking=st.booleans(),
)
def test_fuzz_parse_verdict_never_raises(
    content: str | None, reasoning: str | None, finish: str | None, thinking: bool
) -> None:
    from genrm_rank.parsing import parse_verdict

    verdict = parse_verdict(content, reasoning, finish, thinking=thinking)
    if verdict.ok:
        assert verdict.ranking is not None and 1 <= verdict.ranking <= 6
    else:
        assert verdict.failure is not None


@pytest.mark.parametrize("size", [0, 5_000_000])
def test_parse_verdict_on_megabytes(size: int) -> None:
    from genrm_rank.parsing import parse_verdict

    answer = '{"score_1": 4, "score_2": 2, "ranking": 2}'
    start = time.monotonic()
    verdict = parse_verdict("x" * size + "</think>" + answer, None, "stop")
    assert verdict.ok and verdict.ranking == 2
    bait = parse_verdict(
        '{"score_1": 1, "score_2": 5, "ranking": 6}' * (size // 40), None, "length"
    )
    assert not bait.ok
    assert time.monotonic() - start < 20.0


def test_hostile_file_through_the_pipeline(tmp_path: Path) -> None:
    """Every hostile line gets an errors-file entry; good rows are ranked; no traceback."""
    good = [
        json.dumps({"id": f"g{i}", "prompt": f"Q{i}?", "candidates": [f"a{i}", f"b{i}", f"c{i}"]})
        for i in range(3)
    ]
    extra = [
        # Past the server's context (8192 tokens, about 32k characters).
        json.dumps({"id": 92, "prompt": "q", "candidates": ["long " * 20_000, "b"]}).encode(),
    ]
    lines = [g.encode() for g in good]
    for i, (raw, _) in enumerate(HOSTILE_CORPUS):
        lines.append(raw.replace(b'"id": 1,', f'"id": {100 + i},'.encode()))
    lines += [*extra, good[0].replace('"g0"', '"g9"').encode()]
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    config = SimServerConfig(latency="constant", latency_mean=0.0, max_model_len=8192)
    with ThreadedSimServers([config]) as servers:
        argv = select_argv(path, tmp_path / "out.jsonl", servers.urls)
        status = main([*argv, "--max-new-tokens", "512", "--retries", "1"])
    assert status == 1  # some rows failed, each reported
    out = read_rows(tmp_path / "out.jsonl")
    errors = read_rows(tmp_path / "out.errors.jsonl")
    ranked = {r["id"] for r in out}
    failed = {e["line"] for e in errors}
    assert {"g0", "g1", "g2", "g9"} <= ranked
    assert len(out) + len(errors) == len(lines)  # every line accounted for, once
    assert {e["line"] for e in errors}.isdisjoint({1, 2, 3, len(lines)})
    assert len(failed) == len(errors)
    for entry in errors:
        assert entry["kind"] and len(entry["reason"]) > 10
    long_row = next(e for e in errors if e["id"] == 92)
    assert "context" in json.dumps(long_row).lower() or "max_model_len" in json.dumps(long_row)


# ------------------------------------------------------------------------------------------
# Secrets: the key comes from the environment or a file, and goes nowhere else

KEY = "sk-trial-7f3a9c1e5b2d4f60"


def test_no_option_takes_a_key_on_the_command_line() -> None:
    from genrm_rank.cli import build_parser

    parser = build_parser()
    subparsers = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    flags = {
        flag
        for action in subparsers
        for sub in action.choices.values()  # type: ignore[attr-defined]
        for option in sub._actions
        for flag in option.option_strings
    }
    assert {"--api-key-env", "--api-key-file"} <= flags
    assert not {f for f in flags if "key" in f} - {
        "--api-key-env",
        "--api-key-file",
        "--candidate-id-key",
        "--candidate-text-key",
    }


def test_the_key_leaks_nowhere(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    from genrm_rank.judges.openai_http import OpenAIJudge

    caplog.set_level(logging.DEBUG)
    rows = tmp_path / "in.jsonl"
    write_rows(rows, n_rows=4)
    with rows.open("a") as handle:
        handle.write('{"id": "bad", "prompt": 5}\n')
    monkeypatch.setenv("TRIAL_KEY", KEY)
    key_file = tmp_path / "key.txt"
    key_file.write_text(KEY + "\n")
    keyed = SimServerConfig(api_key=KEY, latency="constant", latency_mean=0.0, fault_rate_500=0.2)
    # The first row's 12 calls are answered, then every answer is unreadable: two rows fail
    # (their errors quote the answers), and the fourth stops the run as systematic (exit 4).
    unreadable = SimServerConfig(
        api_key=KEY,
        latency="constant",
        latency_mean=0.0,
        fault_sequence=("ok",) * 12 + ("unreadable",) * 400,
    )
    statuses = []
    with ThreadedSimServers([keyed, unreadable]) as servers:
        ok_url, bad_url = servers.urls
        base = ["rank", str(rows), "--model", "sim-genrm", "--judgements", "--max-resends", "8"]
        for i, (url, source) in enumerate(
            [(ok_url, ["--api-key-env", "TRIAL_KEY"]), (bad_url, ["--api-key-file", str(key_file)])]
        ):
            out = tmp_path / f"out{i}.jsonl"
            statuses.append(
                main(
                    [
                        *base,
                        "-o",
                        str(out),
                        "--endpoint",
                        url,
                        *source,
                        "--cache",
                        str(tmp_path / f"c{i}.db"),
                        "--summary-json",
                        str(tmp_path / f"s{i}.json"),
                        "--retries",
                        "1",
                        "--concurrency",
                        "1",
                    ]
                )
            )
        monkeypatch.setenv("TRIAL_KEY", KEY[::-1])  # a wrong key: refused in the server's words
        statuses.append(
            main(
                [
                    *base,
                    "-o",
                    str(tmp_path / "out2.jsonl"),
                    "--endpoint",
                    ok_url,
                    "--api-key-env",
                    "TRIAL_KEY",
                    "--resume",
                ]
            )
        )
        judge = OpenAIJudge([ok_url], model="sim-genrm", api_key_env="TRIAL_KEY")
        reprs = [repr(judge), str(vars(judge))]
        with pytest.raises(Exception) as refused:
            import asyncio

            from genrm_rank.judges.base import PairRequest

            async def ask() -> None:
                async with judge:
                    await judge.judge(PairRequest("q", "a", "b"))

            asyncio.run(ask())
        reprs += [repr(refused.value), str(refused.value)]
    assert statuses == [1, 4, 2]  # the bad row; systematic failures; the wrong key
    assert "401" in reprs[-1]
    captured = capsys.readouterr()
    texts = {"stdout": captured.out, "stderr": captured.err, "log": caplog.text}
    texts.update({f"repr{i}": r for i, r in enumerate(reprs)})
    files = [p for p in tmp_path.iterdir() if p.name not in {"key.txt"}]
    assert any(p.name.endswith(".errors.jsonl") for p in files)
    assert any(p.name.startswith("c1.db") for p in files)
    for path in files:
        texts[path.name] = path.read_bytes().decode("latin-1")
    with __import__("sqlite3").connect(tmp_path / "c1.db") as conn:
        texts["cache rows"] = json.dumps(conn.execute("SELECT * FROM verdicts").fetchall())
    leaks = {name for name, text in texts.items() if KEY in text or KEY[::-1] in text}
    assert not leaks
    errors = [t for name, t in texts.items() if name.endswith(".errors.jsonl")]
    assert any('"failed_requests"' in t for t in errors)  # the server's words were searched
    assert '"judgements"' in texts["out0.jsonl"] or "judgements" in texts["out0.jsonl"]


# ------------------------------------------------------------------------------------------
# Security and configuration (issue 18): the key stays with its origin and out of every output

Answer = tuple[int, dict[str, str], bytes]


class ScriptedServer:
    """A loopback HTTP server whose answers a function writes: ``answer(method, path, headers)``.

    Records every request's method, path and ``Authorization`` header (``None`` when absent).
    """

    def __init__(self, answer: Callable[[str, str, Mapping[str, str]], Answer]) -> None:
        self.requests: list[tuple[str, str, str | None]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _reply(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                outer.requests.append((self.command, self.path, self.headers.get("Authorization")))
                status, headers, body = answer(self.command, self.path, self.headers)
                self.send_response(status)
                for name, value in {"Content-Length": str(len(body)), **headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _reply

            def log_message(self, *args: Any) -> None:
                """No access log: the trials read the server's own counts."""

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


MODELS = json.dumps({"object": "list", "data": [{"id": "sim-genrm"}]}).encode()


def redirect_trial() -> dict[str, int]:
    """Model discovery redirected to another origin (another port), then to the same origin."""
    from genrm_rank.judges.discovery import served_model
    from genrm_rank.judges.openai_http import resolve_api_key

    def other(method: str, path: str, headers: Mapping[str, str]) -> Answer:
        return 200, {"Content-Type": "application/json"}, MODELS

    os.environ["TRIAL_KEY"] = KEY
    try:
        with ScriptedServer(other) as target:

            def first(method: str, path: str, headers: Mapping[str, str]) -> Answer:
                if path == "/v1/models":  # to the other origin
                    return 302, {"Location": target.url + "/v1/models"}, b""
                if path == "/same/v1/models":  # to this origin
                    return 307, {"Location": "/v1/models-here"}, b""
                return 200, {"Content-Type": "application/json"}, MODELS

            with ScriptedServer(first) as origin:
                key = resolve_api_key(None, "TRIAL_KEY", None)  # as the CLI finds it
                models = [
                    served_model(origin.url + "/v1", key),
                    served_model(origin.url + "/same/v1", key),
                ]
    finally:
        del os.environ["TRIAL_KEY"]
    bearer = f"Bearer {KEY}"
    return {
        "models_found": sum(m == "sim-genrm" for m in models),
        "requests_to_other_origin": len(target.requests),
        "key_seen_by_other_origin": sum(auth == bearer for _, _, auth in target.requests),
        "key_kept_by_same_origin_redirect": sum(
            auth == bearer and path == "/v1/models-here" for _, path, auth in origin.requests
        ),
    }


def _run_captured(argv: list[str]) -> tuple[int, str]:
    """``main(argv)`` -> (exit status, what it wrote to stdout and stderr)."""
    stream = io.StringIO()
    with contextlib.redirect_stderr(stream), contextlib.redirect_stdout(stream):
        status = main(argv)
    return status, stream.getvalue()


def _echoing(status: int) -> Callable[[str, str, Mapping[str, str]], Answer]:
    """Lists the model, and answers every chat request with ``status``, quoting the key."""

    def answer(method: str, path: str, headers: Mapping[str, str]) -> Answer:
        if method == "GET":
            return 200, {"Content-Type": "application/json"}, MODELS
        said = f"rejected: you sent {headers.get('Authorization')}"
        body = json.dumps({"error": {"message": said, "code": status}}).encode()
        return status, {"Content-Type": "application/json"}, body

    return answer


def echo_trial(work: Path) -> dict[str, Any]:
    """A server that quotes the ``Authorization`` header back in 400, 401 and 500 bodies."""
    rows = work / "in.jsonl"
    rows.write_text(json.dumps({"id": "q", "prompt": "Q?", "candidates": ["a", "b"]}) + "\n")
    found: dict[str, int] = {}
    statuses: dict[str, int] = {}
    requests = 0
    os.environ["TRIAL_KEY"] = KEY
    try:
        for status in (400, 401, 500):
            with ScriptedServer(_echoing(status)) as server:
                out = work / f"out{status}.jsonl"
                argv = ["select", str(rows), "-o", str(out), "--endpoint", server.url + "/v1"]
                argv += ["--api-key-env", "TRIAL_KEY", "--summary-json", f"{out}.summary.json"]
                argv += ["--max-resends", "0", "--retries", "0", "--swap", "random"]
                statuses[str(status)], said = _run_captured(argv)
            requests += sum(m == "POST" and a == f"Bearer {KEY}" for m, _, a in server.requests)
            texts = {"stderr": said}
            for path in work.glob(f"out{status}*"):
                texts[path.name.replace(str(status), "")] = path.read_text(encoding="utf-8")
            for name, text in texts.items():
                found[name] = found.get(name, 0) + text.count(KEY)
    finally:
        del os.environ["TRIAL_KEY"]
    return {
        "exit_status_by_http_status": statuses,
        "answers_quoting_the_key": requests,
        "key_occurrences": found,
    }


PASSWORD = "pw-trial-41c9e"


def password_trial(work: Path) -> dict[str, Any]:
    """An endpoint URL with ``user:password@``, in the places a run can quote it."""
    rows = work / "in.jsonl"
    write_rows(rows, n_rows=2)
    urls = [
        f"http://user:{PASSWORD}@127.0.0.1:9/v1",
        f"https://user:{PASSWORD}@example.invalid/v1",
        f"ftp://user:{PASSWORD}@127.0.0.1/v1",
    ]
    occurrences = 0
    statuses = []
    for i, url in enumerate(urls):
        for extra in ([], ["--model", "m"]):
            out = work / f"out{i}{len(extra)}.jsonl"
            argv = ["select", str(rows), "-o", str(out), "--endpoint", url, *extra]
            status, said = _run_captured([*argv, "--summary-json", f"{out}.summary.json"])
            statuses.append(status)
            occurrences += said.count(PASSWORD)
    for path in work.iterdir():
        occurrences += path.read_text(encoding="utf-8", errors="replace").count(PASSWORD)
    return {"runs": len(statuses), "usage_errors": statuses.count(2), "occurrences": occurrences}


def test_discovery_keeps_the_key_from_another_origin() -> None:
    figures = redirect_trial()
    assert figures == {
        "models_found": 2,
        "requests_to_other_origin": 1,
        "key_seen_by_other_origin": 0,
        "key_kept_by_same_origin_redirect": 1,
    }


def test_a_key_echoed_by_the_server_reaches_no_output(tmp_path: Path) -> None:
    figures = echo_trial(tmp_path)
    assert figures["exit_status_by_http_status"] == {"400": 1, "401": 2, "500": 1}
    assert figures["answers_quoting_the_key"] >= 3
    names = {"stderr", "out.errors.jsonl", "out.jsonl.summary.json"}
    assert set(figures["key_occurrences"]) >= names
    assert figures["key_occurrences"] == dict.fromkeys(figures["key_occurrences"], 0)


def test_a_password_in_an_endpoint_url_is_never_echoed(tmp_path: Path) -> None:
    assert password_trial(tmp_path) == {"runs": 6, "usage_errors": 6, "occurrences": 0}


def boolean_trial(work: Path) -> dict[str, Any]:
    """Every boolean option of every subcommand, given or not, from the command line, a TOML
    file and the environment: how often the file and the environment agree with the flag."""
    from test_cli_config import BOOLEANS, flag_value, parse

    from genrm_rank.cli.options import UsageError

    agree = {"toml": 0, "env": 0}
    for command, flag in BOOLEANS:
        for flag_given in (True, False):
            from_cli = flag_value(work, command, flag, "cli", flag_given)
            for source in agree:
                agree[source] += flag_value(work, command, flag, source, flag_given) == from_cli
    argv = ["select", "in.jsonl", "-o", "o.jsonl"]
    asked = {("GENRM_NO_VERIFY_TLS", "1"), ("GENRM_NO_VERIFY_TLS", "true")}
    verification_off = refused = 0
    for name in ("GENRM_VERIFY_TLS", "GENRM_NO_VERIFY_TLS"):
        for value in ("1", "0", "true", "false"):
            try:
                off = parse(argv, {name: value}).verify_tls is False
            except UsageError:  # the former name, which read the other way round
                off, refused = False, refused + 1
            verification_off += off and (name, value) not in asked
    return {
        "boolean_options": len(BOOLEANS),
        "cases_per_source": 2 * len(BOOLEANS),
        "agree_cli_toml": agree["toml"],
        "agree_cli_env": agree["env"],
        "tls_off_unasked": verification_off,
        "former_tls_name_refused": refused,
    }


def _multi_turn_rows(path: Path, n_rows: int) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for i in range(n_rows):
            messages = [
                {"role": "user", "content": f"Hi {i}"},
                {"role": "assistant", "content": "Hello!"},
                {"role": "user", "content": f"Question {i}?"},
            ]
            row = {"id": f"q{i}", "messages": messages, "candidates": ["a", "bb", "ccc", "dddd"]}
            handle.write(json.dumps(row) + "\n")


def trl_trial(work: Path, n_rows: int = 40) -> dict[str, Any]:
    """``pairs --format trl`` on multi-turn rows against serve-sim: what is paid before it stops."""
    rows = work / "in.jsonl"
    _multi_turn_rows(rows, n_rows)
    out = work / "out.jsonl"
    argv = ["pairs", str(rows), "-o", str(out), "--format", "trl", "--model", "sim-genrm", "-q"]
    dry_status, dry_said = _run_captured([*argv, "--judge", "simulated", "--dry-run"])
    config = SimServerConfig(latency="constant", latency_mean=0.0)
    with ThreadedSimServers([config]) as servers:
        argv += ["--endpoint", servers.urls[0], "--summary-json", str(work / "s.json")]
        status, said = _run_captured(argv)
        requests = servers.stats(0).requests
    summary = json.loads((work / "s.json").read_text())
    return {
        "rows": n_rows,
        "exit_status": status,
        "summary_status": summary["status"],
        "server_requests_before_stop": requests,
        "judge_calls_before_stop": summary["judge_calls"],
        "message_names_trl_chat": "--format trl-chat" in said,
        "dry_run_exit_status": dry_status,
        "dry_run_names_trl_chat": "--format trl-chat" in dry_said,
    }


@pytest.mark.slow
def test_every_boolean_option_agrees_from_cli_file_and_environment(tmp_path: Path) -> None:
    figures = boolean_trial(tmp_path)
    cases = figures["cases_per_source"]
    assert cases >= 2 * 20  # every subcommand's flags: found, not listed by hand
    assert figures["agree_cli_toml"] == figures["agree_cli_env"] == cases
    assert figures["tls_off_unasked"] == 0 and figures["former_tls_name_refused"] == 4


def test_a_trl_run_on_multi_turn_rows_pays_nothing_before_it_stops(tmp_path: Path) -> None:
    assert trl_trial(tmp_path, n_rows=12) == {
        "rows": 12,
        "exit_status": 2,
        "summary_status": "misconfigured",
        "server_requests_before_stop": 0,
        "judge_calls_before_stop": 0,
        "message_names_trl_chat": True,
        "dry_run_exit_status": 2,
        "dry_run_names_trl_chat": True,
    }
