"""Run ``genrm-rank`` in a process that may change files in one folder only.

    python tests/guarded_cli.py FOLDER [--after-rows K [--signal NAME] [--torn]] ARG...

Tests run as root, so a CLI defect that unlinks or creates a path it was not given (the
``/dev/stderr`` of issue 18) would change the machine. Here every unlink, truncation and
creating or truncating open of a path outside ``FOLDER`` (``/dev/null`` aside) stops the
process at once with exit status :data:`GUARD_EXIT` and a line on stderr naming the path,
before the call is made.

``--after-rows K``: the process sends itself a signal (``--signal``: ``KILL`` unless named)
right after its ``K``-th write to the output file named by ``-o``; with ``--torn``, that write
is cut in half first. So a kill lands at a known row, not after a sleep (issue 18, item 21).
"""

from __future__ import annotations

import builtins
import os
import signal
import sys
from typing import Any

GUARD_EXIT = 97


def _guard(folder: str, path: Any) -> None:
    if isinstance(path, int):
        return  # a descriptor the process already holds
    name = os.path.abspath(os.fsdecode(os.fspath(path)))
    if name == os.devnull or name.startswith(folder + os.sep):
        return
    os.write(2, f"guarded_cli: refused to change {name}\n".encode())
    os._exit(GUARD_EXIT)


def install(folder: str) -> None:
    """Refuse, by exiting, any change to a path outside ``folder``."""
    folder = os.path.abspath(folder)
    real_unlink, real_open, real_truncate = os.unlink, os.open, os.truncate
    real_builtin_open, real_replace, real_rename = builtins.open, os.replace, os.rename

    def unlink(path: Any, *args: Any, **kwargs: Any) -> None:
        _guard(folder, path)
        real_unlink(path, *args, **kwargs)

    def open_(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & (os.O_CREAT | os.O_TRUNC):
            _guard(folder, path)
        return real_open(path, flags, *args, **kwargs)

    def truncate(path: Any, length: int) -> None:
        _guard(folder, path)
        real_truncate(path, length)

    def builtin_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if any(c in mode for c in "wax+"):
            _guard(folder, file)
        return real_builtin_open(file, mode, *args, **kwargs)

    def replace(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        _guard(folder, dst)
        real_replace(src, dst, *args, **kwargs)

    def rename(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        _guard(folder, dst)
        real_rename(src, dst, *args, **kwargs)

    os.unlink = os.remove = unlink  # type: ignore[assignment]
    os.open = open_  # type: ignore[assignment]
    os.truncate = truncate  # type: ignore[assignment]
    os.replace, os.rename = replace, rename  # type: ignore[assignment]
    builtins.open = builtin_open


def signal_after_rows(output: str, rows: int, signum: int, *, torn: bool) -> None:
    """Send ``signum`` to this process right after its ``rows``-th write to ``output``."""
    from genrm_rank.sdg.output import JsonlSink

    target = os.path.abspath(output)
    real_write = JsonlSink.write
    seen = {"writes": 0}

    def write(self: JsonlSink, data: bytes, count: int = 1) -> None:
        if os.path.abspath(self.path) != target:
            real_write(self, data, count)
            return
        seen["writes"] += 1
        if seen["writes"] != rows:
            real_write(self, data, count)
            return
        real_write(self, data[: len(data) // 2] if torn else data, count)
        if seen["writes"] == rows:
            os.kill(os.getpid(), signum)

    JsonlSink.write = write  # type: ignore[method-assign]


def main() -> int:
    args = sys.argv[1:]
    folder = args.pop(0)
    install(folder)
    if args[:1] == ["--after-rows"]:
        rows = int(args[1])
        args = args[2:]
        signum = signal.SIGKILL
        if args[:1] == ["--signal"]:
            signum = signal.Signals[f"SIG{args[1]}"]
            args = args[2:]
        torn = args[:1] == ["--torn"]
        args = args[1:] if torn else args
        signal_after_rows(args[args.index("-o") + 1], rows, signum, torn=torn)
    from genrm_rank.cli import main as cli_main

    sys.argv = ["genrm-rank", *args]
    return cli_main(args)


if __name__ == "__main__":
    raise SystemExit(main())
