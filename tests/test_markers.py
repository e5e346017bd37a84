"""The test markers: each one used is declared, and the default run keeps the ``slow`` tests.

CI runs the README's test command, so a test the default selection leaves out is a test CI
never runs. ``slow`` marks a test that takes 10 s or more on the 2-core development machine; it
labels them for a quick loop by hand (``-m 'not slow and not vllm and not browser and not
ray'``: a ``-m`` on the command line replaces the default one), and never leaves them out of the
default run.
"""

from __future__ import annotations

import ast
import re
import shlex
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PYTEST = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["pytest"][
    "ini_options"
]
DECLARED = {line.split(":", 1)[0].strip() for line in PYTEST["markers"]}
USED = {
    name
    for path in (ROOT / "tests").glob("*.py")
    for name in re.findall(r"pytest\.mark\.(\w+)", path.read_text(encoding="utf-8"))
} - {
    "parametrize",
    "skip",
    "skipif",
    "xfail",
    "usefixtures",
    "filterwarnings",
    "asyncio",
    "timeout",
}


def selects(expression: str, markers: set[str]) -> bool:
    """Whether ``-m expression`` selects a test that carries ``markers``."""
    tree = ast.parse(expression, mode="eval")
    allowed = (
        ast.Expression,
        ast.BoolOp,
        ast.And,
        ast.Or,
        ast.UnaryOp,
        ast.Not,
        ast.Name,
        ast.Load,
    )
    assert all(isinstance(node, allowed) for node in ast.walk(tree)), expression
    names = {node.id: node.id in markers for node in ast.walk(tree) if isinstance(node, ast.Name)}
    return bool(eval(compile(tree, "<-m>", "eval"), {"__builtins__": {}}, names))


def marker_expression(argv: list[str]) -> str | None:
    """The last ``-m`` of pytest's arguments (the one pytest applies), or ``None``; in a command
    line, pytest's arguments follow ``pytest`` (``python -m pytest``)."""
    if "pytest" in argv:
        argv = argv[argv.index("pytest") + 1 :]
    found = None
    for i, arg in enumerate(argv):
        if arg == "-m" and i + 1 < len(argv):
            found = argv[i + 1]
    return found


def readme_test_command() -> list[str]:
    """The README's test command, found as .ci/run finds it (second bash block of Quick start)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    command = re.findall(r"```bash\n(.*?)\n```", section, flags=re.S)[1]
    return shlex.split(command.split("&&")[-1])


def test_every_marker_used_is_declared() -> None:
    assert USED <= DECLARED


def test_slow_marks_tests() -> None:
    assert "slow" in USED


def test_the_default_run_and_the_readme_command_keep_the_slow_tests() -> None:
    default = marker_expression(shlex.split(PYTEST["addopts"]))
    assert default is not None and selects(default, {"slow"})
    assert not selects(default, {"vllm"})  # the expression is read: it does leave some out
    readme = readme_test_command()
    assert "pytest" in readme
    assert selects(marker_expression(readme) or default, {"slow"})


def test_a_command_line_m_replaces_the_default_one() -> None:
    assert marker_expression(["-m", "not vllm", "-q", "-m", "not slow"]) == "not slow"
    assert marker_expression(["python", "-m", "pytest", "-q"]) is None
    assert not selects("not slow and not vllm", {"slow"})
    assert selects("not slow and not vllm", set())
