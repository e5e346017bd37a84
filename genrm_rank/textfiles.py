"""Open a text file a user hands the library by path (a replay record), ``.gz`` or plain."""

from __future__ import annotations

import gzip
import os
from typing import TextIO

__all__ = ["open_text"]


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
