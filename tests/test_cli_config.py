"""Options from a TOML file and GENRM_* variables: flag > environment > file > default."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from genrm_rank.cli import main
from genrm_rank.cli.config import add_config_option, apply_config, fill_repeatable
from genrm_rank.cli.options import build_parser

BASE = ["select", "in.jsonl", "-o", "out.jsonl", "--judge", "simulated"]


def parse(argv: list[str], environ: dict[str, str]) -> argparse.Namespace:
    parser = build_parser()
    add_config_option(parser)
    repeatable = apply_config(parser, argv, environ)
    args = parser.parse_args(argv)
    fill_repeatable(args, repeatable)
    return args


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
