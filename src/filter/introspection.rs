//! RFC 7662 introspection glue: the client secret read from the VM environment, the
//! engine's view of the shared answer cache ([`Trusted`]), the call sent with
//! `dispatch_http_call`, and its answer read (at most 64 KiB), parsed strictly and stored
//! for every VM. Deciding from an answer is the engine's ([`crate::token::establish`]);
//! this file never logs a token or the secret, and keeps only the token's keyed digest.
//! Requests that arrive while a call for the same token is in flight make their own call
//! (no coalescing yet); once one answer is stored, every VM reads it.

use super::introspection_state::IntrospectionState;
use super::sessions::HostSessions;
use super::shared_data::HostStore;
use super::state::VmState;
use crate::config::Config;
use crate::introspection::answer::{self, Answer, Expect, MAX_ANSWER_BYTES};
use crate::introspection::cache::{AnswerCache, Cached, DigestKey, TokenDigest, Ttl};
use crate::introspection::{self as intro, Settings};
use crate::metrics;
use crate::store::StoreError;
use crate::token::establish::{IntrospectionLookup, KeyLookup, SharedSessionLookup};
use crate::token::jwks::KeySet;
use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType};
use std::cell::Cell;
use std::time::Duration;

/// The engine's key lookup: the VM's key sets, the shared introspection answers and the
/// shared verified sessions.
pub struct Trusted<'a> {
    /// Key sets by source index.
    pub keys: &'a [Option<KeySet>],
    /// The shared answers, when an issuer introspects.
    pub answers: Option<HostAnswers<'a>>,
    /// The verified sessions every VM shares, unless the token cache is off.
    pub sessions: Option<&'a HostSessions>,
}

impl KeyLookup for Trusted<'_> {
    fn keys(&self, index: usize) -> Option<&KeySet> {
        self.keys.keys(index)
    }

    fn introspection(&self) -> Option<&dyn IntrospectionLookup> {
        self.answers.as_ref().map(|a| a as &dyn IntrospectionLookup)
    }

    fn shared_sessions(&self) -> Option<&dyn SharedSessionLookup> {
        self.sessions.map(|s| s as &dyn SharedSessionLookup)
    }
}

/// The shared answer cache, read through the host's shared data.
pub struct HostAnswers<'a> {
    key: &'a DigestKey,
    /// Whether some lookup found an answer (counted once per request).
    pub hit: Cell<bool>,
}

impl<'a> HostAnswers<'a> {
    /// The cache for this VM's introspection state.
    pub fn new(state: &'a IntrospectionState) -> Self {
        HostAnswers {
            key: &state.key,
            hit: Cell::new(false),
        }
    }
}

impl IntrospectionLookup for HostAnswers<'_> {
    fn answer(&self, token: &[u8], now_secs: u64) -> Result<Option<Cached>, StoreError> {
        let digest = self.key.digest(token);
        match AnswerCache::default().lookup(&HostStore, &digest, now_secs) {
            Ok(Some(answer)) => {
                self.hit.set(true);
                Ok(Some(answer))
            }
            other => other,
        }
    }
}

/// The settings of issuer `issuer`'s introspection.
fn settings(config: &Config, issuer: usize) -> Option<&Settings> {
    config.issuers.get(issuer)?.introspection.as_ref()
}

/// Starts introspecting `token` at issuer `issuer` from the current context. Returns the
/// call token and the token's digest (what the answer is stored under).
pub fn dispatch(
    state: &VmState,
    issuer: usize,
    token: &[u8],
) -> Result<(u32, TokenDigest), String> {
    let (Some(settings), Some(own)) = (settings(&state.config, issuer), &state.introspection)
    else {
        return Err(format!("issuer #{issuer} does not introspect"));
    };
    let call = intro::call(settings, token, &own.secret);
    let headers: Vec<(&str, &str)> = (call.headers.iter())
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let id = hostcalls::dispatch_http_call(
        &settings.cluster,
        headers,
        Some(&call.body),
        vec![],
        Duration::from_millis(settings.timeout_ms),
    )
    .map_err(|status| {
        format!(
            "introspection: dispatch_http_call to cluster {:?} failed: {status:?}",
            settings.cluster
        )
    })?;
    Ok((id, own.key.digest(token)))
}

/// Completes an introspection inside `on_http_call_response`: reads and parses the
/// answer, stores it for every VM and counts it (`active`, `inactive`, or `unavailable`
/// when there is no usable answer). The request is then evaluated again.
pub fn complete(
    context_id: u32,
    state: &mut VmState,
    issuer: usize,
    digest: &TokenDigest,
    (num_headers, body_size): (usize, usize),
    now_secs: u64,
) {
    let Some(settings) = settings(&state.config, issuer) else {
        return;
    };
    let Some(issuer_config) = state.config.issuers.get(issuer) else {
        return;
    };
    let expect = Expect {
        issuer: &issuer_config.verify.issuer,
        audiences: &issuer_config.verify.audiences,
        fields: &settings.fields,
    };
    let ttl = Ttl {
        active_secs: settings.cache_ttl_secs,
        inactive_secs: settings.inactive_ttl_secs,
    };
    let stored = read_answer(num_headers, body_size, &expect).and_then(|answer| {
        AnswerCache::default()
            .remember(&mut HostStore, digest, &answer, ttl, now_secs)
            .map_err(|e| format!("cannot store the answer: {e:?}"))
    });
    match stored {
        Ok(Cached::Active { .. }) => state
            .metrics
            .increment_static(metrics::INTROSPECTION_ACTIVE),
        Ok(Cached::Inactive { .. }) => state
            .metrics
            .increment_static(metrics::INTROSPECTION_INACTIVE),
        Err(why) => {
            log::warn!(
                "[ctx {context_id}] introspection at {:?} failed: {why}",
                issuer_config.verify.issuer
            );
            state
                .metrics
                .increment_static(metrics::INTROSPECTION_UNAVAILABLE);
        }
    }
}

/// The current call's answer, if it is a 200 with a well-formed body.
fn read_answer(
    num_headers: usize,
    body_size: usize,
    expect: &Expect<'_>,
) -> Result<Answer, String> {
    // After a reset or timeout Envoy calls back with no headers, and the response maps
    // are unavailable.
    if num_headers == 0 {
        return Err("no response (connection reset or timeout)".to_string());
    }
    let status = hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, ":status")
        .ok()
        .flatten()
        .ok_or_else(|| "no response (connection reset)".to_string())?;
    if status != b"200" {
        let status = String::from_utf8_lossy(&status).into_owned();
        return Err(format!("endpoint answered HTTP {status}"));
    }
    if body_size > MAX_ANSWER_BYTES {
        return Err(format!(
            "answer is {body_size} bytes; the limit is {MAX_ANSWER_BYTES}"
        ));
    }
    let body = hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
        .ok()
        .flatten()
        .unwrap_or_default();
    answer::parse(&body, expect).map_err(|e| format!("unusable answer: {}", e.code()))
}
