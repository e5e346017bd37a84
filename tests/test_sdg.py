"""Tests of genrm_rank.sdg: row validation, durable sinks, recovery, reordering, the file run."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import pytest

from genrm_rank.judges.simulated import SimulatedJudge
from genrm_rank.messages import normalize_conversation
from genrm_rank.sdg import Row, RowError, RowReader, RowSpec, prepare_output, process_file
from genrm_rank.sdg.inputs import InputError, count_lines
from genrm_rank.sdg.output import Block, JsonlSink, ReorderBuffer, drop_retried_errors, recover
from genrm_rank.sdg.rows import IdIndex, parse_shard
from genrm_rank.spec import SELECT_DEFAULTS, RankSpec

FIXTURES = Path(__file__).parent / "fixtures"


def _line(obj: object) -> bytes:
    return json.dumps(obj).encode()


# -- RowReader ---------------------------------------------------------------------------------


def test_bad_rows_corpus_matches_expected_reasons() -> None:
    expected = json.loads((FIXTURES / "bad_rows.expected.json").read_text())
    reader = RowReader(RowSpec(max_chars=expected["max_chars"]))
    raw_lines = (FIXTURES / "bad_rows.jsonl").read_bytes().split(b"\n")[:-1]
    errors = {}
    ok = []
    blank = []
    for number, raw in enumerate(raw_lines, start=1):
        parsed = reader.parse(number, raw)
        if parsed is None:
            blank.append(number)
        elif isinstance(parsed, RowError):
            errors[number] = parsed
        else:
            ok.append(number)
    assert ok == expected["ok_lines"]
    assert blank == expected["blank_lines"]
    assert sorted(errors) == [e["line"] for e in expected["errors"]]
    for e in expected["errors"]:
        got = errors[e["line"]]
        assert got.kind == e["kind"], (e, got)
        assert e["reason"] in got.reason, (e, got)


def test_candidate_objects_give_ids_and_principle() -> None:
    row = RowReader().parse(
        3,
        _line(
            {
                "id": "a",
                "prompt": "p",
                "principle": "be brief",
                "candidates": [{"id": "m1", "text": "x"}, {"id": 2, "text": "y"}],
            }
        ),
    )
    assert isinstance(row, Row)
    assert row.candidates == ("x", "y")
    assert row.candidate_ids == ("m1", "2")
    assert row.principle == "be brief"
    assert row.line == 3 and row.key == '"a"'


def test_integer_and_string_ids_are_different_keys() -> None:
    reader = RowReader()
    first = reader.parse(1, _line({"id": 1, "prompt": "p", "candidates": ["a", "b"]}))
    second = reader.parse(2, _line({"id": "1", "prompt": "p", "candidates": ["a", "b"]}))
    assert isinstance(first, Row) and isinstance(second, Row)
    assert (first.id, second.id) == (1, "1")
    assert first.key != second.key
    # Both are accepted by one reader: neither is a duplicate of the other.
    third = reader.parse(3, _line({"id": 1, "prompt": "p", "candidates": ["a", "b"]}))
    assert isinstance(third, RowError) and third.kind == "duplicate_id"


@pytest.mark.parametrize(
    ("spec", "row", "candidate_ids"),
    [
        (RowSpec(id_field="uid"), {"uid": "x", "prompt": "p", "candidates": ["a", "b"]}, None),
        (
            RowSpec(prompt_fields=("query",)),
            {"id": "x", "query": "p", "candidates": ["a", "b"]},
            None,
        ),
        (
            RowSpec(
                candidates_field="responses",
                candidate_text_key="response",
                candidate_id_key="model",
            ),
            {
                "id": "x",
                "prompt": "p",
                "responses": [{"model": "m", "response": "a"}, {"model": "n", "response": "b"}],
            },
            ("m", "n"),
        ),
    ],
)
def test_field_names_are_configurable(
    spec: RowSpec, row: dict[str, object], candidate_ids: tuple[str, ...] | None
) -> None:
    parsed = RowReader(spec).parse(1, _line(row))
    assert isinstance(parsed, Row)
    assert parsed.id == "x" and parsed.line == 1
    assert parsed.candidates == ("a", "b")
    assert parsed.candidate_ids == candidate_ids
    assert parsed.prompt_field in spec.prompt_fields
    assert normalize_conversation(parsed.conversation) == [{"role": "user", "content": "p"}]
    # Read from the configured names: the same row under the default names (ids required) is
    # refused.
    assert isinstance(RowReader(RowSpec(id_from_line=False)).parse(1, _line(row)), RowError)


def test_max_chars_none_accepts_long_texts() -> None:
    row = {"id": "x", "prompt": "p", "candidates": ["a" * 10, "b" * 300_000]}
    assert isinstance(RowReader(RowSpec(max_chars=None)).parse(1, _line(row)), Row)
    assert isinstance(RowReader(RowSpec()).parse(1, _line(row)), RowError)


# -- files -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "n"), [(b"", 0), (b"a\n", 1), (b"a\nb", 2), (b"a\n\nb\n", 3)])
def test_count_lines(tmp_path: Path, data: bytes, n: int) -> None:
    path = tmp_path / "f.jsonl"
    path.write_bytes(data)
    with path.open("rb") as stream:
        assert count_lines(stream, chunk=2) == n


@pytest.mark.parametrize(("text", "expected"), [("0/1", (0, 1)), ("3/4", (3, 4))])
def test_parse_shard(text: str, expected: tuple[int, int]) -> None:
    assert parse_shard(text) == expected


@pytest.mark.parametrize("text", ["4/4", "-1/2", "1", "a/b", "0/0"])
def test_parse_shard_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="'shard'"):
        parse_shard(text)


def test_sink_appends_and_fsyncs_on_interval(tmp_path: Path) -> None:
    now = [0.0]
    sink = JsonlSink(tmp_path / "o.jsonl", fsync_interval=10.0, clock=lambda: now[0])
    sink.write(b'{"id": 1}\n')
    assert sink._dirty  # not synced yet
    now[0] = 11.0
    sink.write(b'{"id": 2}\n')
    assert not sink._dirty  # synced once the interval passed
    sink.close()
    assert (tmp_path / "o.jsonl").read_bytes() == b'{"id": 1}\n{"id": 2}\n'


def test_recover_truncates_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "o.jsonl"
    path.write_bytes(b'{"id": "a"}\n{"id": "b"}\n{"id": "c", "tr')
    found = recover(path, key_field="id")
    assert len(found.keys) == 2 and '"a"' in found.keys and '"b"' in found.keys
    assert found.truncated_bytes == len(b'{"id": "c", "tr')
    assert path.read_bytes() == b'{"id": "a"}\n{"id": "b"}\n'


def test_recover_drops_an_incomplete_pair_group(tmp_path: Path) -> None:
    path = tmp_path / "o.jsonl"
    lines = [
        {"id": 1, "pair_index": 0, "n_pairs": 2},
        {"id": 1, "pair_index": 1, "n_pairs": 2},
        {"id": 2, "pair_index": 0, "n_pairs": 3},
        {"id": 2, "pair_index": 1, "n_pairs": 3},
    ]
    good = b"".join(_line(x) + b"\n" for x in lines[:2])
    path.write_bytes(good + b"".join(_line(x) + b"\n" for x in lines[2:]))
    found = recover(path, key_field="id", grouped=True)
    assert len(found.keys) == 1 and "1" in found.keys and "2" not in found.keys
    assert path.read_bytes() == good


def test_recover_refuses_a_foreign_file(tmp_path: Path) -> None:
    path = tmp_path / "o.jsonl"
    path.write_bytes(b"not json\n")
    with pytest.raises(ValueError, match="not valid JSON"):
        recover(path, key_field="id")


def test_id_index_grows_and_keeps_every_key() -> None:
    index = IdIndex(capacity=2)
    for i in range(5000):
        assert index.setdefault(f"k{i}", i) is None
    assert len(index) == 5000
    assert all(index.get(f"k{i}") == i for i in range(0, 5000, 7))
    assert index.setdefault("k42", 0) == 42
    assert "k5000" not in index and 5 not in index


def test_reorder_buffer_emits_in_sequence() -> None:
    emitted: list[int] = []
    buffer = ReorderBuffer(lambda b: emitted.append(b.lines[0]["n"]))
    seqs = [buffer.reserve() for _ in range(4)]
    for s in (2, 0, 3):
        buffer.put(s, Block("out", ({"n": s},)))
    assert emitted == [0]
    assert buffer.outstanding == 3  # two finished rows wait behind row 1
    buffer.put(seqs[1], Block("out", ({"n": 1},)))
    assert emitted == [0, 1, 2, 3]
    assert buffer.outstanding == 0
    with pytest.raises(ValueError, match="seq"):
        buffer.put(1, Block("out", ()))


# -- process_file ----------------------------------------------------------------------------


def _write_rows(path: Path, n: int, k: int = 4) -> None:
    with open(path, "w") as f:
        for i in range(n):
            f.write(
                json.dumps(
                    {
                        "id": i,
                        "prompt": f"q{i}",
                        "candidates": [f"answer {j} of {i}" for j in range(k)],
                    }
                )
                + "\n"
            )


def _fmt(row: Row, ranking: object) -> Block:
    return Block("out", ({"id": row.id, "best": ranking.best},))  # type: ignore[attr-defined]


async def _run(tmp_path: Path, name: str, **kwargs: object) -> tuple[Path, object]:
    out = tmp_path / f"{name}.jsonl"
    sinks = {"out": JsonlSink(out), "errors": JsonlSink(tmp_path / f"{name}.err.jsonl")}
    spec = kwargs.pop("spec", SELECT_DEFAULTS)
    outcome = await process_file(
        tmp_path / "in.jsonl",
        judge=SimulatedJudge(seed=1),
        spec=spec,  # type: ignore[arg-type]
        formatter=_fmt,
        sinks=sinks,
        **{"concurrency": 8, **kwargs},  # type: ignore[arg-type]
    )
    return out, outcome


async def test_an_input_that_cannot_be_opened_raises_before_the_run(tmp_path: Path) -> None:
    """An unreadable input is the caller's error (InputError), not a run that ended."""
    sinks = {"out": JsonlSink(tmp_path / "o.jsonl"), "errors": JsonlSink(tmp_path / "e.jsonl")}
    with pytest.raises(InputError, match=r"nope\.jsonl is no such file"):
        await process_file(
            tmp_path / "nope.jsonl",
            judge=SimulatedJudge(seed=1),
            spec=SELECT_DEFAULTS,
            formatter=_fmt,
            sinks=sinks,
        )
    assert not (tmp_path / "o.jsonl").exists()


