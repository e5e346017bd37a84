"""Cross-references in genrm_rank's docstrings name objects that exist.

A docstring says a concept once and elsewhere points to its owner
(``:class:`~genrm_rank.spec.RankSpec```); renaming or removing the owner leaves the reference
pointing nowhere. This resolves every ``:role:`target``` (roles ``class``, ``func``, ``meth``,
``attr``, ``data``, ``mod``, ``exc``, ``obj``) in the package's string literals (module, class,
function and attribute docstrings, and those handed to a function that builds one) as Sphinx's
Python domain does:

- a dotted name: import its longest module prefix, then ``getattr`` the rest (other packages'
  names too: ``numpy.ndarray``, ``asyncio.Semaphore``); a module only so;
- else a name in the enclosing class, in the module (imported names too), or a built-in;
- with a leading dot, only an object of the role's kind counts (a function for ``func``), and
  failing those, exactly one object of the package whose full name ends with it (Sphinx's
  "fuzzy" search: ``.graph.majority_digraph``); more than one is ambiguous.

``~``, ``!`` (a name left unlinked is still a claim), an explicit title (``title <target>``) and
a trailing ``()`` are dropped first. A class's attribute is found also where autodoc finds it
without a class attribute: an annotation (a dataclass or NamedTuple field) or an assignment to
``self.name`` in one of its methods.
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import re
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import genrm_rank

PACKAGE = Path(genrm_rank.__file__).resolve().parent
ROLE = re.compile(r":(?:py:)?(class|func|meth|attr|data|mod|exc|obj):`([^`]+)`")


@dataclass(frozen=True)
class Reference:
    """One ``:role:`target``` of a docstring, with where it stands."""

    source: str
    line: int
    role: str
    target: str
    module: str
    cls: str | None = None
    """Qualified name of the enclosing class, if any."""


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts).removesuffix(".__init__")


SELF_ATTRIBUTES: dict[str, set[str]] = {}
"""``module.Class`` (qualified) -> the names its methods assign as ``self.name`` (filled by
:func:`package_references`)."""


def _self_attributes(body: list[ast.stmt]) -> set[str]:
    return {
        node.attr
        for statement in body
        for node in ast.walk(statement)
        if isinstance(node, ast.Attribute)
        and isinstance(node.ctx, ast.Store)
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
    }


def _strings(node: ast.AST, module: str, cls: str | None) -> Iterator[tuple[int, str, str | None]]:
    """Every string literal under ``node`` (docstrings, and those passed to a function that
    builds one), with its line and enclosing class."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.ClassDef):
            qualname = f"{cls}.{child.name}" if cls else child.name
            SELF_ATTRIBUTES[f"{module}.{qualname}"] = _self_attributes(child.body)
            yield from _strings(child, module, qualname)
        elif isinstance(child, ast.Constant) and isinstance(child.value, str):
            yield child.lineno, child.value, cls
        else:
            yield from _strings(child, module, cls)


def references(
    source: str, line: int, text: str, module: str, cls: str | None = None
) -> Iterator[Reference]:
    """The references in ``text``, a string literal of ``module`` starting on ``line``."""
    for match in ROLE.finditer(text):
        target = " ".join(match.group(2).split())
        if target.endswith(">") and "<" in target:
            target = target.rsplit("<", 1)[1][:-1]
        target = target.lstrip("!~").removesuffix("()")
        at = line + text[: match.start()].count("\n")
        yield Reference(source, at, match.group(1), target, module, cls)


def package_references() -> list[Reference]:
    found: list[Reference] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        source = str(path.relative_to(PACKAGE.parent))
        for line, text, cls in _strings(tree, module, None):
            found.extend(references(source, line, text, module, cls))
    return found


REFERENCES = package_references()
MODULES = sorted(_module_name(path) for path in PACKAGE.rglob("*.py"))
_imported: dict[str, types.ModuleType | None] = {}


def _import(name: str) -> types.ModuleType | None:
    """The module ``name``, or ``None``; not a ``python -m`` program (importing one runs it)."""
    if name not in _imported:
        try:
            module = None if "__main__" in name.split(".") else importlib.import_module(name)
        except ImportError:
            module = None
        _imported[name] = module
    return _imported[name]


def _declared(owner: object) -> set[str]:
    """Attributes that ``owner`` documents without holding them as a value."""
    if isinstance(owner, types.ModuleType):
        return set(getattr(owner, "__annotations__", {}))
    if not inspect.isclass(owner):
        return set()
    names: set[str] = set()
    for klass in owner.__mro__:
        names.update(vars(klass).get("__annotations__", {}))
        names.update(SELF_ATTRIBUTES.get(f"{klass.__module__}.{klass.__qualname__}", ()))
    return names


def _roles(owner: object, obj: object) -> set[str]:
    """The roles that may name ``obj``, found as an attribute of ``owner``."""
    if inspect.ismodule(obj):
        return {"mod", "obj"}
    if inspect.isclass(obj):
        return {"class", "exc", "obj"}
    if inspect.isclass(owner):
        return {"meth" if inspect.isroutine(obj) else "attr", "obj"}
    return {"func" if inspect.isroutine(obj) else "data", "obj"}


