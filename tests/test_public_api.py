"""The public surface: ``__all__`` complete, sorted and importable (as httpx checks its own)."""

from __future__ import annotations

import importlib
import inspect
import types

import pytest

import genrm_rank
import genrm_rank.judges

MODULES = [
    "genrm_rank",
    "genrm_rank.judges",
    "genrm_rank.errors",
    "genrm_rank.verdict",
    "genrm_rank.parsing",
    "genrm_rank.messages",
    "genrm_rank.judges.base",
    "genrm_rank.judges.simulated",
    "genrm_rank.judges.replay",
    "genrm_rank.api",
    "genrm_rank.results",
    "genrm_rank.orchestrator",
    "genrm_rank.consistency",
    "genrm_rank.cache",
    "genrm_rank.judges.cached",
    "genrm_rank.spec",
    "genrm_rank.runner",
    "genrm_rank.strategies",
    "genrm_rank.aggregators",
    "genrm_rank.judges.openai_http",
    "genrm_rank.judges.routing",
    "genrm_rank.server",
    "genrm_rank.sdg",
    "genrm_rank.sdg.rows",
    "genrm_rank.sdg.output",
    "genrm_rank.sdg.filters",
    "genrm_rank.sdg.pipeline",
    "genrm_rank.sdg.progress",
    "genrm_rank.sdg.runfiles",
    "genrm_rank.judges.discovery",
    "genrm_rank.flags",
]


def public_names(module: types.ModuleType) -> set[str]:
    """Public classes and functions a module offers.

    For a package: every class or function bound in its namespace (re-exports included). For a
    plain module: those defined in it (imports from sibling modules are not its surface).
    """
    is_package = hasattr(module, "__path__")
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and getattr(value, "__module__", "").startswith("genrm_rank")
        and (is_package or value.__module__ == module.__name__)
    }


def isort_key(name: str) -> tuple[int, str]:
    """The order ruff's RUF022 keeps: SCREAMING_CASE, then CamelCase, then the rest."""
    if name.isupper():
        return (0, name)
    if name[0].isupper():
        return (1, name)
    return (2, name)


@pytest.mark.parametrize("name", MODULES)
def test_all_is_sorted_unique_and_importable(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert exported == sorted(exported, key=isort_key)
    assert len(set(exported)) == len(exported)
    for item in exported:
        assert hasattr(module, item), f"{name}.{item} is in __all__ but missing"


@pytest.mark.parametrize("name", MODULES)
def test_all_is_complete(name: str) -> None:
    module = importlib.import_module(name)
    assert public_names(module) <= set(module.__all__)


@pytest.mark.parametrize("module", [genrm_rank, genrm_rank.judges])
def test_package_all_is_plainly_sorted(module: types.ModuleType) -> None:
    assert module.__all__ == sorted(module.__all__)


def test_top_level_exports_the_foundation() -> None:
    for item in [
        "BatchJudge",
        "FailureKind",
        "GenRMRankError",
        "Judge",
        "PairRequest",
        "ReplayJudge",
        "ReplayMissError",
        "RubricScore",
        "SimulatedJudge",
        "Usage",
        "Verdict",
        "VerdictError",
        "build_messages",
        "parse_verdict",
        # the entry points and the values they take and give
        "RankSpec",
        "Runner",
        "PromptInput",
        "PromptResult",
        "Ranking",
        "Comparisons",
        "bradley_terry",
        "LeaderboardTable",
        "select_best",
        "rank",
        "group_rewards",
        "leaderboard",
        "CachedJudge",
    ]:
        assert item in genrm_rank.__all__


def test_plumbing_stays_in_submodules() -> None:
    """A smaller surface: the orchestrator's internals are reached through their modules."""
    for item in ["Orchestrator", "PromptJob", "PromptRun", "JudgeStatistics", "Selection"]:
        assert item not in genrm_rank.__all__
    for item in [
        "BatchJudge",
        "Judge",
        "PairRequest",
        "ReplayJudge",
        "SimulatedJudge",
        "judge_many",
    ]:
        assert item in genrm_rank.judges.__all__


def test_every_exception_derives_from_the_root() -> None:
    from genrm_rank import errors

    for item in errors.__all__:
        assert issubclass(getattr(errors, item), errors.GenRMRankError)


def test_version() -> None:
    assert isinstance(genrm_rank.__version__, str)
