"""The files of a run: the paths it may write (:func:`check_paths`: each differs from every
other and from every path it reads, so that ``overwrite`` never empties an input), and its run
file, ``OUT.run.json``: the settings and inputs its output was written with, so that a run
resuming with others is refused, naming what changed (:func:`check_run_file`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from genrm_rank.errors import ArgumentError
from genrm_rank.judge_profile import JudgeProfile
from genrm_rank.sdg.inputs import STDIN
from genrm_rank.sdg.output import STDOUT, is_stream, sidecar_path
from genrm_rank.spec import renamed_fields
from genrm_rank.textfiles import file_key, write_atomically

__all__ = [
    "FROZEN_PROFILE_KEY",
    "IDENTITY_BYTES",
    "changes",
    "check_paths",
    "check_run_file",
    "frozen_profile",
    "input_identity",
    "record_frozen_profile",
    "run_file_path",
    "shard_settings",
]

FROZEN_PROFILE_KEY = "judge_profile_frozen"
"""The run file's record of the judge profile a run froze after its warm-up (a resumed run uses
it); not a setting, so never compared on resume."""

IDENTITY_BYTES = 1 << 20
"""How much of an input its identity hashes (see :func:`input_identity`)."""


def check_paths(
    written: Mapping[str, Path | None], read: Mapping[str, Sequence[Path | None]] = {}
) -> None:
    """Refuse files that coincide, or an output that cannot be written, before any is opened.

    ``written`` and ``read`` map argument names to the paths a run writes and reads; ``"run"``
    is the run file. Standard streams and devices are not files and are skipped.

    Raises
    ------
    ArgumentError
        (the written argument) A path (or a hard link to it) written twice, or also read; in a
        folder that does not exist or cannot be written.
    """

    sources: dict[Path | tuple[int, int], str] = {}
    for name, paths in read.items():
        for path in paths:
            if path is not None and str(path) != STDIN and path.exists():
                sources.setdefault(file_key(path), name)
    targets: dict[Path | tuple[int, int], str] = {}
    for name, path in written.items():
        if path is None or str(path) == STDOUT or is_stream(path):
            continue
        key = file_key(path)
        clash = sources.get(key) or targets.get(key)
        if clash is not None:
            why = (
                ", which this run reads; choose another file"
                if key in sources
                else "; every file a run writes must differ"
            )
            other = "run" if clash == "run" else ArgumentError.Setting(clash)
            raise ArgumentError(
                name, ": {path} is also the {other} file" + why, path=path, other=other
            )
        targets[key] = name
        parent = path.parent if str(path.parent) else Path(".")
        if not parent.is_dir():
            raise ArgumentError(name, f": directory {parent} does not exist")
        if not os.access(parent, os.W_OK):
            raise ArgumentError(name, f": directory {parent} is not writable")


def run_file_path(output: Path) -> Path:
    """The run file of ``output``: ``OUT.run.json``."""
    return sidecar_path(output, "run", "json")


def input_identity(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """What a resumed run's input is checked against: per input, its name and, for a file, the
    SHA-256 of its first :data:`IDENTITY_BYTES` bytes and their number (an input that has only
    grown is still the same input). Standard input and datasets are known by their name."""
    identity: list[dict[str, Any]] = []
    for path in paths:
        if str(path) == STDIN or not path.is_file():
            identity.append({"path": str(path)})
        else:
            size, digest = _head(path, IDENTITY_BYTES)
            identity.append(
                {"path": str(path.resolve()), "head_bytes": size, "head_sha256": digest}
            )
    return identity


def _head(path: Path, size: int) -> tuple[int, str]:
    """How many of the first ``size`` bytes of ``path`` there are, and their SHA-256."""
    with open(path, "rb") as handle:
        head = handle.read(size)
    return len(head), hashlib.sha256(head).hexdigest()


def _read_json(path: Path) -> Any:
    """The JSON ``path`` holds, or ``None`` when it cannot be read."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def check_run_file(
    output: Path,
    settings: Mapping[str, Any],
    *,
    resume: bool,
    inputs: Sequence[Path] = (),
    found: Sequence[str] = (),
) -> None:
    """Refuse to resume onto ``output`` written with other settings or from another input;
    otherwise record ``settings`` (JSON values, a ``"spec"`` compared field by field) and the
    inputs in its run file. ``found`` names settings found in the input, compared only when the
    run file has them.

    Raises
    ------
    ArgumentError
        (``resume``) The output was written with other settings, or from another input, or its
        run file is not one.
    """
    path = run_file_path(output)
    if resume and path.exists():
        before = _read_json(path)
        if not isinstance(before, dict):
            raise ArgumentError(
                "resume",
                ": {path} is not a run file (not a JSON object), so the settings {output} was "
                "written with are unknown; pass {overwrite} to start again",
                path=path,
                output=output,
                overwrite=ArgumentError.Setting("overwrite", True),
            )
        before.pop(FROZEN_PROFILE_KEY, None)
        _check_input(output, before.pop("input", None), inputs, path)
        now = _flat(json.loads(json.dumps(settings)))
        now = {k: v for k, v in now.items() if k not in found or k in before}
        then = _flat(before)
        if then != now:
            changed = changes(then, now)
            raise ArgumentError(
                "resume",
                ": {output} was written with other settings ({changed}); resume with the same "
                "options, or pass {overwrite} (settings: {path})",
                output=output,
                changed=changed,
                path=path,
                overwrite=ArgumentError.Setting("overwrite", True),
            )
        return
    _write_json(path, {**settings, "input": input_identity(inputs)})