async def test_output_is_in_input_order_with_a_small_pending_limit(tmp_path: Path) -> None:
    _write_rows(tmp_path / "in.jsonl", 60)
    out, outcome = await _run(tmp_path, "a", concurrency=16, max_pending=3)
    ids = [json.loads(x)["id"] for x in out.read_text().splitlines()]
    assert ids == list(range(60))
    assert outcome.status == "complete"  # type: ignore[attr-defined]


async def test_same_seed_same_output_whatever_the_window(tmp_path: Path) -> None:
    _write_rows(tmp_path / "in.jsonl", 30, k=6)
    swiss = RankSpec(strategy="swiss")
    a, _ = await _run(tmp_path, "a", concurrency=1, spec=swiss)
    b, _ = await _run(tmp_path, "b", concurrency=64, spec=swiss)
    assert a.read_bytes() == b.read_bytes()


async def test_shards_partition_the_rows(tmp_path: Path) -> None:
    _write_rows(tmp_path / "in.jsonl", 10)
    got = []
    for i in range(3):
        out, _ = await _run(tmp_path, f"s{i}", shard=(i, 3))
        got += [json.loads(x)["id"] for x in out.read_text().splitlines()]
    assert sorted(got) == list(range(10))


async def test_cap_stops_the_run_and_keeps_a_prefix(tmp_path: Path) -> None:
    _write_rows(tmp_path / "in.jsonl", 20)
    out, outcome = await _run(tmp_path, "c", concurrency=4, max_calls=30)
    assert outcome.status == "cap" and outcome.cap == "max_calls"  # type: ignore[attr-defined]
    ids = [json.loads(x)["id"] for x in out.read_text().splitlines()]
    assert ids == list(range(len(ids))) and 0 < len(ids) < 20


