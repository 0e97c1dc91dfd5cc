//! Verified sessions shared by worker VMs, through the engine as the filter runs it: two
//! VMs (each with its own session cache) over one shared store. The first VM verifies a
//! token (`miss`), the second finds it shared (`shared`, no verification) and then in its
//! own cache (`hit`). A shared session is trusted only while the key that verified it is
//! still the issuer's and its claims pass today's configuration: another key, another
//! audience or a passed `exp` each make the second VM verify again and refuse.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

mod support;
use support::{bearer_get, evaluate_token, Keys, Req};

use ct_codecs::{Base64UrlSafeNoPadding, Encoder};
use mfa_gate::config::{self, Config};
use mfa_gate::engine::{Evaluation, Outcome, SessionCache};
use mfa_gate::store::{MemoryStore, Store};
use mfa_gate::token::establish::SharedSessionLookup;
use mfa_gate::token::shared_sessions::{current_digest_key, SharedSession, SharedSessions};
use serde_json::{json, Value};
use std::cell::RefCell;

const NOW: u64 = 1_800_000_000;
const ISSUER: &str = "https://idp.shared.test";
/// base64 of "0123456789abcdef0123456789abcdef".
const SECRET_B64: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
/// base64 of "fedcba9876543210fedcba9876543210": a rotated secret.
const OTHER_SECRET_B64: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";

fn config(secret_b64: &str, audience: &str) -> Config {
    let doc = json!({
        "realm": "shared",
        "issuers": [{"issuer": ISSUER, "audiences": [audience],
            "hmac_secret_base64": secret_b64, "algorithms": ["HS256"]}],
        "routes": [{"name": "admin", "match": {"path_prefix": "/admin"},
                    "require": {"level": "phishing_resistant"}, "browser": "api"}]
    });
    config::parse(doc.to_string().as_bytes()).unwrap_or_else(|e| panic!("{e:?}"))
}

fn b64(bytes: &[u8]) -> String {
    Base64UrlSafeNoPadding::encode_to_string(bytes).unwrap()
}

