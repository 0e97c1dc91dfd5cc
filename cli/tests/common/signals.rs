//! Harness for the Shared Signals tests: the real `mfa-gate demo` on free loopback ports
//! (stopped on drop), a plain HTTP/1.1 client, a recording receiver for push and
//! back-channel logout (stopped on drop), and JWT decoding and verification with the
//! filter's own `jwks` and `verify` modules.
#![allow(dead_code)]

use jwt_simple::reexports::ct_codecs::{Base64UrlSafeNoPadding, Decoder};
use mfa_gate::jwks::KeySet;
use mfa_gate::verify::{self, Algorithm, VerifyOptions};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The demo's issuer and audience (cli/src/demo/users.rs).
pub const ISSUER: &str = "https://idp.mfa-gate.test";
pub const AUDIENCE: &str = "mfa-gate-demo";
pub const CAEP: &str = "https://schemas.openid.net/secevent/caep/event-type/";
pub const RISC: &str = "https://schemas.openid.net/secevent/risc/event-type/";
pub const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A running `mfa-gate demo`.
pub struct Demo {
    child: Child,
    /// The identity provider's port.
    pub idp: u16,
    /// Its stderr.
    log: PathBuf,
    /// What `--print-json` printed.
    pub printed: Value,
}

impl Demo {
    /// Starts the demo with `extra` options and waits until it serves.
    pub fn start(name: &str, extra: &[&str]) -> Demo {
        let dir = crate::common::scratch(name);
        let log = dir.join("demo.log");
        let (idp, app) = (free_port(), free_port());
        let mut child = Command::new(env!("CARGO_BIN_EXE_mfa-gate"))
            .args(["demo", "--print-json", "--idp-port", &idp.to_string()])
            .args(["--app-port", &app.to_string()])
            .args(extra)
            .env_remove("MFA_GATE_SSF_BEARER")
            .env_remove("MFA_GATE_SSF_PUSH_BEARER")
            .env_remove("MFA_GATE_OKTA_API_TOKEN")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("demo log"))
            .spawn()
            .expect("start mfa-gate demo");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        let read = BufReader::new(stdout).read_line(&mut line);
        let printed = match (read, serde_json::from_str(&line)) {
            (Ok(_), Ok(v)) => v,
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the demo did not start: {line:?}; stderr: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            }
        };
        Demo {
            child,
            idp,
            log,
            printed,
        }
    }

    /// `http://127.0.0.1:<idp><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.idp)
    }

    /// The demo's stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `needle`.
    pub fn wait_for_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "the demo never logged {needle:?}: {log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A fresh token for a demo user (a new sign-in).
    pub fn token(&self, user: &str) -> String {
        let answer = http("GET", &self.url(&format!("/token/{user}")), &[], "");
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.body
    }

    /// The JSON at `path`.
    pub fn get_json(&self, path: &str) -> Value {
        let answer = http("GET", &self.url(path), &[], "");
        assert_eq!(answer.status, 200, "{path}: {}", answer.body);
        answer.json()
    }

    /// `POST /ssf/emit` with `body`; the answer.
    pub fn emit(&self, body: Value) -> Http {
        http("POST", &self.url("/ssf/emit"), &[], &body.to_string())
    }

    /// `POST /ssf/emit`, which must succeed; the SET it returns.
    pub fn emit_ok(&self, body: Value) -> Value {
        let answer = self.emit(body.clone());
        assert_eq!(answer.status, 200, "emit {body}: {}", answer.body);
        answer.json()
    }

    /// An RFC 8936 poll with bearer `credential` on `path`.
    pub fn poll(&self, path: &str, credential: &str, body: Value) -> Http {
        http(
            "POST",
            &self.url(path),
            &[
                ("authorization", &format!("Bearer {credential}")),
                ("content-type", "application/json"),
            ],
            &body.to_string(),
        )
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Http {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Http {
    /// The header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// Splits a raw HTTP/1.1 message into its start line, headers and body.
fn split_message(raw: &[u8]) -> (String, Vec<(String, String)>, Vec<u8>) {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let body = raw.get(end + 4..).unwrap_or_default().to_vec();
    let mut lines = head.split("\r\n");
    let start = lines.next().unwrap_or_default().to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (start, headers, body)
}

/// One HTTP/1.1 request (`Connection: close`) to a loopback `url`.
pub fn http(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> Http {
    let rest = url.strip_prefix("http://").expect("http:// URL");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = TcpStream::connect(authority).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {authority}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read the answer");
    let (status_line, headers, body) = split_message(&raw);
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {status_line:?}"));
    Http {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// A request the receiver got.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Recorded {
    /// The header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A receiver on a free loopback port: records every request and answers each with the
/// same status and JSON body. Stopped on drop.
pub struct Receiver {
    pub port: u16,
    recorded: Arc<Mutex<Vec<Recorded>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn read_request(stream: &mut TcpStream) -> Option<Vec<u8>> {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return Some(raw);
        }
        raw.extend_from_slice(&buf[..n]);
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let (_, headers, _) = split_message(&raw);
            let length: usize = headers
                .iter()
                .find(|(k, _)| k == "content-length")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            if raw.len() >= end + 4 + length {
                return Some(raw);
            }
        }
    }
}

impl Receiver {
    /// Starts a receiver answering `status` with `body` (JSON, or empty).
    pub fn start(status: u16, body: &str) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind receiver");
        let port = listener.local_addr().expect("addr").port();
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (rec, halt, body) = (recorded.clone(), stop.clone(), body.to_string());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if halt.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(mut stream) = stream else { continue };
                let Some(raw) = read_request(&mut stream) else {
                    continue;
                };
                let (start, headers, request_body) = split_message(&raw);
                let mut parts = start.split(' ');
                rec.lock().expect("lock").push(Recorded {
                    method: parts.next().unwrap_or_default().to_string(),
                    path: parts.next().unwrap_or_default().to_string(),
                    headers,
                    body: String::from_utf8_lossy(&request_body).into_owned(),
                });
                let content_type = if body.is_empty() {
                    String::new()
                } else {
                    "content-type: application/json\r\n".to_string()
                };
                let answer = format!(
                    "HTTP/1.1 {status} X\r\n{content_type}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes());
            }
        });
        Receiver {
            port,
            recorded,
            stop,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Waits until `n` requests have arrived; returns them all.
    pub fn wait_for(&self, n: usize) -> Vec<Recorded> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = self.recorded.lock().expect("lock").clone();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "the receiver got {} of {n} requests: {got:?}",
                got.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What arrived so far.
    pub fn recorded(&self) -> Vec<Recorded> {
        self.recorded.lock().expect("lock").clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A compact JWS's header and claims.
#[derive(Debug, Clone)]
pub struct Jwt {
    pub header: Value,
    pub claims: Value,
}

fn segment(text: &str) -> Value {
    let bytes = Base64UrlSafeNoPadding::decode_to_vec(text.as_bytes(), None).expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON segment")
}

/// Decodes (without verifying) a compact JWS.
pub fn decode(token: &str) -> Jwt {
    let parts: Vec<&str> = token.trim().split('.').collect();
    assert_eq!(parts.len(), 3, "a compact JWS: {token}");
    Jwt {
        header: segment(parts[0]),
        claims: segment(parts[1]),
    }
}

fn options(issuer: &str, audience: &str) -> VerifyOptions {
    VerifyOptions {
        issuer: issuer.to_string(),
        audiences: vec![audience.to_string()],
        algorithms: vec![Algorithm::ES256],
        clock_skew_secs: 60,
        max_token_bytes: 8192,
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// Whether the SET's signature verifies with `jwks` (a SET has no `exp`, so the filter's
/// signature-level check is the one that applies; its claims are checked by the caller).
pub fn set_signature_verifies(token: &str, jwks: &Value) -> bool {
    let keys = KeySet::from_jwks_json(jwks.to_string().as_bytes()).expect("JWKS");
    verify::verify_signature_only(
        token.trim().as_bytes(),
        &keys,
        &options(ISSUER, AUDIENCE),
        now(),
    )
    .is_ok()
}

/// Verifies a logout token: its signature with the filter's verifier, then `iss`, `aud`,
/// `exp` and `iat` here; and the filter's session verifier must refuse it as a session
/// token. Returns its claims.
pub fn verify_with_exp(token: &str, jwks: &Value, issuer: &str, audience: &str) -> Value {
    let keys = KeySet::from_jwks_json(jwks.to_string().as_bytes()).expect("JWKS");
    let options = options(issuer, audience);
    verify::verify_signature_only(token.trim().as_bytes(), &keys, &options, now())
        .unwrap_or_else(|e| panic!("{e:?}: {token}"));
    assert!(
        matches!(
            verify::verify(token.trim().as_bytes(), &keys, &options, now()),
            Err(verify::VerifyError::NotASessionToken)
        ),
        "a logout token must never pass as a session token: {token}"
    );
    let claims = decode(token).claims;
    assert_eq!(claims["iss"], issuer, "{claims}");
    let aud_ok = claims["aud"] == audience
        || claims["aud"]
            .as_array()
            .is_some_and(|list| list.iter().any(|a| a == audience));
    assert!(aud_ok, "{claims}");
    let now = now();
    let exp = claims["exp"].as_u64().expect("exp");
    let iat = claims["iat"].as_u64().expect("iat");
    assert!(exp > now && iat <= now + 60, "{claims}");
    claims
}

/// Checks what every SET must be (RFC 8417, SSF 1.0 sections 3 and 4): header `typ`,
/// `alg`, `kid`; `iss`, `iat`, `jti`, `aud`, `sub_id`; exactly one event, of `event_uri`;
/// no `sub`, no `exp`. Returns the event object.
pub fn assert_set(token: &str, ssf_jwks: &Value, event_uri: &str) -> (Jwt, Value) {
    let jwt = decode(token);
    assert_eq!(jwt.header["typ"], "secevent+jwt", "{}", jwt.header);
    assert_eq!(jwt.header["alg"], "ES256");
    assert_eq!(
        jwt.header["kid"], ssf_jwks["keys"][0]["kid"],
        "signed with the transmitter's key"
    );
    assert!(set_signature_verifies(token, ssf_jwks), "the SET verifies");
    let c = &jwt.claims;
    assert_eq!(c["iss"], ISSUER);
    assert_eq!(c["aud"], AUDIENCE);
    assert!(c["iat"]
        .as_u64()
        .is_some_and(|iat| iat.abs_diff(now()) < 60));
    assert!(c["jti"].as_str().is_some_and(|j| j.len() >= 16), "{c}");
    assert!(c["sub_id"]["format"].is_string(), "{c}");
    assert!(c.get("sub").is_none(), "SSF 4.1.2: no sub: {c}");
    assert!(c.get("exp").is_none(), "SSF 4.1.7: no exp: {c}");
    let events = c["events"].as_object().expect("events");
    assert_eq!(events.len(), 1, "exactly one event: {c}");
    let event = events
        .get(event_uri)
        .unwrap_or_else(|| panic!("{event_uri} in {c}"));
    assert!(event.is_object());
    (jwt.clone(), event.clone())
}