def find(dotted: str) -> tuple[object, set[str]] | None:
    """The object ``dotted`` names (a module, then attributes down from it) and the roles that
    may name it, or ``None``. A declared attribute stands for itself by its full name."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        obj: object = _import(".".join(parts[:i]))
        if obj is None:
            continue
        owner: object = None
        for j, name in enumerate(parts[i:], start=i):
            if not hasattr(obj, name):
                if j == len(parts) - 1 and name in _declared(obj):
                    return dotted, _roles(obj, None)
                return None
            owner, obj = obj, getattr(obj, name)
        return obj, _roles(owner, obj)
    return None


@functools.cache
def _fuzzy_prefixes() -> list[str]:
    """Full names under which the package's objects live: its modules and its classes."""
    prefixes = list(MODULES)
    for name in MODULES:
        module = _import(name)
        if module is None:
            continue
        for value in vars(module).values():
            if inspect.isclass(value) and value.__module__ == name:
                prefixes.extend(
                    f"{name}.{c.__qualname__}"
                    for c in [value, *(v for v in vars(value).values() if inspect.isclass(v))]
                )
    return prefixes


def problem(ref: Reference) -> str | None:
    """Why ``ref`` points nowhere (or to more than one object), or ``None``."""
    name = ref.target.removeprefix(".")
    scopes = [ref.module, f"{ref.module}.{ref.cls}"] if ref.cls else [ref.module]
    if ref.role == "mod" and not ref.target.startswith("."):
        candidates = [name]  # a module is looked up by its full name only
    else:
        candidates = [name, "builtins." + name, *(f"{scope}.{name}" for scope in scopes)]
    found = [hit for c in candidates if (hit := find(c)) is not None]
    if not ref.target.startswith("."):
        return None if found else "names nothing"
    # A leading dot: only objects of the role's kind count, and any full name may end with it.
    if any(ref.role in roles for _, roles in found):
        return None
    fuzzy = [hit for p in _fuzzy_prefixes() if (hit := find(f"{p}.{name}")) is not None]
    matches = {id(obj) for obj, roles in fuzzy if ref.role in roles}
    if len(matches) > 1:
        return f"names {len(matches)} objects"
    return None if matches else f"names no {ref.role}"


def test_every_docstring_reference_names_an_object() -> None:
    broken = [
        f"{r.source}:{r.line}: :{r.role}:`{r.target}` {why}"
        for r in REFERENCES
        if (why := problem(r)) is not None
    ]
    assert broken == [], "\n".join(broken)
    # The scan does see the package's references, in each form.
    targets = {r.target for r in REFERENCES}
    assert {"genrm_rank.spec.RankSpec", ".graph.majority_digraph"} <= targets
    assert len(REFERENCES) > 400


SPEC = "genrm_rank.spec"


@pytest.mark.parametrize(
    ("text", "module", "cls", "why"),
    [
        (":class:`~genrm_rank.spec.RankSpec`", SPEC, None, None),
        (":func:`~.graph.majority_digraph`", SPEC, None, None),  # any module's graph
        (":func:`Graph <genrm_rank.aggregators.graph.majority_digraph>`", SPEC, None, None),
        (":exc:`ValueError`, :class:`numpy.ndarray`, :class:`asyncio.Semaphore`", SPEC, None, None),
        (":mod:`genrm_rank.strategies` and :mod:`!genrm_rank.spec`", SPEC, None, None),
        (":attr:`PromptSeeds.strategy`", SPEC, None, None),  # a field without a class attribute
        (":attr:`~genrm_rank.cache.VerdictCache.hits`", SPEC, None, None),  # set in __init__
        (":attr:`~genrm_rank.cache.VerdictCache.no_such_count`", SPEC, None, "names nothing"),
        (":meth:`replace`", SPEC, "RankSpec", None),  # in the enclosing class
        (":mod:`.config`", "genrm_rank.cli.options", None, None),  # not SimServer.config
        (":func:`~genrm_rank.spec.no_such_function`", SPEC, None, "names nothing"),
        (":func:`~.graph.majority_digraph_renamed`", SPEC, None, "names no func"),
        (":class:`NoSuchClass`", SPEC, "RankSpec", "names nothing"),
        (":attr:`RankSpec.no_such_field`", SPEC, None, "names nothing"),
        (":mod:`spec`", SPEC, None, "names nothing"),  # a module is named in full
        (":class:`numpy.NoSuchArray`", SPEC, None, "names nothing"),
        (":func:`.RankSpec`", SPEC, None, "names no func"),  # a leading dot checks the kind
        (":mod:`.cli`", "genrm_rank.server.__main__", None, "names 2 objects"),
    ],
)
def test_references_resolve_as_sphinx_does(
    text: str, module: str, cls: str | None, why: str | None
) -> None:
    refs = list(references("x.py", 1, text, module, cls))
    assert refs and [problem(r) for r in refs] == [why] * len(refs)
