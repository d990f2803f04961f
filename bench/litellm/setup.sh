#!/usr/bin/env bash
# Create bench/.venv-litellm with the LiteLLM proxy, pinned, for the overhead comparison.
# Usage: bash bench/litellm/setup.sh            (idempotent; PYTHON=python3.11 to choose the interpreter)
set -euo pipefail

LITELLM_VERSION="1.108.7"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$(cd "$here/.." && pwd)/.venv-litellm"
python="${PYTHON:-python3}"

if [[ ! -x "$venv/bin/python" ]]; then
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "litellm[proxy]==${LITELLM_VERSION}"
LITELLM_LOCAL_MODEL_COST_MAP=True LITELLM_TELEMETRY=False "$venv/bin/litellm" --version >/dev/null
echo "LiteLLM ${LITELLM_VERSION} installed in ${venv}; start it with bash bench/litellm/start.sh"
