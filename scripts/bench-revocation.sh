#!/usr/bin/env bash
# `make bench-revocation`: what the revocation set costs, written into BENCHMARKS.md (its own
# section, after the marker; `make bench` keeps it):
#   - instructions per cache-hit request in the project's host with and without a revocation
#     section (callgrind: deterministic), the check's own cost being the difference;
#   - N Security Event Tokens (default 1,000,000) pushed into real Envoy
#     (tests/envoy/examples/revocation_flood.rs): the shared-data size the filter reports,
#     Envoy's RSS, the entries folded at the cap, the push rate, and that a session revoked
#     before the flood is still refused after it.
# Needs valgrind (apt-get install valgrind) and Envoy (make setup). N=20000 for a trial.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000000}
N1=${N1:-100}
N2=${N2:-400}
MARKER='<!-- written by scripts/bench-revocation.sh -->'
command -v valgrind >/dev/null || { echo "bench-revocation: valgrind not installed" >&2; exit 1; }
export ENVOY=${ENVOY:-$(./scripts/install-envoy.sh)}

cargo build -q -p mfa-gate-e2e --example request_cost --profile bench
cost_bin=target/release/examples/request_cost
# shellcheck source=lib/callgrind.sh
. scripts/lib/callgrind.sh
noop=$(per_request noop)
hit=$(per_request cache_hit)
revocation=$(per_request cache_hit_revocation)

cargo build -q -p mfa-gate-envoy --example revocation_flood --release
started=$(date -u '+%Y-%m-%d %H:%M UTC')
flood=$(target/release/examples/revocation_flood "$N" 2)

section=$(python3 - "$noop" "$hit" "$revocation" "$flood" "$started" <<'PY'
import json, sys
noop, hit, rev = (int(x) for x in sys.argv[1:4])
f = json.loads(sys.argv[4])
started = sys.argv[5]
mib = lambda kib: f"{kib / 1024:.1f} MiB"
print(f"""## Revocation

Written by `make bench-revocation` (`scripts/bench-revocation.sh`) on {started}.

**The check on every request** (host, callgrind, instructions per request; {noop:,} for the
no-op filter): a cache hit costs {hit:,} without a revocation section and {rev:,} with one,
so the check adds {rev - hit:,} ({(rev - hit) / hit * 100:.0f} % of the cache hit): one
shared-data read of the generation key while the set is unchanged, and a binary search per
identifier of the session in the VM's decoded shards.

**{f['events']:,} Security Event Tokens pushed** into real Envoy 1.40 (`--concurrency
{f['connections']}`, {f['connections']} keep-alive connections, EdDSA SETs each revoking another
subject; `max_entries` 100,000 by default):

| figure | value |
|---|---|
| events accepted / refused | {f['accepted']:,} / {f['refused']:,} |
| push rate | {f['events_per_second']:,.0f} events/s ({f['seconds']:.0f} s in all) |
| entries kept (`mfa_gate.revocation.entries`) | {f['entries']:,} |
| entries folded into an issuer horizon at the cap | {f['folded']:,} |
| shared data used (`mfa_gate.revocation.stored_bytes`) | {f['stored_bytes']:,} bytes ({f['stored_bytes'] / 2**20:.1f} MiB) |
| Envoy RSS before / after | {mib(f['rss_kib_before'])} / {mib(f['rss_kib_after'])} |
| Envoy heap allocated before / after | {int(f['heap_allocated_before'] or 0) / 2**20:.1f} MiB / {int(f['heap_allocated_after'] or 0) / 2**20:.1f} MiB |
| a session revoked before the flood, after it | {"refused (401)" if f['victim_still_refused'] else "LET IN"} |
| shared-data write failures (`store_error`) | {f['store_error']:,} |
""")
PY
)
python3 scripts/lib/bench_section.py "$MARKER" "$section"
echo "bench-revocation: BENCHMARKS.md updated" >&2
