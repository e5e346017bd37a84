"""The files of a run: paths that may be written, and the run file checked on resume."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from genrm_rank.errors import ArgumentError
from genrm_rank.sdg.runfiles import check_paths, check_run_file, input_identity, run_file_path

SETTINGS = {"format": "full", "spec": {"strategy": "knockout", "seed": 0}}


@pytest.fixture
def inputs(tmp_path: Path) -> list[Path]:
    path = tmp_path / "in.jsonl"
    path.write_text('{"id": 1}\n')
    return [path]


def test_a_fresh_run_records_its_settings_and_inputs(tmp_path: Path, inputs: list[Path]) -> None:
    out = tmp_path / "out.jsonl"
    check_run_file(out, SETTINGS, resume=False, inputs=inputs)
    recorded = json.loads(run_file_path(out).read_text())
    assert run_file_path(out).name == "out.run.json"
    assert recorded == {**SETTINGS, "input": input_identity(inputs)}
    check_run_file(out, SETTINGS, resume=True, inputs=inputs)  # the same: resumes


def test_resuming_with_other_settings_names_what_changed(
    tmp_path: Path, inputs: list[Path]
) -> None:
    out = tmp_path / "out.jsonl"
    check_run_file(out, SETTINGS, resume=False, inputs=inputs)
    changed = {**SETTINGS, "spec": {"strategy": "swiss", "seed": 0}}
    with pytest.raises(ArgumentError, match=r"spec\.strategy: 'knockout' -> 'swiss'") as info:
        check_run_file(out, changed, resume=True, inputs=inputs)
    assert info.value.argument == "resume" and "pass overwrite=True" in str(info.value)


def test_resuming_from_another_input_is_refused(tmp_path: Path, inputs: list[Path]) -> None:
    out = tmp_path / "out.jsonl"
    check_run_file(out, SETTINGS, resume=False, inputs=inputs)
    inputs[0].write_text('{"id": 2}\n')
    with pytest.raises(ArgumentError, match="written from another input") as info:
        check_run_file(out, SETTINGS, resume=True, inputs=inputs)
    assert info.value.argument == "resume"


def test_a_setting_found_in_the_input_is_compared_only_when_recorded(
    tmp_path: Path, inputs: list[Path]
) -> None:
    out = tmp_path / "out.jsonl"
    check_run_file(out, SETTINGS, resume=False, inputs=inputs)  # recorded without it
    found = {**SETTINGS, "prompt_field_found": "messages"}
    check_run_file(out, found, resume=True, inputs=inputs, found=["prompt_field_found"])
    with pytest.raises(ArgumentError, match="prompt_field_found"):
        check_run_file(out, found, resume=True, inputs=inputs)


@pytest.mark.parametrize(
    ("written", "read", "argument", "words"),
    [
        ({"output": "o", "errors": "o"}, {}, "errors", "is also the argument 'output' file"),
        ({"summary_json": "in.jsonl"}, {"input": ["in.jsonl"]}, "summary_json", "which this"),
        ({"output": "o", "run": "o"}, {}, "run", "is also the argument 'output' file"),
        ({"output": "o", "cache": "o.run"}, {}, None, None),
        ({"output": "no/such/o"}, {}, "output", "directory no/such does not exist"),
    ],
)
def test_paths_that_collide_or_cannot_be_written_are_refused_by_argument(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    written: dict[str, str],
    read: dict[str, list[str]],
    argument: str | None,
    words: str | None,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.jsonl").write_text("{}\n")
    paths = {k: Path(v) for k, v in written.items()}
    sources = {k: [Path(v) for v in vs] for k, vs in read.items()}
    if argument is None:
        check_paths(paths, sources)
        return
    with pytest.raises(ArgumentError) as info:
        check_paths(paths, sources)
    assert info.value.argument == argument and words in str(info.value)


def test_a_run_file_with_a_spec_field_renamed_since_resumes(
    tmp_path: Path, inputs: list[Path]
) -> None:
    """A run started when the spec's switch was ``position_bias`` resumes as
    ``fit_position_bias`` (issue 21), and a changed value is still refused by the new name."""
    out = tmp_path / "out.jsonl"
    before = {"format": "full", "spec": {"strategy": "knockout", "position_bias": True}}
    check_run_file(out, before, resume=False, inputs=inputs)
    now = {"format": "full", "spec": {"strategy": "knockout", "fit_position_bias": True}}
    check_run_file(out, now, resume=True, inputs=inputs)
    off = {"format": "full", "spec": {"strategy": "knockout", "fit_position_bias": False}}
    with pytest.raises(ArgumentError, match=r"spec\.fit_position_bias: True -> False"):
        check_run_file(out, off, resume=True, inputs=inputs)


@pytest.mark.parametrize(
    ("written", "read", "argument"),
    [
        ({"output": "out.jsonl"}, {"input": ["in.jsonl"]}, "output"),
        ({"output": "o.jsonl", "errors": "out.jsonl"}, {}, "errors"),
    ],
)
def test_a_hard_link_is_the_file_it_links_to(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    written: dict[str, str],
    read: dict[str, list[str]],
    argument: str,
) -> None:
    """``out.jsonl`` and ``in.jsonl`` are one file under two names: ``overwrite`` would have
    emptied the input."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.jsonl").write_text("{}\n")
    os.link(tmp_path / "in.jsonl", tmp_path / "out.jsonl")
    os.link(tmp_path / "in.jsonl", tmp_path / "o.jsonl")
    paths = {k: Path(v) for k, v in written.items()}
    with pytest.raises(ArgumentError) as info:
        check_paths(paths, {k: [Path(v) for v in vs] for k, vs in read.items()})
    assert info.value.argument == argument and "is also the" in str(info.value)


@pytest.mark.parametrize("text", ["garbage\n", "[]\n", ""])
def test_a_run_file_that_is_not_one_is_refused_on_resume(
    tmp_path: Path, inputs: list[Path], text: str
) -> None:
    """It let a resumed run append rows under any settings, unchecked from then on."""
    out = tmp_path / "out.jsonl"
    run_file_path(out).write_text(text)
    with pytest.raises(ArgumentError, match="is not a run file") as info:
        check_run_file(out, SETTINGS, resume=True, inputs=inputs)
    assert info.value.argument == "resume" and run_file_path(out).read_text() == text
    check_run_file(out, SETTINGS, resume=False, inputs=inputs)  # --overwrite starts again
    check_run_file(out, SETTINGS, resume=True, inputs=inputs)
