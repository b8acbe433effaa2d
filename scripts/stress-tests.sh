#!/usr/bin/env bash
# Run tests N times in a row while a CPU hog keeps every core busy: flaky tests show up here.
#
#   scripts/stress-tests.sh [-n N] [-j HOGS] [PYTEST ARGS...]
#   scripts/stress-tests.sh -n 3 -m "not slow"                      # the whole `make test`, 3x
#   scripts/stress-tests.sh -n 20 tests/training/test_interrupt.py  # given tests, 20x
#
# HOGS busy-loop processes (default: one per core) run for the whole time; each pytest run's
# result is printed, and the script exits non-zero if any run failed. Logs: $STRESS_LOGS
# (default /tmp/stress-tests), one file per run.
set -uo pipefail
cd "$(dirname "$0")/.."

runs=3
hogs=$(nproc)
while [ $# -gt 0 ]; do  # -n and -j first; everything after goes to pytest
  case $1 in
    -n) runs=$2; shift 2 ;;
    -j) hogs=$2; shift 2 ;;
    *) break ;;
  esac
done
python=${PYTHON:-.venv/bin/python}
[ -x "$python" ] || python=python3
logs=${STRESS_LOGS:-/tmp/stress-tests}
mkdir -p "$logs"

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done; }
trap cleanup EXIT INT TERM
for _ in $(seq "$hogs"); do
  "$python" -c "while True: pass" &
  pids+=($!)
done
echo "stress: $runs run(s) of pytest $* with $hogs CPU hog(s); load $(cut -d' ' -f1-3 /proc/loadavg)"

passed=0 failed=0
for i in $(seq "$runs"); do
  start=$(date +%s)
  if "$python" -m pytest -q -p no:cacheprovider "$@" >"$logs/run-$i.log" 2>&1; then
    passed=$((passed + 1)); verdict=passed
  else
    failed=$((failed + 1)); verdict="FAILED (see $logs/run-$i.log)"
  fi
  echo "run $i/$runs: $verdict in $(( $(date +%s) - start )) s; $(tail -n 1 "$logs/run-$i.log");" \
       "load $(cut -d' ' -f1-3 /proc/loadavg)"
done
echo "stress: $passed passed, $failed failed of $runs"
[ "$failed" -eq 0 ]
