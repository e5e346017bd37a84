"""Output formats that trainers read as meant, checked against each trainer's documented schema.

These checks replay the trainers' loading steps and run everywhere; the trainers themselves
(TRL, OpenRLHF's data path, pinned versions) run in ``tests/test_trainers_real.py`` (marker
``trainers``, run by CI).

Sources of the schemas:

- TRL, "Dataset formats and types" (https://huggingface.co/docs/trl/dataset_formats): a
  preference row is standard ``{"prompt": str, "chosen": str, "rejected": str}`` or
  conversational ``{"prompt": [messages], "chosen": [messages], "rejected": [messages]}``;
  without an explicit ``prompt`` column TRL extracts an *implicit* prompt, the common prefix of
  chosen and rejected, which is the silent failure these formats avoid.
- OpenRLHF's ``RewardDataset`` (``openrlhf/datasets/reward_dataset.py``, ``preprocess_data``)
  reads ``--prompt_key``/``--chosen_key``/``--rejected_key`` columns (defaults ``None``,
  ``"chosen"``, ``"rejected"``; ``--data.*`` in releases with dotted options), and a ``margin``
  column, when present, as its margin-loss term. With ``prompt_key`` unset and
  ``--apply_chat_template``, chosen and rejected are whole conversations; for DPO the prompt is
  the conversation before the last turn.
- NeMo RL's ``PreferenceDataset``
  (https://docs.nvidia.com/nemo/rl/latest/apidocs/nemo_rl/nemo_rl.data.datasets.preference_datasets.preference_dataset.html):
  ``{"context": list[dict], "completions": [{"rank": int, "completion": list[dict]}, ...]}``,
  lower rank preferred.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from genrm_rank.cli import main

ROLES = {"system", "user", "assistant"}


def _write(path: Path, n: int, *, multi_turn: bool = False) -> None:
    with open(path, "w") as f:
        for i in range(n):
            messages: list[dict[str, str]] = [{"role": "user", "content": f"Question {i}?"}]
            if multi_turn:
                messages = [
                    {"role": "user", "content": f"Hi {i}"},
                    {"role": "assistant", "content": "<think>hm</think>Hello!"},
                    *messages,
                ]
            candidates = [f"Answer {j} to question {i}: " + "detail " * j for j in range(4)]
            f.write(json.dumps({"id": f"r{i}", "messages": messages, "candidates": candidates}))
            f.write("\n")


def _run(tmp_path: Path, command: str, *options: str, multi_turn: bool = False) -> Path:
    _write(tmp_path / "in.jsonl", 5, multi_turn=multi_turn)
    out = tmp_path / "out.jsonl"
    argv = [command, str(tmp_path / "in.jsonl"), "-o", str(out), "--judge", "simulated", "-q"]
    assert main([*argv, *options]) == 0
    return out


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _is_messages(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) > 0
        and all(
            isinstance(m, dict) and set(m) == {"role", "content"} and m["role"] in ROLES
            for m in value
        )
    )


def _trl_preference(row: dict[str, Any], conversational: bool) -> None:
    """TRL's preference type, with an explicit prompt (no implicit-prompt extraction)."""
    assert "prompt" in row and "chosen" in row and "rejected" in row
    if conversational:
        assert _is_messages(row["prompt"]) and row["prompt"][-1]["role"] == "user"
        for key in ("chosen", "rejected"):
            assert _is_messages(row[key]) and [m["role"] for m in row[key]] == ["assistant"]
    else:
        assert all(isinstance(row[k], str) and row[k] for k in ("prompt", "chosen", "rejected"))
    assert row["chosen"] != row["rejected"]


