#!/usr/bin/env bash
# Create (or reuse) a separate virtualenv holding the trainers whose data loaders read
# `genrm-rank pairs` output, for the trainer tests (`pytest -m trainers`):
#   - TRL (DPOTrainer, RewardTrainer) with CPU torch, transformers, datasets, accelerate;
#   - OpenRLHF's data path, in two releases side by side (each in its own folder, put on
#     PYTHONPATH by the test): the last with plain options (--prompt_key) and the current one
#     with dotted options (--data.prompt_key). OpenRLHF is installed with --no-deps: its full
#     install needs DeepSpeed, flash-attn and vLLM builds for a GPU; what its dataset modules
#     import (torch, transformers, datasets, sympy, pylatexenc) is installed here.
# NeMo-RL is not installed: PyPI holds only a non-functional 0.0.0 placeholder of it.
#
# Idempotent: when VENV_DIR already holds these pins (marker file written at the end of a
# successful run), it exits at once.
#
# Usage: scripts/setup_trainers.sh [VENV_DIR]     (default: <repo>/.venv-trainers)
# Env:   PYTHON   interpreter used to create the venv (default: python3)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-${repo_root}/.venv-trainers}"
python="${PYTHON:-python3}"
marker="${venv}/.genrm-trainers-ready"

# torch 2.13.0 is the CPU build on this machine's disk (plain `torch` would take a CUDA build of
# several GB from PyPI). The rest are pinned so that a run is reproducible; README's trainer
# table names these versions.
pins=(
    "torch==2.13.0"
    "transformers==5.17.0"
    "datasets==5.0.1"
    "accelerate==1.15.0"
    "trl==1.13.0"
    "pylatexenc==2.10"
)
openrlhf_releases=("0.10.1" "0.11.2")
want="${pins[*]} openrlhf ${openrlhf_releases[*]}"

now() { date +%s; }
# This machine's pip config names local index folders that may be absent; pip then warns once
# per package ("... is ignored: it is neither a file nor a directory"). Drop that noise only.
pip_() {
    "${venv}/bin/python" -m pip "$@" 2>&1 \
        | { grep -v 'is ignored: it is neither a file nor a directory' || true; }
}
step() { printf '[setup_trainers] %s\n' "$*"; }
t_start=$(now)

if [[ -f "${marker}" && "$(cat "${marker}")" == "${want}" && -x "${venv}/bin/python" ]]; then
    step "${venv} already holds ${want}; nothing to do"
    exit 0
fi

if [[ ! -x "${venv}/bin/python" ]]; then
    step "creating venv ${venv} with $(${python} --version 2>&1)"
    "${python}" -m venv "${venv}"
fi
rm -f "${marker}"

t=$(now)
step "installing ${pins[*]}"
pip_ install --quiet "${pins[@]}"
step "install: $(( $(now) - t )) s"

t=$(now)
for release in "${openrlhf_releases[@]}"; do
    target="${venv}/openrlhf-${release}"
    rm -rf "${target}"
    pip_ install --quiet --no-deps --target "${target}" "openrlhf==${release}"
done
step "openrlhf ${openrlhf_releases[*]} (--no-deps): $(( $(now) - t )) s"

t=$(now)
for release in "${openrlhf_releases[@]}"; do
    PYTHONPATH="${venv}/openrlhf-${release}" "${venv}/bin/python" - "${release}" <<'PY'
import importlib.metadata as md
import sys

import openrlhf.datasets  # noqa: F401  (RewardDataset, PromptDataset)
import openrlhf.datasets.utils  # noqa: F401  (blending_datasets)
import trl

print(f"[setup_trainers] openrlhf {sys.argv[1]} imports | trl {trl.__version__} | torch",
      md.version("torch"), "| transformers", md.version("transformers"))
PY
done
step "import check: $(( $(now) - t )) s"

echo "${want}" > "${marker}"
step "done in $(( $(now) - t_start )) s; size $(du -sh "${venv}" | cut -f1)"
