"""Input sources (:mod:`genrm_rank.sdg.inputs`) and the rows they feed, in the library and CLI.

Every input is a small file written here: gzip, zstandard, a JSON array, Parquet (pyarrow, a
dev dependency), a dataset saved with ``datasets`` (a dev dependency), and standard input.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from genrm_rank.cli import main
from genrm_rank.cli.run import format_rows
from genrm_rank.sdg import RowReader, RowSpec
from genrm_rank.sdg import inputs as inputs_module
from genrm_rank.sdg.inputs import (
    InputError,
    InputProblem,
    dataset_source,
    file_labels,
    group_messages,
    merge_candidate_files,
    open_input,
)
from genrm_rank.sdg.rows import Row, RowError


def rows_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def sample_rows(n: int = 4) -> list[dict[str, Any]]:
    return [
        {"id": f"r{i}", "prompt": f"What is {i} + {i}?", "candidates": [f"{2 * i}", "no", "5"]}
        for i in range(n)
    ]


def jsonl(rows: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


def parsed(source: Any, spec: RowSpec | None = None) -> list[Row | RowError | None]:
    reader = RowReader(spec)
    return [reader.parse(number, item) for number, item in source]


def run_main(*args: object) -> int:
    try:
        return main([str(a) for a in args])
    except SystemExit as exc:  # argparse
        return int(exc.code or 0)


SELECT = ("select", "--judge", "simulated", "--quiet", "--strategy", "round_robin")

# --------------------------------------------------------------------------------------------
# Formats


def test_gzip_jsonl_reads_as_the_plain_file_does(tmp_path: Path) -> None:
    data = jsonl(sample_rows()) + b"\n" + b"{bad json\n"
    (tmp_path / "a.jsonl").write_bytes(data)
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(data))
    plain = list(open_input(tmp_path / "a.jsonl"))
    packed = open_input(tmp_path / "a.jsonl.gz")
    assert list(packed) == plain  # same (line, bytes): same rows, same errors, same numbers
    assert packed.count() == len(plain) == 6
    kinds = [r if r is None else type(r).__name__ for r in parsed(packed)]
    assert kinds == ["Row"] * 4 + [None, "RowError"]


def test_a_truncated_gzip_stream_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(jsonl(sample_rows(50)))[:-30])
    with pytest.raises(InputError, match=r"a.jsonl.gz cannot be read past line"):
        list(open_input(tmp_path / "a.jsonl.gz"))


def test_zstandard_jsonl(tmp_path: Path) -> None:
    zstandard = pytest.importorskip("zstandard")
    data = jsonl(sample_rows())
    (tmp_path / "a.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(data))
    assert [item for _, item in open_input(tmp_path / "a.jsonl.zst")] == data.splitlines()


def test_zstandard_without_the_package_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.jsonl.zst").write_bytes(b"\x28\xb5\x2f\xfd" + b"\0" * 8)
    monkeypatch.setitem(sys.modules, "zstandard", None)  # import fails
    with pytest.raises(InputError, match=r"needs the 'zstandard' package"):
        list(open_input(tmp_path / "a.jsonl.zst"))


@pytest.mark.parametrize("chunk", [3, 7, 1 << 20])
def test_json_array_is_read_element_by_element(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    monkeypatch.setattr(inputs_module, "_CHUNK", chunk)  # elements split across chunks
    values: list[Any] = [*sample_rows(3), 12345, [1, 2], "text", None, True]
    (tmp_path / "a.json").write_text(" \n" + json.dumps(values, indent=1))
    source = open_input(tmp_path / "a.json")
    assert list(source) == list(enumerate(values, start=1))
    assert source.count() == len(values)
    out = parsed(source)
    assert all(isinstance(r, Row) for r in out[:3])
    assert [r.kind for r in out[3:] if isinstance(r, RowError)] == ["malformed_json"] * 5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[{"id": 1}, {"id": 2', r"in element 2 .after element 1"),
        ('[{"id": 1} {"id": 2}]', r"expected ',' or '\]', found '\{'"),
        ('[{"id": 1},]', r"an element is missing before '\]'"),
        ('[{"id": 1}] x', r"text after the closing"),
    ],
)
def test_a_broken_json_array_is_an_input_error(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "a.json").write_text(text)
    with pytest.raises(InputError, match=message):
        list(open_input(tmp_path / "a.json", format="json"))


def test_parquet_rows_are_read_in_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    monkeypatch.setattr(inputs_module, "BATCH_ROWS", 2)
    table = pa.Table.from_pylist(sample_rows(5))
    pq.write_table(table, tmp_path / "a.parquet", row_group_size=2)
    (tmp_path / "a.parquet").rename(tmp_path / "noext")  # found by its magic too
    source = open_input(tmp_path / "noext")
    assert source.count() == 5
    assert [record for _, record in source] == sample_rows(5)
    assert [r.id for r in parsed(source) if isinstance(r, Row)] == [f"r{i}" for i in range(5)]


def test_a_damaged_parquet_file_is_an_input_error(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    (tmp_path / "a.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(InputError, match=r"a.parquet is not a readable Parquet file"):
        list(open_input(tmp_path / "a.parquet"))


def test_saved_dataset_and_its_splits(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    train = datasets.Dataset.from_list(sample_rows(3))
    train.save_to_disk(str(tmp_path / "ds"))
    source = open_input(tmp_path / "ds")
    assert source.count() == 3 and [r for _, r in source] == sample_rows(3)
    both = datasets.DatasetDict(
        {"train": train, "test": datasets.Dataset.from_list(sample_rows(1))}
    )
    both.save_to_disk(str(tmp_path / "dd"))
    assert [r for _, r in open_input(tmp_path / "dd", split="test")] == sample_rows(1)
    with pytest.raises(
        InputError, match=r"Argument 'split': .* holds the splits \['test', 'train'\]"
    ):
        open_input(tmp_path / "dd", split="validation")


def test_dataset_adapter_reads_columns_batch_by_batch() -> None:
    calls: list[int] = []

    class StandIn:  # the two parts of datasets.Dataset the adapter uses
        def __len__(self) -> int:
            return 3

        def iter(self, batch_size: int) -> Any:
            calls.append(batch_size)
            yield {"id": [1, 2], "prompt": ["a", "b"]}
            yield {"id": [3], "prompt": ["c"]}

    source = dataset_source(StandIn(), "stand-in")
    assert list(source) == [(1, {"id": 1, "prompt": "a"}), (2, {"id": 2, "prompt": "b"}),
                            (3, {"id": 3, "prompt": "c"})]  # fmt: skip
    assert calls == [inputs_module.BATCH_ROWS] and source.count() == 3


def test_a_missing_file_or_package_is_an_input_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(InputError, match=r"nope.jsonl is no such file"):
        open_input(tmp_path / "nope.jsonl")
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(InputError, match=r"needs the 'datasets' package .*genrm-rank\[datasets\]"):
        open_input("hf:some/name")


# --------------------------------------------------------------------------------------------
# Rows: ids, templated prompts, dropped candidates, roles


def test_ids_from_line_numbers_and_no_mixing() -> None:
    reader = RowReader(RowSpec(id_from_line=True))
    row = reader.parse(7, b'{"prompt": "q", "candidates": ["a", "b"]}')
    assert isinstance(row, Row) and row.id == "line:7" and row.data["id"] == "line:7"
    mixed = reader.parse(8, b'{"id": 3, "prompt": "q", "candidates": ["a", "b"]}')
    assert isinstance(mixed, RowError) and mixed.kind == "bad_field"
    assert "while ids come from row numbers (argument 'rows.id_from_line')" in mixed.reason


@pytest.mark.parametrize(
    "prompt",
    [
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi",
        "<s>[INST] Hi [/INST]",
        "<start_of_turn>user\nHi<end_of_turn>",
        [{"role": "user", "content": "<|im_start|>user\nHi"}],
    ],
)
def test_a_chat_templated_prompt_is_refused_unless_allowed(prompt: Any) -> None:
    line = json.dumps({"id": 1, "prompt": prompt, "candidates": ["a", "b"]}).encode()
    refused = RowReader().parse(1, line)
    assert isinstance(refused, RowError) and refused.kind == "templated_prompt"
    assert "chat-templated prompt" in refused.reason and "rows.allow_templated" in refused.reason
    assert isinstance(RowReader(RowSpec(allow_templated=True)).parse(1, line), Row)


def test_null_and_empty_candidates_are_dropped_with_a_note() -> None:
    record = {"id": 1, "prompt": "q", "candidates": ["a", None, "  ", "b"]}
    row = RowReader().parse(1, record)
    assert isinstance(row, Row)
    assert row.candidates == ("a", "b") and row.data["candidates"] == ["a", "b"]
    assert row.dropped == ({"index": 1, "reason": "null"}, {"index": 2, "reason": "empty"})
    objects = {"id": 2, "prompt": "q", "candidates": [{"id": "x", "text": None}, "a", "b"]}
    row = RowReader().parse(2, objects)
    assert isinstance(row, Row) and row.candidates == ("a", "b")
    assert row.dropped == ({"index": 0, "reason": "null"},)
    few = RowReader().parse(3, {"id": 3, "prompt": "q", "candidates": ["a", None, ""]})
    assert isinstance(few, RowError) and few.kind == "too_few_candidates"
    assert few.reason == "fewer than two candidates (1 after dropping 2 null or empty)"


def test_text_parts_are_accepted_and_other_roles_refused_in_rows() -> None:
    parts = [{"role": "user", "content": [{"type": "text", "text": "q"}]}]
    assert isinstance(
        RowReader().parse(1, {"id": 1, "messages": parts, "candidates": ["a", "b"]}), Row
    )
    tool = [*parts, {"role": "tool", "content": "42"}, {"role": "user", "content": "so?"}]
    error = RowReader().parse(2, {"id": 2, "messages": tool, "candidates": ["a", "b"]})
    assert isinstance(error, RowError) and error.kind == "bad_field"
    assert "has role 'tool'" in error.reason and "the GenRM takes only these turns" in error.reason
    image = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "u"}}]}]
    error = RowReader().parse(3, {"id": 3, "messages": image, "candidates": ["a", "b"]})
    assert isinstance(error, RowError) and "the GenRM reads text only" in error.reason


def test_a_source_problem_becomes_a_row_error() -> None:
    problem = InputProblem("misaligned", "row 3 of b.jsonl has no partner")
    error = RowReader().parse(3, problem)
    assert isinstance(error, RowError) and (error.line, error.kind) == (3, "misaligned")


# --------------------------------------------------------------------------------------------
# Adapters


def seed_files(tmp_path: Path, n_files: int = 3, n_rows: int = 4) -> list[Path]:
    paths = []
    for k in range(n_files):
        path = tmp_path / f"output-rs{k}.jsonl"
        path.write_text(
            "".join(
                json.dumps({"problem": f"q{i}", "qid": i, "generation": f"answer {i}.{k}"}) + "\n"
                for i in range(n_rows)
            )
        )
        paths.append(path)
    return paths


def test_merge_by_row(tmp_path: Path) -> None:
    paths = seed_files(tmp_path)
    source = merge_candidate_files([open_input(p) for p in paths], candidate_field="generation")
    merged = [r for _, r in source]
    assert merged[1] == {
        "problem": "q1",
        "qid": 1,
        "candidates": [
            {"qid": 1, "id": "output-rs0", "text": "answer 1.0"},
            {"qid": 1, "id": "output-rs1", "text": "answer 1.1"},
            {"qid": 1, "id": "output-rs2", "text": "answer 1.2"},
        ],
    }
    assert source.count() == 4


def test_merged_candidates_keep_their_own_files_fields(tmp_path: Path) -> None:
    # NeMo-Skills: every file's row holds its own predicted_answer and judgement.
    paths = []
    for k, (answer, verdict) in enumerate([("4", "correct"), ("5", "wrong"), ("4", "correct")]):
        path = tmp_path / f"output-rs{k}.jsonl"
        row = {
            "problem": "2+2?",
            "expected_answer": "4",
            "generation": f"it is {answer}",
            "predicted_answer": answer,
            "judgement": verdict,
            "num_generated_tokens": 10 + k,
        }
        path.write_text(json.dumps(row) + "\n")
        paths.append(path)
    ((_, merged),) = merge_candidate_files(
        [open_input(p) for p in paths], candidate_field="generation"
    )
    assert merged == {
        "problem": "2+2?",
        "expected_answer": "4",
        "candidates": [
            {
                "expected_answer": "4",
                "predicted_answer": "4",
                "judgement": "correct",
                "num_generated_tokens": 10,
                "id": "output-rs0",
                "text": "it is 4",
            },
            {
                "expected_answer": "4",
                "predicted_answer": "5",
                "judgement": "wrong",
                "num_generated_tokens": 11,
                "id": "output-rs1",
                "text": "it is 5",
            },
            {
                "expected_answer": "4",
                "predicted_answer": "4",
                "judgement": "correct",
                "num_generated_tokens": 12,
                "id": "output-rs2",
                "text": "it is 4",
            },
        ],
    }


def test_every_merged_candidate_has_the_same_fields_when_the_files_agree(tmp_path: Path) -> None:
    paths = []
    for k in range(2):
        path = tmp_path / f"output-rs{k}.jsonl"
        rows = [
            {"problem": "2+2?", "generation": f"4 ({k})", "predicted_answer": "4"},  # agree
            {"problem": "3+3?", "generation": f"{6 + k}", "predicted_answer": f"{6 + k}"},
        ]
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        paths.append(path)
    source = merge_candidate_files([open_input(p) for p in paths], candidate_field="generation")
    merged = [r for _, r in source]
    assert [[c["predicted_answer"] for c in r["candidates"]] for r in merged] == [
        ["4", "4"],
        ["6", "7"],
    ]
    assert all("problem" not in c for r in merged for c in r["candidates"])  # the prompt: row's


def test_merge_by_row_ranks_a_row_missing_from_a_short_file_on_the_rest(tmp_path: Path) -> None:
    paths = seed_files(tmp_path)
    lines = paths[2].read_text().splitlines(keepends=True)
    paths[2].write_text("".join(lines[:3]))
    out = list(merge_candidate_files([open_input(p) for p in paths], candidate_field="generation"))
    assert len(out) == 4
    row = out[3][1]
    assert isinstance(row, dict)
    assert [c["id"] for c in row["candidates"]] == ["output-rs0", "output-rs1"]
    assert row["missing_candidates"] == [
        {
            "id": "output-rs2",
            "reason": f"row 4 of {paths[0]} has no partner: {paths[2]} ends at row 3",
        }
    ]
    parsed = RowReader().parse(4, row)
    assert isinstance(parsed, Row) and parsed.candidate_ids == ("output-rs0", "output-rs1")


def test_merge_by_row_names_the_short_file_when_one_candidate_is_left(tmp_path: Path) -> None:
    paths = seed_files(tmp_path, n_files=2)
    lines = paths[1].read_text().splitlines(keepends=True)
    paths[1].write_text("".join(lines[:3]))
    out = list(merge_candidate_files([open_input(p) for p in paths], candidate_field="generation"))
    assert len(out) == 4
    assert out[3][1] == InputProblem(
        "misaligned", f"row 4 of {paths[0]} has no partner: {paths[1]} ends at row 3"
    )


def test_merge_by_row_says_an_empty_file_ends_at_row_0(tmp_path: Path) -> None:
    paths = seed_files(tmp_path, n_files=2, n_rows=2)
    paths[1].write_text("")
    out = list(merge_candidate_files([open_input(p) for p in paths], candidate_field="generation"))
    assert [problem for _, problem in out] == [
        InputProblem(
            "misaligned", f"row {n} of {paths[0]} has no partner: {paths[1]} ends at row 0"
        )
        for n in (1, 2)
    ]


def test_file_labels_fall_back_to_the_names_given() -> None:
    assert file_labels(["x/output-rs0.jsonl.zst", "output-rs1.parquet"]) == [
        "output-rs0",
        "output-rs1",
    ]
    assert file_labels(["a/out.jsonl", "b/out.jsonl"]) == ["a/out.jsonl", "b/out.jsonl"]


def test_merge_by_key_in_any_order_with_strays(tmp_path: Path) -> None:
    paths = seed_files(tmp_path)
    lines = paths[1].read_text().splitlines(keepends=True)
    stray = json.dumps({"qid": 99, "generation": "x"}) + "\n"
    paths[1].write_text("".join([lines[2], lines[0], stray, lines[3]]))  # row 1 (qid 1) gone
    source = merge_candidate_files(
        [open_input(p) for p in paths], candidate_field="generation", align_by="qid"
    )
    out = dict(source)
    assert [c["text"] for c in out[3]["candidates"]] == ["answer 2.0", "answer 2.1", "answer 2.2"]
    # qid 1 is gone from the second file: ranked on the other two, with a note.
    assert [c["id"] for c in out[2]["candidates"]] == ["output-rs0", "output-rs2"]
    assert out[2]["missing_candidates"] == [
        {
            "id": "output-rs1",
            "reason": f"row 2 of {paths[0]} (qid 1) has no partner in {paths[1]}",
        }
    ]
    assert out[5] == InputProblem(
        "misaligned", f"row 3 of {paths[1]}: qid 99 matches no row of {paths[0]}"
    )
    assert sorted(out) == [1, 2, 3, 4, 5]  # every row of every file accounted for


def per_sample_rows() -> list[dict[str, Any]]:
    out = []
    for q in ("q1", "q2"):
        for k in range(3):
            answer = [{"type": "text", "text": f"{q} answer {k}"}] if k == 2 else f"{q} answer {k}"
            out.append(
                {
                    "sample": f"{q}-{k}",
                    "messages": [
                        {"role": "user", "content": q},
                        {"role": "assistant", "content": answer},
                    ],
                }
            )
    return out


def test_group_messages_by_prompt(tmp_path: Path) -> None:
    (tmp_path / "s.jsonl").write_bytes(jsonl(per_sample_rows()))
    grouped = list(group_messages(open_input(tmp_path / "s.jsonl")))
    assert [n for n, _ in grouped] == [1, 4]
    assert grouped[1][1] == {
        "sample": "q2-0",
        "messages": [{"role": "user", "content": "q2"}],
        "candidates": ["q2 answer 0", "q2 answer 1", "q2 answer 2"],
    }


def test_a_group_that_comes_back_is_an_error_row(tmp_path: Path) -> None:
    rows = per_sample_rows()
    rows.append(rows[0])  # q1 again, after q2's group
    rows.append({"sample": "bad", "messages": [{"role": "user", "content": "q3"}]})
    (tmp_path / "s.jsonl").write_bytes(jsonl(rows))
    out = dict(group_messages(open_input(tmp_path / "s.jsonl"), group_by="sample"))
    assert len(out) == 8  # grouped by a key that differs on every row: one row each
    out = dict(group_messages(open_input(tmp_path / "s.jsonl")))
    assert sorted(out) == [1, 4, 7, 8]
    assert isinstance(out[7], InputProblem) and out[7].kind == "ungrouped"
    assert "began on row 1" in out[7].reason
    assert (
        isinstance(out[8], InputProblem)
        and "must end with the sample's assistant turn" in out[8].reason
    )


# --------------------------------------------------------------------------------------------
# The CLI: every input kind through one run


def test_cli_select_from_gzip_json_array_parquet_and_dataset(tmp_path: Path) -> None:
    rows = sample_rows()
    (tmp_path / "in.jsonl").write_bytes(jsonl(rows))
    (tmp_path / "in.jsonl.gz").write_bytes(gzip.compress(jsonl(rows)))
    (tmp_path / "in.json").write_text(json.dumps(rows))
    inputs = ["in.jsonl", "in.jsonl.gz", "in.json"]
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "in.parquet")
    inputs.append("in.parquet")
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "ds"))
    inputs.append("ds")
    outputs = []
    for name in inputs:
        out = tmp_path / f"out-{name.replace('.', '-')}.jsonl"
        assert run_main(*SELECT, tmp_path / name, "-o", out) == 0, name
        outputs.append([(r["id"], r["selected"]) for r in rows_of(out)])
    assert all(o == outputs[0] for o in outputs) and len(outputs[0]) == 4


@pytest.mark.slow
def test_cli_reads_standard_input(tmp_path: Path) -> None:
    data = gzip.compress(jsonl(sample_rows()))
    done = subprocess.run(
        [sys.executable, "-m", "genrm_rank.cli", *SELECT, "-", "-o", "-"],
        input=data,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["id"] for line in done.stdout.splitlines()] == ["r0", "r1", "r2", "r3"]


@pytest.mark.slow
def test_cli_leaderboard_reads_standard_input_twice(tmp_path: Path) -> None:
    rows = [
        {
            "id": i,
            "prompt": f"q{i}",
            "candidates": [{"id": m, "text": f"{m} says {i}"} for m in "abc"],
        }
        for i in range(3)
    ]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "genrm_rank.cli",
            "leaderboard",
            "-",
            "--judge",
            "simulated",
            "--quiet",
            "-o",
            str(tmp_path / "table.json"),
        ],
        input=jsonl(rows),
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    table = json.loads((tmp_path / "table.json").read_text())
    assert sorted(r["label"] for r in table["rows"]) == ["a", "b", "c"]


def test_cli_ids_from_lines_and_resume(tmp_path: Path) -> None:
    rows = [{k: v for k, v in r.items() if k != "id"} for r in sample_rows()]
    (tmp_path / "in.jsonl").write_bytes(jsonl(rows[:2]) + b"\n" + jsonl(rows[2:]))
    out = tmp_path / "out.jsonl"
    # No flag: rows without ids are numbered by their line, and the run file says so.
    assert run_main(*SELECT, tmp_path / "in.jsonl", "-o", out) == 0
    assert [r["id"] for r in rows_of(out)] == ["line:1", "line:2", "line:4", "line:5"]
    assert json.loads((tmp_path / "out.run.json").read_text())["id_from_line"] is True
    lines = out.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:2]))
    assert run_main(*SELECT, tmp_path / "in.jsonl", "-o", out, "--resume") == 0
    assert [r["id"] for r in rows_of(out)] == ["line:1", "line:2", "line:4", "line:5"]
    # Resume refuses other settings: ids required now.
    assert run_main(*SELECT, tmp_path / "in.jsonl", "-o", out, "--no-id-from-line", "--resume") == 2


def test_cli_refuses_rows_with_and_without_ids_mixed(tmp_path: Path) -> None:
    rows = sample_rows()
    del rows[1]["id"]
    (tmp_path / "in.jsonl").write_bytes(jsonl(rows))
    out = tmp_path / "out.jsonl"
    assert run_main(*SELECT, tmp_path / "in.jsonl", "-o", out) == 1
    errors = rows_of(tmp_path / "out.errors.jsonl")
    assert [(e["line"], e["kind"]) for e in errors] == [(2, "missing_field")]
    assert "while the first row has one" in errors[0]["reason"]


@pytest.mark.parametrize("n_rows", [1, 3, 10])
def test_cli_stops_when_no_row_has_an_id_and_says_how_to_number_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], n_rows: int
) -> None:
    # However short the input, the first-rows check gives its hint (and writes no row).
    rows = [{"prompt": f"q{i}", "candidates": ["a", "b"]} for i in range(n_rows)]
    (tmp_path / "in.jsonl").write_bytes(jsonl(rows))
    out = tmp_path / "o.jsonl"
    assert run_main(*SELECT, tmp_path / "in.jsonl", "-o", out, "--no-id-from-line") == 2
    err = capsys.readouterr().err
    assert "rows all lack the field" in err and "['candidates', 'prompt']" in err
    assert "--id-from-line" in err
    assert not (tmp_path / "o.errors.jsonl").exists() or not rows_of(tmp_path / "o.errors.jsonl")


def test_cli_candidates_from_files(tmp_path: Path) -> None:
    paths = seed_files(tmp_path)
    out = tmp_path / "best.jsonl"
    status = run_main(
        *SELECT, *paths, "-o", out, "--candidates-from-files", "--candidate-field", "generation",
        "--prompt-field", "problem", "--id-field", "qid",
    )  # fmt: skip
    assert status == 0
    got = rows_of(out)
    assert [r["qid"] for r in got] == [0, 1, 2, 3]
    assert [c["text"] for c in got[0]["candidates"]] == ["answer 0.0", "answer 0.1", "answer 0.2"]
    assert got[0]["selected_id"] in ("output-rs0", "output-rs1", "output-rs2")
    assert run_main(*SELECT, *paths, "-o", out, "--overwrite") == 2  # several files need the flag


def test_cli_stops_when_no_file_row_has_the_candidate_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = seed_files(tmp_path, n_rows=10)
    status = run_main(
        *SELECT, *paths, "-o", tmp_path / "o.jsonl", "--candidates-from-files",
        "--candidate-field", "output", "--prompt-field", "problem", "--id-from-line",
    )  # fmt: skip
    assert status == 2
    err = capsys.readouterr().err
    assert "missing field 'output'" in err and "--candidate-field" in err
    assert "['generation', 'problem', 'qid']" in err


def test_cli_group_messages_with_dropped_candidates(tmp_path: Path) -> None:
    rows = per_sample_rows()
    rows[1]["messages"][-1]["content"] = None  # a failed sample
    (tmp_path / "s.jsonl").write_bytes(jsonl(rows))
    out = tmp_path / "best.jsonl"
    status = run_main(
        *SELECT, tmp_path / "s.jsonl", "-o", out, "--group-messages", "--id-field", "sample"
    )
    assert status == 0
    got = rows_of(out)
    assert [r["sample"] for r in got] == ["q1-0", "q2-0"]
    assert got[0]["candidates"] == ["q1 answer 0", "q1 answer 2"]
    assert got[0]["dropped_candidates"] == [{"index": 1, "reason": "null"}]
    assert "dropped_candidates" not in got[1]


def test_cli_templated_prompts_stop_the_run_unless_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [
        {"id": i, "prompt": f"<|im_start|>user\nq{i}<|im_end|>\n", "candidates": ["a", "b"]}
        for i in range(10)
    ]
    (tmp_path / "in.jsonl").write_bytes(jsonl(rows))
    out = tmp_path / "o.jsonl"
    assert run_main(*SELECT, tmp_path / "in.jsonl", "-o", out) == 2
    err = capsys.readouterr().err
    assert "all hold a chat-templated prompt" in err and "--allow-templated-prompt" in err
    assert (
        run_main(
            *SELECT, tmp_path / "in.jsonl", "-o", out, "--allow-templated-prompt", "--overwrite"
        )
        == 0
    )
    assert len(rows_of(out)) == 10


def test_cli_dry_run_reads_every_input_kind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "in.json").write_text(json.dumps(sample_rows()))
    assert run_main(*SELECT, tmp_path / "in.json", "-o", tmp_path / "o.jsonl", "--dry-run") == 0
    assert "4" in capsys.readouterr().out


def _swap_first_rows(path: Path) -> None:
    """Rows 1 and 2 of a seed file swapped, as a partly regenerated file might hold them."""
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join([lines[1], lines[0], *lines[2:]]))


def test_merge_by_row_refuses_rows_of_different_prompts(tmp_path: Path) -> None:
    paths = seed_files(tmp_path)
    _swap_first_rows(paths[2])
    source = merge_candidate_files(
        [open_input(p) for p in paths], candidate_field="generation", prompt_fields=("problem",)
    )
    out = dict(source)
    assert [c["text"] for c in out[3]["candidates"]] == ["answer 2.0", "answer 2.1", "answer 2.2"]
    for row in (1, 2):
        problem = out[row]
        assert isinstance(problem, InputProblem) and problem.kind == "misaligned"
        assert f"row {row} of {paths[0]} and row {row} of {paths[2]}" in problem.reason
        assert "different prompts" in problem.reason


def test_merge_by_key_refuses_a_partner_of_another_prompt(tmp_path: Path) -> None:
    paths = seed_files(tmp_path)
    regenerated = json.dumps({"problem": "q2 (new)", "qid": 2, "generation": "answer"}) + "\n"
    lines = paths[1].read_text().splitlines(keepends=True)
    paths[1].write_text("".join([lines[0], lines[1], lines[3], regenerated]))
    out = dict(
        merge_candidate_files(
            [open_input(p) for p in paths],
            candidate_field="generation",
            align_by="qid",
            prompt_fields=("problem",),
        )
    )
    assert isinstance(out[3], InputProblem)
    assert f"row 3 of {paths[0]} and row 4 of {paths[1]} hold different prompts" in out[3].reason
    assert [n for n, r in out.items() if isinstance(r, dict)] == [1, 2, 4]


def test_merge_rows_without_a_prompt_field_are_not_compared(tmp_path: Path) -> None:
    paths = seed_files(tmp_path)
    _swap_first_rows(paths[2])
    source = merge_candidate_files(
        [open_input(p) for p in paths], candidate_field="generation", prompt_fields=("question",)
    )
    out = [r for _, r in source]
    assert all(isinstance(r, dict) for r in out)  # the rows hold no 'question' to compare


def test_cli_candidates_from_a_reordered_file_are_row_errors(tmp_path: Path) -> None:
    paths = seed_files(tmp_path)
    lines = paths[1].read_text().splitlines(keepends=True)
    paths[1].write_text("".join([lines[3], *lines[1:3], lines[0]]))  # rows 1 and 4 swapped
    out, errors = tmp_path / "best.jsonl", tmp_path / "errors.jsonl"
    run_main(
        *SELECT, *paths, "-o", out, "--errors", errors, "--candidates-from-files",
        "--candidate-field", "generation", "--prompt-field", "problem", "--id-field", "qid",
    )  # fmt: skip
    got = rows_of(out)
    assert [r["qid"] for r in got] == [1, 2]
    assert all(c["text"].startswith(f"answer {r['qid']}.") for r in got for c in r["candidates"])
    refused = rows_of(errors)
    assert [(e["line"], e["kind"]) for e in refused] == [(1, "misaligned"), (4, "misaligned")]
    assert str(paths[1]) in refused[0]["reason"] and "row 1 of" in refused[0]["reason"]


def test_cli_max_candidates_refuses_wider_rows(tmp_path: Path) -> None:
    rows = [
        {"id": i, "prompt": f"q{i}", "candidates": ["a", "b", "c"][: 2 + i % 2]} for i in range(4)
    ]
    (tmp_path / "in.jsonl").write_bytes(jsonl(rows))
    out, errors = tmp_path / "o.jsonl", tmp_path / "e.jsonl"
    run_main(*SELECT, tmp_path / "in.jsonl", "-o", out, "--errors", errors, "--max-candidates", 2)
    assert [r["id"] for r in rows_of(out)] == [0, 2]
    assert [(e["id"], e["kind"]) for e in rows_of(errors)] == [
        (1, "too_many_candidates"),
        (3, "too_many_candidates"),
    ]


def nemo_skills_files(tmp_path: Path, n_files: int = 4, n_rows: int = 3) -> list[Path]:
    """Files as NeMo-Skills' generation writes them: one sample a row, no id, the problem
    under ``problem`` and each sample's own ``predicted_answer`` and judgement."""
    paths = []
    for k in range(n_files):
        path = tmp_path / f"output-rs{k}.jsonl"
        path.write_text(
            "".join(
                json.dumps(
                    {
                        "problem": f"What is {i} + {i}?",
                        "expected_answer": str(2 * i),
                        "generation": f"The answer is {2 * i + k % 2}.",
                        "predicted_answer": str(2 * i + k % 2),
                        "symbolic_correct": k % 2 == 0,
                        "num_generated_tokens": 5 + k,
                    }
                )
                + "\n"
                for i in range(n_rows)
            )
        )
        paths.append(path)
    return paths


