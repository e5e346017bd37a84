"""Run real trainers' data preparation on ``genrm-rank`` output files, and report what they made.

Run it with the trainers virtualenv's interpreter (``scripts/setup_trainers.sh``; it needs
``torch``, ``transformers``, ``datasets`` and ``trl``, which the project's own venv lacks), with
one OpenRLHF release on ``PYTHONPATH`` when the spec has OpenRLHF jobs::

    PYTHONPATH=.venv-trainers/openrlhf-0.11.2 .venv-trainers/bin/python \\
        tests/trainers_support/run_trainers.py SPEC.json REPORT.json

``SPEC.json``: ``{"model_dir": DIR, "work_dir": DIR, "jobs": [JOB, ...]}``, each job one of

* ``{"name", "kind": "trl_dpo", "file", "step": bool}``: ``trl.DPOTrainer`` built on
  ``load_dataset("json", data_files=file)`` as it is (TRL's own data preparation: prompt
  extraction when there is no prompt, EOS, chat template, tokenization), then, with ``step``,
  one optimizer step on the CPU;
* ``{"name", "kind": "trl_reward", "file", "step": bool}``: the same with
  ``trl.RewardTrainer`` (a sequence-classification head on the tiny model);
* ``{"name", "kind": "trl_sft", "file", "step": bool}``: the same with ``trl.SFTTrainer``
  (``select --format sft`` rows, a ``messages`` column);
* ``{"name", "kind": "openrlhf", "script": "train_dpo" | "train_rm", "argv": [flags]}``: the
  flags parsed by OpenRLHF's own command-line parser (read from
  ``openrlhf/cli/SCRIPT.py``: an unknown flag fails as it would in ``deepspeed --module``),
  then the data path of that script's ``train()``: ``get_tokenizer``, ``blending_datasets``
  (the file loaded as OpenRLHF loads it), ``RewardDataset`` (``is_dpo`` for DPO), every item
  and ``collate_fn``. OpenRLHF's trainers themselves need DeepSpeed and a GPU; they are not run.

``REPORT.json``: ``{"versions": {...}, "jobs": {name: RESULT}}`` where ``RESULT`` is
``{"ok": true, "rows": [{"prompt", "chosen", "rejected", ...}], "loss": float | null}`` (the
texts the trainer will train on, decoded from its token ids, special tokens kept) or
``{"ok": false, "error": "Type: message"}``.

The model and tokenizer are :mod:`vllm_support.tiny_model`'s (random weights, byte-level BPE,
a chat template rendering each message as ``<|ROLE|>content`` and a newline), built into
``model_dir`` on first use.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import datetime
import functools
import importlib.metadata as md
import importlib.util
import itertools
import json
import math
import os
import sys
import traceback
from pathlib import Path
from types import SimpleNamespace
from typing import Any

TESTS_DIR = Path(__file__).resolve().parents[1]


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in ("torch", "transformers", "datasets", "accelerate", "trl", "openrlhf"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
    return out


def _decode(tokenizer: Any, ids: Any) -> str:
    return str(tokenizer.decode(list(ids), skip_special_tokens=False))


# -- TRL -----------------------------------------------------------------------------------------


def _trl_common(work_dir: Path, name: str) -> dict[str, Any]:
    return {
        "output_dir": str(work_dir / name),
        "per_device_train_batch_size": 2,
        "max_steps": 1,
        "learning_rate": 1e-4,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        "use_cpu": True,
        "bf16": False,
        "seed": 0,
        "dataloader_num_workers": 0,
    }


def _loss(trainer: Any) -> float | None:
    for entry in trainer.state.log_history:
        if "loss" in entry:
            return float(entry["loss"])
    return None


def _run_trl(
    job: dict[str, Any], model_dir: Path, work_dir: Path, *, trainer: str, row: Any
) -> dict[str, Any]:
    """``trl.<trainer>Trainer`` built on the file as it is; one step when the job asks."""
    import trl
    from datasets import load_dataset
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    dataset = load_dataset("json", data_files=job["file"], split="train")
    config = getattr(trl, f"{trainer}Config")(**_trl_common(work_dir, job["name"]))
    built = getattr(trl, f"{trainer}Trainer")(
        model=str(model_dir), args=config, train_dataset=dataset, processing_class=tokenizer
    )
    rows = [row(tokenizer, example) for example in built.train_dataset]
    loss = None
    if job.get("step"):
        built.train()
        loss = _loss(built)
    return {"ok": True, "rows": rows, "loss": loss}


def _dpo_row(tokenizer: Any, example: dict[str, Any]) -> dict[str, Any]:
    return {key: _decode(tokenizer, example[f"{key}_ids"]) for key in PAIR_KEYS}


def _reward_row(tokenizer: Any, example: dict[str, Any]) -> dict[str, Any]:
    row = {key: _decode(tokenizer, example[f"{key}_ids"]) for key in PAIR_KEYS[1:]}
    return {**row, "margin": example.get("margin")}


def _sft_row(tokenizer: Any, example: dict[str, Any]) -> dict[str, Any]:
    return {"text": _decode(tokenizer, example["input_ids"])}


PAIR_KEYS = ("prompt", "chosen", "rejected")


# -- OpenRLHF ------------------------------------------------------------------------------------


def openrlhf_parser(script: str) -> argparse.ArgumentParser:
    """The argument parser that ``openrlhf/cli/SCRIPT.py`` builds under ``__main__``.

    The script's module cannot be imported without DeepSpeed (its trainer imports), so its
    source is read: the statements of the ``if __name__ == "__main__":`` block up to
    ``parse_args()`` are run as they are, with the module's own functions defined.
    """
    spec = importlib.util.find_spec(f"openrlhf.cli.{script}")
    if spec is None or spec.origin is None:
        raise ImportError(f"openrlhf.cli.{script} not found")
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    guard = next(
        node
        for node in tree.body
        if isinstance(node, ast.If) and ast.unparse(node.test) == "__name__ == '__main__'"
    )
    assert isinstance(guard, ast.If)
    body = itertools.takewhile(lambda node: "parse_args(" not in ast.unparse(node), guard.body)
    defs = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)]
    module = ast.Module(body=[*defs, *body], type_ignores=[])
    namespace: dict[str, Any] = {
        "argparse": argparse,
        "datetime": datetime.datetime,
        "math": math,
        "os": os,
        "__name__": f"openrlhf_cli_{script}",
    }
    exec(compile(module, spec.origin, "exec"), namespace)
    parser = namespace["parser"]
    assert isinstance(parser, argparse.ArgumentParser)
    return parser


def _option(args: Any, dotted: str) -> Any:
    """``args.data.max_len`` in releases with dotted options, ``args.max_len`` before."""
    node = args
    parts = dotted.split(".")
    if hasattr(args, parts[0]) and not isinstance(getattr(args, parts[0]), str | int | float):
        for part in parts:
            node = getattr(node, part)
        return node
    return getattr(args, parts[-1])


def run_openrlhf(job: dict[str, Any], model_dir: Path, work_dir: Path) -> dict[str, Any]:
    from openrlhf.datasets import RewardDataset
    from openrlhf.datasets.utils import blending_datasets
    from openrlhf.utils.utils import get_tokenizer

    script = job["script"]
    parser = openrlhf_parser(script)
    args = parser.parse_args(job["argv"])
    if any("." in dest for dest in vars(args)):  # releases with dotted options
        from openrlhf.utils.config import hierarchize

        args = hierarchize(args)
    is_dpo = script == "train_dpo"
    strategy = SimpleNamespace(
        args=args,
        print=lambda *a, **k: print(*a, file=sys.stderr, **k),
        is_rank_0=lambda: True,
    )
    tokenizer = get_tokenizer(
        _option(args, "model.model_name_or_path") if hasattr(args, "model") else args.pretrain,
        None,
        "right" if is_dpo else "left",
        strategy,
        use_fast=not _option(args, "data.disable_fast_tokenizer"),
    )
    with contextlib.redirect_stdout(sys.stderr):
        train_data = blending_datasets(
            _option(args, "data.dataset"),
            _option(args, "data.dataset_probs"),
            strategy,
            _option(args, "train.seed"),
            max_count=_option(args, "data.max_samples"),
            dataset_split=_option(args, "data.dataset_split"),
        )
    dataset = RewardDataset(
        train_data,
        tokenizer,
        _option(args, "data.max_len"),
        strategy,
        input_template=_option(args, "data.input_template"),
        is_dpo=is_dpo,
        num_processors=1,
    )
    items = [dataset[i] for i in range(len(dataset))]
    chosen_ids, _, rejected_ids, _, extras = dataset.collate_fn(items)
    rows = [
        {
            "prompt": dataset.prompts[i],
            "chosen": dataset.chosens[i],
            "rejected": dataset.rejects[i],
            "extra": extras[i],
            "chosen_tokens": _decode(tokenizer, items[i][0][0]),
        }
        for i in range(len(dataset))
    ]
    batch = {"chosen_shape": list(chosen_ids.shape), "rejected_shape": list(rejected_ids.shape)}
    return {"ok": True, "rows": rows, "loss": None, "batch": batch}


RUNNERS = {
    "trl_dpo": functools.partial(_run_trl, trainer="DPO", row=_dpo_row),
    "trl_reward": functools.partial(_run_trl, trainer="Reward", row=_reward_row),
    "trl_sft": functools.partial(_run_trl, trainer="SFT", row=_sft_row),
    "openrlhf": run_openrlhf,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("spec")
    parser.add_argument("report")
    ns = parser.parse_args(argv)
    spec = json.loads(Path(ns.spec).read_text())
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.path.insert(0, str(TESTS_DIR))  # vllm_support
    from vllm_support.tiny_model import build_tiny_model

    model_dir = build_tiny_model(spec["model_dir"])
    work_dir = Path(spec["work_dir"])
    results: dict[str, Any] = {}
    for job in spec["jobs"]:
        try:
            results[job["name"]] = RUNNERS[job["kind"]](job, model_dir, work_dir)
        except (Exception, SystemExit) as exc:  # reported to the test, which says what failed
            traceback.print_exc(file=sys.stderr)
            results[job["name"]] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    report = {"versions": _versions(), "jobs": results}
    Path(ns.report).write_text(json.dumps(report, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
