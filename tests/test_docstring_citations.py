"""Docstrings and comments in genrm_rank/ cite only files the repository holds.

A docstring that points to ``benchmarks/README.md`` or ``docs/deployment.md`` is a promise that
the reader finds the figure or the guide there. This checks every such citation in the package:
the cited file exists, and a cited section of a Markdown file (``benchmarks/README.md``,
"HTTP transport") is one of its headings.

What counts as a citation of a repository file:

- a path whose first part is a top-level entry of the repository (``benchmarks/...``,
  ``docs/...``, ``scripts/...``, ``tests/...``) or a subpackage of ``genrm_rank``
  (``strategies/base.py``, read from ``genrm_rank/``);
- a bare file name ending in ``.md``, ``.py``, ``.json``, ``.toml`` or ``.sh``
  (``bench_transport.py``), which some file of the repository must carry.

Not citations: URLs, paths inside another project (``resources_servers/genrm_compare/utils.py``
is NVIDIA-NeMo/Gym's), placeholders in capitals (``OUT.run.json``), and the few bare names of
other projects' files listed in :data:`EXTERNAL_NAMES`.
"""

from __future__ import annotations

import ast
import io
import os
import re
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "genrm_rank"

EXTERNAL_NAMES = {
    "statistics.json": "LLMBar's per-run counts (consistency.py names its fields)",
}
"""Bare names of files in other projects that a docstring may name, with whose they are."""

_EXTENSIONS = ("md", "py", "json", "toml", "sh")
_URL = re.compile(r"[a-z][a-z0-9+.-]*://\S+", re.I)
_PATH = re.compile(
    r"(?<![\w./~-])((?:[\w.~-]+/)+[\w.~-]*|[\w~-][\w.~-]*\.(?:"
    + "|".join(_EXTENSIONS)
    + r"))(?![\w.~-]*\w)"
)
# A section named after a Markdown citation: ``X.md``, "Heading" (or 'Heading').
_SECTION = re.compile(r"""([\w./-]+\.md)`{0,2},?\s*(?:#\s*)?["'\u201c]([^"'\u201d\n]+)["'\u201d]""")


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


@dataclass(frozen=True)
class Citation:
    """One cited file (and section) in a docstring or comment."""

    source: str
    line: int
    cited: str
    section: str | None = None


def _repository_files() -> list[Path]:
    """Every file of the checkout but version control, virtual environments and caches."""
    files = []
    for folder, dirs, names in os.walk(ROOT):
        dirs[:] = [
            d
            for d in dirs
            if not (d.startswith(".venv") or d.endswith(".egg-info"))
            and d not in {".git", "__pycache__", ".mypy_cache", ".ruff_cache", "build", "out"}
        ]
        files.extend(Path(folder, name) for name in names)
    return files


FILES = _repository_files()
NAMES = {path.name for path in FILES}
TOP_LEVEL = {path.relative_to(ROOT).parts[0] for path in FILES}
SUBPACKAGES = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}


