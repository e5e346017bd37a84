"""The CLI's trainer outputs run through the trainers themselves (TRL, OpenRLHF), not replays.

Deselected by default; run with::

    scripts/setup_trainers.sh                  # once: .venv-trainers (about 1-2 min, 1.5 GB)
    .venv/bin/pytest -m trainers tests/test_trainers_real.py

``genrm-rank pairs`` (and ``select --format sft``) runs here, in-process with the simulated
judge, on a multi-turn chat input (a system turn, and an earlier assistant turn with
reasoning), a one-turn chat input and a plain-text input, in every format the README's trainer
table names. ``tests/trainers_support/run_trainers.py`` then runs, under the trainers
virtualenv (pinned versions: ``scripts/setup_trainers.sh``):

* TRL's ``DPOTrainer``, ``RewardTrainer`` and ``SFTTrainer`` on ``load_dataset("json")`` of each
  file as it is, with a tiny random-weight model, and one optimizer step each on the CPU;
* OpenRLHF's data path (its own command-line parser on the README's flags, ``get_tokenizer``,
  ``blending_datasets``, ``RewardDataset`` for ``train_dpo`` and ``train_rm``, ``collate_fn``)
  in two releases: 0.10.1, the last with plain options (``--prompt_key``), and 0.11.2, with
  dotted ones (``--data.prompt_key``).

Every check compares the text a trainer will train on, decoded from its token ids, with the
input conversation rendered by the tiny model's chat template (``<|ROLE|>content`` and a
newline a message): the prompt a trainer sees is the whole conversation (reasoning dropped),
and the chosen and rejected answers are the row's own. NeMo-RL is not run: PyPI holds only a
non-functional 0.0.0 placeholder of it, and its real package installs from its Git repository.

Environment: ``GENRM_TRAINERS_VENV`` (default ``<repo>/.venv-trainers``).
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from genrm_rank.cli import main

pytestmark = [pytest.mark.trainers, pytest.mark.timeout(1200)]

REPO_ROOT = Path(__file__).resolve().parents[1]
SETUP_SCRIPT = REPO_ROOT / "scripts" / "setup_trainers.sh"
RUNNER = REPO_ROOT / "tests" / "trainers_support" / "run_trainers.py"
BOS, EOS = "<s>", "</s>"
DOTTED, PLAIN = "0.11.2", "0.10.1"  # OpenRLHF releases: dotted options, and the last plain ones
N_ROWS = 4


def _venv() -> Path:
    env = os.environ.get("GENRM_TRAINERS_VENV")
    return Path(env).expanduser().resolve() if env else REPO_ROOT / ".venv-trainers"


def _render(messages: list[dict[str, str]], add_generation_prompt: bool = False) -> str:
    """The tiny model's chat template (``tests/vllm_support/tiny_model.py``)."""
    text = BOS + "".join(f"<|{m['role']}|>{m['content']}\n" for m in messages)
    return text + ("<|assistant|>" if add_generation_prompt else "")


# -- inputs --------------------------------------------------------------------------------------


def _candidates(i: int) -> list[str]:
    return [f"{2 * i}", f"It is {2 * i}.", f"Adding {i} and {i} gives {2 * i}.", "5"]


def _multi_turn(i: int) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": f"Hi {i}"},
        {"role": "assistant", "content": "<think>greet back</think>Hello!"},
        {"role": "user", "content": f"What is {i} + {i}?"},
    ]


INPUTS = {
    "chat": lambda i: {"messages": _multi_turn(i), "candidates": _candidates(i)},
    "onechat": lambda i: {
        "messages": [{"role": "user", "content": f"What is {i} + {i}?"}],
        "candidates": _candidates(i),
    },
    "plain": lambda i: {"problem": f"What is {i} + {i}?", "candidates": _candidates(i)},
}


def _conversation(kind: str, i: int) -> list[dict[str, str]]:
    """The conversation a trainer should see for input row ``i`` (reasoning dropped)."""
    if kind == "chat":
        turns = _multi_turn(i)
        turns[2] = {"role": "assistant", "content": "Hello!"}
        return turns
    return [{"role": "user", "content": f"What is {i} + {i}?"}]


# (input, command options) -> output name; the formats of the README's trainer table.
OUTPUTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "chat-full": ("chat", ("pairs",)),
    "plain-full": ("plain", ("pairs",)),
    "plain-trl": ("plain", ("pairs", "--format", "trl")),
    "onechat-trl": ("onechat", ("pairs", "--format", "trl")),
    "chat-trl-chat": ("chat", ("pairs", "--format", "trl-chat")),
    "plain-trl-chat": ("plain", ("pairs", "--format", "trl-chat")),
    "chat-openrlhf": ("chat", ("pairs", "--format", "openrlhf")),
    "plain-openrlhf": ("plain", ("pairs", "--format", "openrlhf")),
    "chat-openrlhf-margin": ("chat", ("pairs", "--format", "openrlhf", "--margin-field", "margin")),
    "plain-full-margin": ("plain", ("pairs", "--margin-field", "margin")),
    "chat-sft": ("chat", ("select", "--format", "sft")),
}
TRL_PAIRS = [
    "chat-full",
    "plain-full",
    "plain-trl",
    "onechat-trl",
    "chat-trl-chat",
    "plain-trl-chat",
]
CONVERSATIONAL = {"chat-full", "chat-trl-chat", "plain-trl-chat"}


