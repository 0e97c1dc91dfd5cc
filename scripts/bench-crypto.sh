#!/usr/bin/env bash
# `make bench-crypto`: the signature-check candidates of issue 17 side by side in V8 (node's,
# the engine Envoy embeds): jwt-simple 0.15 (today's verifier) and ring 0.17, each with the
# dependencies built at opt-level "s" (the filter's release setting) and 3, one verification
# per call (benches/crypto-candidates). ROUNDS interleaved runs of N checks each; medians and
# min–max across the runs, written into BENCHMARKS.md (its own section, after its marker).
# Needs clang (ring's C code for wasm32) and node: installed with apt-get when missing and
# running as root. Not Envoy: a first pick between candidates; `make bench` judges in Envoy.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
N=${N:-200}
MARKER='<!-- written by scripts/bench-crypto.sh -->'
for tool in clang:clang node:nodejs; do
  command -v "${tool%%:*}" >/dev/null 2>&1 && continue
  [ "$(id -u)" = 0 ] || { echo "bench-crypto: install ${tool#*:} (apt-get install ${tool#*:})" >&2; exit 1; }
  apt-get install -y -q "${tool#*:}" >&2
done
manifest=benches/crypto-candidates/Cargo.toml
out=target/crypto-candidates
for opt in s 3; do
  level=$opt; [ "$opt" = s ] && level='"s"'
  cargo build -q --release --target wasm32-wasip1 --manifest-path "$manifest" \
    --target-dir "$out/opt-$opt" --config "profile.release.package.\"*\".opt-level=$level"
done
runs="$out/runs.jsonl"
: > "$runs"
started=$(date -u '+%Y-%m-%d %H:%M UTC')
for round in $(seq "$ROUNDS"); do
  order="s 3"; [ $((round % 2)) = 0 ] && order="3 s"
  for opt in $order; do
    node --no-warnings benches/crypto-candidates/run.mjs \
      "$out/opt-$opt/wasm32-wasip1/release/crypto-candidates.wasm" "$N" |
      sed "s/^{/{\"opt\": \"$opt\", \"round\": $round, /" >> "$runs"
  done
  echo "bench-crypto: round $round/$ROUNDS" >&2
done
section=$(python3 - "$runs" "$started" "$ROUNDS" "$N" "$(node --version)" <<'PY'
import json, statistics, sys
runs, started, rounds, n, node = sys.argv[1:6]
rows = [json.loads(l) for l in open(runs)]
by = {}
for r in rows:
    by.setdefault((r["candidate"], r["opt"], r["alg"]), []).append(r["us"])
def cell(values):
    return f"{statistics.median(values):.0f} µs ({min(values):.0f}–{max(values):.0f})"
print("## Signature checks in V8: the candidates side by side\n")
print(f"Written by `make bench-crypto` (`scripts/bench-crypto.sh`) on {started}: "
      f"benches/crypto-candidates in node {node}'s V8 (the engine Envoy embeds, not Envoy "
      f"itself), {rounds} interleaved runs of {n} checks per algorithm and candidate; µs per "
      "verification, median (min–max) across the runs. jwt-simple (today's verifier) checks "
      "with keys parsed once; ring parses its key on every check, as its API takes it. "
      "\"opt\" is the dependencies' opt-level.\n")
algs = ["RS256", "ES256", "EdDSA"]
print("| candidate | opt | " + " | ".join(algs) + " |")
print("|---|---|" + "---|" * len(algs))
for cand in ["jwt-simple", "ring"]:
    for opt in ["s", "3"]:
        print(f"| {cand} | {opt} | " + " | ".join(cell(by[(cand, opt, a)]) for a in algs) + " |")
print()
base = {a: statistics.median(by[("jwt-simple", "s", a)]) for a in algs}
print("Speed-up over today's (jwt-simple, opt s): " + "; ".join(
    f"{a}: " + ", ".join(f"{c} opt {o} {base[a] / statistics.median(by[(c, o, a)]):.1f}×"
                         for c, o in [("jwt-simple", "3"), ("ring", "s"), ("ring", "3")])
    for a in algs) + ".")
PY
)
python3 scripts/lib/bench_section.py "$MARKER" "$section"
echo "bench-crypto: wrote its section of BENCHMARKS.md" >&2