@pytest.mark.parametrize("all_pairs", [False, True])
def test_trl_chat_rows_are_conversational_preference_with_an_explicit_prompt(
    tmp_path: Path, all_pairs: bool
) -> None:
    options = ["--format", "trl-chat", *(["--all-pairs"] if all_pairs else [])]
    rows = _rows(_run(tmp_path, "pairs", *options, multi_turn=True))
    assert rows and len(rows) == (30 if all_pairs else 5)
    for row in rows:
        _trl_preference(row, conversational=True)
        # The multi-turn history is the prompt, with the assistant's reasoning stripped.
        assert row["prompt"][1] == {"role": "assistant", "content": "Hello!"}
        assert "margin" not in row and "messages" not in row


def test_trl_rows_are_standard_preference(tmp_path: Path) -> None:
    rows = _rows(_run(tmp_path, "pairs", "--format", "trl"))
    assert len(rows) == 5
    for i, row in enumerate(rows):
        _trl_preference(row, conversational=False)
        assert row["prompt"] == f"Question {i}?"


def _trl_run(tmp_path: Path, *extra: str) -> tuple[int, Path]:
    """``pairs --format trl`` on ``in.jsonl`` with the simulated judge: (status, summary file)."""
    summary = tmp_path / "summary.json"
    argv = ["pairs", str(tmp_path / "in.jsonl"), "-o", str(tmp_path / "out.jsonl"), "-q"]
    status = main(
        [*argv, "--judge", "simulated", "--format", "trl", "--summary-json", str(summary), *extra]
    )
    return status, summary


def test_trl_refuses_a_multi_turn_prompt_row_by_row(tmp_path: Path) -> None:
    # Five rows, all of them multi-turn: the run stops at once, as the first-rows check does
    # on longer inputs, writing no row (a rerun with --format trl-chat must not skip them).
    _write(tmp_path / "in.jsonl", 5, multi_turn=True)
    status, summary = _trl_run(tmp_path)
    assert status == 2
    errors = tmp_path / "out.errors.jsonl"
    assert not errors.exists() or errors.read_text() == ""
    assert json.loads(summary.read_text())["judge_calls"] == 0  # found before any call
    # One single-turn row among them: the others are row errors, found before any call.
    with open(tmp_path / "in.jsonl", "a") as f:
        row = {
            "id": "one",
            "messages": [{"role": "user", "content": "Q"}],
            "candidates": ["a", "b"],
        }
        f.write(json.dumps(row) + "\n")
    status, _ = _trl_run(tmp_path, "--overwrite")
    assert status == 1
    got = _rows(errors)
    assert len(got) == 5
    assert all(e["kind"] == "format_mismatch" and "'trl-chat'" in e["reason"] for e in got)


def test_openrlhf_margin_is_opt_in(tmp_path: Path) -> None:
    plain = _rows(_run(tmp_path, "pairs", "--format", "openrlhf"))
    assert plain and all("margin" not in row for row in plain)
    (tmp_path / "out.jsonl").unlink()
    with_margin = _rows(
        _run(tmp_path, "pairs", "--format", "openrlhf", "--margin-field", "margin", "--overwrite")
    )
    assert all(isinstance(row["margin"], float) and row["margin"] >= 0 for row in with_margin)


def test_nemo_rl_pairs_and_rankings(tmp_path: Path) -> None:
    for row in _rows(_run(tmp_path, "pairs", "--format", "nemo-rl")):
        assert _is_messages(row["context"])
        ranks = [c["rank"] for c in row["completions"]]
        assert ranks == [0, 1] and all(_is_messages(c["completion"]) for c in row["completions"])
    (tmp_path / "rank").mkdir()
    ranked = _rows(_run(tmp_path / "rank", "rank", "--format", "nemo-rl"))
    for row in ranked:
        texts = [c["completion"][0]["content"] for c in row["completions"]]
        assert [c["rank"] for c in row["completions"]] == [0, 1, 2, 3]
        assert len(set(texts)) == 4 and row["id"].startswith("r")