def _statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Every statement of ``body``, nested ones included (docstrings are statements)."""
    for node in body:
        yield node
        for field in ("body", "orelse", "finalbody"):
            yield from _statements(getattr(node, field, []))
        for handler in getattr(node, "handlers", []):
            yield from _statements(handler.body)
        for case in getattr(node, "cases", []):
            yield from _statements(case.body)


def texts(path: Path) -> Iterator[tuple[int, str]]:
    """The docstrings (any statement that is a bare string) and comment blocks of a module, each
    with its first line; consecutive comment lines are joined into one text."""
    source = path.read_text(encoding="utf-8")
    for node in _statements(ast.parse(source).body):
        if (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            yield node.lineno, node.value.value
    # Tokenizing is the slow part: only where a '#' comes before something like a path.
    if not any(
        "#" in line and _PATH.search(line.partition("#")[2]) for line in source.splitlines()
    ):
        return
    block: list[str] = []
    start = last = 0
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type != tokenize.COMMENT:
            continue
        line = token.start[0]
        if block and line != last + 1:
            yield start, "\n".join(block)
            block = []
        if not block:
            start = line
        block.append(token.string.lstrip("#").strip())
        last = line
    if block:
        yield start, "\n".join(block)


def citations(source: str, line: int, text: str) -> Iterator[Citation]:
    """The repository files (and Markdown sections) ``text`` cites."""
    text = _URL.sub(" ", text)
    sections = {m.group(1): m.group(2).strip() for m in _SECTION.finditer(text)}
    for match in _PATH.finditer(text):
        token = match.group(1).rstrip(".,;:)")
        parts = token.strip("/").split("/")
        if len(parts) > 1:
            if parts[0] not in TOP_LEVEL and parts[0] not in SUBPACKAGES:
                continue  # a path inside another project, or an example path
        else:
            name = parts[0]
            if "." not in name or name.rsplit(".", 1)[1] not in _EXTENSIONS:
                continue
            if name.split(".")[0].isupper() or name in EXTERNAL_NAMES:
                continue  # a placeholder (OUT.run.json) or another project's file
        yield Citation(source, line + text[: match.start()].count("\n"), token, sections.get(token))


def missing(citation: Citation) -> str | None:
    """Why ``citation`` points nowhere, or ``None`` when the repository holds what it cites."""
    parts = citation.cited.strip("/").split("/")
    if len(parts) == 1:
        found = [p for p in FILES if p.name == parts[0]]
        if not found:
            return f"no file named {parts[0]} in the repository"
    else:
        base = ROOT if parts[0] in TOP_LEVEL else PACKAGE
        target = base.joinpath(*parts)
        if not target.exists():
            return f"{target.relative_to(ROOT)} does not exist"
        found = [target]
    if citation.section is not None:
        # Compared word by word, so that "Current figures (issue 12d)" names the heading
        # "Current figures (issue 12d: adaptive driven as the orchestrator drives it)".
        cited = " ".join(_words(citation.section))
        headings = [
            " ".join(_words(line))
            for path in found
            if path.suffix == ".md"
            for line in path.read_text(encoding="utf-8").splitlines()
            if line.startswith("#")
        ]
        if not any(f" {cited} " in f" {heading} " for heading in headings):
            return f"no heading {citation.section!r} in {citation.cited}"
    return None


def package_citations() -> list[Citation]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = str(path.relative_to(ROOT))
        for line, text in texts(path):
            found.extend(citations(source, line, text))
    return found


def test_every_cited_file_and_section_exists() -> None:
    cited = package_citations()
    problems = [f"{c.source}:{c.line}: {why}" for c in cited if (why := missing(c)) is not None]
    assert problems == []
    # The scan does see the package's citations (a broken scan would find none).
    assert {"benchmarks/README.md", "docs/deployment.md"} <= {c.cited for c in cited}


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("see ``genrm-protocol.md``", "no file named genrm-protocol.md in the repository"),
        ("(``docs/nowhere.md``)", "docs/nowhere.md does not exist"),
        ("# measured by benchmarks/bench_nothing.py", "benchmarks/bench_nothing.py does not exist"),
        ("see ``judges/nothing.py``", "genrm_rank/judges/nothing.py does not exist"),
        (
            '(``benchmarks/README.md``, "A section nobody wrote")',
            "no heading 'A section nobody wrote' in benchmarks/README.md",
        ),
    ],
)
def test_a_citation_of_a_missing_file_or_section_is_found(text: str, why: str) -> None:
    (citation,) = citations("x.py", 1, text)
    assert missing(citation) == why


@pytest.mark.parametrize(
    "text",
    [
        "https://github.com/NVIDIA-NeMo/Gym/blob/main/resources_servers/genrm_compare/utils.py",
        "NVIDIA-NeMo/Gym, ``resources_servers/genrm_compare/utils.py``",
        "writes ``OUT.jsonl``, ``OUT.errors.jsonl`` and ``OUT.run.json``",
        "LLMBar's ``statistics.json``",
        "rows of ``runs/best.jsonl``",
    ],
)
def test_urls_placeholders_and_other_projects_files_are_not_citations(text: str) -> None:
    assert list(citations("x.py", 1, text)) == []


def test_existing_files_and_sections_pass() -> None:
    text = (
        '``bench_transport.py`` and (``benchmarks/README.md``, "HTTP transport") and '
        "``verdict.py``, ``strategies/round_robin.py``"
    )
    found = list(citations("x.py", 1, text))
    assert [c.cited for c in found] == [
        "bench_transport.py",
        "benchmarks/README.md",
        "verdict.py",
        "strategies/round_robin.py",
    ]
    assert found[1].section == "HTTP transport"
    assert [missing(c) for c in found] == [None] * 4
