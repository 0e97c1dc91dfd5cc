#!/usr/bin/env bash
# Load test of `mfa-gate-host serve` with wrk, side by side in one run:
#   upstream alone, serve without a filter (baseline, like coraza's no-filter Envoy config),
#   serve + noop filter (ABI floor), serve + mfa-gate (envoy/envoy.yaml's config) on a public
#   route and on a protected route without a token (local 401).
# Prints a markdown table on stdout (progress on stderr). Bounded: DURATION per case (5s).
#
#   scripts/bench-serve.sh                  # builds with the bench profile, installs wrk if missing
#   MFA_GATE_HOST_BIN=target/debug/mfa-gate-host DURATION=3s scripts/bench-serve.sh
#
# Knobs: DURATION (5s), CONNECTIONS (16), THREADS (wrk threads, 1), WORKERS (serve workers, 2).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-5s}
CONNECTIONS=${CONNECTIONS:-16}
THREADS=${THREADS:-1}
WORKERS=${WORKERS:-2}
WASM_DIR=target/wasm32-wasip1/release

log() { echo "bench-serve: $*" >&2; }

if ! command -v wrk >/dev/null 2>&1; then
  log "installing wrk (Debian package)"
  if [ "$(id -u)" = 0 ]; then apt-get install -y -q wrk >&2 || { apt-get update -q >&2 && apt-get install -y -q wrk >&2; }
  else sudo apt-get install -y -q wrk >&2; fi
fi

BIN=${MFA_GATE_HOST_BIN:-}
if [ -z "$BIN" ]; then
  log "building mfa-gate-host (bench profile)"
  cargo build --profile bench -p mfa-gate-host --bin mfa-gate-host >&2
  BIN=target/release/mfa-gate-host
fi
for f in noop_filter.wasm mfa_gate.wasm; do
  [ -f "$WASM_DIR/$f" ] || { echo "missing $WASM_DIR/$f: build it first: make wasm" >&2; exit 1; }
done

tmp=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# start NAME ARGS...: runs the binary in the background, waits for "listening on ADDR", sets ADDR.
start() {
  local name=$1; shift
  rm -f "$tmp/$name.out" "$tmp/$name.err"
  "$BIN" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  pids+=($!)
  for _ in $(seq 1 100); do
    ADDR=$(sed -n 's/^listening on //p' "$tmp/$name.out" 2>/dev/null | head -1)
    [ -n "$ADDR" ] && return 0
    sleep 0.1
  done
  echo "$name did not start:" >&2; cat "$tmp/$name.err" >&2; exit 1
}

stop_last() {
  local pid=${pids[-1]}
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  unset 'pids[-1]'
}

start echo upstream-echo --listen 127.0.0.1:0
ECHO=$ADDR
ECHO_PORT=${ECHO##*:}
DEAD_PORT=9   # discard port: nothing listens, so the IdP cluster is "down"

# A listener + router + one cluster, with an optional HTTP filter block ($1).
write_config() {
  cat <<EOF
static_resources:
  listeners:
  - name: bench
    address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: bench
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: { prefix: "/" }
                route: { cluster: app }
          http_filters:
$1
          - name: envoy.filters.http.router
  clusters:
  - name: app
    load_assignment:
      endpoints:
      - lb_endpoints:
        - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: $ECHO_PORT } } }
EOF
}

write_config "" >"$tmp/plain.yaml"
write_config "          - name: envoy.filters.http.wasm
            typed_config:
              \"@type\": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: noop
                vm_config: { code: { local: { filename: $WASM_DIR/noop_filter.wasm } } }" >"$tmp/noop.yaml"
# The real config of envoy/envoy.yaml, its app cluster pointed at the echo upstream and its IdP
# cluster at a closed port (no token is sent, so no key is needed).
sed -e "s/port_value: 10002/port_value: $ECHO_PORT/" -e "s/port_value: 10001/port_value: $DEAD_PORT/" \
  envoy/envoy.yaml >"$tmp/mfa.yaml"

rows=()
run_case() {
  local label=$1 target=$2 path=$3
  local out="$tmp/wrk.txt"
  curl -s -o /dev/null "http://$target$path" || true
  log "$label: wrk -t$THREADS -c$CONNECTIONS -d$DURATION http://$target$path"
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "http://$target$path" >"$out"
  local rps avg p50 p99 status non2xx
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
  avg=$(awk '/^ *Latency / && !/Distribution/ {print $2; exit}' "$out")
  p50=$(awk '$1 == "50%" {print $2}' "$out")
  p99=$(awk '$1 == "99%" {print $2}' "$out")
  non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $5}' "$out")
  status=$(curl -s -o /dev/null -w '%{http_code}' "http://$target$path" || echo "?")
  rows+=("| $label | \`$path\` | $status | ${rps:-?} | ${avg:-?} | ${p50:-?} | ${p99:-?} | ${non2xx:-0} |")
}

run_serve_case() {
  local label=$1 yaml=$2 path=$3
  start "serve-${#rows[@]}" serve --config "$yaml" --listen-override 127.0.0.1:0 --workers "$WORKERS" --log-level critical
  run_case "$label" "$ADDR" "$path"
  stop_last
}

run_case "upstream-echo alone" "$ECHO" "/"
run_serve_case "serve, no filter (baseline)" "$tmp/plain.yaml" "/"
run_serve_case "serve + noop filter" "$tmp/noop.yaml" "/"
run_serve_case "serve + mfa-gate, public route" "$tmp/mfa.yaml" "/health"
run_serve_case "serve + mfa-gate, no token → 401" "$tmp/mfa.yaml" "/api/items"

echo "### serve load test"
echo
echo "wrk $THREADS thread(s), $CONNECTIONS connections, $DURATION per case; serve with $WORKERS workers;"
echo "binary \`$BIN\`; $(nproc) CPU(s) shared by wrk, serve and the upstream; $(date -u +%Y-%m-%dT%H:%MZ)."
echo
echo "| case | path | status | req/s | latency avg | p50 | p99 | non-2xx |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
