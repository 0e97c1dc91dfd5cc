#!/usr/bin/env python3
"""Renders BENCHMARKS.md (on stdout) from scripts/bench_envoy.py's JSON and the instruction
counts of scripts/request-cost.sh.

    bench_report.py ENVOY_JSON [REQUEST_COST_MD]

Every ratio and per-request cost pairs figures of the same round of the same run: the
variants were measured interleaved, so a round's drift touches both sides alike.
"""
import json
import os
import statistics
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
WASM = os.path.join(ROOT, "target", "wasm32-wasip1", "release", "mfa_gate.wasm")
DIST = os.path.join(ROOT, "dist", "mfa_gate.wasm")


def median_range(values, fmt):
    """'median (min–max)' of the values, each formatted with fmt."""
    if len(values) == 1:
        return fmt(values[0])
    return f"{fmt(statistics.median(values))} ({fmt(min(values))}–{fmt(max(values))})"


def krps(value):
    return f"{value / 1000:.1f}k" if value >= 10_000 else f"{value / 1000:.2f}k"


def micros(value):
    return f"{value / 1000:.2f} ms" if value >= 1000 else f"{value:.0f} µs"


def cost(value):
    return f"{value:.1f}" if abs(value) < 100 else f"{value:.0f}"


class Run:
    """The variants of one bench_envoy.py run, by key."""

    def __init__(self, data):
        self.meta = data["meta"]
        self.rss = data["rss"]
        self.workers = data.get("workers")
        self.start = data.get("start")
        self.variants = data["variants"]
        self.by_key = {v["key"]: v for v in self.variants}

    def rps(self, key):
        return [r["rps"] for r in self.by_key[key]["rounds"]]

    def added_us(self, key, baseline):
        """Per round: the µs a request of `key` costs more than one of `baseline` (1/rps)."""
        return [1e6 / a - 1e6 / b for a, b in zip(self.rps(key), self.rps(baseline))]

    def ratio(self, numerators, denominators):
        """Per round: numerator / denominator."""
        return [a / b for a, b in zip(numerators, denominators)]


def envoy_section(run):
    meta = run.meta
    out = ["## Real Envoy: requests/s, latency, cost per request\n"]
    out.append(
        f"Envoy {meta['envoy']} (V8), one worker (`--concurrency 1`), log level "
        f"`{meta['log_level']}`, a `direct_response` route (no upstream); {meta['wrk']}, one "
        f"thread, {meta['connections']} connections, over loopback. Each variant runs in its "
        f"own Envoy, all started first; {meta['rounds']} interleaved rounds of "
        f"{meta['duration_s']} s per variant (after {meta['warmup_s']} s of warm-up), each "
        "round starting one variant later. Figures are medians of the rounds, (min–max) "
        "across them. *Adds per request* is the difference of 1/(requests/s) from the "
        "baseline named, paired round by round: the time one request costs the single "
        "worker on top of the baseline. Every answer was a 200 (wrk counted no error).\n")
    out.append("| variant | requests/s | p50 | p99 | adds per request | over |")
    out.append("|---|---|---|---|---|---|")
    for v in run.variants:
        rounds = v["rounds"]
        added, over = "", ""
        if v["baseline"]:
            added = median_range(run.added_us(v["key"], v["baseline"]), cost) + " µs"
            over = run.by_key[v["baseline"]]["label"]
        out.append(f"| {v['label']} | {median_range(run.rps(v['key']), krps)} | "
                   f"{median_range([r['p50_us'] for r in rounds], micros)} | "
                   f"{median_range([r['p99_us'] for r in rounds], micros)} | {added} | {over} |")
    out.append("")
    out.append("mfa-gate's counters in each Envoy over the whole run (cache hits and misses "
               "show which path each variant measured):\n")
    out.append("| variant | allow | token_cache.hit | token_cache.miss | jwt_authn_payload |")
    out.append("|---|---|---|---|---|")
    for v in run.variants:
        c = v["counters"]
        if not c:
            continue
        get = lambda name: f"{c.get('wasmcustom.mfa_gate.' + name, 0):,}"
        out.append(f"| {v['label']} | {get('decision.allow')} | {get('token_cache.hit')} | "
                   f"{get('token_cache.miss')} | {get('jwt_authn_payload')} |")
    out.append("")
    return out


