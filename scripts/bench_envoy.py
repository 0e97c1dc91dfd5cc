#!/usr/bin/env python3
"""Throughput, latency and memory of mfa-gate in real Envoy; writes the raw figures as JSON.

Every variant runs in its own Envoy (one worker: --concurrency 1) with a direct_response route,
so no upstream is measured; wrk drives it over loopback. All the variants' Envoys start first
and stay up; the measurements are interleaved, round by round, each round starting one variant
later, so drift on a shared machine lands on every variant alike. A separate Envoy then runs
mfa-gate over many distinct tokens, and its RSS is read before and after.

Keys and tokens are minted here with the project's CLI (`mfa-gate keygen` / `mfa-gate token`);
the RSS run's many tokens are HS256, signed here with the CLI's key (one CLI call per token would
take minutes). Every Envoy this script starts is stopped on exit, also on error or Ctrl-C, and
dies with the script (PR_SET_PDEATHSIG) if the script itself is killed.

    bench_envoy.py --envoy ENVOY --cli target/debug/mfa-gate --out target/bench/envoy.json

Knobs (environment): BENCH_QUICK=1 (a short trial run), BENCH_ROUNDS, BENCH_DURATION (seconds
per measurement), BENCH_WARMUP (seconds before each), BENCH_CONNECTIONS, BENCH_RSS_TOKENS,
BENCH_RSS_PASSES, BENCH_WORKERS, BENCH_WORKER_TOKENS, BENCH_WORKER_REPEATS, BENCH_START_ROUNDS,
BENCH_LOG_LEVEL. scripts/bench_report.py renders the JSON as markdown.
"""
import argparse
import base64
import ctypes
import hashlib
import hmac
import json
import os
import platform
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
WASM_DIR = os.path.join(ROOT, "target", "wasm32-wasip1", "release")
WRK_DIR = os.path.join(ROOT, "scripts", "wrk")
ISSUER = "https://idp.bench.test"
AUDIENCE = "bench"
PATH = "/admin/users"
# okta profile: amr ["pwd", "pop"] is phishing resistant, which /admin requires.
ROUTES = [{"name": "admin", "match": {"path_prefix": "/admin"},
           "require": {"level": "phishing_resistant"}}]


def log(message):
    print(f"bench-envoy: {message}", file=sys.stderr, flush=True)


def knob(name, default, quick):
    """An environment knob as a float: BENCH_<name>, else the quick or the full default."""
    value = os.environ.get(f"BENCH_{name}")
    return float(value) if value else (quick if QUICK else default)


QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
ROUNDS = int(knob("ROUNDS", 5, 3))
DURATION = int(knob("DURATION", 5, 2))  # wrk takes whole seconds
WARMUP = int(knob("WARMUP", 1, 1))
CONNECTIONS = int(knob("CONNECTIONS", 16, 16))
RSS_TOKENS = int(knob("RSS_TOKENS", 100_000, 10_000))
RSS_PASSES = int(knob("RSS_PASSES", 10, 2))
WORKERS = int(knob("WORKERS", 4, 4))
WORKER_TOKENS = int(knob("WORKER_TOKENS", 2_000, 500))
WORKER_REPEATS = int(knob("WORKER_REPEATS", 10, 5))
START_ROUNDS = int(knob("START_ROUNDS", 5, 3))
LOG_LEVEL = os.environ.get("BENCH_LOG_LEVEL", "warn")


# --- Envoy processes ---------------------------------------------------------------------------

