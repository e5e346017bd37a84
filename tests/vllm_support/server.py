"""Start and stop a real vLLM OpenAI-compatible server (CPU build) for tests.

The server runs from a separate virtualenv (``GENRM_VLLM_VENV``, by default
``<repo>/.venv-vllm``, made by ``scripts/setup_vllm_cpu.sh``), in its own
process group, so that stopping it also stops vLLM's engine-core child.

Typical use, from a pytest fixture::

    with vllm_server(model_dir, log_path=tmp / "a.log") as srv:
        ...  # srv.base_url == "http://127.0.0.1:PORT/v1"

or, to pay the start-up cost of several servers once and in parallel::

    servers = [VLLMServer(model_dir, log_path=...) for _ in range(2)]
    for s in servers: s.start()
    for s in servers: s.wait_ready()
    ...
    for s in servers: s.stop()
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_ENV_VAR = "GENRM_VLLM_VENV"
SETUP_SCRIPT = "scripts/setup_vllm_cpu.sh"
STRUCTURED_OUTPUTS_CONFIG = '{"backend":"xgrammar","disable_any_whitespace":true}'
DEFAULT_MAX_MODEL_LEN = 2048


class VLLMUnavailable(RuntimeError):
    """The vLLM virtualenv is missing or broken (run the setup script)."""


class VLLMStartError(RuntimeError):
    """The server process died or did not become healthy in time."""


def vllm_venv() -> Path:
    """The vLLM virtualenv: ``$GENRM_VLLM_VENV`` or ``<repo>/.venv-vllm``."""
    env = os.environ.get(VENV_ENV_VAR)
    return Path(env).expanduser().resolve() if env else REPO_ROOT / ".venv-vllm"


def vllm_python() -> Path:
    """The vLLM venv's interpreter; raise :class:`VLLMUnavailable` with a how-to if absent."""
    venv = vllm_venv()
    python = venv / "bin" / "python"
    marker = venv / ".genrm-vllm-ready"
    if not python.exists() or not marker.exists():
        raise VLLMUnavailable(
            f"No vLLM CPU virtualenv at {venv} (python present: {python.exists()}, "
            f"setup marker present: {marker.exists()}). The tests marked 'vllm' need one; "
            f"create it (about 5 minutes, 3.5 GB) with:\n"
            f"    {SETUP_SCRIPT} {venv}\n"
            f"or point ${VENV_ENV_VAR} at an existing one."
        )
    return python


def build_model(out_dir: Path, *, timeout: float = 180.0) -> Path:
    """Build the tiny test model into ``out_dir`` with the vLLM venv's python."""
    script = Path(__file__).with_name("tiny_model.py")
    proc = subprocess.run(
        [str(vllm_python()), str(script), str(out_dir)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
        check=False,
    )
    if proc.returncode != 0:
        raise VLLMStartError(
            f"building the tiny model failed (exit {proc.returncode}):\n"
            f"{proc.stdout}\n{proc.stderr}"
        )
    return out_dir


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, n_lines: int = 40) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"<no log: {exc}>"
    return "\n".join(lines[-n_lines:])