def targets_section(run):
    """The project's performance targets that this run measures, with the ratios found."""
    out = ["## Targets\n"]
    out.append("The cost targets for real Envoy, each measured in this run as a ratio of "
               "figures from the same rounds (median, min–max); the worker and start-time rows come "
               "from their own sections below.\n")
    out.append("| target | measured | goal | met |")
    out.append("|---|---|---|---|")
    rows = []
    hit = run.ratio(run.rps("gate_hit"), run.rps("noop"))
    rows.append(("cache hit, requests/s ÷ no-op filter's", hit, lambda r: r >= 0.9, "≥ 0.90×"))
    native = run.added_us("jwt", "none")
    for key, alg, limit in [("gate_rs256", "RS256", 6), ("gate_es256", "ES256", 8),
                            ("gate_eddsa", "EdDSA", 4)]:
        rows.append((f"uncached {alg}, cost over no-op ÷ jwt_authn's (native RS256) over no "
                     "filter", run.ratio(run.added_us(key, "noop"), native),
                     lambda r, limit=limit: r <= limit, f"≤ {limit}×"))
    rows.append(("jwt_authn path: jwt_authn + mfa-gate over jwt_authn + no-op ÷ cache hit over "
                 "no-op", run.ratio(run.added_us("jwt_gate", "jwt_noop"),
                                    run.added_us("gate_hit", "noop")),
                 lambda r: r <= 1.0, "≤ 1.00×"))
    for label, values, met, goal in rows:
        median = statistics.median(values)
        out.append(f"| {label} | {median_range(values, lambda r: f'{r:.2f}×')} | {goal} | "
                   f"{'yes' if met(median) else 'no'} |")
    w = run.workers
    if w:
        verifications = w["counters"].get("wasmcustom.mfa_gate.token_cache.miss", 0)
        per_token = verifications / w["tokens"]
        out.append(f"| verifications per distinct token, `--concurrency {w['workers']}` "
                   f"({w['tokens']:,} tokens, each sent {w['repeats'] + 1} times) | "
                   f"{per_token:.2f} | 1.00 | {'yes' if per_token <= 1.0 else 'no'} |")
    drift = rss_drift(run.rss)
    if drift is not None:
        requests = sum(p["requests"] for p in run.rss["passes"])
        out.append(f"| RSS from pass 1 (warm-up) to the last, {requests:,} requests over "
                   f"{run.rss['tokens']:,} distinct tokens | "
                   f"{drift:+.1f} % | within ±5 % | {'yes' if abs(drift) <= 5 else 'no'} |")
    out.extend(jwt_authn_breakdown(run))
    out.append("")
    return out


def jwt_authn_breakdown(run):
    """Where the jwt_authn path's cost goes: behind the same jwt_authn, mfa-gate reading the
    payload from dynamic metadata against mfa-gate verifying the token by itself (cache hit)."""
    if "jwt_gate_own" not in run.by_key:
        return []
    meta = run.added_us("jwt_gate", "jwt_noop")
    own = run.added_us("jwt_gate_own", "jwt_noop")
    read = [m - o for m, o in zip(meta, own)]
    return ["", f"Where the jwt_authn path's cost goes, behind the same jwt_authn: mfa-gate "
            f"reading the payload from dynamic metadata adds {median_range(meta, cost)} µs a "
            f"request, mfa-gate verifying the token by itself (cache hit) adds "
            f"{median_range(own, cost)} µs; the difference, {median_range(read, cost)} µs, is "
            "the metadata read (Envoy's `get_property(\"metadata\")`: a CEL wrapper and the "
            "serialization of the whole dynamic metadata) and its decoding in the filter, "
            "against a token cache lookup."]


def rss_drift(rss):
    """RSS change in % from the first pass to the last, or None with a single pass."""
    samples = rss["samples"]
    if len(samples) < 3:
        return None
    return 100.0 * (samples[-1]["rss_kib"] - samples[1]["rss_kib"]) / samples[1]["rss_kib"]


def rss_section(run):
    rss = run.rss
    out = ["## Memory: Envoy's RSS over distinct tokens\n"]
    out.append(
        f"One Envoy (one worker) running mfa-gate with its default cache (10,000 verified "
        f"sessions per worker VM) is sent {rss['tokens']:,} distinct HS256 tokens (distinct "
        f"subjects, signed with a key from `mfa-gate keygen`), each once per pass, by wrk "
        f"(`scripts/wrk/rotate.lua`); {len(rss['passes'])} passes. Every token misses the "
        "worker VM's own cache, which stays at its bound; most are verified in full, the rest "
        "are found in the shared sessions (bounded by the same 10,000). RSS (`VmRSS` of the Envoy "
        "process) after one request, then after each pass:\n")
    out.append("| after | RSS | requests/s in the pass |")
    out.append("|---|---|---|")
    rates = [""] + [krps(p["rps"]) for p in rss["passes"]]
    for sample, rate in zip(rss["samples"], rates):
        out.append(f"| {sample['after']} | {sample['rss_kib'] / 1024:.1f} MiB | {rate} |")
    c = rss["counters"]
    out.append("")
    out.append(f"Counters at the end: {c.get('wasmcustom.mfa_gate.decision.allow', 0):,} allowed, "
               f"{c.get('wasmcustom.mfa_gate.token_cache.miss', 0):,} cache misses, "
               f"{c.get('wasmcustom.mfa_gate.token_cache.shared_hit', 0):,} found in the shared "
               f"sessions, {c.get('wasmcustom.mfa_gate.token_cache.hit', 0):,} own-cache hits "
               "(wrk overshoots a "
               "pass by at most a few requests, which reuse the first tokens).\n")
    return out