def openrlhf_flags(release: str, model: str, data: str, *extra: tuple[str, str]) -> list[str]:
    """The README's OpenRLHF flags for ``release``; ``extra``: (option, value) pairs."""
    dotted = release == DOTTED
    flags = ["--model.model_name_or_path" if dotted else "--pretrain", model]
    flags += ["--data.dataset" if dotted else "--dataset", data]
    flags += ["--data.apply_chat_template" if dotted else "--apply_chat_template"]
    for option, value in extra:
        flags += [f"--data.{option}" if dotted else f"--{option}", value]
    return flags


# -- the run -------------------------------------------------------------------------------------


def _write_inputs(folder: Path) -> None:
    for kind, make in INPUTS.items():
        with open(folder / f"{kind}.jsonl", "w", encoding="utf-8") as f:
            for i in range(N_ROWS):
                f.write(json.dumps(make(i)) + "\n")


def _run_cli(folder: Path) -> dict[str, Path]:
    files = {}
    for name, (kind, (command, *options)) in OUTPUTS.items():
        out = folder / f"{name}.jsonl"
        argv = [command, str(folder / f"{kind}.jsonl"), "-o", str(out), *options]
        assert main([*argv, "--judge", "simulated", "-q"]) == 0, name
        files[name] = out
    # The row shape that crashed TRL (issue 20): a message-list prompt with text answers.
    old = folder / "old-full.jsonl"
    with open(old, "w", encoding="utf-8") as f:
        for row in _rows(files["chat-full"]):
            chosen, rejected = _answer(row["chosen"]), _answer(row["rejected"])
            f.write(json.dumps({"prompt": row["prompt"], "chosen": chosen, "rejected": rejected}))
            f.write("\n")
    files["old-full"] = old
    return files


def _jobs(files: dict[str, Path], model: str, release: str) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = []
    if release == DOTTED:  # TRL once, beside the current OpenRLHF release
        for name in [*TRL_PAIRS, "plain-full-margin", "old-full"]:
            step = name != "old-full"
            jobs.append({"name": f"dpo:{name}", "kind": "trl_dpo", "file": str(files[name])})
            jobs[-1]["step"] = step
            jobs.append({"name": f"rm:{name}", "kind": "trl_reward", "file": str(files[name])})
            jobs[-1]["step"] = step
        jobs.append({"name": "sft:chat-sft", "kind": "trl_sft", "file": str(files["chat-sft"])})
        jobs[-1]["step"] = True
    runs: list[tuple[str, str, tuple[tuple[str, str], ...]]] = [
        ("chat-openrlhf", "defaults", ()),
        ("plain-openrlhf", "defaults", ()),
        ("chat-openrlhf-margin", "defaults", ()),
        ("chat-trl-chat", "prompt_key", (("prompt_key", "prompt"),)),
        ("chat-trl-chat", "defaults", ()),  # the prompt column left unread: a negative control
    ]
    for name, keys, extra in runs:
        for script in ("train_dpo", "train_rm"):
            flags = openrlhf_flags(release, model, str(files[name]), *extra)
            job_name = f"openrlhf-{release}:{script}:{name}:{keys}"
            jobs.append({"name": job_name, "kind": "openrlhf", "script": script, "argv": flags})
    return jobs


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    python = _venv() / "bin" / "python"
    if not python.is_file():
        pytest.fail(
            f"no trainers virtualenv at {_venv()}: run `bash {SETUP_SCRIPT.relative_to(REPO_ROOT)}`"
            " (or set GENRM_TRAINERS_VENV)",
            pytrace=False,
        )
    folder = tmp_path_factory.mktemp("trainers")
    _write_inputs(folder)
    files = _run_cli(folder)
    model = str(folder / "model")
    reports: dict[str, Any] = {}
    for release in (DOTTED, PLAIN):  # the first run builds the tiny model, the second reuses it
        spec = {"model_dir": model, "work_dir": str(folder / "work")}
        spec["jobs"] = _jobs(files, model, release)
        (folder / f"spec-{release}.json").write_text(json.dumps(spec))
        env = {**os.environ, "PYTHONPATH": str(_venv() / f"openrlhf-{release}")}
        argv = [str(python), str(RUNNER), str(folder / f"spec-{release}.json")]
        argv.append(str(folder / f"report-{release}.json"))
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        log = done.stdout + done.stderr
        assert done.returncode == 0, f"run_trainers.py ({release}) failed:\n{log[-4000:]}"
        reports[release] = json.loads((folder / f"report-{release}.json").read_text())
        sys.stderr.write(f"[trainers] {release}: {reports[release]['versions']}\n")
    yield {"files": files, "reports": reports, "jobs": _merged_jobs(reports)}


