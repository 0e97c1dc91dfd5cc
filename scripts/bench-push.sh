#!/usr/bin/env bash
# `make bench-push`: what a prompt on a guarded push endpoint costs, written into
# BENCHMARKS.md (its own section, after its marker; `make bench` keeps it): instructions per
# request in the project's host (callgrind: deterministic). Each prompt is a Duo Auth API
# `POST /auth/v2/auth` (form body) from another user and address, and the provider's JSON
# answer is read back for its outcome: counted in shared data (`local`), or by a rate-limit
# service that answers over the host's gRPC callouts at once (`service`: the filter's own
# work of encoding `ShouldRateLimit`, the callout and decoding the answer; the service's
# and the network's time are not in it). The no-op filter is given the same prompts.
# Needs valgrind (apt-get install valgrind).
set -euo pipefail
cd "$(dirname "$0")/.."
N1=${N1:-100}
N2=${N2:-400}
MARKER='<!-- written by scripts/bench-push.sh -->'
command -v valgrind >/dev/null || { echo "bench-push: valgrind not installed" >&2; exit 1; }
cargo build -q -p mfa-gate-e2e --example request_cost --profile bench
cost_bin=target/release/examples/request_cost
# shellcheck source=lib/callgrind.sh
. scripts/lib/callgrind.sh
noop=$(per_request noop_push)
local_count=$(per_request push_local)
service=$(per_request push_service)
hit=$(per_request cache_hit)
hit_push=$(per_request cache_hit_push)
noop_get=$(per_request noop)
started=$(date -u '+%Y-%m-%d %H:%M UTC')
section=$(python3 - "$noop" "$local_count" "$service" "$hit" "$noop_get" "$hit_push" "$started" <<'PY'
import sys
noop, local, service, hit, noop_get, hit_push = (int(x) for x in sys.argv[1:7])
started = sys.argv[7]
print(f"""## Push prompts

Written by `make bench-push` (`scripts/bench-push.sh`) on {started}: instructions per request
in the project's host (callgrind; the difference of {400 - 100} requests, start-up cancelled
out). Every prompt comes from another user and address, so each one reads and writes its
own shared-data shards (the per-user and per-client windows and the prompt history).

| case | instructions per request | over the no-op filter given the same request |
|---|---|---|
| no-op filter, the prompt (POST with a form body) | {noop:,} | |
| mfa-gate, prompt counted in shared data (`local`) | {local:,} | {local - noop:,} |
| mfa-gate, prompt counted by the rate-limit service (`service`) | {service:,} | {service - noop:,} |
| for scale: mfa-gate cache hit on a gated GET | {hit:,} | {hit - noop_get:,} |
| the same cache hit with `push_prompts` configured (the fatigue mark looked up) | {hit_push:,} | {hit_push - noop_get:,} |

A prompt counted locally costs {(local - noop) / max(hit - noop_get, 1):.1f}× a gated cache hit: the body
read and parsed, the user and client digested, the sliding windows (two shards read and
written by compare-and-swap), the prompt history, the record, and the provider's answer
read back and settled (the history again). Through the service the filter also encodes
`ShouldRateLimit`, makes the gRPC callout, decodes the answer, and still notes the admitted
prompt in its local windows (so a fallback to local counting knows it); the
service's own time (limitador's limits, one Redis script per prompt) and the network come on
top in a deployment, measured by `tests/envoy/tests/push.rs` only for correctness.

Guarding a push endpoint also costs every gated request {hit_push - hit:,} instructions: the
session's push user is looked up in the fatigue marks (its shard read from shared data, decoded
again only when its version changed).
""")
PY
)
python3 scripts/lib/bench_section.py "$MARKER" "$section"
echo "bench-push: BENCHMARKS.md updated" >&2
