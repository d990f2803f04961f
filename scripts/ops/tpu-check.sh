#!/usr/bin/env bash
# Is this TPU host ready to serve through InferLab? Run on the TPU VM (docs/operations.md#tpu-hosts).
#   scripts/ops/tpu-check.sh [JETSTREAM_URL]     default http://127.0.0.1:8000
# 1. the TPU chips the kernel exposes (/dev/accel* on v4/v5e/v5p, /dev/vfio/* on v6e);
# 2. what JAX sees, when JAX is installed (the runtime JetStream and vLLM-TPU use);
# 3. JetStream's HTTP server: GET /v1/health, then one POST /v1/generate of 8 tokens.
set -uo pipefail
url=${1:-http://127.0.0.1:8000}
status=0
chips=$(ls /dev/accel* 2>/dev/null | wc -l)
vfio=$(ls /dev/vfio 2>/dev/null | grep -vc '^vfio$')
if [ "$chips" -gt 0 ] || [ "$vfio" -gt 0 ]; then
  echo "ok: TPU device nodes: ${chips} /dev/accel*, ${vfio} /dev/vfio groups"
else
  echo "fail: no TPU device nodes (/dev/accel*, /dev/vfio/*): not a TPU VM, or the driver is not loaded"; status=1
fi
if python3 -c 'import jax' 2>/dev/null; then
  python3 - <<'PY' || status=1
import jax
devices = jax.devices()
kinds = {d.platform for d in devices}
print(f"{'ok' if 'tpu' in kinds else 'fail'}: JAX sees {len(devices)} device(s): {sorted(kinds)} ({devices[0].device_kind})")
raise SystemExit(0 if "tpu" in kinds else 1)
PY
else
  echo "note: JAX is not installed here; skipping the runtime check (JetStream's image has it)"
fi
if health=$(curl -fsS --max-time 5 "$url/v1/health"); then
  echo "ok: JetStream health: $(echo "$health" | tr -d ' \n')"
  if curl -fsS --max-time 120 "$url/v1/generate" -H 'Content-Type: application/json' \
      -d '{"max_tokens": 8, "text_content": {"text": "Hello"}}' | grep -q '"text"'; then
    echo "ok: JetStream generated text"
  else
    echo "fail: POST $url/v1/generate did not stream text"; status=1
  fi
else
  echo "fail: JetStream does not answer $url/v1/health"; status=1
fi
exit $status