def workers_section(run):
    w, st = run.workers, run.start
    out = ["## Workers: verifications per Envoy, and start time\n"]
    if w:
        c = w["counters"]
        sent = w["tokens"] * (w["repeats"] + 1)
        misses = c.get("wasmcustom.mfa_gate.token_cache.miss", 0)
        out.append(
            f"One Envoy with `--concurrency {w['workers']}` running mfa-gate (default cache) is "
            f"sent {w['tokens']:,} distinct HS256 tokens, each once, then each {w['repeats']} "
            f"more times in turn, over wrk's connections (which the kernel spreads over the "
            f"workers): {sent:,} requests. A full verification counts a `token_cache.miss`; a "
            "session another worker VM verified, taken from shared data, a "
            "`token_cache.shared_hit`.\n")
        out.append("| allowed | own-cache hits | shared hits | full verifications | "
                   "per distinct token |")
        out.append("|---|---|---|---|---|")
        out.append(f"| {c.get('wasmcustom.mfa_gate.decision.allow', 0):,} | "
                   f"{c.get('wasmcustom.mfa_gate.token_cache.hit', 0):,} | "
                   f"{c.get('wasmcustom.mfa_gate.token_cache.shared_hit', 0):,} | {misses:,} | "
                   f"{misses / w['tokens']:.2f} |")
        out.append("")
    if st:
        out.append(
            f"Start time: seconds from an Envoy's start (`--concurrency {st['workers']}`) to its "
            "`/ready`, polled every 10 ms, starts interleaved; what mfa-gate adds over the no-op "
            "filter is its module's compilation (V8) and every worker VM's start and "
            "configuration.\n")
        out.append("| filter | ready after (median, min–max) |")
        out.append("|---|---|")
        labels = {"none": "no filter", "noop": "no-op wasm filter", "gate": "mfa-gate"}
        for key, values in st["seconds"].items():
            out.append(f"| {labels.get(key, key)} | "
                       f"{median_range([v * 1000 for v in values], lambda x: f'{x:.0f} ms')} |")
        if st["seconds"].get("gate") and st["seconds"].get("noop"):
            added = (statistics.median(st["seconds"]["gate"])
                     - statistics.median(st["seconds"]["noop"])) * 1000
            out.append("")
            out.append(f"mfa-gate adds {added:.0f} ms to the start over the no-op filter "
                       "(difference of medians).")
        out.append("")
    return out


def instructions_section(cost_md):
    out = ["## Host: instructions per request (callgrind, deterministic)\n"]
    out.append("The deterministic companion to the wall-clock figures above: the project's own "
               "host (wasmtime) runs each case N1 and N2 times under valgrind, and "
               "`scripts/request-cost.sh` divides the difference, so start-up (compilation, "
               "configuration) cancels out. Host work (header copies, log capture) is "
               "included. These counts do not depend on the machine's load: a change in the "
               "filter's hot path shows here first.\n")
    if cost_md and os.path.exists(cost_md):
        with open(cost_md) as f:
            out.append(f.read().strip())
    else:
        out.append("(not run: `scripts/request-cost.sh` needs valgrind)")
    out.append("")
    return out


def module_section():
    out = ["## Module size\n"]
    out.append("| artifact | bytes |")
    out.append("|---|---|")
    for label, path in [("release build (`make wasm`, what the benchmarks load)", WASM),
                        ("after `wasm-opt -Oz` (`make dist`)", DIST)]:
        if os.path.exists(path):
            out.append(f"| {label} | {os.path.getsize(path):,} |")
    out.append("")
    return out


def load_text(meta):
    rounds = ", ".join(f"{l[0]:.1f}" for l in meta["load_rounds"])
    return (f"load average (1 min) {meta['load_start'][0]:.1f} at the start, {rounds} at each "
            f"round's start, {meta['load_end'][0]:.1f} at the end")


def main():
    with open(sys.argv[1]) as f:
        run = Run(json.load(f))
    cost_md = sys.argv[2] if len(sys.argv) > 2 else None
    meta = run.meta
    out = ["# Benchmarks\n"]
    quick = " **Quick run (BENCH_QUICK=1): trial figures.**" if meta["quick"] else ""
    out.append(
        f"Written by `make bench` (`scripts/bench.sh`) on {meta['date']} (the Envoy runs took "
        f"{meta['envoy_minutes']} minutes); {meta['cpu'].strip()}, {meta['cores']} cores shared by "
        f"wrk, Envoy and whatever else ran ({load_text(meta)}). Absolute figures move with "
        "the machine's load; the ratios and per-request costs pair figures of the same "
        f"rounds.{quick}\n")
    for section in (envoy_section(run), targets_section(run), rss_section(run),
                    workers_section(run), instructions_section(cost_md), module_section()):
        out.extend(section)
    out.append(kept_sections())
    print("\n".join(out).rstrip())


# Sections other scripts write (scripts/bench-revocation.sh, scripts/bench-risk.sh), each
# after its own marker: kept from the current file, from the first marker on.
KEPT_MARKER = "<!-- written by scripts/"


def kept_sections():
    try:
        with open("BENCHMARKS.md") as f:
            text = f.read()
    except OSError:
        return ""
    at = text.find(KEPT_MARKER)
    return "" if at < 0 else "\n" + text[at:]


if __name__ == "__main__":
    main()
