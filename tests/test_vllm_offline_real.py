"""VLLMOfflineJudge on vLLM's CPU build with the tiny random-weight model (marker ``vllm``).

The offline ``LLM`` must run in the vLLM virtualenv's interpreter, so the test launches
``tests/vllm_support/offline_judge_run.py`` there (``$GENRM_VLLM_VENV/bin/python``, the
repository on ``PYTHONPATH``) and checks the JSON report it writes. One ``LLM`` instance,
about 150 requests, about a minute and a half on 2 cores. Run with::

    GENRM_VLLM_VENV=.venv-vllm .venv/bin/pytest -m vllm tests/test_vllm_offline_real.py
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from vllm_support.server import VLLMUnavailable, build_model, vllm_python

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[1]
SCRIPT = Path(__file__).with_name("vllm_support") / "offline_judge_run.py"
EXTRA_DISTRIBUTIONS = ("scipy", "aiolimiter", "threadpoolctl")
"""Dependencies of genrm_rank that vLLM's venv may lack (self-contained wheels)."""


def _extra_site(folder: Path) -> Path:
    """A folder of links to this interpreter's copies of :data:`EXTRA_DISTRIBUTIONS`.

    Each distribution's files (packages, ``.libs``, ``.dist-info``) are linked by their top
    folder, so that ``importlib.metadata`` finds their versions too.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for name in EXTRA_DISTRIBUTIONS:
        dist = importlib.metadata.distribution(name)
        tops = {Path(str(f)).parts[0] for f in dist.files or ()}
        for top in sorted(tops):
            source = Path(str(dist.locate_file(top)))
            link = folder / top
            if source.exists() and not top.startswith("..") and not link.exists():
                link.symlink_to(source, target_is_directory=source.is_dir())  # threadpoolctl.py
    return folder


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    try:
        python = vllm_python()
    except VLLMUnavailable as exc:  # fail, not skip: `-m vllm` asked for this test
        pytest.fail(str(exc), pytrace=False)
    work = tmp_path_factory.mktemp("offline")
    model_dir = build_model(work / "tiny-model")
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "GENRM_EXTRA_SITE": str(_extra_site(work / "extra-site")),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "VLLM_NO_USAGE_STATS": "1",
    }
    proc = subprocess.run(
        [str(python), str(SCRIPT), str(model_dir), str(work / "report.json")],
        capture_output=True,
        text=True,
        env=env,
        timeout=540,
        check=False,
    )
    (work / "stderr.log").write_text(proc.stderr)
    if proc.returncode != 0:
        pytest.fail(
            f"offline run failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n"
            f"{proc.stderr[-5000:]}",
            pytrace=False,
        )
    result: dict[str, Any] = json.loads((work / "report.json").read_text())
    return result


def test_every_verdict_read_from_structured_output(report: dict[str, Any]) -> None:
    main = report["main"]
    assert [r["prompt_id"] for r in main] == ["p0", "p1", "p2", "p3"]
    assert report["main_calls"] == 48 and all(r["calls"] == 12 for r in main)
    verdicts = [v for r in main for v in r["verdicts"]]
    assert len(verdicts) == 48
    assert all(v["ok"] and v["attempts"] == 1 for v in verdicts), verdicts
    assert all(v["ranking"] in range(1, 7) and 1 <= v["score_1"] <= 5 for v in verdicts)
    assert all(v["prompt_tokens"] > 10 and v["completion_tokens"] > 5 for v in verdicts)
    assert all(v["finish_reason"] == "stop" for v in verdicts)
    assert all(r["best"] is not None for r in main)


def test_one_chat_call_per_batch(report: dict[str, Any]) -> None:
    # 48 requests in batches of at most 16: 3 calls at least, far fewer than 48
    assert 3 <= report["main_chat_calls"] <= 12


def test_cache_pays_nothing_on_a_rerun(report: dict[str, Any]) -> None:
    cache = report["cache"]
    assert cache["first_chat_calls"] >= 3
    assert cache["second_chat_calls"] == 0 and cache["second_paid_calls"] == 0
    assert cache["second_cached"] == 48 and cache["same_best"]


def test_prompt_over_max_model_len_is_rejected_alone(report: dict[str, Any]) -> None:
    short_1, long_one, short_2 = report["refused"]
    assert short_1["ok"] and short_2["ok"]
    assert long_one["failure"] == "rejected" and long_one["attempts"] == 0
    assert "vLLM refused" in long_one["error"]


def test_generation_cut_before_think_close_is_truncated(report: dict[str, Any]) -> None:
    cut = report["truncated"]
    assert cut["failure"] == "truncated" and cut["finish_reason"] == "length"
    assert cut["completion_tokens"] == 5 and cut["raw"]


def test_inline_reasoning_split_from_the_answer(report: dict[str, Any]) -> None:
    think = report["think"]
    assert think["ok"], think
    assert think["reasoning"].isalpha() and 2 <= len(think["reasoning"]) <= 6
    assert think["raw"].startswith("<think>") and "</think>{" in think["raw"]