class VLLMServer:
    """One ``vllm.entrypoints.openai.api_server`` process on a free local port."""

    def __init__(
        self,
        model_dir: str | Path,
        *,
        log_path: str | Path,
        served_model_name: str = "tiny-genrm",
        max_model_len: int = DEFAULT_MAX_MODEL_LEN,
        reasoning_parser: str | None = None,
        extra_args: Sequence[str] = (),
        kv_cache_gib: int = 1,
        eager: bool = True,
        omp_threads_bind: str | None = None,
    ) -> None:
        self.model_dir = Path(model_dir)
        self.log_path = Path(log_path)
        self.served_model_name = served_model_name
        self.max_model_len = max_model_len
        self.reasoning_parser = reasoning_parser
        self.extra_args = tuple(extra_args)
        self.kv_cache_gib = kv_cache_gib
        self.eager = eager
        self.omp_threads_bind = omp_threads_bind
        self.port: int | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at: float | None = None
        self.ready_after_s: float | None = None

    @property
    def root_url(self) -> str:
        if self.port is None:
            raise RuntimeError("server not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI base URL, ``http://127.0.0.1:PORT/v1``."""
        return self.root_url + "/v1"

    def command(self) -> list[str]:
        cmd = [
            str(vllm_python()), "-m", "vllm.entrypoints.openai.api_server",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--model", str(self.model_dir),
            "--served-model-name", self.served_model_name,
            "--dtype", "float32",
            "--max-model-len", str(self.max_model_len),
            "--structured-outputs-config", STRUCTURED_OUTPUTS_CONFIG,
        ]  # fmt: skip
        if self.eager:
            # No torch.compile warm-up: ready in ~25 s instead of ~55-75 s on 2 cores.
            cmd.append("--enforce-eager")
        if self.reasoning_parser:
            cmd += ["--reasoning-parser", self.reasoning_parser]
        cmd += list(self.extra_args)
        return cmd

    def start(self) -> None:
        """Launch the process (returns at once; see :meth:`wait_ready`)."""
        if self.proc is not None:
            raise RuntimeError("server already started")
        self.port = free_port()
        env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "VLLM_CPU_KVCACHE_SPACE": str(self.kv_cache_gib),
            "VLLM_NO_USAGE_STATS": "1",
            "DO_NOT_TRACK": "1",
            "PYTHONUNBUFFERED": "1",
        }
        if self.omp_threads_bind is not None:
            env["VLLM_CPU_OMP_THREADS_BIND"] = self.omp_threads_bind
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            log.write(("$ " + shlex.join(self.command()) + "\n").encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=str(self.model_dir.parent),
                start_new_session=True,  # own process group: killpg reaches the engine core
            )
        self.started_at = time.monotonic()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def healthy(self, timeout: float = 2.0) -> bool:
        try:
            with urllib.request.urlopen(self.root_url + "/health", timeout=timeout) as r:
                return bool(r.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def wait_ready(self, timeout: float = 300.0) -> float:
        """Block until ``GET /health`` is 200; return the seconds since :meth:`start`.

        Raises :class:`VLLMStartError` with the log's tail if the process exits
        or the timeout passes (the process is then stopped).
        """
        if self.proc is None or self.started_at is None:
            raise RuntimeError("server not started")
        deadline = self.started_at + timeout
        while True:
            if not self.alive():
                raise VLLMStartError(
                    f"vLLM server exited with code {self.proc.returncode} before it was ready; "
                    f"log {self.log_path}:\n{_tail(self.log_path)}"
                )
            if self.healthy():
                self.ready_after_s = time.monotonic() - self.started_at
                return self.ready_after_s
            if time.monotonic() > deadline:
                self.stop()
                raise VLLMStartError(
                    f"vLLM server not healthy after {timeout:.0f} s; "
                    f"log {self.log_path}:\n{_tail(self.log_path)}"
                )
            time.sleep(0.5)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the whole process group (default: SIGKILL, a crash)."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the process group, then SIGKILL it after ``grace`` seconds."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.kill(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(grace)
        # The engine core may outlive the API server: always sweep the group.
        self.kill(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)

    def log_tail(self, n_lines: int = 40) -> str:
        return _tail(self.log_path, n_lines)

    def memory(self) -> tuple[int, int]:
        """``(rss, pss)`` in bytes of the whole process group now (from ``/proc``).

        RSS sums each process's resident set (shared pages counted once per process); PSS
        splits shared pages between the processes that map them, so PSS adds up across servers.
        """
        if self.proc is None:
            return (0, 0)
        return _group_memory(self.proc.pid)

    def __enter__(self) -> VLLMServer:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _group_memory(pgid: int) -> tuple[int, int]:
    rss = pss = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # fields after the ")" that ends comm: state ppid pgrp ...
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid:
                continue
            for line in (entry / "smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1]) * 1024
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            continue
    return rss, pss


@contextlib.contextmanager
def vllm_server(model_dir: str | Path, **kwargs: object) -> Iterator[VLLMServer]:
    """Context manager: a started, healthy :class:`VLLMServer`, stopped on exit."""
    server = VLLMServer(model_dir, **kwargs)  # type: ignore[arg-type]
    with server:
        yield server


if __name__ == "__main__":  # manual smoke run: python tests/vllm_support/server.py MODEL_DIR
    with vllm_server(sys.argv[1], log_path=Path("vllm-server.log")) as srv:
        print(f"ready after {srv.ready_after_s:.1f} s at {srv.base_url}; Ctrl-C to stop")
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