def _die_with_parent():
    """In a child (Envoy, wrk) before exec: SIGTERM when the bench script dies, however it
    dies."""
    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def http_get(url, headers=None, timeout=5.0):
    """(status, body) of a GET; HTTP error statuses are answers, not exceptions."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class Envoy:
    """One Envoy process: `concurrency` workers (one unless told), admin and listener on ports
    the kernel picks."""

    def __init__(self, envoy_bin, name, bootstrap, workdir, concurrency=1):
        self.name = name
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.config = os.path.join(self.dir, "bootstrap.json")
        self.admin_path = os.path.join(self.dir, "admin-address")
        self.log_path = os.path.join(self.dir, "envoy.log")
        with open(self.config, "w") as f:
            json.dump(bootstrap, f, indent=1)
        if os.path.exists(self.admin_path):
            os.remove(self.admin_path)
        self.log_file = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [envoy_bin, "-c", self.config, "--concurrency", str(concurrency), "--disable-hot-restart",
             "--log-level", LOG_LEVEL, "--admin-address-path", self.admin_path],
            stdout=self.log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent)
        self.started = time.monotonic()
        self.ready_after_s = None
        self.admin = None
        self.url = None

    def log_tail(self, lines=30):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def wait_ready(self, timeout=90.0, poll_s=0.1):
        """Waits for /ready, then reads the listener's port from /listeners; notes how long
        after its start the Envoy became ready (to within `poll_s`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Envoy {self.name} exited with {self.process.returncode}:\n"
                                   f"{self.log_tail()}")
            try:
                if self.admin is None and os.path.getsize(self.admin_path) > 0:
                    with open(self.admin_path) as f:
                        self.admin = "http://" + f.read().strip()
                if self.admin and http_get(self.admin + "/ready", timeout=2)[0] == 200:
                    self.ready_after_s = time.monotonic() - self.started
                    listeners = json.loads(http_get(self.admin + "/listeners?format=json")[1])
                    address = listeners["listener_statuses"][0]["local_address"]["socket_address"]
                    self.url = f"http://127.0.0.1:{address['port_value']}{PATH}"
                    return
            except (OSError, ValueError, KeyError, IndexError):
                pass
            time.sleep(poll_s)
        raise RuntimeError(f"Envoy {self.name} not ready after {timeout:.0f}s:\n{self.log_tail()}")

    def rss_kib(self):
        with open(f"/proc/{self.process.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError(f"no VmRSS for Envoy {self.name}")

    def counters(self, prefix):
        """Envoy's counters whose names start with `prefix`, by name."""
        body = http_get(f"{self.admin}/stats?format=json&filter=^{prefix}")[1]
        return {s["name"]: s["value"] for s in json.loads(body)["stats"] if "value" in s}

    def completed_requests(self):
        """Requests the bench listener has answered so far."""
        return self.counters("http.bench.downstream_rq_completed").get(
            "http.bench.downstream_rq_completed", 0)

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_file.close()


def bootstrap(http_filters):
    """A listener on 127.0.0.1 (kernel-chosen port) answering every path with a 200."""
    router = {"name": "envoy.filters.http.router", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network."
                 "http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "bench",
        "codec_type": "AUTO",
        "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
            {"match": {"prefix": "/"},
             "direct_response": {"status": 200, "body": {"inline_string": "ok\n"}}}]}]},
        "http_filters": http_filters + [router],
    }
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {"listeners": [{
            "name": "bench",
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
            "filter_chains": [{"filters": [{
                "name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]}],
        }]},
    }


def wasm_filter(module, configuration=None):
    """The wasm HTTP filter running `module` (a file in target/wasm32-wasip1/release)."""
    config = {
        "name": module,
        "failure_policy": "FAIL_CLOSED",
        "vm_config": {"runtime": "envoy.wasm.runtime.v8",
                      "code": {"local": {"filename": os.path.join(WASM_DIR, module)}}},
    }
    if configuration is not None:
        config["root_id"] = "mfa_gate"
        config["configuration"] = {"@type": "type.googleapis.com/google.protobuf.StringValue",
                                   "value": json.dumps(configuration)}
    return {"name": "envoy.filters.http.wasm", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
        "config": config}}


def jwt_authn_filter(jwks):
    """Envoy's jwt_authn: verifies every request's RS256 token, payload into dynamic metadata."""
    return {"name": "envoy.filters.http.jwt_authn", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
        "providers": {"bench": {
            "issuer": ISSUER, "audiences": [AUDIENCE],
            "local_jwks": {"inline_string": json.dumps(jwks)},
            "forward": True, "payload_in_metadata": "jwt_payload"}},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "bench"}}]}}


# --- keys and tokens ---------------------------------------------------------------------------

