"""Options from a TOML file and GENRM_* variables: flag > environment > file > default."""

from __future__ import annotations

import argparse
import io
from pathlib import Path
from typing import Any

import pytest

from genrm_rank.cli import main
from genrm_rank.cli.config import parse_args, warn_unknown_environment
from genrm_rank.cli.judge import make_judge
from genrm_rank.cli.options import UsageError, every_option
from genrm_rank.flags import Option

BASE = ["select", "in.jsonl", "-o", "out.jsonl", "--judge", "simulated"]


def parse(argv: list[str], environ: dict[str, str]) -> argparse.Namespace:
    return parse_args(argv, environ)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "genrm.toml"
    path.write_text(
        'concurrency = 7\nseed = 3\nendpoint = ["http://file:8000/v1"]\n'
        '[select]\nstrategy = "round-robin"\nmin-score = 2.5\nquiet = true\n'
        "[pairs]\nall-pairs = true\n"
    )
    return path


def test_defaults_without_file_or_environment() -> None:
    args = parse(BASE, {})
    assert (args.concurrency, args.seed, args.strategy, args.min_score) == (64, 0, "knockout", None)


def test_file_then_environment_then_flag(config: Path) -> None:
    argv = [*BASE, "--config", str(config)]
    from_file = parse(argv, {})
    assert (from_file.concurrency, from_file.seed, from_file.strategy) == (7, 3, "round_robin")
    assert from_file.min_score == 2.5 and from_file.quiet is True
    assert from_file.endpoint == ["http://file:8000/v1"]
    env = {"GENRM_SEED": "9", "GENRM_ENDPOINT": "http://a/v1,http://b/v1", "GENRM_QUIET": "no"}
    from_env = parse(argv, env)
    assert (from_env.seed, from_env.concurrency, from_env.quiet) == (9, 7, False)
    assert from_env.endpoint == ["http://a/v1", "http://b/v1"]
    flags = parse([*argv, "--seed", "11", "--endpoint", "http://c/v1"], env)
    assert flags.seed == 11 and flags.endpoint == ["http://c/v1"]  # replaced, not added to


def test_the_config_file_can_come_from_the_environment(config: Path) -> None:
    args = parse(BASE, {"GENRM_CONFIG": str(config)})
    assert args.concurrency == 7


def test_a_section_applies_to_its_subcommand_only(config: Path) -> None:
    pairs = parse(["pairs", "in.jsonl", "-o", "o.jsonl", "--config", str(config)], {})
    assert pairs.all_pairs is True and pairs.strategy == "round_robin"  # pairs' own default
    assert not hasattr(pairs, "min_score")