def test_full_pairs_rows_carry_an_explicit_prompt_and_a_named_gap(tmp_path: Path) -> None:
    for row in _rows(_run(tmp_path, "pairs")):
        # The prompt moves to 'prompt': TRL refuses a row holding 'messages' beside it.
        assert _is_messages(row["prompt"]) and "messages" not in row
        assert "margin" not in row and isinstance(row["genrm_strength_gap"], float)


def test_sft_rows_end_with_the_winner(tmp_path: Path) -> None:
    out = _run(tmp_path, "select", "--format", "sft", "--rejected", str(tmp_path / "drop.jsonl"))
    rows = _rows(out)
    assert len(rows) == 5
    for row in rows:
        assert set(row) == {"id", "messages"} and _is_messages(row["messages"])
        assert row["messages"][-1]["role"] == "assistant"
        assert row["messages"][-1]["content"].startswith("Answer ")


def test_sft_rows_not_kept_go_to_the_rejected_file(tmp_path: Path) -> None:
    out = _run(
        tmp_path, "select", "--format", "sft", "--min-score", "6", "--rejected",
        str(tmp_path / "drop.jsonl"),
    )  # fmt: skip
    assert not out.exists() or out.read_text() == ""
    dropped = _rows(tmp_path / "drop.jsonl")
    assert len(dropped) == 5 and all("min_score 6" in d["select_reason"] for d in dropped)