def claims(subject, now):
    return {"iss": ISSUER, "aud": AUDIENCE, "sub": subject, "sid": f"sid-{subject}",
            "iat": now - 10, "auth_time": now - 10, "exp": now + 4 * 3600, "amr": ["pwd", "pop"]}


def run_cli(cli, *args):
    done = subprocess.run([cli, *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{cli} {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


@dataclass
class Credentials:
    jwks: dict = field(default_factory=lambda: {"keys": []})
    tokens: dict = field(default_factory=dict)  # alg -> token
    hmac_secret: str = ""


def mint(cli, workdir, now):
    """Fresh keys (RS256, ES256, EdDSA, HS256) and one token per asymmetric algorithm."""
    creds = Credentials()
    claims_file = os.path.join(workdir, "claims.json")
    with open(claims_file, "w") as f:
        json.dump(claims("bench", now), f)
    for alg, kid in [("RS256", "rs"), ("ES256", "es"), ("EdDSA", "ed")]:
        key = os.path.join(workdir, f"{kid}.key.json")
        creds.jwks["keys"] += json.loads(run_cli(cli, "keygen", "--alg", alg, "--kid", kid,
                                                 "--out", key))["keys"]
        creds.tokens[alg] = run_cli(cli, "token", "--key", key, "--claims", claims_file)
    creds.hmac_secret = run_cli(cli, "keygen", "--alg", "HS256", "--kid", "hs", "--out",
                                os.path.join(workdir, "hs.key.json"))
    return creds


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_sign(secret_b64, claim_sets):
    """One HS256 token per claims object, signed with the CLI's HS256 key (kid "hs")."""
    secret = base64.b64decode(secret_b64)
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "hs"}).encode())
    for body_claims in claim_sets:
        body = b64url(json.dumps(body_claims, separators=(",", ":")).encode())
        signing_input = f"{header}.{body}"
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        yield f"{signing_input}.{b64url(mac)}"


def hs256_tokens(secret_b64, count, now):
    """`count` distinct HS256 tokens (subjects u0, u1, …) signed with the CLI's HS256 key."""
    return hs256_sign(secret_b64, (claims(f"u{i}", now) for i in range(count)))


def gate_config(creds, cache_entries=None):
    """mfa-gate verifying by itself: one issuer with the RS256, ES256 and EdDSA keys inline."""
    config = {"issuers": [{"issuer": ISSUER, "audiences": [AUDIENCE],
                           "algorithms": ["RS256", "ES256", "EdDSA"], "jwks": creds.jwks,
                           "profile": "okta"}],
              "routes": ROUTES}
    if cache_entries is not None:
        config["token_cache_entries"] = cache_entries
    return config


def gate_jwt_authn_config():
    """mfa-gate reading the claims jwt_authn verified."""
    return {"jwt_authn": {"payload_in_metadata": "jwt_payload"},
            "issuers": [{"issuer": ISSUER, "profile": "okta"}], "routes": ROUTES}


def gate_hmac_config(secret):
    return {"issuers": [{"issuer": ISSUER, "audiences": [AUDIENCE], "algorithms": ["HS256"],
                         "hmac_secret_base64": secret, "profile": "okta"}],
            "routes": ROUTES}


# --- variants ------------------------------------------------------------------------------------

@dataclass
class Variant:
    key: str
    label: str
    http_filters: list
    token: str = ""  # bearer token sent, or none
    baseline: str = ""  # key of the variant whose per-request cost this one adds to
    gated: bool = False  # a filter that answers 401 without a token (checked at start)
    envoy: Envoy = None
    rounds: list = field(default_factory=list)