@pytest.mark.parametrize(
    ("text", "environ", "message"),
    [
        ("concurrency = 0\n", {}, "--concurrency must be >= 1"),
        ("[select]\nmin-scor = 3\n", {}, "select has no option 'min-scor'"),
        ("sede = 3\n", {}, "no subcommand has an option 'sede'"),
        ("", {"GENRM_SWAP": "sometimes"}, "environment GENRM_SWAP: --swap must be one of"),
        ("", {"GENRM_QUIET": "maybe"}, "must be true or false"),
        ("concurrency = [", {}, "not valid TOML"),
        # names that read the other way round (GENRM_VERIFY_TLS=1 turned verification off)
        ("", {"GENRM_VERIFY_TLS": "1"}, "GENRM_NO_VERIFY_TLS=1 means --no-verify-tls"),
        ("", {"GENRM_VERIFY_TLS": "0"}, "'GENRM_VERIFY_TLS' is not an option name"),
        ("verify_tls = true\n", {}, "no-verify-tls = true means --no-verify-tls"),
        ("[select]\nverify-tls = false\n", {}, "'verify_tls' is not an option name"),
        (
            "",
            {"GENRM_FIT_POSITION_BIAS": "0"},
            "GENRM_NO_FIT_POSITION_BIAS=1 means --no-fit-position-bias",
        ),
        (
            "fit-position-bias = false\n",
            {},
            "no-fit-position-bias = true means --no-fit-position-bias",
        ),
        # names from before the spec's switch was named for what it does (issue 21)
        ("no-position-term = true\n", {}, "(did you mean 'no-fit-position-bias'?)"),
        # unknown names: the closest valid one is named
        ("[selct]\nmin-score = 3\n", {}, "no subcommand [selct] (did you mean 'select'?)"),
        ("[pairs]\nal-pairs = true\n", {}, "(did you mean 'all-pairs'?)"),
        ("[select]\nmin-scor = 3\n", {}, "(did you mean 'min-score'?)"),
        (
            "concurency = 3\n",
            {},
            "no subcommand has an option 'concurency' (did you mean 'concurrency'?)",
        ),
    ],
)
def test_bad_values_are_usage_errors_naming_their_source(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    text: str,
    environ: dict[str, str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SystemExit) as info:
        main([*BASE, "--config", str(path)])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_a_run_takes_its_options_from_the_file(tmp_path: Path) -> None:
    rows = tmp_path / "in.jsonl"
    rows.write_text('{"id": 1, "prompt": "Q", "candidates": ["a", "b", "c"]}\n')
    config = tmp_path / "genrm.toml"
    config.write_text('judge = "simulated"\nquiet = true\n[select]\nstrategy = "swiss"\n')
    out = tmp_path / "out.jsonl"
    assert main(["select", str(rows), "-o", str(out), "--config", str(config)]) == 0
    assert '"strategy": "swiss"' in out.read_text()


# --------------------------------------------------------------------------------------------
# Flags mean the same from the command line, a file and the environment (issue 18, item 13)

POSITIONALS = {
    "rank": ["in.jsonl", "-o", "o.jsonl"],
    "select": ["in.jsonl", "-o", "o.jsonl"],
    "pairs": ["in.jsonl", "-o", "o.jsonl"],
    "leaderboard": ["in.jsonl"],
    "compare": ["--prompt", "P", "--a", "A", "--b", "B"],
    "merge": ["in.jsonl", "s0.jsonl", "-o", "o.jsonl"],
    "demo": [],
    "report": ["out.jsonl"],
}


def _boolean_options() -> list[tuple[str, Option]]:
    """Every option that takes no value, of every subcommand: found, not listed by hand."""
    return [(command, option) for command, option in every_option() if not option.takes_value]


BOOLEANS = [(command, option.flag) for command, option in _boolean_options()]


def test_every_subcommand_with_flags_can_be_parsed_here() -> None:
    assert {command for command, _ in BOOLEANS} <= set(POSITIONALS)
    assert ("select", "--no-verify-tls") in BOOLEANS
    assert ("rank", "--no-fit-position-bias") in BOOLEANS


def flag_value(tmp_path: Path, command: str, flag: str, source: str, given: bool) -> Any:
    """The value a boolean option gets when ``source`` (cli, toml or env) gives it or not."""
    argv = [command, *POSITIONALS[command]]
    key = flag.lstrip("-")
    environ: dict[str, str] = {}
    if source == "cli":
        argv += [flag] if given else []
    elif source == "toml":
        path = tmp_path / "genrm.toml"
        path.write_text(f"[{command}]\n{key} = {'true' if given else 'false'}\n")
        argv += ["--config", str(path)]
    else:
        environ["GENRM_" + key.upper().replace("-", "_")] = "1" if given else "0"
    dest = next(o.dest for c, o in _boolean_options() if c == command and o.flag == flag)
    return getattr(parse(argv, environ), dest)


@pytest.mark.parametrize("given", [True, False], ids=["on", "off"])
@pytest.mark.parametrize("source", ["toml", "env"])
@pytest.mark.parametrize(("command", "flag"), BOOLEANS, ids=[f"{c}{f}" for c, f in BOOLEANS])
def test_a_flag_means_the_same_from_cli_file_and_environment(
    tmp_path: Path, command: str, flag: str, source: str, given: bool
) -> None:
    """``key = true`` / ``GENRM_KEY=1`` is the flag given; ``false`` / ``0`` leaves it out."""
    from_cli = flag_value(tmp_path, command, flag, "cli", given)
    assert flag_value(tmp_path, command, flag, source, given) == from_cli
    default = flag_value(tmp_path, command, flag, "cli", False)
    assert (from_cli != default) is given  # the flag changes something, and only when given


@pytest.mark.parametrize(
    ("environ", "verify"),
    [
        ({"GENRM_NO_VERIFY_TLS": "1"}, False),
        ({"GENRM_NO_VERIFY_TLS": "true"}, False),
        ({"GENRM_NO_VERIFY_TLS": "0"}, True),
        ({"GENRM_NO_VERIFY_TLS": "off"}, True),
        ({}, True),
    ],
)
def test_tls_verification_from_the_environment(environ: dict[str, str], verify: bool) -> None:
    assert parse(BASE, environ).verify_tls is verify


@pytest.mark.parametrize(
    "name", sorted({"GENRM_" + f.lstrip("-").upper().replace("-", "_") for _, f in BOOLEANS})
)
def test_an_unreadable_flag_value_names_the_variable(name: str) -> None:
    command = next(
        c for c, f in BOOLEANS if "GENRM_" + f.lstrip("-").upper().replace("-", "_") == name
    )
    with pytest.raises(
        UsageError, match=f"environment {name}: --.* must be true or false, not 'maybe'"
    ):
        parse([command, *POSITIONALS[command]], {name: "maybe"})


def test_turning_tls_verification_off_warns(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["select", "in.jsonl", "-o", "o.jsonl", "--endpoint", "https://127.0.0.1:9/v1"]
    args = parse([*argv, "--model", "m"], {"GENRM_NO_VERIFY_TLS": "1"})
    setup = make_judge(args)
    assert setup.judge.verify_tls is False  # type: ignore[attr-defined]
    assert "TLS certificates are not verified (--no-verify-tls)" in capsys.readouterr().err
    make_judge(parse([*argv, "--model", "m"], {}))
    assert "TLS" not in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# Unknown names (issue 18, item 20)


def test_a_json_option_takes_a_toml_table(tmp_path: Path) -> None:
    path = tmp_path / "genrm.toml"
    path.write_text("[select]\nextra-body = {top_k = 20}\n")
    assert parse([*BASE, "--config", str(path)], {}).extra_body == {"top_k": 20}


def test_an_unknown_variable_warns_naming_the_closest() -> None:
    stream = io.StringIO()
    environ = {
        "GENRM_MIN_SCOR": "3",
        "GENRM_VLLM_VENV": "/v",  # the project's own, outside the CLI
        "GENRM_API_KEY": "k",
        "GENRM_MY_KEY": "k",  # named by --api-key-env
        "GENRM_CONCURRENCY": "3",
    }
    warnings = warn_unknown_environment(environ, also=["GENRM_MY_KEY"], stream=stream)
    assert warnings == [
        "genrm-rank: warning: environment variable GENRM_MIN_SCOR is not an option and is "
        "ignored (did you mean 'GENRM_MIN_SCORE'?)"
    ]
    assert stream.getvalue() == warnings[0] + "\n"


def test_a_run_warns_about_an_unknown_variable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = tmp_path / "in.jsonl"
    rows.write_text('{"id": 1, "prompt": "Q", "candidates": ["a", "b"]}\n')
    monkeypatch.setenv("GENRM_MIN_SCOR", "3")
    out = tmp_path / "out.jsonl"
    assert main([*BASE[:1], str(rows), "-o", str(out), "--judge", "simulated", "-q"]) == 0
    assert "GENRM_MIN_SCOR is not an option" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# One declaration per option (issue 21)


def _parser_flags() -> dict[str, set[str]]:
    """Every subcommand's option strings, as the parser has them (walked here, in the test)."""
    from genrm_rank.cli import build_parser

    found: dict[str, set[str]] = {}

    def walk(parser: argparse.ArgumentParser, prefix: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, f"{prefix} {name}".strip())
            elif prefix:
                found.setdefault(prefix, set()).update(action.option_strings or [action.dest])

    walk(build_parser(), "")
    return found


def test_the_parser_holds_the_declared_options_and_nothing_else() -> None:
    declared: dict[str, set[str]] = {"cache": {"-h", "--help"}}
    for command, option in every_option():
        positional = option.action == "positional"
        toggle = "--no-" + option.flag[2:] if option.action == "toggle" else None
        flags = {option.dest if positional else option.flag, option.short, toggle} - {None}
        declared.setdefault(command, {"-h", "--help"}).update(f for f in flags if f)
    assert _parser_flags() == declared


def test_library_errors_name_the_flag_not_the_python_argument(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An ArgumentError carries its argument; the CLI names the option that sets it."""
    rows = tmp_path / "in.jsonl"
    rows.write_text('{"id": 1, "prompt": "Q", "output": "a"}\n')
    argv = ["select", str(rows), str(rows), "--candidates-from-files", "--candidate-field"]
    assert main([*argv, "output", "-o", str(tmp_path / "o.jsonl"), "--judge", "simulated"]) == 2
    err = capsys.readouterr().err
    assert "argument IN names one input twice" in err and "Argument '" not in err


@pytest.mark.parametrize(
    ("setting", "words"),
    [
        (("verify_tls", False), "--no-verify-tls"),
        (("overwrite", True), "--overwrite"),
        (("max_tokens", None), "--max-new-tokens"),
        (("rows.id_from_line", None), "--id-from-line"),
        (("endpoints[2]", None), "--endpoint"),
        (("format", "trl"), "--format trl"),
        (("no_such_argument", None), "argument 'no_such_argument'"),  # the library's words
        (("verify_tls", True), "verify_tls=True"),  # a value no flag gives
    ],
)
def test_a_setting_is_worded_by_the_option_that_sets_it(
    setting: tuple[str, object], words: str
) -> None:
    from genrm_rank.cli.config import cli_words
    from genrm_rank.errors import ArgumentError

    name, value = setting
    fix = ArgumentError.Setting(name) if value is None else ArgumentError.Setting(name, value)
    error = ArgumentError("paths", ": x exists; pass {fix}.", fix=fix)
    assert cli_words(error, "select") == f"argument --output: x exists; pass {words}."
    assert str(error).startswith("Argument 'paths': x exists; pass ")


def test_a_message_value_is_worded_by_its_settings_and_other_text_is_left_alone() -> None:
    """A library message that names arguments is a Words value the CLI words from its settings;
    plain text is never rewritten (no pattern matching over library messages)."""
    import pickle

    from genrm_rank.cli.config import cli_words
    from genrm_rank.errors import ArgumentError, SystematicFailureError, Words

    fix = Words(
        "pass {fix} ({a})",
        fix=ArgumentError.Setting("thinking", False),
        a=ArgumentError.Setting("max_tokens"),
    )
    stop = Words("the run stops: {fix}", fix=fix)
    assert stop == "the run stops: pass thinking=False (argument 'max_tokens')"
    assert cli_words(stop, "select") == "the run stops: pass --no-thinking (--max-new-tokens)"
    assert cli_words(SystematicFailureError(stop), "select") == cli_words(stop, "select")
    assert cli_words(pickle.loads(pickle.dumps(stop)), "select") == cli_words(stop, "select")
    typed = TypeError(
        Words("{head} must be a string, not int.", head=ArgumentError.Setting("prompt"))
    )
    assert str(typed) == "Argument 'prompt' must be a string, not int."
    assert cli_words(typed, "compare") == "argument --prompt must be a string, not int."
    plain = "pass thinking=False; argument 'model' is wrong"  # not a Words: left as it is
    assert cli_words(plain, "select") == plain
    assert cli_words(ValueError(plain), "select") == plain


def test_a_spec_option_is_helped_by_its_rank_spec_documentation() -> None:
    """RankSpec's Parameters section is the one text of a spec field: the first paragraph of
    each is its option's help, plain and in lower case."""
    import dataclasses

    from genrm_rank.flags import documented
    from genrm_rank.spec import RankSpec
    from genrm_rank.strategies import STRATEGIES

    text = documented(RankSpec)
    assert set(text) == {f.name for f in dataclasses.fields(RankSpec)}
    assert text["alpha"] == "L2 prior of the Bradley-Terry fit"
    assert text["samples"] == "judgements per match and order"
    assert "``" not in "".join(text.values()) and "Generator" not in text["seed"]
    assert all(name.replace("_", "-") in text["strategy"] for name in STRATEGIES)
    helps = {o.dest: o.help for c, o in every_option() if c == "select"}
    for name, words in text.items():
        assert helps[name] == ("do not " + words if name == "fit_position_bias" else words)
