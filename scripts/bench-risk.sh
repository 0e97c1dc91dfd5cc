#!/usr/bin/env bash
# `make bench-risk`: what the request signals stage costs on a cache hit, written into
# BENCHMARKS.md (its own section, after its marker; `make bench` keeps it): instructions per
# request in the project's host (callgrind: deterministic), the no-op filter and a plain
# cache hit beside a cache hit on a rule judged on its risk score with every signal on
# (binding check, posture from a certificate rule then a header, location from geoip headers
# against the subject's sightings in shared data, the score and its record). The signal
# requests carry the geo and posture headers; the no-op filter is given the same request.
# Needs valgrind (apt-get install valgrind).
set -euo pipefail
cd "$(dirname "$0")/.."
N1=${N1:-100}
N2=${N2:-400}
MARKER='<!-- written by scripts/bench-risk.sh -->'
command -v valgrind >/dev/null || { echo "bench-risk: valgrind not installed" >&2; exit 1; }
cargo build -q -p mfa-gate-e2e --example request_cost --profile bench
cost_bin=target/release/examples/request_cost
# shellcheck source=lib/callgrind.sh
. scripts/lib/callgrind.sh
noop=$(per_request noop)
noop_signals=$(per_request noop_signals)
hit=$(per_request cache_hit)
signals=$(per_request cache_hit_signals)
started=$(date -u '+%Y-%m-%d %H:%M UTC')
section=$(python3 - "$noop" "$noop_signals" "$hit" "$signals" "$started" <<'PY'
import sys
noop, noop_signals, hit, signals = (int(x) for x in sys.argv[1:5])
started = sys.argv[5]
own = hit - noop
print(f"""## Risk signals

Written by `make bench-risk` (`scripts/bench-risk.sh`) on {started}: instructions per request
in the project's host (callgrind; the difference of two runs, start-up cancelled out).

| case | instructions per request | over the no-op filter given the same request |
|---|---|---|
| no-op filter, plain request | {noop:,} | |
| no-op filter, request with geo and posture headers | {noop_signals:,} | |
| mfa-gate cache hit (level rule only) | {hit:,} | {hit - noop:,} |
| mfa-gate cache hit, risk rule, every signal on | {signals:,} | {signals - noop_signals:,} |

The signal stage adds {signals - noop_signals - own:,} instructions per request over a plain
cache hit ({(signals - noop_signals - own) / own * 100:.0f} % of the filter's own cost): the
binding check, two posture sources (the certificate rule's properties, then the header),
reading the geo headers and placing them in the built-in table, the subject's sighting shard
(one shared-data read; decoded again only when its version changed; written only when the
place changes or every `refresh_secs`), the score, and the record's `risk` member.
A DPoP-bound token also verifies its proof's signature on every request (ES256 or EdDSA,
as in the verification figures above); that is not in these numbers.
""")
PY
)
python3 scripts/lib/bench_section.py "$MARKER" "$section"
echo "bench-risk: BENCHMARKS.md updated" >&2
