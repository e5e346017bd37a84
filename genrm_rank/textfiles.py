"""Files the user names by path: a text record read whole (``.gz`` or plain), and a file
replaced atomically (a profile, a run file, an output file cut on resume)."""

from __future__ import annotations

import contextlib
import gzip
import os
from pathlib import Path
from typing import TextIO

__all__ = ["fsync_folder", "open_text", "write_atomically"]


def open_text(path: str | os.PathLike[str]) -> TextIO:
    """Open ``path`` for reading text as UTF-8, decompressing a ``.gz`` file on the fly.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> with gzip.open(folder / "a.jsonl.gz", "wt", encoding="utf-8") as out:
    ...     _ = out.write('{"x": 1}\\n')
    >>> with open_text(folder / "a.jsonl.gz") as handle:
    ...     handle.read()
    '{"x": 1}\\n'
    """
    if os.fspath(path).endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def write_atomically(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Replace ``path`` with ``data``: a temporary file beside it, ``fsync``, then a rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)


def fsync_folder(folder: Path) -> None:
    """Make the renames into ``folder`` durable (where the system allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
