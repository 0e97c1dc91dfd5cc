#!/usr/bin/env bash
# `make run`: the mfa-gate demo on 127.0.0.1.
#
#   gateway  127.0.0.1:10000  mfa-gate inline in a proxy using envoy/envoy.yaml:
#                             the project's own host (mfa-gate-host serve) by default,
#                             real Envoy when ENVOY=/path/to/envoy is set
#   IdP      127.0.0.1:10001  demo identity provider (mfa-gate demo)
#   app      127.0.0.1:10002  demo upstream app (mfa-gate demo)
#
# Prints a curl line per demo user and route with the answer to expect. Ctrl-C stops all.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO=${CARGO:-cargo}
CONFIG=envoy/envoy.yaml
WASM=target/wasm32-wasip1/release/mfa_gate.wasm
PROXY_PORT=10000 IDP_PORT=10001 APP_PORT=10002

say() { printf 'run-demo: %s\n' "$*" >&2; }

if [ ! -f "$WASM" ]; then
  say "$WASM is missing: build it first with 'make wasm' (make run does this)"
  exit 1
fi

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for port in $PROXY_PORT $IDP_PORT $APP_PORT; do
  if port_busy "$port"; then
    say "port $port on 127.0.0.1 is already in use (another demo still running?)."
    say "stop whatever listens there (e.g. 'ss -ltnp | grep :$port') and try again."
    exit 1
  fi
done

say "building the native tools (mfa-gate, mfa-gate-host)"
$CARGO build --quiet -p mfa-gate-cli -p mfa-gate-host
BIN=target/debug

pids=()
cleanup() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  say "stopped"
}
trap cleanup INT TERM EXIT

"$BIN/mfa-gate" demo --proxy-port $PROXY_PORT --idp-port $IDP_PORT --app-port $APP_PORT &
pids+=($!)

# The filter fetches the IdP's JWKS at start: let the IdP listen first.
for _ in $(seq 1 50); do port_busy $IDP_PORT && break; sleep 0.1; done

if [ -n "${ENVOY:-}" ]; then
  say "starting Envoy: $ENVOY -c $CONFIG"
  "$ENVOY" -c "$CONFIG" --log-level warn --component-log-level wasm:info &
else
  say "starting the proxy: mfa-gate-host serve --config $CONFIG (set ENVOY=/path/to/envoy for real Envoy)"
  "$BIN/mfa-gate-host" serve --config "$CONFIG" &
fi
pids+=($!)

for _ in $(seq 1 100); do port_busy $PROXY_PORT && break; sleep 0.1; done
if ! port_busy $PROXY_PORT; then
  say "the proxy did not start listening on 127.0.0.1:$PROXY_PORT (see its messages above)"
  exit 1
fi
say "gateway ready on http://127.0.0.1:$PROXY_PORT — Ctrl-C to stop"

# Exit (and clean up) as soon as either process ends.
wait -n "${pids[@]}"
