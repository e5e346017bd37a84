"""Files the user names by path: read decompressed (gzip or zstandard, told by content), and
replaced atomically (a profile, a run file, an output file cut on resume)."""

from __future__ import annotations

import contextlib
import gzip
import io
import os
from pathlib import Path
from typing import IO, TextIO

__all__ = [
    "decompressed",
    "file_key",
    "first_bytes",
    "fsync_folder",
    "open_text",
    "write_atomically",
]


_GZIP_MAGIC, _ZSTD_MAGIC = b"\x1f\x8b", b"\x28\xb5\x2f\xfd"
_BUFFER = 1 << 20


def first_bytes(stream: IO[bytes], size: int = 4) -> bytes:
    """The first ``size`` bytes of a buffered ``stream``, left unread (none if it cannot peek)."""
    peek = getattr(stream, "peek", None)
    return bytes(peek(size)[:size]) if peek is not None else b""


def decompressed(stream: IO[bytes], name: str) -> IO[bytes]:
    """``stream`` decompressed when its first bytes are gzip's or zstandard's magic (an empty
    ``.zst`` file too), else ``stream`` itself: compression is told by content, not by name.

    Raises
    ------
    ImportError
        A zstandard stream, without the optional ``zstandard`` package (``stream`` is closed).
    """
    magic = first_bytes(stream)
    if magic.startswith(_GZIP_MAGIC):
        return io.BufferedReader(gzip.GzipFile(fileobj=stream, mode="rb"), buffer_size=_BUFFER)
    if magic.startswith(_ZSTD_MAGIC) or (name.endswith(".zst") and not magic):
        try:
            import zstandard
        except ImportError:
            stream.close()
            raise
        reader = zstandard.ZstdDecompressor().stream_reader(stream, closefd=True)
        return io.BufferedReader(reader, buffer_size=_BUFFER)
    return stream


def open_text(path: str | os.PathLike[str]) -> TextIO:
    """Open ``path`` for reading text as UTF-8, decompressed as :func:`decompressed` tells.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> with gzip.open(folder / "a.jsonl.gz", "wt", encoding="utf-8") as out:
    ...     _ = out.write('{"x": 1}\\n')
    >>> with open_text(folder / "a.jsonl.gz") as handle:
    ...     handle.read()
    '{"x": 1}\\n'
    """
    return io.TextIOWrapper(decompressed(open(path, "rb"), os.fspath(path)), encoding="utf-8")


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


def file_key(path: Path) -> Path | tuple[int, int]:
    """What ``path`` is: an existing file by device and inode (so that a hard link is the file
    it links to), another by its resolved path."""
    try:
        found = path.stat()
    except OSError:
        return path.resolve()
    return found.st_dev, found.st_ino