def test_cli_nemo_skills_files_run_with_the_readme_command(tmp_path: Path) -> None:
    paths = nemo_skills_files(tmp_path)
    lines = paths[3].read_text().splitlines(keepends=True)
    paths[3].write_text("".join(lines[:2]))  # a row missing from one file
    out = tmp_path / "best.jsonl"
    status = run_main(
        *SELECT, *paths, "--candidates-from-files", "--candidate-field", "generation", "-o", out,
        "--summary-json", tmp_path / "summary.json",
    )  # fmt: skip
    assert status == 0
    got = rows_of(out)
    assert [r["id"] for r in got] == ["line:1", "line:2", "line:3"]
    assert got[0]["problem"] == "What is 0 + 0?" and got[0]["expected_answer"] == "0"
    candidate = got[0]["candidates"][1]
    assert candidate["id"] == "output-rs1" and candidate["predicted_answer"] == "1"
    assert candidate["symbolic_correct"] is False and candidate["num_generated_tokens"] == 6
    assert len(got[2]["candidates"]) == 3
    assert got[2]["missing_candidates"][0]["id"] == "output-rs3"
    assert "missing_candidates" not in got[0]
    rows = json.loads((tmp_path / "summary.json").read_text())["rows"]
    assert format_rows(rows) == "rows: prompt from 'problem', ids from line numbers"
    settings = json.loads((tmp_path / "best.run.json").read_text())
    assert settings["prompt_field_found"] == "problem" and settings["id_from_line"] is True