def variants(creds):
    rs = creds.tokens["RS256"]
    noop = wasm_filter("noop_filter.wasm")
    gate = wasm_filter("mfa_gate.wasm", gate_config(creds))
    uncached = wasm_filter("mfa_gate.wasm", gate_config(creds, cache_entries=0))
    jwt = jwt_authn_filter(creds.jwks)
    gate_meta = wasm_filter("mfa_gate.wasm", gate_jwt_authn_config())
    return [
        Variant("none", "no filter", [], rs),
        Variant("noop", "no-op wasm filter", [noop], rs, "none"),
        Variant("gate_hit", "mfa-gate, cache hit (own verification, RS256)", [gate], rs, "noop",
                True),
        Variant("gate_rs256", "mfa-gate, cache disabled, RS256", [uncached], rs, "noop", True),
        Variant("gate_es256", "mfa-gate, cache disabled, ES256", [uncached],
                creds.tokens["ES256"], "noop", True),
        Variant("gate_eddsa", "mfa-gate, cache disabled, EdDSA", [uncached],
                creds.tokens["EdDSA"], "noop", True),
        Variant("jwt", "Envoy jwt_authn alone (RS256, every request)", [jwt], rs, "none", True),
        Variant("jwt_noop", "jwt_authn + no-op wasm filter", [jwt, noop], rs, "jwt", True),
        Variant("jwt_gate", "jwt_authn + mfa-gate (payload_in_metadata)", [jwt, gate_meta], rs,
                "jwt_noop", True),
        # Where the jwt_authn path's cost goes: the same filters, mfa-gate verifying by itself.
        Variant("jwt_gate_own", "jwt_authn + mfa-gate verifying by itself (cache hit)",
                [jwt, gate], rs, "jwt_noop", True),
    ]


# --- measurements --------------------------------------------------------------------------------

def run_wrk(url, duration, script="fixed.lua", env=None, stop_when=None):
    """One wrk run (one thread, CONNECTIONS connections); its figures, or an error naming
    what went wrong. `stop_when`, polled every 50 ms, ends the run early (SIGINT, as Ctrl-C
    ends wrk: it still reports)."""
    command = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{duration}s", "--timeout", "10s",
               "-s", os.path.join(WRK_DIR, script), url]
    wrk = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env={**os.environ, **(env or {})}, preexec_fn=_die_with_parent)
    try:
        if stop_when is not None:
            while wrk.poll() is None and not stop_when():
                time.sleep(0.05)
            if wrk.poll() is None:
                wrk.send_signal(signal.SIGINT)
        stdout, stderr = wrk.communicate(timeout=duration + 120)
    finally:
        if wrk.poll() is None:
            wrk.kill()
            wrk.wait()
    lines = [l for l in stdout.splitlines() if l.startswith("WRK_JSON ")]
    if wrk.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({wrk.returncode}): {stderr.strip()}\n{stdout}")
    result = json.loads(lines[-1][len("WRK_JSON "):])
    failed = {k: v for k, v in result["errors"].items() if v}
    if failed:
        raise RuntimeError(f"wrk {url}: errors {failed} in {result['requests']} requests "
                           "(status: answers other than 2xx/3xx)")
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


def check_answers(variant):
    """The variant's Envoy answers 200 to the bench request and, if gated, 401 without a token."""
    auth = {"Authorization": f"Bearer {variant.token}"}
    status, body = http_get(variant.envoy.url, auth)
    if status != 200:
        raise RuntimeError(f"{variant.label}: {status} {body[:200]!r} to the bench request\n"
                           f"{variant.envoy.log_tail()}")
    status, _ = http_get(variant.envoy.url)
    expected = 401 if variant.gated else 200
    if status != expected:
        raise RuntimeError(f"{variant.label}: {status} without a token, expected {expected}")


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def measure_variants(envoy_bin, workdir, creds, fleet):
    table = variants(creds)
    for v in table:
        v.envoy = Envoy(envoy_bin, v.key, bootstrap(v.http_filters), workdir)
        fleet.append(v.envoy)
    for v in table:
        v.envoy.wait_ready()
        check_answers(v)
        log(f"{v.key}: ready on {v.envoy.url}")
    round_load = []
    for r in range(ROUNDS):
        round_load.append(loadavg())
        order = table[r % len(table):] + table[:r % len(table)]
        for v in order:
            env = {"WRK_AUTHORIZATION": f"Bearer {v.token}"}
            if WARMUP > 0:
                run_wrk(v.envoy.url, WARMUP, env=env)
            result = run_wrk(v.envoy.url, DURATION, env=env)
            v.rounds.append(result)
            log(f"round {r + 1}/{ROUNDS} {v.key}: {result['rps']:.0f} req/s, "
                f"p50 {result['p50_us']} µs, p99 {result['p99_us']} µs")
    out = []
    for v in table:
        counters = v.envoy.counters("wasmcustom.mfa_gate.") if "mfa_gate" in json.dumps(
            v.http_filters) else {}
        out.append({"key": v.key, "label": v.label, "baseline": v.baseline,
                    "rounds": v.rounds, "rss_kib": v.envoy.rss_kib(),
                    "counters": {k: n for k, n in counters.items() if n}})
        v.envoy.stop()
    return out, round_load