async def test_cancellation_keeps_written_rows_whole(tmp_path: Path) -> None:
    _write_rows(tmp_path / "in.jsonl", 200)
    task = asyncio.ensure_future(_run(tmp_path, "x", concurrency=4))
    for _ in range(2000):  # bounded: until a few rows are out
        await asyncio.sleep(0.001)
        path = tmp_path / "x.jsonl"
        if path.exists() and path.stat().st_size > 200:
            break
    task.cancel()
    out, outcome = await task
    assert outcome.status == "interrupted"  # type: ignore[attr-defined]
    lines = out.read_bytes().split(b"\n")
    assert lines[-1] == b""
    assert [json.loads(x)["id"] for x in lines[:-1]] == list(range(len(lines) - 1))


class _PromptJudge:
    """Fails for prompt id "1" (unreadable, or a judge error); fine for every other prompt."""

    def __init__(self, raise_error: bool = False) -> None:
        self.raise_error = raise_error

    async def judge(self, request: object) -> object:
        from genrm_rank.errors import ReplayMissError
        from genrm_rank.verdict import FailureKind, Verdict

        if request.prompt_id == "1":  # type: ignore[attr-defined]
            if self.raise_error:
                raise ReplayMissError("no record for prompt 1")
            return Verdict.failed(FailureKind.UNREADABLE, raw="?")
        return Verdict(score_1=4, score_2=2, ranking=2)