/// An HS256 token signed with [`SECRET`].
fn token(claims: Value) -> String {
    let input = format!(
        "{}.{}",
        b64(br#"{"alg":"HS256","typ":"JWT"}"#),
        b64(claims.to_string().as_bytes())
    );
    let mac = hmac_sha256::HMAC::mac(input.as_bytes(), SECRET);
    format!("{input}.{}", b64(&mac))
}

fn passkey_token(sub: &str) -> String {
    token(
        json!({"iss": ISSUER, "aud": "api", "sub": sub, "amr": ["pwd", "hwk"], "acr": "phr",
                 "iat": NOW - 10, "exp": NOW + 600}),
    )
}

fn request(token: &str) -> Req {
    bearer_get("/admin/users", "gw.shared.test", token)
}

/// Shared data as every VM of one Envoy sees it.
struct Shared {
    store: RefCell<MemoryStore>,
    sessions: SharedSessions,
}

impl SharedSessionLookup for Shared {
    fn find(&self, token: &[u8], now: u64) -> Option<SharedSession> {
        let mut store = self.store.borrow_mut();
        let key = current_digest_key(&mut *store, || Some([9; 32]))?;
        self.sessions
            .lookup(&*store, &key.digest(token), now)
            .ok()?
    }

    fn share(&self, token: &[u8], session: &SharedSession, until: u64, now: u64) {
        let mut store = self.store.borrow_mut();
        let key = current_digest_key(&mut *store, || Some([9; 32])).unwrap();
        let digest = key.digest(token);
        (self
            .sessions
            .share(&mut *store, &digest, session, until, now))
        .unwrap();
    }
}

/// One worker VM: its configuration and its own session cache.
struct Vm {
    config: Config,
    cache: SessionCache,
}

impl Vm {
    fn new(config: Config) -> Self {
        Vm {
            config,
            cache: SessionCache::new(100),
        }
    }

    fn eval(&mut self, shared: &Shared, token: &str, now: u64) -> Evaluation {
        let keys = Keys {
            shared_sessions: Some(shared),
            ..Keys::initial(&self.config)
        };
        let req = request(token);
        evaluate_token(&self.config, &req, (&keys, false), &mut self.cache, now)
    }
}

fn shared() -> Shared {
    Shared {
        store: RefCell::new(MemoryStore::default()),
        sessions: SharedSessions::new(1000),
    }
}

/// Status, cache use and first reason of an evaluation.
fn outcome(e: &Evaluation) -> (u32, String, String) {
    let status = match &e.outcome {
        Outcome::Reply(r) => r.status,
        Outcome::Continue { .. } => 200,
        Outcome::Need(_) => 0,
    };
    let record: Value = serde_json::from_str(&e.record.as_ref().unwrap().to_json()).unwrap();
    let cache = record["cache"].as_str().unwrap_or_default().to_string();
    let reason = record["reasons"][0]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (status, cache, reason)
}

fn counted(e: &Evaluation, name: &str) -> bool {
    e.counters.iter().any(|c| c == name)
}

#[test]
fn a_token_verified_by_one_vm_is_served_by_the_others_without_verifying() {
    let shared = shared();
    let mut first = Vm::new(config(SECRET_B64, "api"));
    let mut second = Vm::new(config(SECRET_B64, "api"));
    let token = passkey_token("alice");
    let e = first.eval(&shared, &token, NOW);
    assert_eq!(
        outcome(&e),
        (
            200,
            "miss".into(),
            "level_satisfied:phishing_resistant>=phishing_resistant".into()
        )
    );
    assert!(counted(&e, "mfa_gate.token_cache.miss"));
    let e = second.eval(&shared, &token, NOW + 1);
    assert_eq!(outcome(&e).0, 200);
    assert_eq!(outcome(&e).1, "shared");
    assert!(counted(&e, "mfa_gate.token_cache.shared_hit"));
    assert!(
        !counted(&e, "mfa_gate.token_cache.miss"),
        "not verified again"
    );
    let e = second.eval(&shared, &token, NOW + 2);
    assert_eq!(outcome(&e).1, "hit", "then in the second VM's own cache");
    // The same session facts: the second VM knows who it is and how they signed in.
    let record: Value = serde_json::from_str(&e.record.as_ref().unwrap().to_json()).unwrap();
    assert_eq!(record["subject"], "alice");
    assert_eq!(record["level"], "phishing_resistant");
    // Shared data names the session by a keyed digest only: the token is not in it.
    let store = shared.store.borrow();
    let signature = token.rsplit('.').next().unwrap();
    for shard in 0..1024 {
        if let Ok(Some(v)) = store.get(&format!("mfa_gate.sessions.v1.{shard}")) {
            let text = String::from_utf8_lossy(&v.bytes);
            assert!(!text.contains(signature) && !text.contains(&token[..20]));
        }
    }
}

#[test]
fn a_shared_session_is_not_trusted_once_its_key_is_gone() {
    let shared = shared();
    let token = passkey_token("bob");
    let mut first = Vm::new(config(SECRET_B64, "api"));
    assert_eq!(outcome(&first.eval(&shared, &token, NOW)).0, 200);
    // A VM configured after the secret was rotated verifies the token itself: refused.
    let mut rotated = Vm::new(config(OTHER_SECRET_B64, "api"));
    let e = rotated.eval(&shared, &token, NOW + 1);
    assert_eq!(outcome(&e), (401, "".into(), "bad_signature".into()));
}

#[test]
fn a_shared_session_passes_todays_claims_checks_or_is_verified_again() {
    let shared = shared();
    let token = passkey_token("carol");
    let mut first = Vm::new(config(SECRET_B64, "api"));
    assert_eq!(outcome(&first.eval(&shared, &token, NOW)).0, 200);
    // Another audience after a configuration update: the shared session does not count.
    let mut other_audience = Vm::new(config(SECRET_B64, "other-api"));
    let e = other_audience.eval(&shared, &token, NOW + 1);
    assert_eq!(outcome(&e), (403, "".into(), "wrong_audience".into()));
    // The same configuration (a reload that changed nothing else): still shared.
    let mut reloaded = Vm::new(config(SECRET_B64, "api"));
    assert_eq!(
        outcome(&reloaded.eval(&shared, &token, NOW + 2)).1,
        "shared"
    );
    // Past exp plus the skew, no VM serves it from shared data.
    let mut late = Vm::new(config(SECRET_B64, "api"));
    let e = late.eval(&shared, &token, NOW + 600 + 61);
    assert_eq!(outcome(&e), (401, "".into(), "expired".into()));
}