def _merged_jobs(reports: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for report in reports.values():
        merged.update(report["jobs"])
    return merged


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _ok(run: dict[str, Any], name: str) -> dict[str, Any]:
    result = run["jobs"][name]
    assert result["ok"], f"{name}: {result.get('error')}"
    return dict(result)


def _answer(value: Any) -> str:
    """A chosen/rejected value's answer text: the string, or the last message's content."""
    return value if isinstance(value, str) else str(value[-1]["content"])


def _index(row: dict[str, Any]) -> int:
    return int(str(row["id"]).removeprefix("line:")) - 1


def _input_kind(name: str) -> str:
    return OUTPUTS[name][0]


# -- TRL -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", TRL_PAIRS)
def test_trl_dpo_trains_on_the_whole_prompt_and_the_rows_answers(
    run: dict[str, Any], name: str
) -> None:
    result = _ok(run, f"dpo:{name}")
    rows = _rows(run["files"][name])
    assert len(result["rows"]) == len(rows) == N_ROWS
    for row, seen in zip(rows, result["rows"], strict=True):
        i, kind = _index(row), _input_kind(name)
        chosen, rejected = _answer(row["chosen"]), _answer(row["rejected"])
        assert chosen in _candidates(i) and rejected in _candidates(i) and chosen != rejected
        if name in CONVERSATIONAL:  # the chat template, prompt with the generation prompt
            assert seen["prompt"] == _render(_conversation(kind, i), add_generation_prompt=True)
            assert (seen["chosen"], seen["rejected"]) == (f"{chosen}\n", f"{rejected}\n")
        else:  # TRL's standard rows: the texts as they are, EOS added, nothing between
            assert seen["prompt"] == _conversation(kind, i)[-1]["content"]
            assert (seen["chosen"], seen["rejected"]) == (chosen + EOS, rejected + EOS)
    loss = result["loss"]
    assert loss is not None and math.isclose(loss, math.log(2), rel_tol=1e-3)  # policy == ref


@pytest.mark.parametrize("name", TRL_PAIRS)
def test_trl_reward_trainer_scores_the_whole_conversation(run: dict[str, Any], name: str) -> None:
    result = _ok(run, f"rm:{name}")
    rows = _rows(run["files"][name])
    for row, seen in zip(rows, result["rows"], strict=True):
        conversation = _conversation(_input_kind(name), _index(row))
        for key in ("chosen", "rejected"):
            answer = _answer(row[key])
            if name in CONVERSATIONAL:
                expected = _render([*conversation, {"role": "assistant", "content": answer}])
            else:
                expected = conversation[-1]["content"] + answer + EOS
            assert seen[key] == expected
        assert seen["margin"] is None  # no margin column unless asked for
    assert result["loss"] is not None and math.isfinite(result["loss"])


def test_default_pairs_of_a_chat_input_load_into_trl_dpo_unchanged(run: dict[str, Any]) -> None:
    """Issue 20's target, in TRL itself; the former row shape fails there as reported."""
    assert _ok(run, "dpo:chat-full")["loss"] is not None
    old = run["jobs"]["dpo:old-full"]
    assert not old["ok"]
    assert 'can only concatenate list (not "str") to list' in old["error"]


def test_trl_reward_trainer_reads_the_named_margin_column(run: dict[str, Any]) -> None:
    result = _ok(run, "rm:plain-full-margin")
    rows = _rows(run["files"]["plain-full-margin"])
    for row, seen in zip(rows, result["rows"], strict=True):
        assert row["margin"] == row["genrm_strength_gap"] and math.isfinite(row["margin"])
        assert seen["margin"] == pytest.approx(row["margin"])


def test_trl_sft_trainer_reads_select_sft_rows(run: dict[str, Any]) -> None:
    result = _ok(run, "sft:chat-sft")
    rows = _rows(run["files"]["chat-sft"])
    assert len(rows) == len(result["rows"]) == N_ROWS
    for row, seen in zip(rows, result["rows"], strict=True):
        i = _index(row)
        winner = row["messages"][-1]["content"]
        assert winner in _candidates(i)
        conversation = [*_conversation("chat", i), {"role": "assistant", "content": winner}]
        assert seen["text"] in (_render(conversation), _render(conversation) + EOS)
    assert result["loss"] is not None and math.isfinite(result["loss"])


# -- OpenRLHF ------------------------------------------------------------------------------------


OPENRLHF_WORKING = [
    ("chat-openrlhf", "defaults"),
    ("plain-openrlhf", "defaults"),
    ("chat-trl-chat", "prompt_key"),
]


@pytest.mark.parametrize("release", [DOTTED, PLAIN])
@pytest.mark.parametrize("script", ["train_dpo", "train_rm"])
@pytest.mark.parametrize(("name", "keys"), OPENRLHF_WORKING)
def test_openrlhf_reads_the_whole_conversation_and_the_rows_answers(
    run: dict[str, Any], release: str, script: str, name: str, keys: str
) -> None:
    result = _ok(run, f"openrlhf-{release}:{script}:{name}:{keys}")
    rows = _rows(run["files"][name])
    assert len(result["rows"]) == len(rows) == N_ROWS
    assert result["batch"]["chosen_shape"][0] == N_ROWS  # collate_fn made one batch of all
    for row, seen in zip(rows, result["rows"], strict=True):
        conversation = _conversation(_input_kind(name), _index(row))
        for key, seen_key in (("chosen", "chosen"), ("rejected", "rejected")):
            answer = _answer(row[key])
            whole = _render([*conversation, {"role": "assistant", "content": answer}])
            assert seen["prompt"] + seen[seen_key] == whole
        if script == "train_dpo":  # the prompt is the conversation before the answer
            assert seen["prompt"] == _render(conversation, add_generation_prompt=True)
        elif keys == "defaults":  # a reward model scores the whole conversation
            assert seen["prompt"] == "" and seen["extra"] == 0  # no margin column: 0
        assert seen["chosen_tokens"].endswith(EOS)


@pytest.mark.parametrize("release", [DOTTED, PLAIN])
def test_openrlhf_reads_the_named_margin_column(run: dict[str, Any], release: str) -> None:
    result = _ok(run, f"openrlhf-{release}:train_rm:chat-openrlhf-margin:defaults")
    rows = _rows(run["files"]["chat-openrlhf-margin"])
    for row, seen in zip(rows, result["rows"], strict=True):
        assert seen["extra"] == pytest.approx(row["margin"]) and row["margin"] > 0


@pytest.mark.parametrize("release", [DOTTED, PLAIN])
def test_openrlhf_defaults_drop_a_prompt_column(run: dict[str, Any], release: str) -> None:
    """Why the README pairs ``openrlhf`` rows with OpenRLHF's defaults and ``trl-chat`` rows
    with ``prompt_key``: with ``prompt_key`` unset a ``prompt`` column is never read, so a
    reward model is trained on the answers alone."""
    result = _ok(run, f"openrlhf-{release}:train_rm:chat-trl-chat:defaults")
    rows = _rows(run["files"]["chat-trl-chat"])
    for row, seen in zip(rows, result["rows"], strict=True):
        assert seen["chosen"] == _render(row["chosen"])  # the answer only, no user turn
    # DPO takes the conversation before the last turn: nothing, for a lone answer.
    dpo = run["jobs"][f"openrlhf-{release}:train_dpo:chat-trl-chat:defaults"]
    assert not dpo["ok"] and "Cannot apply chat template to an empty conversation" in dpo["error"]


# -- versions and the README ---------------------------------------------------------------------


def _pins() -> dict[str, str]:
    text = SETUP_SCRIPT.read_text(encoding="utf-8")
    return dict(re.findall(r'"([a-z]+)==([0-9.]+)"', text))


def test_the_versions_run_are_the_pinned_ones_and_the_readme_names_them(
    run: dict[str, Any],
) -> None:
    pins = _pins()
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    for release, report in run["reports"].items():
        versions = report["versions"]
        assert versions["openrlhf"] == release
        for package in ("trl", "transformers", "datasets", "accelerate"):
            assert versions[package] == pins[package]
        assert str(versions["torch"]).split("+")[0] == pins["torch"]
    table = readme.split("| Trainer |", 1)[1].split("\n\n", 1)[0]
    for package in ("trl", "transformers", "datasets"):
        assert f"{package} {pins[package]}" in table
    for release in (DOTTED, PLAIN):
        assert f"OpenRLHF {release}" in table
    assert "nemo-rl" in table and "0.0.0 placeholder" in table  # why NeMo-RL was not run


def test_the_readme_gives_the_openrlhf_flags_that_were_run() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("| Trainer |", 1)[1].split("\n\n", 1)[0]
    for release in (DOTTED, PLAIN):
        flags = openrlhf_flags(release, "MODEL", "pairs.jsonl")
        assert " ".join(flags[2:]) in table, release  # --data.dataset pairs.jsonl ...
        assert flags[0] in table
        prompt_key = openrlhf_flags(release, "M", "d", ("prompt_key", "prompt"))[-2:]
        assert " ".join(prompt_key) in table
