#!/usr/bin/env bash
# Instructions per request through the proxy-wasm ABI, counted by valgrind (callgrind):
# deterministic, so unlike wall-clock timings it does not depend on what else the machine
# is doing. Each case runs N1 and N2 requests; (count(N2) - count(N1)) / (N2 - N1) is the
# cost of one request, start-up (module compilation, configuration) cancelled out.
# Prints a markdown table. Needs valgrind (apt-get install valgrind).
set -euo pipefail
cd "$(dirname "$0")/.."
N1=${N1:-100}
N2=${N2:-400}
command -v valgrind >/dev/null || { echo "request-cost: valgrind not installed" >&2; exit 1; }
cargo build -q -p mfa-gate-e2e --example request_cost --profile bench
cost_bin=target/release/examples/request_cost
# shellcheck source=lib/callgrind.sh
. scripts/lib/callgrind.sh

# Each filter case beside the no-op filter given the same request.
noop=$(per_request noop)
noop_meta=$(per_request noop_jwt_authn)
echo "| case | instructions per request | vs no-op filter, same request |"
echo "|---|---|---|"
echo "| noop (bearer request) | $noop | 1.00× |"
echo "| noop (jwt_authn request) | $noop_meta | 1.00× |"
for case in public cache_hit cache_hit_revocation jwt_authn; do
  per=$(per_request "$case")
  floor=$noop
  [ "$case" = jwt_authn ] && floor=$noop_meta
  ratio=$(awk -v p="$per" -v n="$floor" 'BEGIN { printf "%.2f×", p / n }')
  echo "| $case | $per | $ratio |"
done
