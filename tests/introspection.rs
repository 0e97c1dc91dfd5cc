//! Opaque tokens through the engine, as the filter runs them: the cached RFC 7662 answer
//! looked up by the token's keyed digest, a miss turned into `Need::Introspect`, an
//! inactive answer refused `token_inactive`, an unreadable cache or no answer after the
//! call refused `introspection_unavailable`, the session's level read from the answer's
//! amr (or the configured field), and a JWT still verified the usual way.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

mod support;
use support::{bearer_get, evaluate_token, Keys, Req};

use mfa_gate::config::{self, Config};
use mfa_gate::engine::{Evaluation, Need, Outcome, SessionCache};
use mfa_gate::introspection::answer::{self, Expect};
use mfa_gate::introspection::cache::{digest_key, AnswerCache, Cached, DigestKey, Ttl};
use mfa_gate::store::{MemoryStore, StoreError};
use mfa_gate::token::establish::IntrospectionLookup;
use serde_json::{json, Value};
use std::cell::Cell;

const NOW: u64 = 1_800_000_000;
const ISSUER: &str = "https://idp.intro.test";
const SECRET: &[u8] = b"introspection client secret";
const TTL: Ttl = Ttl {
    active_secs: 300,
    inactive_secs: 10,
};

fn config(introspection: Value) -> Config {
    let doc = json!({
        "realm": "intro",
        "issuers": [{"issuer": ISSUER, "audiences": ["api"],
            "hmac_secret_base64": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
            "algorithms": ["HS256"],
            "introspection": introspection}],
        "routes": [{"name": "admin", "match": {"path_prefix": "/admin"},
                    "require": {"level": "otp"}, "browser": "api"}]
    });
    config::parse(doc.to_string().as_bytes()).unwrap_or_else(|e| panic!("{e:?}"))
}

fn introspection() -> Value {
    json!({"cluster": "idp", "endpoint": "http://127.0.0.1:10001/oauth/introspect",
           "client_id": "gate", "client_secret_env": "MFA_GATE_INTROSPECTION_SECRET"})
}

fn request(token: &str) -> Req {
    bearer_get("/admin/x", "gw.intro.test", token)
}

/// The shared answers as the glue reads them: a store, the digest key, and whether the
/// store can be read at all.
struct Answers {
    store: MemoryStore,
    key: DigestKey,
    broken: bool,
    lookups: Cell<u32>,
}

impl IntrospectionLookup for Answers {
    fn answer(&self, token: &[u8], now: u64) -> Result<Option<Cached>, StoreError> {
        self.lookups.set(self.lookups.get() + 1);
        if self.broken {
            return Err(StoreError::Unavailable("broken".into()));
        }
        let digest = self.key.digest(token);
        AnswerCache::default().lookup(&self.store, &digest, now)
    }
}

struct Gate {
    config: Config,
    answers: Answers,
    cache: SessionCache,
}

impl Gate {
    fn new(config: Config) -> Self {
        Gate {
            config,
            answers: Answers {
                store: MemoryStore::default(),
                key: digest_key(SECRET),
                broken: false,
                lookups: Cell::new(0),
            },
            cache: SessionCache::new(100),
        }
    }

    /// Stores the endpoint's answer `body` for `token`, as the glue does after the call.
    fn answered(&mut self, token: &str, body: &str) {
        let issuer = &self.config.issuers[0];
        let fields = issuer.introspection.as_ref().unwrap().fields.clone();
        let expect = Expect {
            issuer: ISSUER,
            audiences: &issuer.verify.audiences,
            fields: &fields,
        };
        let parsed = answer::parse(body.as_bytes(), &expect).unwrap();
        let digest = self.answers.key.digest(token.as_bytes());
        AnswerCache::default()
            .remember(&mut self.answers.store, &digest, &parsed, TTL, NOW)
            .unwrap();
    }

    fn eval(&mut self, token: &str, may_fetch: bool, now: u64) -> Evaluation {
        let keys = Keys {
            introspection: Some(&self.answers),
            ..Keys::initial(&self.config)
        };
        let req = request(token);
        evaluate_token(&self.config, &req, (&keys, may_fetch), &mut self.cache, now)
    }
}