def send_in_turn(envoy, tokens_file, requests):
    """wrk sending the tokens of `tokens_file` in turn (`scripts/wrk/rotate.lua`) until the
    Envoy has answered `requests` more requests; wrk's figures."""
    target = envoy.completed_requests() + requests
    return run_wrk(envoy.url, 3600, script="rotate.lua",
                   env={"WRK_TOKENS": tokens_file, "WRK_REQUESTS": str(requests)},
                   stop_when=lambda: envoy.completed_requests() >= target)


def run_main(main, stopped):
    """Runs a script's `main`: Ctrl-C and SIGTERM exit 130 (`stopped` says what was cleaned
    up), a RuntimeError exits 1 with its message."""
    try:
        main()
    except KeyboardInterrupt as e:
        log(f"interrupted ({e}); {stopped}")
        sys.exit(130)
    except RuntimeError as e:
        log(f"error: {e}")
        sys.exit(1)


def measure_rss(envoy_bin, workdir, creds, fleet, now):
    """RSS of an Envoy running mfa-gate (default cache) before and after passes over
    RSS_TOKENS distinct tokens, each pass sending every token once."""
    tokens_file = os.path.join(workdir, "tokens.txt")
    with open(tokens_file, "w") as f:
        for token in hs256_tokens(creds.hmac_secret, RSS_TOKENS, now):
            f.write(token + "\n")
    envoy = Envoy(envoy_bin, "rss", bootstrap([wasm_filter("mfa_gate.wasm",
                                                            gate_hmac_config(creds.hmac_secret))]),
                  workdir)
    fleet.append(envoy)
    envoy.wait_ready()
    with open(tokens_file) as f:
        first = f.readline().strip()
    variant = Variant("rss", "RSS run", [], first, gated=True, envoy=envoy)
    check_answers(variant)
    samples = [{"after": "start (1 request)", "rss_kib": envoy.rss_kib()}]
    passes = []
    for p in range(RSS_PASSES):
        result = send_in_turn(envoy, tokens_file, RSS_TOKENS)
        passes.append(result)
        samples.append({"after": f"pass {p + 1} ({(p + 1) * RSS_TOKENS:,} requests)",
                        "rss_kib": envoy.rss_kib()})
        log(f"rss pass {p + 1}/{RSS_PASSES}: {result['rps']:.0f} req/s, "
            f"RSS {samples[-1]['rss_kib']} KiB")
    counters = envoy.counters("wasmcustom.mfa_gate.")
    envoy.stop()
    return {"tokens": RSS_TOKENS, "passes": passes, "samples": samples,
            "counters": {k: n for k, n in counters.items() if n}}


def measure_workers(envoy_bin, workdir, creds, fleet, now):
    """One Envoy with WORKERS workers running mfa-gate (default cache): WORKER_TOKENS distinct
    HS256 tokens, each sent once, then each again WORKER_REPEATS times in turn over
    CONNECTIONS connections (spread over the workers by the kernel). Every full verification
    counts a token_cache.miss: one per distinct token means a token is verified once per
    Envoy, not once per worker."""
    tokens_file = os.path.join(workdir, "worker-tokens.txt")
    with open(tokens_file, "w") as f:
        for token in hs256_tokens(creds.hmac_secret, WORKER_TOKENS, now):
            f.write(token + "\n")
    envoy = Envoy(envoy_bin, "workers", bootstrap([wasm_filter(
        "mfa_gate.wasm", gate_hmac_config(creds.hmac_secret))]), workdir, WORKERS)
    fleet.append(envoy)
    envoy.wait_ready()
    for label, requests in [("first", WORKER_TOKENS), ("repeats", WORKER_TOKENS * WORKER_REPEATS)]:
        result = send_in_turn(envoy, tokens_file, requests)
        log(f"workers ({WORKERS}), {label}: {result['requests']} requests, "
            f"{result['rps']:.0f} req/s")
    counters = envoy.counters("wasmcustom.mfa_gate.")
    envoy.stop()
    return {"workers": WORKERS, "tokens": WORKER_TOKENS, "repeats": WORKER_REPEATS,
            "counters": {k: n for k, n in counters.items() if n}}