def test_dash_writes_rows_to_stdout_and_errors_to_stderr(tmp_path: Path) -> None:
    import subprocess
    import sys

    _write(tmp_path / "in.jsonl", 3)
    with open(tmp_path / "in.jsonl", "a") as f:
        f.write('{"id": "bad", "messages": [{"role": "user", "content": "Q"}], "candidates": []}\n')
    r = subprocess.run(
        [sys.executable, "-m", "genrm_rank.cli", "pairs", str(tmp_path / "in.jsonl"), "-o", "-",
         "--judge", "simulated", "--format", "trl", "-q"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 1  # one bad row
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) == 3 and all(_trl_preference(row, False) is None for row in rows)
    errors = [json.loads(line) for line in r.stderr.splitlines() if line.startswith("{")]
    assert [e["id"] for e in errors] == ["bad"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]  # no file named '-'


def test_a_trl_run_on_multi_turn_rows_stops_before_its_first_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every row fails the format: the first rows' check stops the run, no call paid."""
    _write(tmp_path / "in.jsonl", 10, multi_turn=True)
    status, summary = _trl_run(tmp_path)
    assert status == 2
    assert json.loads(summary.read_text())["judge_calls"] == 0
    err = capsys.readouterr().err
    assert "the output format can hold none of the first 8 rows" in err
    assert "--format trl, which holds a one-turn text prompt" in err
    assert "--format trl-chat holds conversations" in err


def test_a_row_the_format_cannot_hold_is_a_row_error_without_a_call() -> None:
    from genrm_rank.sdg.filters import format_problem, pair_rows
    from genrm_rank.sdg.rows import Row, RowReader

    reader = RowReader()
    one = reader.parse(1, b'{"id": 1, "prompt": "Q", "candidates": ["a", "b"]}')
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Q"}]
    row = {"id": 2, "messages": messages, "candidates": ["a", "b"]}
    two = reader.parse(2, json.dumps(row).encode())
    assert isinstance(one, Row) and isinstance(two, Row)
    assert format_problem(pair_rows(format="trl"), one) is None
    error = format_problem(pair_rows(format="trl"), two)
    assert error is not None and (error.kind, error.line, error.id) == ("format_mismatch", 2, 2)
    assert "2 messages (system, user)" in error.reason and "'trl-chat'" in error.reason
    for fmt in ("full", "trl-chat", "openrlhf", "nemo-rl"):
        assert format_problem(pair_rows(format=fmt), two) is None  # type: ignore[arg-type]


# TRL's data preparation, as documented (https://huggingface.co/docs/trl/dataset_formats) and
# written in ``trl/data_utils.py``: ``apply_chat_template`` accepts an example whose keys among
# these are exactly one of the sets below, and is_conversational() looks at any of them.
TRL_SUPPORTED_KEYS = frozenset({"prompt", "chosen", "rejected", "completion", "messages", "label"})
TRL_PREFERENCE_KEYS = frozenset({"prompt", "chosen", "rejected"})


def _render(messages: list[dict[str, Any]], add_generation_prompt: bool = False) -> str:
    """A stand-in chat template (ChatML-like), enough to see which turns are rendered."""
    text = "".join(f"<{m['role']}>{m['content']}</{m['role']}>" for m in messages)
    return text + ("<assistant>" if add_generation_prompt else "")


def _trl_dpo_prepare(example: dict[str, Any]) -> dict[str, str]:
    """TRL's ``maybe_apply_chat_template`` for a preference example with an explicit prompt.

    Conversational rows are rendered as ``prompt`` (with the generation prompt) and
    ``prompt + chosen`` with the prompt's text cut off (the step that raised ``TypeError: can
    only concatenate list (not "str") to list`` on a message prompt with text answers);
    standard rows are used as they are.
    """
    keys = {k for k in example if k in TRL_SUPPORTED_KEYS}
    if keys != TRL_PREFERENCE_KEYS:
        raise KeyError(f"Invalid keys in the example: {keys}")
    if isinstance(example["prompt"], list):  # is_conversational
        prompt = _render(example["prompt"], add_generation_prompt=True)
        chosen = _render(example["prompt"] + example["chosen"])[len(prompt) :]
        rejected = _render(example["prompt"] + example["rejected"])[len(prompt) :]
        return {"prompt": prompt, "chosen": chosen, "rejected": rejected}
    for key in ("prompt", "chosen", "rejected"):
        if not isinstance(example[key], str):
            raise TypeError(f"a standard example's {key!r} must be a string")
    return {k: example[k] for k in ("prompt", "chosen", "rejected")}


def test_default_pairs_of_a_chat_input_load_into_trl_dpo_unchanged(tmp_path: Path) -> None:
    rows = _rows(_run(tmp_path, "pairs"))  # no --format: the default
    assert len(rows) == 5
    for i, row in enumerate(rows):
        _trl_preference(row, conversational=True)
        assert "messages" not in row  # the prompt is under 'prompt' only
        prepared = _trl_dpo_prepare(row)
        assert prepared["prompt"] == f"<user>Question {i}?</user><assistant>"
        assert prepared["chosen"] == f"{row['chosen'][0]['content']}</assistant>"
        assert row["chosen_id"] is None and isinstance(row["genrm_strength_gap"], float)


def test_default_pairs_of_a_text_prompt_are_trl_standard(tmp_path: Path) -> None:
    with open(tmp_path / "in.jsonl", "w") as f:
        for i in range(3):
            row = {"problem": f"What is {i} + {i}?", "candidates": [f"{2 * i}", "no", "5"]}
            f.write(json.dumps(row) + "\n")
    out = tmp_path / "out.jsonl"
    argv = ["pairs", str(tmp_path / "in.jsonl"), "-o", str(out), "--judge", "simulated", "-q"]
    assert main(argv) == 0
    rows = _rows(out)
    assert len(rows) == 3
    for i, row in enumerate(rows):
        _trl_preference(row, conversational=False)
        assert row["prompt"] == f"What is {i} + {i}?" and "problem" not in row
        assert _trl_dpo_prepare(row)["prompt"] == row["prompt"]


def _openrlhf_preprocess(
    data: dict[str, Any],
    *,
    prompt_key: str | None = None,
    chosen_key: str = "chosen",
    rejected_key: str = "rejected",
    is_dpo: bool = False,
) -> tuple[str, str, str]:
    """OpenRLHF's ``preprocess_data`` (``openrlhf/datasets/reward_dataset.py``) with
    ``--apply_chat_template``, its defaults (``prompt_key=None``, ``chosen_key="chosen"``,
    ``rejected_key="rejected"``) unless given."""
    if prompt_key:
        prompt = _render(data[prompt_key], add_generation_prompt=True)
        chosen = _render(data[prompt_key] + data[chosen_key])[len(prompt) :]
        rejected = _render(data[prompt_key] + data[rejected_key])[len(prompt) :]
        return prompt, chosen, rejected
    if not data[chosen_key]:
        raise ValueError("Cannot apply chat template to an empty conversation")
    prompt = ""
    chosen, rejected = _render(data[chosen_key]), _render(data[rejected_key])
    if is_dpo:
        prompt = _render(data[chosen_key][:-1], add_generation_prompt=True)
        chosen, rejected = chosen[len(prompt) :], rejected[len(prompt) :]
    return prompt, chosen, rejected


@pytest.mark.parametrize("is_dpo", [False, True])
def test_openrlhf_rows_work_with_openrlhfs_default_keys(tmp_path: Path, is_dpo: bool) -> None:
    rows = _rows(_run(tmp_path, "pairs", "--format", "openrlhf", multi_turn=True))
    assert len(rows) == 5
    for i, row in enumerate(rows):
        assert "prompt" not in row  # a prompt column would be read twice with --prompt_key
        for key in ("chosen", "rejected"):
            assert _is_messages(row[key]) and row[key][-1]["role"] == "assistant"
        assert row["chosen"][:-1] == row["rejected"][:-1]
        history = row["chosen"][:-1]
        assert history[-1] == {"role": "user", "content": f"Question {i}?"}
        prompt, chosen, rejected = _openrlhf_preprocess(row, is_dpo=is_dpo)
        answer = row["chosen"][-1]["content"]
        if is_dpo:  # the prompt is the conversation before the answer
            assert prompt == _render(history, add_generation_prompt=True)
            assert chosen == f"{answer}</assistant>"
        else:  # a reward model scores the whole conversation
            assert prompt == "" and chosen == _render(row["chosen"])
        assert chosen != rejected


def _pairs_with_the_readme_command(src: Path, out: Path, candidates_field: str) -> None:
    argv = ["pairs", str(src), "--candidates-field", candidates_field, "-o", str(out)]
    assert main([*argv, "--judge", "simulated", "-q"]) == 0


def test_a_hf_dataset_of_messages_and_responses_runs_with_the_readme_command(
    tmp_path: Path,
) -> None:
    datasets = pytest.importorskip("datasets")
    rows = [
        {
            "messages": [{"role": "user", "content": f"Question {i}?"}],
            "responses": [f"Answer {j} to {i}" for j in range(3)],
        }
        for i in range(4)
    ]
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "ds"))
    _pairs_with_the_readme_command(tmp_path / "ds", tmp_path / "out.jsonl", "responses")
    out = _rows(tmp_path / "out.jsonl")
    assert [r["id"] for r in out] == ["line:1", "line:2", "line:3", "line:4"]
    for row in out:
        _trl_preference(row, conversational=True)
        _trl_dpo_prepare(row)


def test_trl_rows_with_message_list_completions_run_with_the_readme_command(
    tmp_path: Path,
) -> None:
    with open(tmp_path / "trl_rows.jsonl", "w") as f:
        for i in range(3):
            completions = [[{"role": "assistant", "content": f"Answer {j}"}] for j in range(3)]
            prompt = [{"role": "user", "content": f"Question {i}?"}]
            f.write(json.dumps({"prompt": prompt, "completions": completions}) + "\n")
    _pairs_with_the_readme_command(tmp_path / "trl_rows.jsonl", tmp_path / "o.jsonl", "completions")
    out = _rows(tmp_path / "o.jsonl")
    assert len(out) == 3
    for row in out:
        _trl_preference(row, conversational=True)
        assert _trl_dpo_prepare(row)["chosen"].endswith("</assistant>")
