#!/usr/bin/env bash
# Where one request's instructions go, by function, guest wasm code included: runs a
# request_cost case under callgrind twice (N1, N2 requests, only Host::handle counted) with
# wasmtime writing a perf map, then scripts/callgrind_wasm.py names the JIT code.
#
#   scripts/request-profile.sh <noop|noop_jwt_authn|public|cache_hit|jwt_authn> [rows]
#
# Function names need the name section: it builds an unstripped copy of the release
# module into target/profile-wasm. Needs valgrind and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
case=${1:?usage: request-profile.sh <case> [rows]}
rows=${2:-40}
N1=${N1:-50}
N2=${N2:-250}
command -v valgrind >/dev/null || { echo "request-profile: valgrind not installed" >&2; exit 1; }
dir=target/profile-wasm
CARGO_PROFILE_RELEASE_STRIP=none cargo build -q --release --target wasm32-wasip1 \
  -p mfa-gate -p noop-filter --target-dir "$dir"
cargo build -q -p mfa-gate-e2e --example request_cost --profile bench
bin=target/release/examples/request_cost
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for n in "$N1" "$N2"; do
  MFA_GATE_HOST_PERFMAP=1 MFA_GATE_WASM_DIR="$dir/wasm32-wasip1/release" \
    valgrind --tool=callgrind --dump-instr=yes --dump-line=no --collect-atstart=no \
    "--toggle-collect=mfa_gate_host::Host::handle*" --smc-check=all-non-file \
    --callgrind-out-file="$work/$n.out" "$bin" "$case" "$n" > "$work/$n.log" 2>&1
  pid=$(grep -o '^==[0-9]*==' "$work/$n.log" | head -1 | tr -d =)
  mv "/tmp/perf-$pid.map" "$work/$n.map"
done
python3 scripts/callgrind_wasm.py "$work/$N1.out" "$work/$N1.map" "$work/$N2.out" "$work/$N2.map" \
  $((N2 - N1)) "$rows"
