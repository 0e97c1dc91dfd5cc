#!/usr/bin/env bash
# Runs every benchmark and writes BENCHMARKS.md. Rerun it any time: `make bench`.
# Figures are ratios measured side by side in one run (filter vs no-op filter, wasm vs
# native), because absolute numbers on shared machines are noisy.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo bench -p mfa-gate-e2e --bench filter
cargo bench -p mfa-gate-host --bench abi_floor -- --warm-up-time 1 --measurement-time 3

serve_md=target/bench-serve.md
if [ -x scripts/bench-serve.sh ]; then
  scripts/bench-serve.sh > "$serve_md" || echo "(load test failed: see output above)" > "$serve_md"
else
  echo "(scripts/bench-serve.sh not present)" > "$serve_md"
fi

cost_md=target/request-cost.md
if command -v valgrind >/dev/null 2>&1; then
  scripts/request-cost.sh > "$cost_md"
else
  echo "(valgrind not installed: apt-get install valgrind)" > "$cost_md"
fi

python3 scripts/bench_report.py "$serve_md" "$cost_md" > BENCHMARKS.md
echo "wrote BENCHMARKS.md"