async def _run_resumable(tmp_path: Path, judge: object) -> tuple[str, str]:
    out, err = tmp_path / "o.jsonl", tmp_path / "e.jsonl"
    keys = IdIndex()
    recover(out, key_field="id", keys=keys)
    lines = recover(err, key_field="line").keys
    await process_file(
        tmp_path / "in.jsonl",
        judge=judge,  # type: ignore[arg-type]
        formatter=_fmt,
        spec=SELECT_DEFAULTS,
        sinks={"out": JsonlSink(out), "errors": JsonlSink(err)},
        skip_keys=keys,
        skip_lines=lines,
    )
    return out.read_text(), err.read_text()


async def test_resume_skips_rows_whose_ranking_failed(tmp_path: Path) -> None:
    _write_rows(tmp_path / "in.jsonl", 3, k=2)
    first = await _run_resumable(tmp_path, _PromptJudge())
    assert len(first[1].splitlines()) == 1
    assert await _run_resumable(tmp_path, _PromptJudge()) == first


async def test_a_judge_error_row_says_judge_error(tmp_path: Path) -> None:
    _write_rows(tmp_path / "in.jsonl", 3, k=2)
    out, err = await _run_resumable(tmp_path, _PromptJudge(raise_error=True))
    [error] = [json.loads(x) for x in err.splitlines()]
    assert error["kind"] == "judge_error" and "no record for prompt 1" in error["reason"]
    assert [json.loads(x)["id"] for x in out.splitlines()] == [0, 2]


# -- lone surrogates: a row error, never a crash ------------------------------------------------

SURROGATE_ROWS = [
    (b'{"id": "a\\ud800", "prompt": "q", "candidates": ["x", "y"]}', "'id'"),
    (
        b'{"id": 1, "prompt": "q", "candidates": ["x", "y"], "meta": {"n": ["\\udfff"]}}',
        "meta.n[0]",
    ),
    (b'{"id": 1, "prompt": "q", "candidates": ["x", "y"], "\\ud83d": 1}', "field '\\ud83d'"),
]


