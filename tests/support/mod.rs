//! What the native integration tests share: a request as the engine reads it.
#![allow(dead_code)] // each test crate uses its part

use mfa_gate::config::Config;
use mfa_gate::engine::{self, ClaimsInput, Evaluation, KeyLookup, SessionCache};
use mfa_gate::jwks::KeySet;
use mfa_gate::request::{RequestHeaders, RequestView};
use mfa_gate::store::MemoryStore;
use mfa_gate::token::establish::{IntrospectionLookup, SharedSessionLookup};
use std::borrow::Cow;

/// Request headers in order, with no properties (no jwt_authn metadata).
pub struct Req(pub Vec<(String, Vec<u8>)>);

impl RequestHeaders for Req {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.0.header(name)
    }
    fn each_header<'s>(&'s self, visit: &mut dyn FnMut(&'s [u8], &'s [u8])) {
        self.0.each_header(visit)
    }
}

impl RequestView for Req {
    fn property(&self, _: &[&str]) -> Option<Cow<'_, [u8]>> {
        None
    }
}

/// A GET of `path` at `authority` carrying `token` as a bearer token.
pub fn bearer_get(path: &str, authority: &str, token: &str) -> Req {
    Req(vec![
        (":method".into(), b"GET".to_vec()),
        (":path".into(), path.as_bytes().to_vec()),
        (":authority".into(), authority.as_bytes().to_vec()),
        (
            "authorization".into(),
            format!("Bearer {token}").into_bytes(),
        ),
    ])
}

/// An engine's keys: each issuer's configured keys, and the shared answers or sessions a
/// test gives it.
pub struct Keys<'a> {
    /// Per issuer, its keys (`None`: none yet).
    pub keys: Vec<Option<KeySet>>,
    /// The introspection answers, if the test has them.
    pub introspection: Option<&'a dyn IntrospectionLookup>,
    /// The shared sessions, if the test has them.
    pub shared_sessions: Option<&'a dyn SharedSessionLookup>,
}

impl<'a> Keys<'a> {
    /// The keys each issuer of `config` starts with (inline keys, HMAC secrets).
    pub fn initial(config: &Config) -> Self {
        Keys {
            keys: (config.issuers.iter())
                .map(|i| i.initial_keys(None))
                .collect(),
            introspection: None,
            shared_sessions: None,
        }
    }
}

impl KeyLookup for Keys<'_> {
    fn keys(&self, index: usize) -> Option<&KeySet> {
        self.keys.get(index).and_then(Option::as_ref)
    }
    fn introspection(&self) -> Option<&dyn IntrospectionLookup> {
        self.introspection
    }
    fn shared_sessions(&self) -> Option<&dyn SharedSessionLookup> {
        self.shared_sessions
    }
}

/// The engine's evaluation of `req` carrying a token, at `now`, with no revocations and
/// fresh signals.
pub fn evaluate_token(
    config: &Config,
    req: &Req,
    (keys, may_fetch_keys): (&Keys<'_>, bool),
    cache: &mut SessionCache,
    now: u64,
) -> Evaluation {
    let signals = engine::SharedSignals::new(MemoryStore::default());
    let request = engine::Request {
        headers: req,
        claims: ClaimsInput::Token,
        now_secs: now,
        may_fetch_keys,
        revocations: &engine::NothingRevoked,
        signals: &signals,
    };
    engine::evaluate(config, &request, keys, cache)
}