fn status(e: &Evaluation) -> u32 {
    match &e.outcome {
        Outcome::Reply(r) => r.status,
        Outcome::Continue { .. } => 200,
        Outcome::Need(_) => 0,
    }
}

fn record(e: &Evaluation) -> Value {
    serde_json::from_str(&e.record.as_ref().unwrap().to_json()).unwrap()
}

fn reason(e: &Evaluation) -> String {
    record(e)["reasons"][0]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn www_authenticate(e: &Evaluation) -> String {
    match &e.outcome {
        Outcome::Reply(r) => (r.headers.iter())
            .find(|(k, _)| k == "www-authenticate")
            .map(|(_, v)| v.clone())
            .unwrap_or_default(),
        _ => String::new(),
    }
}

#[test]
fn a_miss_asks_for_introspection_then_the_answer_decides() {
    let mut gate = Gate::new(config(introspection()));
    let token = "opaque-token-alice";
    let e = gate.eval(token, true, NOW);
    assert_eq!(e.outcome, Outcome::Need(Need::Introspect { issuer: 0 }));
    assert!(e.record.is_none());
    gate.answered(
        token,
        r#"{"active":true,"sub":"alice","amr":["otp"],"exp":1800003600,"aud":"api"}"#,
    );
    let e = gate.eval(token, false, NOW);
    assert_eq!(status(&e), 200, "{:?}", e.record);
    let r = record(&e);
    assert_eq!(r["decision"], "allow");
    assert_eq!(r["level"], "otp", "{r}");
    assert_eq!(r["subject"], "alice", "{r}");
    assert_eq!(r["cache"], "miss");
}

#[test]
fn a_cached_session_needs_no_second_lookup_until_the_answer_expires() {
    let mut gate = Gate::new(config(introspection()));
    let token = "opaque-token-bob";
    gate.answered(token, r#"{"active":true,"sub":"bob","amr":["otp"]}"#);
    assert_eq!(status(&gate.eval(token, true, NOW)), 200);
    assert_eq!(gate.answers.lookups.get(), 1);
    let e = gate.eval(token, true, NOW + 10);
    assert_eq!(status(&e), 200);
    assert_eq!(record(&e)["cache"], "hit");
    assert_eq!(
        gate.answers.lookups.get(),
        1,
        "served from the VM's session cache"
    );
    // Past the answer's TTL: neither the session nor the answer is kept.
    let e = gate.eval(token, true, NOW + TTL.active_secs + 1);
    assert_eq!(e.outcome, Outcome::Need(Need::Introspect { issuer: 0 }));
}

#[test]
fn the_level_comes_from_the_answers_amr() {
    let mut gate = Gate::new(config(introspection()));
    gate.answered(
        "weak-token",
        r#"{"active":true,"sub":"carol","amr":["pwd"]}"#,
    );
    let e = gate.eval("weak-token", true, NOW);
    assert_eq!(status(&e), 401);
    assert_eq!(record(&e)["decision"], "step_up");
    assert!(
        www_authenticate(&e).contains("insufficient_user_authentication"),
        "{}",
        www_authenticate(&e)
    );
}

#[test]
fn configured_fields_are_read_for_amr() {
    let mut intro = introspection();
    intro["fields"] = json!({"amr": "authentication_methods"});
    let mut gate = Gate::new(config(intro));
    gate.answered(
        "fielded",
        r#"{"active":true,"sub":"dan","amr":["pwd"],"authentication_methods":["otp"]}"#,
    );
    let e = gate.eval("fielded", true, NOW);
    assert_eq!(status(&e), 200, "{}", record(&e));
    assert_eq!(record(&e)["level"], "otp");
}

#[test]
fn an_inactive_answer_is_refused_token_inactive() {
    let mut gate = Gate::new(config(introspection()));
    gate.answered("revoked-token", r#"{"active":false}"#);
    let e = gate.eval("revoked-token", true, NOW);
    assert_eq!(status(&e), 401);
    assert_eq!(reason(&e), "token_inactive");
    assert!(www_authenticate(&e).contains("error=\"invalid_token\""));
    assert!(e
        .counters
        .iter()
        .any(|c| c == "mfa_gate.reason.token_inactive"));
    // Kept for inactive_ttl_secs only: then asked again.
    let e = gate.eval("revoked-token", true, NOW + TTL.inactive_secs);
    assert_eq!(e.outcome, Outcome::Need(Need::Introspect { issuer: 0 }));
}

#[test]
fn no_answer_after_the_call_or_an_unreadable_cache_fails_closed() {
    let mut gate = Gate::new(config(introspection()));
    let e = gate.eval("unknown-token", false, NOW);
    assert_eq!(status(&e), 401);
    assert_eq!(reason(&e), "introspection_unavailable");
    assert!(www_authenticate(&e).contains("error=\"invalid_token\""));
    gate.answers.broken = true;
    let e = gate.eval("unknown-token", true, NOW);
    assert_eq!(status(&e), 401);
    assert_eq!(reason(&e), "introspection_unavailable");
}

#[test]
fn a_jwt_is_verified_not_introspected() {
    let mut gate = Gate::new(config(introspection()));
    let e = gate.eval("eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln", true, NOW);
    assert_eq!(status(&e), 401);
    assert_ne!(reason(&e), "introspection_unavailable");
    assert_eq!(gate.answers.lookups.get(), 0);
}

#[test]
fn without_an_introspecting_issuer_an_opaque_token_is_refused_as_before() {
    let doc = json!({
        "issuers": [{"issuer": ISSUER, "audiences": ["api"],
            "hmac_secret_base64": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
            "algorithms": ["HS256"]}],
        "routes": [{"name": "admin", "match": {"path_prefix": "/admin"},
                    "require": {"level": "otp"}, "browser": "api"}]
    });
    let mut gate = Gate::new(config::parse(doc.to_string().as_bytes()).unwrap());
    let e = gate.eval("opaque-token", true, NOW);
    assert_eq!(status(&e), 401);
    assert_ne!(reason(&e), "introspection_unavailable");
    assert_eq!(gate.answers.lookups.get(), 0);
}

#[test]
fn introspection_config_errors_name_the_field() {
    let errors = |intro: Value| {
        let doc = json!({"issuers": [{"issuer": ISSUER, "audiences": ["api"], "introspection": intro}],
                         "routes": []});
        match config::parse(doc.to_string().as_bytes()) {
            Ok(_) => String::new(),
            Err(e) => format!("{e:?}"),
        }
    };
    let mut bad = introspection();
    bad["endpoint"] = json!("ftp://idp/x");
    assert!(errors(bad).contains("issuers[0].introspection.endpoint"));
    let mut bad = introspection();
    bad["client_secret_env"] = json!("not a name");
    assert!(errors(bad).contains("issuers[0].introspection.client_secret_env"));
    let mut bad = introspection();
    bad["auth"] = json!("private_key_jwt");
    assert!(errors(bad).contains("issuers[0].introspection.auth"));
    let mut bad = introspection();
    bad["timeout_ms"] = json!(0);
    assert!(errors(bad).contains("issuers[0].introspection.timeout_ms"));
    let mut bad = introspection();
    bad["cache_tll_secs"] = json!(5);
    assert!(errors(bad).contains("cache_tll_secs"));
    // An introspecting issuer needs no keys.
    assert_eq!(errors(introspection()), "");
    let doc = json!({"issuers": [
            {"issuer": ISSUER, "audiences": ["api"], "introspection": introspection()},
            {"issuer": "https://other", "audiences": ["api"], "introspection": introspection()}],
        "routes": []});
    let e = format!(
        "{:?}",
        config::parse(doc.to_string().as_bytes()).err().unwrap()
    );
    assert!(e.contains("issuers[1].introspection"), "{e}");
    assert!(e.contains("at most one issuer"), "{e}");
}