def changes(then: Mapping[str, Any], now: Mapping[str, Any]) -> str:
    """The settings that differ, as ``key: old -> new``, joined by ``; ``."""
    keys = sorted(set(then) | set(now))
    return "; ".join(
        f"{k}: {then.get(k)!r} -> {now.get(k)!r}" for k in keys if then.get(k) != now.get(k)
    )


def shard_settings(output: Path) -> dict[str, Any] | None:
    """The settings ``output``'s run file records, but its shard and input (``None``: no run
    file, or not one): what every shard of one run shares."""
    data = _read_json(run_file_path(output))
    if not isinstance(data, dict):
        return None
    for key in ("shard", "input", FROZEN_PROFILE_KEY):
        data.pop(key, None)
    return _flat(data)


def frozen_profile(output: Path) -> JudgeProfile | None:
    """The judge profile an interrupted run froze, from its run file (``None``: none yet).

    Raises
    ------
    ArgumentError
        (``resume``) The run file holds a frozen profile that is not one.
    """
    data = _read_json(run_file_path(output))
    record = data.get(FROZEN_PROFILE_KEY) if isinstance(data, dict) else None
    if record is None:
        return None
    try:
        return JudgeProfile.from_dict(record)
    except (TypeError, ValueError) as exc:
        raise ArgumentError(
            "resume",
            ": {path} holds a frozen judge profile that is not one ({exc}); pass {overwrite} to "
            "start again",
            path=run_file_path(output),
            exc=exc,
            overwrite=ArgumentError.Setting("overwrite", True),
        ) from None


def record_frozen_profile(output: Path, profile: JudgeProfile) -> None:
    """Add the frozen profile to ``output``'s run file, atomically (a temporary file, a rename)."""
    path = run_file_path(output)
    data = json.loads(path.read_text(encoding="utf-8"))
    data[FROZEN_PROFILE_KEY] = profile.to_dict()
    _write_json(path, data)


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    write_atomically(path, text.encode("utf-8"))


def _flat(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Settings with the spec's fields as ``spec.<field>`` keys (old names read as new ones)."""
    flat = {k: v for k, v in settings.items() if k != "spec"}
    spec = settings.get("spec")
    if isinstance(spec, dict):
        flat.update({f"spec.{k}": v for k, v in renamed_fields(spec).items()})
    return flat


def _same_input(before: Mapping[str, Any], path: Path) -> bool:
    if "head_sha256" not in before:
        return str(before.get("path")) == str(path)
    if str(path) == STDIN or not path.is_file():
        return False
    size = int(before.get("head_bytes", 0))
    return _head(path, size) == (size, before["head_sha256"])


def _check_input(output: Path, before: Any, inputs: Sequence[Path], path: Path) -> None:
    """Refuse to resume ``output`` from an input other than the one it was written from."""
    if not isinstance(before, list):
        return  # a run file from before inputs were recorded
    if len(before) != len(inputs) or not all(
        isinstance(b, dict) and _same_input(b, p) for b, p in zip(before, inputs, strict=False)
    ):
        names = ", ".join(str(b.get("path")) if isinstance(b, dict) else "?" for b in before)
        raise ArgumentError(
            "resume",
            ": {output} was written from another input ({names}, as its first bytes were then), "
            "not {inputs}; resume with that input, or pass {overwrite} (run file: {path})",
            output=output,
            names=names,
            inputs=", ".join(map(str, inputs)),
            path=path,
            overwrite=ArgumentError.Setting("overwrite", True),
        )