@pytest.mark.parametrize(("raw", "where"), SURROGATE_ROWS)
def test_a_lone_surrogate_anywhere_in_a_row_is_a_row_error(raw: bytes, where: str) -> None:
    error = RowReader().parse(3, raw)
    assert isinstance(error, RowError) and error.kind == "bad_encoding", error
    assert where in error.reason and "lone surrogate" in error.reason
    block = Block("errors", (error.to_dict(),), error)
    assert json.loads(block.encode()) == json.loads(json.dumps(error.to_dict()))


def test_a_surrogate_pair_is_text_and_kept() -> None:
    row = RowReader().parse(1, b'{"id": "\\ud83d\\ude00", "prompt": "q", "candidates": ["x", "y"]}')
    assert isinstance(row, Row) and row.id == "\U0001f600"


def test_block_encode_escapes_surrogates_only_in_the_errors_file() -> None:
    line = {"id": "a\ud800", "kind": "bad_encoding"}
    assert Block("errors", (line,)).encode() == b'{"id": "a\\ud800", "kind": "bad_encoding"}\n'
    with pytest.raises(UnicodeEncodeError):
        Block("out", (line,)).encode()


class _SurrogateJudge:
    """Reasons with a lone surrogate (a server's JSON "\\ud800"), answers slot 1 better."""

    async def judge(self, request: object) -> object:
        from genrm_rank.verdict import Verdict

        return Verdict(score_1=4, score_2=2, ranking=2, raw="ok \ud800", reasoning="hm \udc00")


def _fmt_reasoning(row: Row, ranking: object) -> Block:
    verdict = ranking.judgements[0].verdict  # type: ignore[attr-defined]
    line = {"id": row.id, "why": verdict.reasoning, "note": row.data.get("note")}
    return Block("out", (line,))


async def test_surrogates_in_rows_and_reasoning_never_end_the_run(tmp_path: Path) -> None:
    lines = [
        b'{"id": 0, "prompt": "q", "candidates": ["x", "y"]}',
        b'{"id": "bad\\ud800", "prompt": "q", "candidates": ["x", "y"]}',
        b'{"id": 2, "prompt": "q", "candidates": ["x", "y"], "note": "\\udbff"}',
        b'{"id": 3, "prompt": "q", "candidates": ["x", "y"], "note": "fine \\u00e9"}',
    ]
    (tmp_path / "in.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    out, err = tmp_path / "o.jsonl", tmp_path / "e.jsonl"
    outcome = await process_file(
        tmp_path / "in.jsonl",
        judge=_SurrogateJudge(),  # type: ignore[arg-type]
        spec=SELECT_DEFAULTS,
        formatter=_fmt_reasoning,
        sinks={"out": JsonlSink(out), "errors": JsonlSink(err)},
    )
    assert outcome.status == "complete"
    got = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in got] == [0, 3]
    assert got[0]["why"] == "hm \ufffd" and got[1]["note"] == "fine \u00e9"
    errors = [json.loads(x) for x in err.read_text(encoding="utf-8").splitlines()]
    assert [(e["line"], e["id"], e["kind"]) for e in errors] == [
        (2, "bad\ud800", "bad_encoding"),
        (3, 2, "bad_encoding"),
    ]


async def test_a_formatter_writing_a_surrogate_gives_a_row_error(tmp_path: Path) -> None:
    _write_rows(tmp_path / "in.jsonl", 3, k=2)

    def fmt(row: Row, ranking: object) -> Block:
        return Block("out", ({"id": row.id, "x": "\ud800" if row.id == 1 else "ok"},))

    out, err = tmp_path / "o.jsonl", tmp_path / "e.jsonl"
    outcome = await process_file(
        tmp_path / "in.jsonl",
        judge=SimulatedJudge(seed=1),
        spec=SELECT_DEFAULTS,
        formatter=fmt,
        sinks={"out": JsonlSink(out), "errors": JsonlSink(err)},
    )
    assert outcome.status == "complete"
    assert [json.loads(x)["id"] for x in out.read_text().splitlines()] == [0, 2]
    [error] = [json.loads(x) for x in err.read_text().splitlines()]
    assert error["id"] == 1 and error["kind"] == "bad_encoding" and "'\\ud800'" in error["reason"]