def measure_start(envoy_bin, workdir, creds, fleet):
    """Seconds from an Envoy's start to its /ready (polled every 10 ms), with WORKERS workers:
    no filter, the no-op wasm filter and mfa-gate, START_ROUNDS interleaved starts each. What
    mfa-gate adds over the no-op filter is its module's compilation and every worker VM's
    start and configuration."""
    kinds = [("none", []), ("noop", [wasm_filter("noop_filter.wasm")]),
             ("gate", [wasm_filter("mfa_gate.wasm", gate_config(creds))])]
    seconds = {key: [] for key, _ in kinds}
    for r in range(START_ROUNDS):
        for key, filters in kinds[r % len(kinds):] + kinds[:r % len(kinds)]:
            envoy = Envoy(envoy_bin, f"start-{key}", bootstrap(filters), workdir, WORKERS)
            fleet.append(envoy)
            try:
                envoy.wait_ready(poll_s=0.01)
                seconds[key].append(envoy.ready_after_s)
            finally:
                envoy.stop()
        log(f"start round {r + 1}/{START_ROUNDS}: " + ", ".join(
            f"{k} {v[-1] * 1000:.0f} ms" for k, v in seconds.items()))
    return {"workers": WORKERS, "seconds": seconds}


def command_output(command):
    try:
        return subprocess.run(command, capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envoy", required=True)
    parser.add_argument("--cli", required=True, help="the mfa-gate CLI (keygen, token)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    # SIGTERM/SIGHUP end the run like Ctrl-C does: through the finally below.
    def interrupted(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)

    workdir = os.path.join(os.path.dirname(os.path.abspath(args.out)), "envoy-run")
    os.makedirs(workdir, exist_ok=True)
    now = int(time.time())
    fleet = []
    started = datetime.now(timezone.utc)
    load_start = loadavg()
    try:
        creds = mint(args.cli, workdir, now)
        results, round_load = measure_variants(args.envoy, workdir, creds, fleet)
        rss = measure_rss(args.envoy, workdir, creds, fleet, now)
        workers = measure_workers(args.envoy, workdir, creds, fleet, now)
        start = measure_start(args.envoy, workdir, creds, fleet)
    finally:
        for envoy in fleet:
            envoy.stop()
    meta = {
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "envoy_minutes": round((datetime.now(timezone.utc) - started).total_seconds() / 60, 1),
        # "<path> version: <commit>/1.40.0/Clean/RELEASE/BoringSSL" → "1.40.0"
        "envoy": (command_output([args.envoy, "--version"]).split("version:")[-1].split("/")[1:2]
                  or ["?"])[0],
        # "wrk debian/4.1.0-3+b2 [epoll] Copyright …" → "wrk debian/4.1.0-3+b2"
        "wrk": " ".join(command_output(["sh", "-c", "wrk -v 2>&1 | head -1"]).split()[:2]),
        "cpu": platform.machine() + " " + command_output(
            ["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"]),
        "cores": os.cpu_count(),
        "quick": QUICK, "rounds": ROUNDS, "duration_s": DURATION, "warmup_s": WARMUP,
        "connections": CONNECTIONS, "log_level": LOG_LEVEL,
        "load_start": load_start, "load_rounds": round_load, "load_end": loadavg(),
    }
    with open(args.out, "w") as f:
        json.dump({"meta": meta, "variants": results, "rss": rss, "workers": workers,
                   "start": start}, f, indent=1)
    log(f"wrote {args.out}")


if __name__ == "__main__":
    run_main(main, "every Envoy started was stopped")
