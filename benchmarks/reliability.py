"""Figures for benchmarks/reliability.md: faults, crashes, hostile input, secrets, load held.

Runs the trials of ``tests/test_reliability_trials.py`` (loopback serve-sim only) at a chosen
size and prints one JSON object of figures::

    python benchmarks/reliability.py --rows 40 --kills 20 --out results/reliability.json
    python benchmarks/reliability.py --only persistent_faults --rows 40 --concurrency 512
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import test_reliability_trials as trials

from genrm_rank.cli import main
from genrm_rank.sdg import RowError, RowReader
from genrm_rank.server.app import SimServerConfig, ThreadedSimServers


def fault_trial(work: Path, n_rows: int) -> dict[str, Any]:
    """Decisive judge, every fault kind, one replica killed and back, one 10x slower."""
    rows = work / "in.jsonl"
    qualities = trials.write_rows(rows, n_rows=n_rows)
    base = {
        "latency": "constant",
        "latency_mean": 0.005,
        "qualities": qualities,
        "noise_scale": 0.1,
    }
    with ThreadedSimServers([SimServerConfig(**base, seed=s) for s in range(3)]) as servers:
        assert main(trials.select_argv(rows, work / "clean.jsonl", servers.urls)) == 0
    configs = [
        SimServerConfig(
            **{**base, "latency_mean": 0.05 if s == 2 else 0.005},
            **trials.FAULTS,
            unreadable_rate=0.03,
            truncated_rate=0.03,
            retry_after=0.05,
            hang_seconds=30.0,
            seed=100 + s,
        )
        for s in range(3)
    ]
    peak = {"in_flight": 0}
    with ThreadedSimServers(configs) as servers:
        stop = threading.Event()

        def sample() -> None:  # in flight = running + waiting, over the three servers
            while not stop.wait(0.02):
                now = 0
                for i in range(3):
                    stats = servers.stats(i)
                    now += stats.running + stats.waiting
                peak["in_flight"] = max(peak["in_flight"], now)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        start = time.monotonic()
        with trials.Chaos(servers, 1, after=40, down_s=0.5) as chaos:
            argv = trials.select_argv(rows, work / "faulty.jsonl", servers.urls)
            status = main([*argv, "--summary-json", str(work / "s.json"), "--concurrency", "64"])
        wall = time.monotonic() - start
        stop.set()
        sampler.join()
        served = [servers.stats(i) for i in range(3)]
    summary = json.loads((work / "s.json").read_text())
    clean = [trials.strip_costs(r) for r in trials.read_rows(work / "clean.jsonl")]
    faulty = [trials.strip_costs(r) for r in trials.read_rows(work / "faulty.jsonl")]
    requests = sum(s.requests for s in served)
    injected = {
        k: sum(s.faults.get(k, 0) for s in served) for k in ("500", "503", "429", "hang", "drop")
    }
    bad = summary["failures_by_kind"]
    injected["unreadable"] = bad.get("unreadable", 0)
    injected["truncated"] = bad.get("truncated", 0)
    return {
        "exit_status": status,
        "rows": n_rows,
        "rows_ok": summary["rows_ok"],
        "replica_killed_and_restarted": chaos.killed and chaos.restarted,
        "connection_refused_while_down": summary["transport_faults_by_kind"].get(
            "connection_refused", 0
        ),
        "rows_lost": n_rows - summary["rows_ok"],
        "equal_to_fault_free": faulty == clean,
        "server_requests": requests,
        "requests_per_second": round(requests / wall, 1),
        "peak_in_flight": peak["in_flight"],
        "wall_seconds": round(wall, 2),
        "injected_by_kind": injected,
        "fault_share": round(sum(injected.values()) / requests, 3),
        "summary_transport_faults_by_kind": summary["transport_faults_by_kind"],
        "summary_failures_by_kind": bad,
    }


def hostile_trial() -> dict[str, Any]:
    reader = RowReader()
    kinds: dict[str, int] = {}
    crashes = 0
    for i, (raw, _) in enumerate(trials.HOSTILE_CORPUS):
        try:
            result = reader.parse(i + 1, raw.replace(b'"id": 1,', f'"id": {i},'.encode()))
        except Exception:
            crashes += 1
            continue
        if isinstance(result, RowError):
            kinds[result.kind] = kinds.get(result.kind, 0) + 1
    return {
        "corpus_lines": len(trials.HOSTILE_CORPUS),
        "row_errors_by_kind": kinds,
        "crashes": crashes,
    }


def persistent_fault_trial(work: Path, n_rows: int, concurrency: int) -> dict[str, Any]:
    """Issue 18: each persistent fault, what the run paid before it stopped, and the resume."""
    return {
        kind: {
            k: v
            for k, v in trials.run_persistent_fault_trial(
                work / kind, kind, n_rows=n_rows, concurrency=concurrency
            ).items()
            if k != "message"
        }
        for kind in trials.PERSISTENT_FAULTS
    }


def main_() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=40)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--only",
        choices=("persistent_faults",),
        default=None,
        help="run one trial only (default: every trial)",
    )
    parser.add_argument("--concurrency", type=int, default=64, help="of the persistent-fault runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="genrm-reliability-") as folder:
        work = Path(folder)
        persistent = persistent_fault_trial(work / "persistent", args.rows, args.concurrency)
        if args.only == "persistent_faults":
            return _report({"persistent_faults": persistent}, args.out)
        (work / "faults").mkdir()
        (work / "crashes").mkdir()
        figures = {
            "faults": fault_trial(work / "faults", args.rows),
            "crashes": {
                k: v
                for k, v in trials.run_crash_trials(
                    work / "crashes", n_rows=args.rows, kills=args.kills, seed=args.seed
                ).items()
                if k != "ids"
            },
            "hostile": hostile_trial(),
            "persistent_faults": persistent,
        }
    return _report(figures, args.out)


def _report(figures: dict[str, Any], out: Path | None) -> int:
    text = json.dumps(figures, indent=2)
    print(text)
    if out is not None:
        out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main_())
