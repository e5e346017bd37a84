"""The public surface: ``__all__`` complete, sorted and importable (as httpx checks its own).

The modules are found by walking the package, so a new module is covered without being listed.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import inspect
import pkgutil
import re
import runpy
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import genrm_rank
import genrm_rank.judges
from genrm_rank.spec import RankSpec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


def _walk() -> list[str]:
    failed: list[str] = []
    found = [
        info.name
        for info in pkgutil.walk_packages(genrm_rank.__path__, "genrm_rank.", onerror=failed.append)
    ]
    assert failed == [], f"packages that do not import: {failed}"
    return sorted(["genrm_rank", *found])


ALL_MODULES = _walk()
ENTRY_POINTS = [name for name in ALL_MODULES if name.rsplit(".", 1)[-1] == "__main__"]
"""``python -m`` programs: importing one runs it, so they are run with ``--help`` instead."""
MODULES = [name for name in ALL_MODULES if name not in ENTRY_POINTS]
COMMAND_LINE = "genrm_rank.cli"
"""The command line's modules: their surface is the command line, not ``__all__``."""
LIBRARY = [
    name for name in MODULES if name != COMMAND_LINE and not name.startswith(COMMAND_LINE + ".")
]


def test_the_walk_covers_every_file_of_the_package() -> None:
    root = Path(genrm_rank.__file__).parent
    files = {
        ".".join(("genrm_rank", *path.relative_to(root).with_suffix("").parts)).removesuffix(
            ".__init__"
        )
        for path in root.rglob("*.py")
    }
    assert files == set(ALL_MODULES)
    # Among them those the earlier hand-written list left out.
    for name in ["genrm_rank.cli", "genrm_rank.report_html", "genrm_rank.server.app"]:
        assert name in MODULES
    assert "genrm_rank.cli.__main__" in ENTRY_POINTS


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ValueError:  # in sys.modules without a spec: a stand-in another test put there
        return True


def _missing_dependency(exc: ImportError) -> str | None:
    """The top-level module whose absence caused ``exc`` (or the error it was raised from)."""
    for error in (exc, exc.__cause__):
        if isinstance(error, ImportError) and error.name:
            return error.name.split(".")[0]
    return None


@pytest.mark.parametrize("name", MODULES)
def test_every_module_imports(name: str) -> None:
    """Without its optional extra, a module may refuse to import, naming the extra to install."""
    try:
        importlib.import_module(name)
    except ImportError as exc:
        missing = _missing_dependency(exc)
        assert missing is not None and not missing.startswith("genrm_rank"), exc
        assert not _installed(missing), exc  # the dependency really is absent
        assert re.search(r"pip install 'genrm-rank\[\w+\]'", str(exc)), exc


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_python_m_programs_answer_help(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", [name, "--help"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module(name.removesuffix(".__main__"), run_name="__main__", alter_sys=True)
    assert exit_info.value.code in (0, None)
    assert "usage:" in capsys.readouterr().out.lower()


class _ChatLLM:
    """Stands in for a vLLM ``LLM``: all the offline judge checks at construction is ``chat``."""

    def chat(self, *args: object, **kwargs: object) -> list[Any]:
        return []


def _rank_dataset() -> object:
    from genrm_rank.integrations.ray import rank_dataset

    return rank_dataset(None, spec=RankSpec(), judge_factory=_ChatLLM)


def _offline_judge() -> object:
    from genrm_rank.judges.vllm_offline import VLLMOfflineJudge

    return VLLMOfflineJudge(_ChatLLM(), model="genrm")


@pytest.mark.parametrize(
    ("extra", "module", "call", "installed"),
    [
        # With Ray, rank_dataset gets past its import and checks its arguments.
        ("ray", "ray", _rank_dataset, (TypeError, "Argument 'ds' must be a ray.data.Dataset")),
        ("vllm", "vllm", _offline_judge, None),
    ],
)
def test_optional_extras_are_named_when_missing(
    extra: str,
    module: str,
    call: Callable[[], object],
    installed: tuple[type[Exception], str] | None,
) -> None:
    """The optional engines are imported when used; without them the error says what to install."""
    if not _installed(module):
        with pytest.raises(ImportError, match=re.escape(f"pip install 'genrm-rank[{extra}]'")):
            call()
    elif installed is not None:
        with pytest.raises(installed[0], match=re.escape(installed[1])):
            call()
    else:
        assert call() is not None


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


@pytest.mark.parametrize("name", LIBRARY)
def test_all_is_sorted_unique_and_importable(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert exported == sorted(exported, key=isort_key)
    assert len(set(exported)) == len(exported)
    for item in exported:
        assert hasattr(module, item), f"{name}.{item} is in __all__ but missing"


@pytest.mark.parametrize("name", LIBRARY)
def test_every_exported_exception_is_in_the_library_tree(name: str) -> None:
    """errors.py draws one tree rooted in GenRMRankError: every exception a library module
    exports (the transport's and the routing pool's included) is in it."""
    from genrm_rank.errors import GenRMRankError

    module = importlib.import_module(name)
    exported = [getattr(module, item) for item in module.__all__]
    outside = [
        e.__name__
        for e in exported
        if inspect.isclass(e) and issubclass(e, BaseException) and not issubclass(e, GenRMRankError)
    ]
    assert outside == []


NOT_IN_ALL: dict[str, set[str]] = {}
"""Public-looking names that modules define outside their ``__all__``: none (the eight found
when this test came to cover every module are now in their modules' ``__all__``). A new public
name outside ``__all__`` fails."""


@pytest.mark.parametrize("name", LIBRARY)
def test_all_is_complete(name: str) -> None:
    module = importlib.import_module(name)
    assert public_names(module) - set(module.__all__) <= NOT_IN_ALL.get(name, set())


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

    for item in errors.__all__:  # but Words, the message value errors and hints carry
        value = getattr(errors, item)
        assert issubclass(value, errors.GenRMRankError) or value is errors.Words


def test_version_is_the_installed_and_declared_one() -> None:
    """``__version__`` is the version pip installed and the one pyproject.toml declares."""
    assert genrm_rank.__version__ == importlib.metadata.version("genrm-rank")
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    declared = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"]
    assert genrm_rank.__version__ == declared


def test_argument_errors_and_words_cross_processes_as_themselves() -> None:
    """A Ray worker or a process pool pickles the errors it raises: an ArgumentError (and its
    subclasses) comes back with its argument, its structured message and its wordings."""
    import pickle

    from genrm_rank.errors import ArgumentError, Words
    from genrm_rank.sdg.inputs import InputError

    def flag(setting: ArgumentError.Setting, head: bool) -> str:
        return "argument -o" if head else f"--{setting.name}"

    fix = ArgumentError.Setting("overwrite", True)
    for error in (
        ArgumentError("paths", ": {path} exists; pass {fix}.", path="o.jsonl", fix=fix),
        InputError("sources", "cannot be read: {why}.", why="truncated"),
    ):
        back = pickle.loads(pickle.dumps(error))
        assert type(back) is type(error)
        assert (str(back), back.argument, back.words(flag)) == (
            str(error),
            error.argument,
            error.words(flag),
        )
    hint = Words("pass {fix}", fix=ArgumentError.Setting("thinking", False))
    back_hint = pickle.loads(pickle.dumps(hint))
    assert (back_hint, back_hint.words(lambda s, head: "--no-thinking")) == (
        "pass thinking=False",
        "pass --no-thinking",
    )
