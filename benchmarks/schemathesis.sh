#!/usr/bin/env bash
# Fuzz the web playground through its OpenAPI schema with schemathesis; fail on any server
# error (HTTP 5xx or a dropped connection).
#
#   benchmarks/schemathesis.sh                 # 40 examples per operation, fixed seed
#   EXAMPLES=300 SEED=7 benchmarks/schemathesis.sh
#
# Serves a copy of the shipped food4 sample and one small trained run with
# `transferlab serve` on a free loopback port. Operations that start background work
# (training, sweeps, export) are fuzzed with invalid input only (--mode negative): valid
# input would queue real jobs. Needs `pip install schemathesis` (dev tools).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
ST=${SCHEMATHESIS:-$(dirname "$PY")/schemathesis}
EXAMPLES=${EXAMPLES:-40}
SEED=${SEED:-6}
WORK=$(mktemp -d -t tl-fuzz-XXXX)
SERVER=""
cleanup() {
  if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

export HF_HUB_OFFLINE=1
mkdir -p "$WORK/data"
cp -r src/transferlab/sample_data/food4 "$WORK/data/food4"
"$PY" - "$WORK" <<'EOF'
import sys
from transferlab.api import fine_tune

work = sys.argv[1]
fine_tune(data=f"{work}/data/food4", strategy="feature-extraction", epochs=1, image_size=64,
          out=f"{work}/runs", name="fuzz-run", progress=False, device="cpu")
EOF
PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$PY" -m transferlab.cli.main serve --host 127.0.0.1 --port "$PORT" --data-root "$WORK/data" \
  --runs-root "$WORK/runs" --device cpu --max-upload-mb 8 >"$WORK/server.log" 2>&1 &
SERVER=$!
URL="http://127.0.0.1:$PORT"
for _ in $(seq 1 300); do
  if "$PY" -c "import httpx, sys; sys.exit(httpx.get('$URL/api/health').status_code != 200)" 2>/dev/null; then
    break
  fi
  kill -0 "$SERVER" 2>/dev/null || { cat "$WORK/server.log"; exit 1; }
  sleep 0.5
done

JOBS='start_training|start_sweep|^export_'
status=0
echo "== all operations that start no background work: valid and invalid input"
"$ST" run "$URL/openapi.json" --checks not_a_server_error --exclude-operation-id-regex "$JOBS" \
  --max-examples "$EXAMPLES" --seed "$SEED" --workers 1 --request-timeout 120 \
  --suppress-health-check all || status=1
echo "== operations that start training, sweeps or export: invalid input only"
"$ST" run "$URL/openapi.json" --checks not_a_server_error --include-operation-id-regex "$JOBS" \
  --mode negative --max-examples "$EXAMPLES" --seed "$SEED" --workers 1 --request-timeout 120 \
  --suppress-health-check all || status=1
if ! kill -0 "$SERVER" 2>/dev/null; then
  echo "the server died during the run:"; cat "$WORK/server.log"; status=1
fi
if grep -q "Traceback" "$WORK/server.log"; then
  echo "server log shows tracebacks:"; grep -B2 -A20 "Traceback" "$WORK/server.log" | head -80
fi
exit $status
