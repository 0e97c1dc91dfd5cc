//! Floods real Envoy's push endpoint with N Security Event Tokens (each revoking another
//! subject) and reports what the revocation set costs: the shared-data size the filter
//! reports (`mfa_gate.revocation.stored_bytes`, `.entries`), Envoy's RSS and heap, the
//! entries folded at the cap, the push rate; and checks the bound's promise: a subject
//! revoked before the flood is still refused after it. Used by scripts/bench-revocation.sh.
//!
//!     revocation_flood [N] [CONNECTIONS]      (defaults: 1000000, 2)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ct_codecs::{Base64UrlSafeNoPadding, Encoder};
use mfa_gate_envoy::{now_secs, GatewayBuilder, DEMO_ISSUER};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Instant;

const TRANSMITTER: &str = "https://flood.mfa-gate.test";
const PUSH_PATH: &str = "/.mfa-gate/ssf/push";
const BEARER: &str = "flood-push-credential";
const SESSION_REVOKED: &str = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";

fn b64(bytes: &[u8]) -> String {
    Base64UrlSafeNoPadding::encode_to_string(bytes).unwrap()
}

/// A SET revoking every session of `sub` (iss_sub of the demo issuer).
fn set(key: &ed25519_compact::KeyPair, header: &str, jti: &str, sub: &str, iat: u64) -> String {
    let claims = json!({"iss": TRANSMITTER, "aud": "mfa-gate-flood", "iat": iat, "jti": jti,
        "sub_id": {"format": "iss_sub", "iss": DEMO_ISSUER, "sub": sub},
        "events": {SESSION_REVOKED: {"event_timestamp": iat}}});
    let input = format!("{header}.{}", b64(claims.to_string().as_bytes()));
    let signature = key.sk.sign(input.as_bytes(), None);
    format!("{input}.{}", b64(signature.as_ref()))
}

/// A keep-alive HTTP/1.1 connection.
struct Connection {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    port: u16,
}

impl Connection {
    fn open(port: u16) -> Connection {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_nodelay(true).unwrap();
        Connection {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
            port,
        }
    }

    /// POSTs `body` and returns the status.
    fn push(&mut self, body: &str) -> u16 {
        let head = format!(
            "POST {PUSH_PATH} HTTP/1.1\r\nhost: 127.0.0.1:{}\r\nauthorization: Bearer {BEARER}\r\ncontent-type: application/secevent+jwt\r\ncontent-length: {}\r\n\r\n",
            self.port,
            body.len()
        );
        self.writer.write_all(head.as_bytes()).unwrap();
        self.writer.write_all(body.as_bytes()).unwrap();
        let mut status_line = String::new();
        self.reader.read_line(&mut status_line).unwrap();
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).unwrap();
        status
    }
}