def test_cli_run_file_records_the_prompt_field_found(tmp_path: Path) -> None:
    rows = [{"id": i, "question": f"q{i}", "candidates": ["a", "b"]} for i in range(3)]
    (tmp_path / "in.jsonl").write_bytes(jsonl(rows))
    out = tmp_path / "out.jsonl"
    assert (
        run_main(*SELECT, tmp_path / "in.jsonl", "-o", out, "--summary-json", tmp_path / "s.json")
        == 0
    )
    settings = json.loads((tmp_path / "out.run.json").read_text())
    assert settings["prompt_field_found"] == "question" and "id_from_line" not in settings
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["rows"] == {"prompt_field": "question", "ids": "field 'id'"}
    # A run file written before the field was recorded still resumes.
    del settings["prompt_field_found"]
    (tmp_path / "out.run.json").write_text(json.dumps(settings))
    assert run_main(*SELECT, tmp_path / "in.jsonl", "-o", out, "--resume") == 0


def test_cli_stops_when_the_first_rows_are_all_ambiguous_and_names_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Alpaca-style rows: 'instruction' and 'input' are both prompt fields.
    rows = [{"instruction": f"q{i}", "input": "x", "candidates": ["a", "b"]} for i in range(3)]
    (tmp_path / "in.jsonl").write_bytes(jsonl(rows))
    out = tmp_path / "o.jsonl"
    assert run_main(*SELECT, tmp_path / "in.jsonl", "-o", out) == 2
    err = capsys.readouterr().err
    assert "rows are all ambiguous" in err and "'instruction' and 'input'" in err
    assert "--prompt-field" in err
    assert run_main(*SELECT, tmp_path / "in.jsonl", "-o", out, "--prompt-field", "instruction") == 0
