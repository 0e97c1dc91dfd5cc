#!/usr/bin/env python3
"""Turns criterion's results (target/criterion) into BENCHMARKS.md on stdout."""
import json
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
CRIT = os.path.join(ROOT, "target", "criterion")
WASM = os.path.join(ROOT, "target", "wasm32-wasip1", "release", "mfa_gate.wasm")


def estimate(group, bench):
    """Median ns per iteration, or None."""
    path = os.path.join(CRIT, group, bench.replace("/", "_"), "new", "estimates.json")
    if not os.path.exists(path):
        path = os.path.join(CRIT, group, *bench.split("/"), "new", "estimates.json")
    try:
        with open(path) as f:
            return json.load(f)["median"]["point_estimate"]
    except (OSError, KeyError, ValueError):
        return None


def fmt_ns(ns):
    if ns is None:
        return "n/a"
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.0f} ns"


def ratio(a, b):
    return "n/a" if a is None or b is None or b == 0 else f"{a / b:.2f}×"


def module_sizes():
    rows = []
    if os.path.exists(WASM):
        rows.append(("release build (`cargo build --release`)", os.path.getsize(WASM)))
        opt = os.path.join(ROOT, "dist", "mfa_gate.wasm")
        if os.path.exists(opt):
            rows.append(("after `wasm-opt -Oz` (`make dist`)", os.path.getsize(opt)))
    return rows


def main():
    serve_md = sys.argv[1] if len(sys.argv) > 1 else None
    cost_md = sys.argv[2] if len(sys.argv) > 2 else None
    out = []
    cpu = ""
    try:
        cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"],
                             capture_output=True, text=True).stdout.strip()
    except OSError:
        pass
    out.append("# Benchmarks\n")
    out.append(f"Written by `scripts/bench.sh` (`make bench`) on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, "
               f"{platform.machine()} {cpu}, {os.cpu_count()} cores. Medians from criterion; "
               "every ratio compares figures measured in the same run.\n")

    noop = estimate("per_request", "noop_filter")
    noop_meta = estimate("per_request", "noop_filter_jwt_authn_request")
    out.append("## Per-request cost through the proxy-wasm ABI\n")
    out.append("Each request goes through our host (one worker VM, upstream answered in-process) "
               "twice in the same run: through mfa-gate and through the no-op fixture filter, which "
               "is the floor. The bearer cases send a GET with a bearer token; the jwt_authn case "
               "sends a GET whose dynamic metadata carries jwt_authn's verified payload, and is "
               "compared with the no-op filter given that same request.\n")
    out.append("| case | per request | vs no-op filter, same request | target |")
    out.append("|---|---|---|---|")
    for bench, label, target, floor in [
        ("noop_filter", "no-op fixture filter (floor), bearer request", "< 5 µs", noop),
        ("noop_filter_jwt_authn_request", "no-op fixture filter (floor), jwt_authn request", "", noop_meta),
        ("mfa_gate_public_route", "mfa-gate, public route (no token work)", "", noop),
        ("mfa_gate_cache_hit", "mfa-gate, privileged route, verified-token cache hit", "≤ 2×", noop),
        ("mfa_gate_jwt_authn_metadata", "mfa-gate, claims from Envoy jwt_authn metadata", "≤ 1.3×", noop_meta),
    ]:
        ns = estimate("per_request", bench)
        out.append(f"| {label} | {fmt_ns(ns)} | {ratio(ns, floor)} | {target} |")
    out.append("")

    out.append("### Instructions per request (callgrind, deterministic)\n")
    out.append("Wall-clock figures on a shared 2-core machine are noisy; instruction counts are not. "
               "`scripts/request-cost.sh` runs each case N1 and N2 times under valgrind and divides the "
               "difference, so start-up (compilation, configuration) cancels out. Host work (header "
               "copies, log capture) is included, as it would be in Envoy.\n")
    if cost_md and os.path.exists(cost_md):
        with open(cost_md) as f:
            out.append(f.read().strip())
    else:
        out.append("(not run)")
    out.append("")

    out.append("## Uncached verification, wasm vs native\n")
    out.append("A full request with the cache disabled, so every request verifies the signature: "
               "the filter in wasm (wasmtime, Cranelift) beside the same engine compiled natively.\n")
    out.append("| algorithm | wasm | native | wasm / native |")
    out.append("|---|---|---|---|")
    for alg in ["RS256", "PS256", "ES256", "ES384", "EdDSA"]:
        w = estimate("uncached_verification", f"wasm/{alg}")
        n = estimate("uncached_verification", f"native/{alg}")
        out.append(f"| {alg} | {fmt_ns(w)} | {fmt_ns(n)} | {ratio(w, n)} |")
    out.append("")

    out.append("## Module size\n")
    out.append("Release profile (Cargo.toml): lto, codegen-units 1, panic abort, strip; opt-level 3 "
               "for mfa-gate and the proxy-wasm SDK, which run on every request, and \"s\" for every "
               "other dependency (signature crypto, JSON), which runs on a cache miss or at "
               "configuration.\n")
    out.append("| artifact | bytes | target |")
    out.append("|---|---|---|")
    for label, size in module_sizes():
        out.append(f"| {label} | {size:,} | ≤ 600 KB |")
    out.append("")

    out.append("## Proxy throughput (`mfa-gate-host serve`, wrk)\n")
    if serve_md and os.path.exists(serve_md):
        with open(serve_md) as f:
            out.append(f.read().strip())
    else:
        out.append("(not run)")
    out.append("")
    print("\n".join(out))


if __name__ == "__main__":
    main()