/// Envoy's resident set size, found by its configuration path on the command line.
fn envoy_rss_kib(config: &std::path::Path) -> u64 {
    let config = config.to_string_lossy();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        if cmdline.contains(&*config) && cmdline.contains("--disable-hot-restart") {
            let status = std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
            if let Some(line) = status.lines().find(|l| l.starts_with("VmRSS:")) {
                return line
                    .split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
            }
        }
    }
    0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: u64 = args
        .get(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let connections: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2);
    let key = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([9; 32]));
    let jwk = json!({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": "flood",
        "x": b64(key.pk.as_ref())});
    let header = b64(br#"{"alg":"EdDSA","typ":"secevent+jwt","kid":"flood"}"#);
    let gateway = GatewayBuilder::shipped("envoy/envoy.yaml")
        .concurrency(connections as u32)
        .plugin_config(move |c| {
            c["revocation"] = json!({
                "max_token_lifetime_secs": 3600,
                "transmitters": [{"name": "flood", "issuer": TRANSMITTER, "audience": "mfa-gate-flood",
                    "algorithms": ["EdDSA"], "jwks": {"keys": [jwk]},
                    "push": {"path": PUSH_PATH, "bearer_env": "FLOOD_PUSH_BEARER"}}]
            });
        })
        .bootstrap(|yaml| {
            let filters = &mut yaml["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
                ["typed_config"]["http_filters"];
            let vm = &mut filters[0]["typed_config"]["config"]["vm_config"];
            vm["environment_variables"] = serde_yaml::from_str(&format!(
                "key_values: {{FLOOD_PUSH_BEARER: {BEARER}}}"
            ))
            .unwrap();
        })
        .start();
    let memory = |gateway: &mfa_gate_envoy::Gateway| -> Value {
        serde_json::from_str(&gateway.admin_get("/memory").text()).unwrap_or(Value::Null)
    };
    let stat = |gateway: &mfa_gate_envoy::Gateway, name: &str| {
        gateway.counter(&format!("wasmcustom.mfa_gate.{name}"))
    };

    // A session revoked before the flood must stay refused after it.
    let victim = gateway.token("push");
    let bearer = format!("Bearer {victim}");
    assert_eq!(
        gateway
            .get("/api/profile", &[("authorization", &bearer)])
            .status,
        200
    );
    let claims: Value = {
        use ct_codecs::{Base64UrlSafeNoPadding as B, Decoder};
        let payload = victim.split('.').nth(1).unwrap();
        serde_json::from_slice(&B::decode_to_vec(payload, None).unwrap()).unwrap()
    };
    let victim_sub = claims["sub"].as_str().unwrap().to_string();
    let start_iat = now_secs();
    let mut first = Connection::open(gateway.port);
    assert_eq!(
        first.push(&set(&key, &header, "victim", &victim_sub, start_iat)),
        202
    );
    assert_eq!(
        gateway
            .get("/api/profile", &[("authorization", &bearer)])
            .status,
        401
    );

    let rss_before = envoy_rss_kib(gateway.config_path());
    let memory_before = memory(&gateway);
    let started = Instant::now();
    let per_connection = n / connections;
    let port = gateway.port;
    let header_text = header.clone();
    let threads: Vec<_> = (0..connections)
        .map(|c| {
            let key = key.clone();
            let header = header_text.clone();
            std::thread::spawn(move || {
                let mut connection = Connection::open(port);
                let mut refused = 0u64;
                for i in 0..per_connection {
                    let id = c * per_connection + i;
                    let token = set(
                        &key,
                        &header,
                        &format!("e-{id}"),
                        &format!("user-{id}"),
                        now_secs(),
                    );
                    if connection.push(&token) != 202 {
                        refused += 1;
                    }
                    if c == 0 && i % 100_000 == 0 && i > 0 {
                        eprintln!("revocation_flood: {} events pushed", i * connections);
                    }
                }
                refused
            })
        })
        .collect();
    let refused: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let elapsed = started.elapsed().as_secs_f64();
    // The size gauges are updated every 10 s by the root context.
    std::thread::sleep(std::time::Duration::from_secs(11));
    let rss_after = envoy_rss_kib(gateway.config_path());
    let memory_after = memory(&gateway);
    let still_refused = gateway
        .get("/api/profile", &[("authorization", &bearer)])
        .status;
    let stats = gateway.stats();
    let gauge = |name: &str| {
        stats
            .get(&format!("wasmcustom.mfa_gate.{name}"))
            .copied()
            .unwrap_or(0)
    };
    gateway.assert_no_wasm_failure();

    let result = json!({
        "events": n, "connections": connections, "refused": refused,
        "seconds": elapsed, "events_per_second": n as f64 / elapsed,
        "accepted": stat(&gateway, "revocation.event.accepted"),
        "entries_added": stat(&gateway, "revocation.entries_added"),
        "folded": stat(&gateway, "revocation.folded"),
        "store_error": stat(&gateway, "revocation.store_error"),
        "entries": gauge("revocation.entries"),
        "stored_bytes": gauge("revocation.stored_bytes"),
        "rss_kib_before": rss_before, "rss_kib_after": rss_after,
        "heap_allocated_before": memory_before["allocated"], "heap_allocated_after": memory_after["allocated"],
        "victim_still_refused": still_refused == 401,
    });
    println!("{result}");
    assert_eq!(
        still_refused, 401,
        "a revoked session was re-admitted after the flood"
    );
}
