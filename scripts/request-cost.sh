#!/usr/bin/env bash
# Instructions per request through the proxy-wasm ABI, counted by valgrind (callgrind):
# deterministic, so unlike wall-clock timings it does not depend on what else the machine
# is doing. Each case runs N1 and N2 requests; (count(N2) - count(N1)) / (N2 - N1) is the
# cost of one request, start-up (module compilation, configuration) cancelled out.
# Prints a markdown table. Needs valgrind (apt-get install valgrind).
set -euo pipefail
cd "$(dirname "$0")/.."
N1=${N1:-100}
N2=${N2:-600}
command -v valgrind >/dev/null || { echo "request-cost: valgrind not installed" >&2; exit 1; }
cargo build -q -p mfa-gate-e2e --example request_cost --profile bench
bin=target/release/examples/request_cost

count() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null --smc-check=all-non-file \
    "$bin" "$1" "$2" 2>&1 | awk '/Collected/ {print $4}'
}

echo "| case | instructions per request | vs no-op filter |"
echo "|---|---|---|"
noop=""
for case in noop public cache_hit jwt_authn; do
  a=$(count "$case" "$N1"); b=$(count "$case" "$N2")
  per=$(( (b - a) / (N2 - N1) ))
  [ -z "$noop" ] && noop=$per
  ratio=$(awk -v p="$per" -v n="$noop" 'BEGIN { printf "%.2f×", p / n }')
  echo "| $case | $per | $ratio |"
done
