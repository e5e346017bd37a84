"""Start serve-sim in a child process for benchmarks, so its CPU is not counted as ours."""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.request
from collections.abc import Sequence


class SimServerProcess:
    """``python -m genrm_rank.server --port 0 ...`` in a child process; ``.urls`` once ready."""

    def __init__(self, args: Sequence[str]) -> None:
        self.args = ["--port", "0", *args]
        self.proc: subprocess.Popen[str] | None = None
        self.urls: list[str] = []

    def __enter__(self) -> SimServerProcess:
        replicas = 1
        if "--replicas" in self.args:
            replicas = int(self.args[self.args.index("--replicas") + 1])
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "genrm_rank.server", *self.args],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        while len(self.urls) < replicas:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"serve-sim exited early (status {self.proc.poll()})")
            match = re.match(r"serve-sim: ready (\S+)", line)
            if match:
                self.urls.append(match.group(1))
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server process has used so far (Linux /proc)."""
        assert self.proc is not None
        import os

        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def metric(self, name: str) -> float:
        """Sum of a Prometheus counter over every replica."""
        total = 0.0
        for url in self.urls:
            root = url[: -len("/v1")]
            with urllib.request.urlopen(root + "/metrics", timeout=10) as response:
                text = response.read().decode()
            for line in text.splitlines():
                if line.startswith(name + "{") or line.startswith(name + " "):
                    total += float(line.rsplit(" ", 1)[1])
        return total
