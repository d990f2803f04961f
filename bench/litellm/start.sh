#!/usr/bin/env bash
# Start the LiteLLM proxy (installed by setup.sh) on 127.0.0.1, quiet and with no network use.
# Usage: bash bench/litellm/start.sh [port]        (default port 8300)
#        SIM_API_BASE=http://127.0.0.1:9001/v1 overrides the upstream.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$(cd "$here/.." && pwd)/.venv-litellm"
port="${1:-8300}"

if [[ ! -x "$venv/bin/litellm" ]]; then
  echo "LiteLLM is not installed: run bash bench/litellm/setup.sh first" >&2
  exit 1
fi

export SIM_API_BASE="${SIM_API_BASE:-http://127.0.0.1:9001/v1}"
# Offline and quiet: no telemetry, the bundled model-cost map instead of a download, no
# per-request logs, no feedback banner, no Hugging Face hub look-ups.
export LITELLM_TELEMETRY=False
export LITELLM_LOCAL_MODEL_COST_MAP=True
export LITELLM_LOG=ERROR
export LITELLM_DONT_SHOW_FEEDBACK_BOX=True
export HF_HUB_OFFLINE=1
export NO_PROXY="127.0.0.1,localhost"

exec "$venv/bin/litellm" --config "$here/config.yaml" --host 127.0.0.1 --port "$port" \
  --num_workers 1 --telemetry False