# -- a row of 10,000 candidates: refused up front, not 50 million pairs ------------------------


def _wide_rows(path: Path, n_candidates: int) -> None:
    rows = [
        {"id": 0, "prompt": "q0", "candidates": ["a", "b", "c"]},
        {"id": 1, "prompt": "q1", "candidates": [f"c{j}" for j in range(n_candidates)]},
        {"id": 2, "prompt": "q2", "candidates": ["a", "b", "c"]},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_a_row_over_max_candidates_is_refused_before_its_candidates_are_read() -> None:
    raw = _line({"id": 1, "prompt": "q", "candidates": [f"c{j}" for j in range(10_000)]})
    error = RowReader().parse(1, raw)
    assert isinstance(error, RowError) and error.kind == "too_many_candidates"
    assert "10000 candidates, over max_candidates=1024" in error.reason
    assert isinstance(RowReader(RowSpec(max_candidates=None)).parse(1, raw), Row)
    with pytest.raises(ValueError, match="'max_candidates'"):
        RowSpec(max_candidates=1)


async def test_a_row_of_ten_thousand_candidates_keeps_the_other_rows_in_bounded_memory(
    tmp_path: Path,
) -> None:
    import tracemalloc

    _wide_rows(tmp_path / "in.jsonl", 10_000)
    tracemalloc.start()
    try:
        out, outcome = await _run(tmp_path, "w", spec=RankSpec(strategy="round_robin"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert outcome.status == "complete"  # type: ignore[attr-defined]
    assert [json.loads(x)["id"] for x in out.read_text().splitlines()] == [0, 2]
    [error] = [json.loads(x) for x in (tmp_path / "w.err.jsonl").read_text().splitlines()]
    assert (error["id"], error["kind"]) == (1, "too_many_candidates")
    assert peak < 64 * 2**20  # all 50 million pairs would take gigabytes


# -- persistent faults: stop, then resume the rows the judge failed ----------------------------


class _BrokenJudge:
    """Every call fails as a rate-limited server's does (no answer)."""

    def __init__(self) -> None:
        self.requests: list[object] = []

    async def judge(self, request: object) -> object:
        from genrm_rank.verdict import FailureKind, Verdict

        self.requests.append(request)
        return Verdict.failed(FailureKind.UNAVAILABLE, error="u: HTTP 429: slow down", attempts=0)


async def _resumable_run(
    tmp_path: Path, judge: object, *, resume: bool, concurrency: int = 64
) -> object:
    files = prepare_output(
        {"out": tmp_path / "o.jsonl", "errors": tmp_path / "e.jsonl"},
        resume=resume,
        overwrite=not resume,
    )
    return await process_file(
        tmp_path / "in.jsonl",
        judge=judge,  # type: ignore[arg-type]
        formatter=_fmt,
        spec=dataclasses.replace(SELECT_DEFAULTS, swap="none", retries=0),
        sinks=files.sinks,
        skip_keys=files.skip_keys,
        skip_lines=files.skip_lines,
        concurrency=concurrency,
    )


async def test_a_persistent_fault_stops_the_run_and_resume_completes_every_row(
    tmp_path: Path,
) -> None:
    _write_rows(tmp_path / "in.jsonl", 40, k=2)
    (tmp_path / "in.jsonl").open("a").write('{"id": "bad", "prompt": "q", "candidates": ["x"]}\n')
    broken = _BrokenJudge()
    outcome = await _resumable_run(tmp_path, broken, resume=False, concurrency=1)
    assert outcome.status == "systematic_failure"  # type: ignore[attr-defined]
    assert "HTTP 429: slow down" in outcome.message  # type: ignore[attr-defined]
    assert len(broken.requests) == 8  # one call a row, one at a time: not 40 rows
    written = [json.loads(x) for x in (tmp_path / "e.jsonl").read_text().splitlines()]
    assert [(e["line"], e["cause"]) for e in written] == [(i, "judge") for i in range(1, 8)]
    outcome = await _resumable_run(tmp_path, SimulatedJudge(seed=1), resume=True)
    assert outcome.status == "complete"  # type: ignore[attr-defined]
    ids = [json.loads(x)["id"] for x in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert ids == list(range(40))  # every row once, in order
    [error] = [json.loads(x) for x in (tmp_path / "e.jsonl").read_text().splitlines()]
    assert error["kind"] == "too_few_candidates" and error["cause"] == "row"
    # A second resume has nothing left to do: the row refused for its content stays, once.
    before = (tmp_path / "e.jsonl").read_bytes()
    outcome = await _resumable_run(tmp_path, _BrokenJudge(), resume=True)
    assert outcome.status == "complete"  # type: ignore[attr-defined]
    assert (tmp_path / "e.jsonl").read_bytes() == before


def test_resume_takes_judge_failures_out_of_the_errors_file(tmp_path: Path) -> None:
    refused = [{"failure": "rejected", "error": "HTTP 400: too long"}]
    entries = [
        {"line": 1, "kind": "malformed_json", "cause": "row"},
        {"line": 2, "kind": "no_usable_verdict", "cause": "judge"},
        {"line": 3, "kind": "judge_error"},  # written before 'cause' existed: the judge's
        {"line": 4, "kind": "no_usable_verdict", "failed_requests": refused},  # the row's
        {"line": 5, "kind": "too_few_candidates"},
        {"line": 6, "kind": "no_usable_verdict", "cause": "row", "failed_requests": refused},
    ]
    errors = tmp_path / "e.jsonl"
    errors.write_text("".join(json.dumps(e) + "\n" for e in entries) + '{"line": 7, "ki')
    files = prepare_output({"out": tmp_path / "o.jsonl", "errors": errors}, resume=True)
    kept = [json.loads(x)["line"] for x in errors.read_text().splitlines()]
    assert kept == [1, 4, 5, 6]
    assert sorted(k for k in map(str, range(1, 8)) if k in files.skip_lines) == ["1", "4", "5", "6"]
    assert files.recovered["errors"].retried == 2


def test_an_errors_file_with_nothing_to_retry_is_left_as_it_is(tmp_path: Path) -> None:
    errors = tmp_path / "e.jsonl"
    errors.write_text(json.dumps({"line": 1, "kind": "malformed_json", "cause": "row"}) + "\n")
    inode = errors.stat().st_ino
    assert drop_retried_errors(errors) == 0
    assert errors.stat().st_ino == inode
    assert drop_retried_errors(tmp_path / "missing.jsonl") == 0


def test_rows_without_ids_get_line_ids_by_default() -> None:
    reader = RowReader()
    first = reader.parse(3, _line({"prompt": "p", "candidates": ["a", "b"]}))
    assert isinstance(first, Row) and first.id == "line:3" and first.data["id"] == "line:3"
    assert reader.id_from_line is True
    # Mixing stays an error: a later row with an id is refused.
    mixed = reader.parse(4, _line({"id": "x", "prompt": "p", "candidates": ["a", "b"]}))
    assert isinstance(mixed, RowError) and mixed.kind == "bad_field"
    assert "'id'" in mixed.reason and "first row has no id" in mixed.reason


def test_rows_with_ids_then_one_without_is_an_error() -> None:
    reader = RowReader()
    first = reader.parse(1, _line({"id": "x", "prompt": "p", "candidates": ["a", "b"]}))
    assert isinstance(first, Row) and first.id == "x" and reader.id_from_line is False
    mixed = reader.parse(2, _line({"prompt": "p", "candidates": ["a", "b"]}))
    assert isinstance(mixed, RowError) and mixed.kind == "missing_field"
    assert "first row has one" in mixed.reason and mixed.field == "id_field"


@pytest.mark.parametrize("field", ["problem", "question", "instruction", "input", "prompt"])
def test_common_prompt_fields_are_recognised(field: str) -> None:
    parsed = RowReader().parse(1, _line({"id": 1, field: "p", "candidates": ["a", "b"]}))
    assert isinstance(parsed, Row) and parsed.prompt_field == field
    assert normalize_conversation(parsed.conversation) == [{"role": "user", "content": "p"}]


def test_a_row_with_two_prompt_fields_is_refused_naming_them() -> None:
    row = {"id": 1, "instruction": "do", "input": "this", "candidates": ["a", "b"]}
    parsed = RowReader().parse(1, _line(row))
    assert isinstance(parsed, RowError) and parsed.kind == "ambiguous_field"
    assert "'instruction' and 'input'" in parsed.reason and "ambiguous" in parsed.reason
    assert parsed.to_dict()["keys"] == ["id", "instruction", "input", "candidates"]
    # A null field is absent (a Parquet or dataset row holds every column of its table).
    both = {"id": 1, "prompt": None, "messages": [{"role": "user", "content": "p"}]}
    parsed = RowReader().parse(1, _line({**both, "candidates": ["a", "b"]}))
    assert isinstance(parsed, Row) and parsed.prompt_field == "messages"
    # Naming the field settles it.
    named = RowReader(RowSpec(prompt_fields=("instruction",))).parse(1, _line(row))
    assert isinstance(named, Row) and named.prompt_field == "instruction"


def _assistant(text: str | None) -> dict[str, str | None]:
    return {"role": "assistant", "content": text}


@pytest.mark.parametrize(
    ("candidates", "ids"),
    [
        (["a", "b"], None),
        ([{"id": "m", "text": "a"}, {"id": "n", "text": "b"}], ("m", "n")),
        ([_assistant("a"), _assistant("b")], None),
        ([[_assistant("a")], [_assistant("b")]], None),  # TRL and vLLM completions
        (
            [
                [{"role": "user", "content": "p"}, _assistant("a")],
                [{"role": "user", "content": "p"}, _assistant("b")],
            ],
            None,
        ),
        ([[{"role": "assistant", "content": [{"type": "text", "text": "a"}]}], "b"], None),
    ],
)
def test_candidates_may_be_texts_objects_or_messages(
    candidates: list[object], ids: tuple[str, ...] | None
) -> None:
    parsed = RowReader().parse(1, _line({"id": 1, "prompt": "p", "candidates": candidates}))
    assert isinstance(parsed, Row), parsed
    assert parsed.candidates == ("a", "b") and parsed.candidate_ids == ids


@pytest.mark.parametrize(
    ("candidate", "words"),
    [
        ([{"role": "user", "content": "a"}], "must be the assistant's turn"),
        ([], "empty list of messages"),
        (["a"], "must be a message object"),
        ({"role": "assistant", "content": 3}, "must be a string or a list of text parts"),
    ],
)
def test_bad_message_candidates_are_refused(candidate: object, words: str) -> None:
    row = {"id": 1, "prompt": "p", "candidates": ["x", candidate]}
    parsed = RowReader().parse(1, _line(row))
    assert isinstance(parsed, RowError) and parsed.kind == "bad_field"
    assert words in parsed.reason and "candidates[1]" in parsed.reason


def test_a_null_assistant_message_is_dropped_like_a_null_candidate() -> None:
    row = {"id": 1, "prompt": "p", "candidates": ["a", "b", [_assistant(None)]]}
    parsed = RowReader().parse(1, _line(row))
    assert isinstance(parsed, Row) and parsed.dropped == ({"index": 2, "reason": "null"},)


def test_the_package_exports_what_a_pipeline_author_needs_only() -> None:
    """About a dozen names; internals (IdIndex, ReorderBuffer, count_lines) stay in modules."""
    import genrm_rank.sdg as sdg

    needed = "Row RowError RowReader RowSpec RunOutcome SelectThresholds merge_shards pair_rows"
    needed += " preference_pairs prepare_output process_file rank_rows select_rows"
    assert sdg.__all__ == needed.split()
    for internal in ("IdIndex", "ReorderBuffer", "count_lines", "Block", "parse_shard"):
        assert not hasattr(sdg, internal)


def test_lines_are_counted_in_one_place() -> None:
    """The input module's counter is the only one; rows.py no longer has its own."""
    import genrm_rank.sdg.rows as rows

    assert not hasattr(rows, "count_lines")
