#!/usr/bin/env python3
"""`make soak`: mfa-gate in real Envoy under a long mixed load, every answer checked.

SOAK_REQUESTS (default 1,000,000) requests go through one Envoy (`--concurrency 2`, the
release module) from wrk (SOAK_CONNECTIONS threads, one connection each), over SOAK_TOKENS
(default 100,000) distinct HS256 tokens, half phishing resistant (Okta amr pwd+pop), half push
(pwd+okta_verify), to three routes in turn: /admin (requires phishing resistant, deny: 403),
/api (requires push) and /public (no requirement). One subject in 100 is revoked during the
run: SOAK_BATCHES batches of Security Event Tokens (EdDSA, signed here) pushed to the filter's
push endpoint (RFC 8935) while the load runs, each batch acknowledged (202) before the wrk
script (scripts/wrk/soak.lua) is told. Every response is checked against what its request had
to get: a revoked subject acknowledged before the request was sent must get 401, one not yet
acknowledged its ordinary answer or 401. Envoy's RSS is sampled every second; the run fails on
any mismatch, wrk socket error, or wasm VM failure (Envoy's wasm stats and log). Its figures
go into BENCHMARKS.md, its own section (scripts/lib/bench_section.py).

    soak.py --envoy ENVOY --cli target/debug/mfa-gate
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime, timezone

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

import bench_envoy as bench
from bench_envoy import b64url, claims, hs256_sign, run_cli

ROOT = bench.ROOT
REQUESTS = int(os.environ.get("SOAK_REQUESTS", "1000000"))
TOKENS = int(os.environ.get("SOAK_TOKENS", "100000"))
CONNECTIONS = int(os.environ.get("SOAK_CONNECTIONS", "8"))
BATCHES = int(os.environ.get("SOAK_BATCHES", "10"))
REVOKE_EVERY = 100  # one subject in REVOKE_EVERY is revoked
WARMUP_SHARE = 0.2  # RSS samples before this share of the requests are warm-up
TRANSMITTER = "https://soak-transmitter.mfa-gate.test"
SET_AUDIENCE = "mfa-gate-soak"
PUSH_PATH = "/.mfa-gate/ssf/push"
PUSH_BEARER = "soak-push-credential"
SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
MARKER = "<!-- written by scripts/soak.py -->"
AMR = {"phr": ["pwd", "pop"], "push": ["pwd", "okta_verify"]}


def log(message):
    print(f"soak: {message}", file=sys.stderr, flush=True)


def gate_config(secret, jwk):
    """HS256 tokens of the bench issuer; three routes; the soak transmitter pushing SETs."""
    return {
        "issuers": [{"issuer": bench.ISSUER, "audiences": [bench.AUDIENCE],
                     "algorithms": ["HS256"], "hmac_secret_base64": secret, "profile": "okta"}],
        "routes": [
            {"name": "public", "match": {"path_prefix": "/public"}},
            {"name": "admin", "match": {"path_prefix": "/admin"},
             "require": {"level": "phishing_resistant"}, "on_insufficient": "deny"},
            {"name": "api", "match": {"path_prefix": "/api"}, "require": {"level": "push"}},
        ],
        "revocation": {
            "max_token_lifetime_secs": 5 * 3600,
            "transmitters": [{"name": "soak", "issuer": TRANSMITTER, "audience": SET_AUDIENCE,
                              "algorithms": ["EdDSA"], "jwks": {"keys": [jwk]},
                              "push": {"path": PUSH_PATH, "bearer_env": "SOAK_PUSH_BEARER"}}],
        },
    }


def soak_filter(secret, jwk):
    """The mfa-gate wasm filter with the push credential in its VM's environment, and
    allow_on_headers_stop_iteration (the push endpoint reads the body while the headers wait,
    as envoy/envoy.yaml configures it)."""
    spec = bench.wasm_filter("mfa_gate.wasm", gate_config(secret, jwk))
    spec["typed_config"]["config"]["allow_on_headers_stop_iteration"] = True
    spec["typed_config"]["config"]["vm_config"]["environment_variables"] = {
        "key_values": {"SOAK_PUSH_BEARER": PUSH_BEARER}}
    return spec


def write_tokens(path, secret, now):
    """The tokens file soak.lua reads: "<token> <kind> <rank>" per line; the subjects
    revoked, in rank order."""
    revoked = []
    with open(path, "w") as f:
        claim_sets = (dict(claims(f"u{i}", now), amr=AMR[kind_of(i)]) for i in range(TOKENS))
        for i, token in enumerate(hs256_sign(secret, claim_sets)):
            rank = i // REVOKE_EVERY if i % REVOKE_EVERY == 0 else -1
            if rank >= 0:
                revoked.append(f"u{i}")
            f.write(f"{token} {kind_of(i)} {rank}\n")
    return revoked


def kind_of(i):
    return "phr" if i % 2 == 0 else "push"


class Transmitter:
    """Signs session-revoked SETs (EdDSA) for subjects of the bench issuer."""

    def __init__(self):
        self.key = Ed25519PrivateKey.generate()
        public = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.jwk = {"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
                    "kid": "soak", "x": b64url(public)}
        self.header = b64url(b'{"alg":"EdDSA","typ":"secevent+jwt","kid":"soak"}')

    def set_for(self, subject):
        now = int(time.time())
        body = {"iss": TRANSMITTER, "aud": SET_AUDIENCE, "iat": now, "jti": f"soak-{subject}",
                "sub_id": {"format": "iss_sub", "iss": bench.ISSUER, "sub": subject},
                "events": {SESSION_REVOKED: {"event_timestamp": now}}}
        signing_input = f"{self.header}.{b64url(json.dumps(body).encode())}"
        return f"{signing_input}.{b64url(self.key.sign(signing_input.encode()))}"


def push(base_url, set_token):
    """POSTs one SET to the filter's push endpoint; its status."""
    request = urllib.request.Request(
        base_url + PUSH_PATH, data=set_token.encode(), method="POST",
        headers={"Authorization": f"Bearer {PUSH_BEARER}",
                 "Content-Type": "application/secevent+jwt"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


def write_ack(path, count):
    """The acknowledged count for soak.lua, replaced atomically."""
    with open(path + ".tmp", "w") as f:
        f.write(f"{count}\n")
    os.replace(path + ".tmp", path)


def wasm_failures(envoy):
    """Envoy's wasm stats that show a VM failure, and log lines that do."""
    body = bench.http_get(f"{envoy.admin}/stats?format=json&filter=^wasm\\.")[1]
    stats = {s["name"]: s["value"] for s in json.loads(body)["stats"] if "value" in s}
    failed = {n: v for n, v in stats.items() if v and (
        n.endswith(".vm_reload") or n.endswith("_failure") or n.endswith(".failed"))}
    markers = ("Wasm VM failed", "Uncaught RuntimeError", "Function: proxy_on_", "panicked at",
               "][critical][")
    with open(envoy.log_path, errors="replace") as f:
        lines = [l.strip() for l in f if any(m in l for m in markers)]
    return failed, lines, stats


def section(r):
    mib = lambda kib: f"{kib / 1024:.1f} MiB"
    return f"""## Soak

Written by `make soak` (`scripts/soak.py`, `scripts/wrk/soak.lua`) on {r['date']}: real Envoy
{r['envoy']} with `--concurrency 2` and the release module, wrk with {r['connections']}
connections (one per wrk thread, so every answer is matched to its request), mixed routes in
turn (`/admin` requiring phishing resistant, `/api` requiring push, `/public`), {r['tokens']:,}
distinct HS256 tokens (half phishing resistant, half push), one subject in {REVOKE_EVERY}
revoked during the run by {r['batches']} batches of SETs pushed to the filter's push endpoint.

| figure | value |
|---|---|
| requests answered and checked | {r['checked']:,} in {r['seconds']:.0f} s ({r['rps']:,.0f} req/s; p50 {r['p50_us']:,} µs, p99 {r['p99_us']:,} µs) |
| answers not as expected | {r['mismatches']:,} |
| answers to revoked subjects: after the acknowledgement (must be 401 / public 200) / before it (either) | {r['strict_revoked']:,} / {r['loose_revoked']:,} |
| SETs pushed / acknowledged (202) | {r['pushed']:,} / {r['acknowledged']:,} |
| wrk socket errors (connect, read, write, timeout) | {r['socket_errors']:,} |
| wasm VM failures (Envoy's wasm stats and log) | {r['vm_failures']} |
| Envoy RSS at start | {mib(r['rss_start'])} |
| Envoy RSS after warm-up ({int(WARMUP_SHARE * 100)} % of the requests), min / max | {mib(r['rss_min'])} / {mib(r['rss_max'])} ({r['rss_samples']} samples) |
| RSS drift after warm-up ((max − min) / min) | {r['drift_pct']:.1f} % |
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envoy", required=True)
    parser.add_argument("--cli", required=True, help="the mfa-gate CLI (keygen)")
    parser.add_argument("--workdir", default=os.path.join(ROOT, "target", "soak"))
    args = parser.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    started = datetime.now(timezone.utc)
    now = int(time.time())
    secret = run_cli(args.cli, "keygen", "--alg", "HS256", "--kid", "hs", "--out",
                     os.path.join(args.workdir, "hs.key.json"))
    tokens_file = os.path.join(args.workdir, "tokens.txt")
    ack_file = os.path.join(args.workdir, "acknowledged")
    write_ack(ack_file, 0)
    revoked = write_tokens(tokens_file, secret, now)
    log(f"{TOKENS:,} tokens written, {len(revoked):,} subjects to revoke")
    transmitter = Transmitter()
    envoy = bench.Envoy(args.envoy, "soak", bench.bootstrap([soak_filter(secret, transmitter.jwk)]),
                        args.workdir, concurrency=2)
    samples, pushed, acknowledged = [], [0], [0]
    stop = threading.Event()
    try:
        envoy.wait_ready()
        base = envoy.url[: -len(bench.PATH)]
        for path, want in [("/public/page", 200), ("/api/profile", 401)]:
            status, _ = bench.http_get(base + path)
            if status != want:
                raise RuntimeError(f"{path} without a token: {status}, expected {want}")
        rss_start = envoy.rss_kib()

        def sample_rss():
            while not stop.wait(1.0):
                samples.append((envoy.completed_requests(), envoy.rss_kib()))

        def revoke():
            per_batch = (len(revoked) + BATCHES - 1) // BATCHES
            for b in range(BATCHES):
                # Batch b goes out once (b + 1) / (BATCHES + 2) of the requests are answered.
                threshold = REQUESTS * (b + 1) // (BATCHES + 2)
                while envoy.completed_requests() < threshold:
                    if stop.wait(0.2):
                        return
                batch = revoked[b * per_batch:(b + 1) * per_batch]
                for subject in batch:
                    pushed[0] += 1
                    status = push(base, transmitter.set_for(subject))
                    if status != 202:
                        log(f"push of the SET for {subject}: {status}, expected 202")
                        return
                    acknowledged[0] += 1
                write_ack(ack_file, acknowledged[0])
                log(f"batch {b + 1}/{BATCHES}: {acknowledged[0]:,} subjects revoked")

        workers = [threading.Thread(target=sample_rss, daemon=True),
                   threading.Thread(target=revoke, daemon=True)]
        for w in workers:
            w.start()
        # Every wrk thread stops sending after its share; wrk itself waits for its -d or a
        # SIGINT, sent once Envoy has answered them all.
        target = envoy.completed_requests() + REQUESTS
        wrk = subprocess.Popen(
            ["wrk", f"-t{CONNECTIONS}", f"-c{CONNECTIONS}", "-d3600s", "--timeout", "10s",
             "-s", os.path.join(bench.WRK_DIR, "soak.lua"), base + "/"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=bench._die_with_parent,
            env={**os.environ, "WRK_TOKENS": tokens_file, "WRK_ACK": ack_file,
                 "WRK_REQUESTS": str(REQUESTS), "WRK_THREADS": str(CONNECTIONS)})
        try:
            while wrk.poll() is None and envoy.completed_requests() < target + pushed[0]:
                time.sleep(0.2)
            time.sleep(0.5)
            if wrk.poll() is None:
                wrk.send_signal(signal.SIGINT)
            stdout, stderr = wrk.communicate(timeout=60)
        finally:
            if wrk.poll() is None:
                wrk.kill()
                wrk.wait()
        stop.set()
        for w in workers:
            w.join(timeout=15)
        lines = [l for l in stdout.splitlines() if l.startswith("WRK_JSON ")]
        if not lines:
            raise RuntimeError(f"wrk failed ({wrk.returncode}): {stderr}\n{stdout}")
        result = json.loads(lines[-1][len("WRK_JSON "):])
        failed_stats, failed_lines, _ = wasm_failures(envoy)
    finally:
        stop.set()
        envoy.stop()
    warm = [rss for done, rss in samples if done >= REQUESTS * WARMUP_SHARE]
    if not warm:
        raise RuntimeError("no RSS sample after warm-up")
    seconds = result["duration_us"] / 1e6
    report = {
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "envoy": (bench.command_output([args.envoy, "--version"]).split("version:")[-1]
                  .split("/")[1:2] or ["?"])[0],
        "connections": CONNECTIONS, "tokens": TOKENS, "batches": BATCHES,
        "checked": result["checked"], "seconds": seconds, "rps": result["checked"] / seconds,
        "p50_us": result["p50_us"], "p99_us": result["p99_us"],
        "mismatches": result["mismatches"], "examples": result["examples"],
        "strict_revoked": result["strict_revoked"], "loose_revoked": result["loose_revoked"],
        "pushed": pushed[0], "acknowledged": acknowledged[0],
        "socket_errors": sum(result["errors"].values()),
        "vm_failures": "none" if not failed_stats and not failed_lines else
        f"{failed_stats} {failed_lines[:3]}",
        "rss_start": rss_start, "rss_min": min(warm), "rss_max": max(warm),
        "rss_samples": len(warm), "drift_pct": (max(warm) - min(warm)) / min(warm) * 100,
    }
    with open(os.path.join(args.workdir, "soak.json"), "w") as f:
        json.dump(report, f, indent=1)
    log(json.dumps(report))
    problems = []
    if report["checked"] < REQUESTS:
        problems.append(f"only {report['checked']:,} of {REQUESTS:,} answers checked")
    if report["mismatches"]:
        problems.append(f"{report['mismatches']:,} answers not as expected: {report['examples']}")
    if report["acknowledged"] != len(revoked):
        problems.append(f"{report['acknowledged']:,} of {len(revoked):,} SETs acknowledged")
    if report["socket_errors"]:
        problems.append(f"wrk socket errors {result['errors']}")
    if report["vm_failures"] != "none":
        problems.append(f"wasm VM failure: {report['vm_failures']}")
    if problems:
        raise RuntimeError("; ".join(problems))
    if REQUESTS >= 1_000_000:
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "lib", "bench_section.py"),
                        MARKER, section(report)], check=True, cwd=ROOT)
        log("BENCHMARKS.md updated")
    else:
        log(f"a trial ({REQUESTS:,} requests): BENCHMARKS.md left as it is")


if __name__ == "__main__":
    bench.run_main(main, "Envoy stopped")
