#!/usr/bin/env bash
# `make run`: the mfa-gate demo on 127.0.0.1, in real Envoy.
#
#   gateway  127.0.0.1:10000  Envoy on envoy/envoy.yaml, mfa-gate inline (the release build)
#   IdP      127.0.0.1:10001  demo identity provider (mfa-gate demo)
#   app      127.0.0.1:10002  demo upstream app (mfa-gate demo)
#   redis    127.0.0.1:10003  redis-server, no persistence (its dir: target/demo-redis)
#   rls      127.0.0.1:10004  mfa-gate-rls, Envoy's rate-limit service (RLS v3) counting in
#                             that Redis under envoy/ratelimit-limits.yaml
#
# Envoy is the one `make setup` installs into .venv (scripts/install-envoy.sh); ENVOY=/path
# overrides it. Prints a curl line per demo user and route with the answer to expect.
# Ctrl-C stops all.
set -euo pipefail
cd "$(dirname "$0")/.."

CONFIG=envoy/envoy.yaml
WASM=target/wasm32-wasip1/release/mfa_gate.wasm
CLI=target/debug/mfa-gate
RLS=target/debug/mfa-gate-rls
LIMITS=envoy/ratelimit-limits.yaml
PROXY_PORT=10000 IDP_PORT=10001 APP_PORT=10002 REDIS_PORT=10003 RLS_PORT=10004

say() { printf 'run-demo: %s\n' "$*" >&2; }

for built in "$WASM:make wasm" "$CLI:make native" "$RLS:make native"; do
  if [ ! -f "${built%%:*}" ]; then
    say "${built%%:*} is missing: build it first with '${built#*:}' (make run does this)"
    exit 1
  fi
done
ENVOY=$(./scripts/install-envoy.sh)
if ! command -v redis-server >/dev/null 2>&1; then
  say "redis-server not found: install redis-server (make setup as root, apt-get install redis-server, brew install redis)"
  exit 1
fi

# The geoip filter's demo databases (envoy/envoy.yaml names them): four documentation
# networks, from envoy/demo-geoip.json. install-envoy.sh put mmdb-writer into .venv.
mkdir -p target/demo-geoip
.venv/bin/python scripts/make-test-geoip.py envoy/demo-geoip.json target/demo-geoip

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for port in $PROXY_PORT $IDP_PORT $APP_PORT $REDIS_PORT $RLS_PORT; do
  if port_busy "$port"; then
    say "port $port on 127.0.0.1 is already in use (another demo still running?)."
    say "stop whatever listens there (e.g. 'ss -ltnp | grep :$port') and try again."
    exit 1
  fi
done

pids=()
cleanup() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  say "stopped"
}
trap cleanup INT TERM EXIT

# Redis for the rate-limit service's counters: loopback only, nothing saved.
mkdir -p target/demo-redis
redis-server --port $REDIS_PORT --bind 127.0.0.1 --save '' --appendonly no \
  --dir target/demo-redis --loglevel warning &
pids+=($!)
# mfa-gate-rls waits for Redis itself (--redis-wait-ms, 10 s by default).
"$RLS" --listen 127.0.0.1:$RLS_PORT --redis redis://127.0.0.1:$REDIS_PORT --limits $LIMITS >/dev/null &
pids+=($!)

# The demo IdP's Shared Signals credentials: the same demo-only values envoy/envoy.yaml
# gives the filter (vm_config.environment_variables).
"$CLI" demo --proxy-port $PROXY_PORT --idp-port $IDP_PORT --app-port $APP_PORT \
  --ssf-bearer demo-ssf-poll-credential \
  --ssf-push-url "http://127.0.0.1:$PROXY_PORT/.mfa-gate/ssf/push" \
  --ssf-push-bearer demo-ssf-push-credential \
  --backchannel-logout-url "http://127.0.0.1:$PROXY_PORT/.mfa-gate/backchannel-logout" \
  --okta-api-token demo-okta-api-token &
pids+=($!)

# The filter fetches the IdP's JWKS at start: let the IdP listen first.
for _ in $(seq 1 50); do port_busy $IDP_PORT && break; sleep 0.1; done

# From the repository root: the bootstrap's code.local.filename is relative to it.
# No hot-restart shared memory, so the demo runs beside other Envoys (e.g. make test).
say "starting Envoy: $ENVOY -c $CONFIG"
"$ENVOY" -c "$CONFIG" --disable-hot-restart --log-level warn --component-log-level wasm:info &
pids+=($!)

for _ in $(seq 1 100); do port_busy $PROXY_PORT && break; sleep 0.1; done
if ! port_busy $PROXY_PORT; then
  say "Envoy did not start listening on 127.0.0.1:$PROXY_PORT (see its messages above)"
  exit 1
fi
for _ in $(seq 1 100); do port_busy $RLS_PORT && break; sleep 0.1; done
if ! port_busy $RLS_PORT; then
  say "mfa-gate-rls did not start listening on 127.0.0.1:$RLS_PORT (see its messages above)"
  exit 1
fi
say "rate-limit service (RLS v3) on 127.0.0.1:$RLS_PORT, counting in Redis on 127.0.0.1:$REDIS_PORT"
say "gateway ready on http://127.0.0.1:$PROXY_PORT — Ctrl-C to stop"

# Exit (and clean up) as soon as either process ends.
wait -n "${pids[@]}"
