//! Revocation in the glue: the VM's copy of the shared set (read on every gated request),
//! recording entries, the push and back-channel logout endpoints, and polling the
//! transmitters (one VM at a time, holding a lease). What to decide lives in
//! [`crate::receive`], [`crate::signals::revocation`] and [`crate::schedule`].

use super::revocation_state::RevocationState;
use super::shared_data::HostStore;
use super::state::VmState;
use crate::config::Config;
use crate::engine::{RevocationLookup, SessionKeys, Standing};
use crate::events::{parse_poll_response, poll_request_body, EventError, SetErr};
use crate::idp_sessions::{end_session_call, ended, worth_retrying, Credential, EndSessionCall};
use crate::metrics;
use crate::receive::{bearer_matches, receive_logout, receive_set, Received};
use crate::response::{self, LocalReply};
use crate::schedule::Retry;
use crate::signals::revocation::{self, Entry, LocalCopy, Source};
use crate::token::session::Session;
use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

/// Largest push or logout body read, bytes.
pub const MAX_EVENT_BODY_BYTES: usize = 64 * 1024;

/// The engine's view of the shared set through this VM's copy.
pub struct HostRevocations<'a>(pub &'a RefCell<LocalCopy>);

impl RevocationLookup for HostRevocations<'_> {
    fn standing(&self, keys: &SessionKeys) -> Standing {
        match self.0.try_borrow_mut() {
            Ok(mut copy) => copy.standing(&HostStore, keys),
            Err(_) => Standing::Unknown,
        }
    }
}

/// Records `entries` in the shared set and counts what happened. Returns whether all of
/// them were recorded.
pub fn record(state: &mut VmState, entries: &[Entry], now_secs: u64) -> bool {
    let Some(settings) = &state.config.revocation else {
        return false;
    };
    if entries.is_empty() {
        return true;
    }
    match revocation::apply(&mut HostStore, entries, settings.max_entries, now_secs) {
        Ok(applied) => {
            for _ in 0..applied.changed {
                state.metrics.increment(metrics::REVOCATION_ENTRIES_ADDED);
            }
            for _ in 0..applied.folded {
                state.metrics.increment(metrics::REVOCATION_FOLDED);
            }
            if applied.folded > 0 {
                log::warn!(
                    "revocation set full: {} entries folded into their issuer's horizon (sessions of that issuer issued before them must sign in again)",
                    applied.folded
                );
            }
            true
        }
        Err(e) => {
            state.metrics.increment(metrics::REVOCATION_STORE_ERROR);
            log::error!("cannot record {} revocation entries: {e}", entries.len());
            false
        }
    }
}

/// A listener path the gate answers itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// Push delivery for transmitter `index`.
    Push(usize),
    /// Back-channel logout.
    Logout,
}

/// The endpoint `path` (query ignored) names, if any.
pub fn endpoint_for(config: &Config, path: &[u8]) -> Option<Endpoint> {
    let settings = config.revocation.as_ref()?;
    let path = path.split(|&b| b == b'?').next().unwrap_or_default();
    for (i, t) in settings.transmitters.iter().enumerate() {
        if t.push.as_ref().is_some_and(|p| p.path.as_bytes() == path) {
            return Some(Endpoint::Push(i));
        }
    }
    let logout = settings.backchannel_logout.as_ref();
    logout
        .filter(|b| b.path.as_bytes() == path)
        .map(|_| Endpoint::Logout)
}

/// What an endpoint checks before reading the body: the method, and for push the bearer
/// credential. `None` when the request may go on to its body.
pub fn admit(
    state: &VmState,
    endpoint: Endpoint,
    headers: &dyn crate::request::RequestView,
) -> Option<LocalReply> {
    if headers.header(":method") != Some(&b"POST"[..]) {
        return Some(response::method_not_allowed());
    }
    if let Endpoint::Push(i) = endpoint {
        let expected = (state.revocation.as_ref())
            .and_then(|r| r.push_bearers.get(i))
            .and_then(Option::as_deref);
        let given = headers.header("authorization");
        if !expected.is_some_and(|e| bearer_matches(given, e)) {
            return Some(response::event_unauthenticated(&state.config.realm));
        }
    }
    None
}

/// Handles a complete push or logout body: verify, record, answer.
pub fn receive(state: &mut VmState, endpoint: Endpoint, body: &[u8], now_secs: u64) -> LocalReply {
    let config = Rc::clone(&state.config);
    let Some(settings) = &config.revocation else {
        return response::denied("not_configured");
    };
    let issuers = state.config.issuers.len();
    let result = match endpoint {
        Endpoint::Push(i) => {
            let Some(t) = settings.transmitters.get(i) else {
                return response::denied("not_configured");
            };
            let Some(Some(keys)) = state.keys.get(issuers + i) else {
                log::warn!("pushed SET from {:?} before its keys are loaded", t.name);
                return response::event_unrecorded();
            };
            let token = trim_ascii(body);
            receive_set(
                &state.config,
                settings,
                t,
                keys,
                token,
                now_secs,
                Source::Push,
            )
            .map(|r| (r, t.name.clone()))
        }
        Endpoint::Logout => {
            let Some(token) = crate::events::logout_token_from_form(body) else {
                state.metrics.increment(metrics::REVOCATION_EVENT_REJECTED);
                return response::logout_refused("the body has no single logout_token field");
            };
            let keys = &state.keys;
            let keys_of = |index: usize| keys.get(index).and_then(Option::as_ref);
            receive_logout(
                &state.config,
                settings,
                &keys_of,
                token.as_bytes(),
                now_secs,
            )
            .map(|r| (r, "backchannel_logout".to_string()))
        }
    };
    match result {
        Ok((received, from)) => match apply_received(state, &from, &received, now_secs) {
            Ok(()) => match endpoint {
                Endpoint::Push(_) => response::event_accepted(),
                Endpoint::Logout => response::logout_accepted(),
            },
            Err(()) => response::event_unrecorded(),
        },
        Err(error) => {
            state.metrics.increment(metrics::REVOCATION_EVENT_REJECTED);
            log::warn!("refused {}: {error}", describe(endpoint));
            match endpoint {
                Endpoint::Push(_) => response::event_refused(error.err_code(), &error.to_string()),
                Endpoint::Logout => response::logout_refused(&error.to_string()),
            }
        }
    }
}

fn describe(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::Push(_) => "a pushed security event token",
        Endpoint::Logout => "a back-channel logout token",
    }
}

fn trim_ascii(body: &[u8]) -> &[u8] {
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(body.len());
    let end = body
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    body.get(start..end).unwrap_or_default()
}

/// Records a verified event once: a redelivery (same `jti` from the same sender) is
/// counted and acknowledged, not applied again. `Err` when it could not be recorded.
fn apply_received(
    state: &mut VmState,
    from: &str,
    received: &Received,
    now_secs: u64,
) -> Result<(), ()> {
    let jti = &received.event.jti;
    match revocation::delivered_before(&HostStore, from, jti) {
        Ok(true) => {
            state.metrics.increment(metrics::REVOCATION_EVENT_REPLAYED);
            return Ok(());
        }
        Ok(false) => {}
        Err(e) => {
            state.metrics.increment(metrics::REVOCATION_STORE_ERROR);
            log::error!("cannot read event ids: {e:?}");
            return Err(());
        }
    }
    // Applied first, remembered after: an event that could not be recorded is not taken
    // for a replay when it comes again (applying one twice changes nothing).
    if !received.entries.is_empty() && !record(state, &received.entries, now_secs) {
        return Err(());
    }
    if let Err(e) = revocation::first_delivery(&mut HostStore, from, jti) {
        // Recorded, not remembered: a redelivery applies it again, harmlessly.
        state.metrics.increment(metrics::REVOCATION_STORE_ERROR);
        log::warn!("cannot remember event id: {e:?}");
    }
    if received.entries.is_empty() {
        state.metrics.increment(metrics::REVOCATION_EVENT_IGNORED);
        log::info!(
            "event {} from {from}: nothing to revoke",
            received.event.kind
        );
        return Ok(());
    }
    state.metrics.increment(metrics::REVOCATION_EVENT_ACCEPTED);
    log::info!(
        "event {} from {from}: {} revocation entries recorded",
        received.event.kind,
        received.entries.len()
    );
    Ok(())
}

/// Starts every poll that is due and whose lease this VM holds. Returns (call token,
/// transmitter index) of each started poll.
pub fn start_due_polls(state: &mut VmState, now_secs: u64) -> Vec<(u32, usize)> {
    let mut started = Vec::new();
    let config = Rc::clone(&state.config);
    let Some(settings) = &config.revocation else {
        return started;
    };
    let issuers = state.config.issuers.len();
    for (i, t) in settings.transmitters.iter().enumerate() {
        let Some(poll) = &t.poll else { continue };
        let keys_loaded = matches!(state.keys.get(issuers + i), Some(Some(_)));
        let Some(rev) = state.revocation.as_mut() else {
            return started;
        };
        let Some(Some(schedule)) = rev.polls.get_mut(i) else {
            continue;
        };
        if !schedule.due(now_secs) {
            continue;
        }
        // Until the transmitter's keys are in, nothing it sends could be verified: the
        // poll stays due and starts on the first tick after they arrive.
        if !keys_loaded {
            continue;
        }
        let lease = revocation::lease_key(&t.name);
        match revocation::take_lease(
            &mut HostStore,
            &lease,
            rev.holder,
            now_secs,
            schedule.lease_secs(),
        ) {
            Ok(true) => {}
            Ok(false) => {
                schedule.skipped(now_secs);
                continue;
            }
            Err(e) => {
                log::warn!("poll lease for {:?}: {e:?}", t.name);
                schedule.skipped(now_secs);
                continue;
            }
        }
        let bearer = rev
            .poll_bearers
            .get(i)
            .cloned()
            .flatten()
            .unwrap_or_default();
        let acks = rev.acks.get(i).cloned().unwrap_or_default();
        let errs = rev.set_errs.get(i).cloned().unwrap_or_default();
        let body = poll_request_body(poll.max_events, true, &acks, &errs);
        let authorization = format!("Bearer {bearer}");
        let call = hostcalls::dispatch_http_call(
            &poll.cluster,
            vec![
                (":method", "POST"),
                (":path", &poll.path),
                (":authority", &poll.authority),
                ("content-type", "application/json"),
                ("accept", "application/json"),
                ("authorization", &authorization),
            ],
            Some(&body),
            vec![],
            Duration::from_millis(poll.timeout_ms),
        );
        match call {
            Ok(token) => {
                schedule.started();
                started.push((token, i));
            }
            Err(status) => {
                log::warn!(
                    "poll of {:?}: dispatch_http_call failed: {status:?}",
                    t.name
                );
                schedule.finished(false, false, now_secs);
                state.metrics.increment(metrics::REVOCATION_POLL_FAILURE);
            }
        }
    }
    started
}

/// Completes a poll of transmitter `index` inside `on_http_call_response`.
pub fn complete_poll(
    state: &mut VmState,
    index: usize,
    num_headers: usize,
    body_size: usize,
    now_secs: u64,
) {
    let config = Rc::clone(&state.config);
    let Some(settings) = &config.revocation else {
        return;
    };
    let Some(t) = settings.transmitters.get(index) else {
        return;
    };
    let outcome = read_poll_body(num_headers, body_size).and_then(|body| {
        parse_poll_response(&body).map_err(|e| format!("unreadable poll response: {e}"))
    });
    let response = match outcome {
        Ok(response) => response,
        Err(why) => {
            log::warn!("poll of {:?} failed: {why}", t.name);
            state.metrics.increment(metrics::REVOCATION_POLL_FAILURE);
            if let Some(Some(s)) = state
                .revocation
                .as_mut()
                .and_then(|r| r.polls.get_mut(index))
            {
                s.finished(false, false, now_secs);
            }
            return;
        }
    };
    state.metrics.increment(metrics::REVOCATION_POLL_SUCCESS);
    // What was acknowledged has been delivered to the transmitter.
    let mut acks = Vec::new();
    let mut errs = Vec::new();
    let mut unrecorded = false;
    let issuers = state.config.issuers.len();
    for set in &response.sets {
        let (jti, token) = (&set.jti, &set.token);
        let Some(Some(keys)) = state.keys.get(issuers + index) else {
            unrecorded = true;
            break;
        };
        let result = receive_set(
            &state.config,
            settings,
            t,
            keys,
            token.as_bytes(),
            now_secs,
            Source::Poll,
        );
        match result {
            Ok(received) if &received.event.jti != jti => {
                state.metrics.increment(metrics::REVOCATION_EVENT_REJECTED);
                errs.push(set_err(
                    jti,
                    &EventError::Malformed("jti differs from its key in sets".into()),
                ));
            }
            Ok(received) => match apply_received(state, &t.name, &received, now_secs) {
                Ok(()) => acks.push(jti.clone()),
                // Not acknowledged: the transmitter delivers it again.
                Err(()) => unrecorded = true,
            },
            Err(error) => {
                state.metrics.increment(metrics::REVOCATION_EVENT_REJECTED);
                log::warn!(
                    "refused a polled security event token from {:?}: {error}",
                    t.name
                );
                errs.push(set_err(jti, &error));
            }
        }
    }
    for jti in &response.malformed {
        state.metrics.increment(metrics::REVOCATION_EVENT_REJECTED);
        errs.push(set_err(
            jti,
            &EventError::Malformed("not a compact SET string".into()),
        ));
    }
    if let Some(rev) = state.revocation.as_mut() {
        if let Some(slot) = rev.acks.get_mut(index) {
            *slot = acks;
        }
        if let Some(slot) = rev.set_errs.get_mut(index) {
            *slot = errs;
        }
        if let Some(Some(s)) = rev.polls.get_mut(index) {
            let pending = rev.acks.get(index).is_some_and(|a| !a.is_empty())
                || rev.set_errs.get(index).is_some_and(|e| !e.is_empty());
            let more = response.more_available || response.over_cap > 0 || pending;
            s.finished(!unrecorded, more, now_secs);
        }
    }
}

fn set_err(jti: &str, error: &EventError) -> SetErr {
    SetErr::new(jti, error)
}

fn read_poll_body(num_headers: usize, body_size: usize) -> Result<Vec<u8>, String> {
    // After a reset Envoy calls back with no headers and the maps are unavailable.
    if num_headers == 0 {
        return Err("no response (connection reset or timeout)".to_string());
    }
    let status = hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, ":status")
        .ok()
        .flatten()
        .unwrap_or_default();
    if status != b"200" {
        return Err(format!(
            "transmitter answered HTTP {}",
            String::from_utf8_lossy(&status)
        ));
    }
    if body_size > crate::events::MAX_POLL_BODY_BYTES {
        return Err(format!(
            "poll response is {body_size} bytes, over the limit"
        ));
    }
    Ok(
        hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
            .ok()
            .flatten()
            .unwrap_or_default(),
    )
}

/// Creates the set's keys if they are absent, so every later write names a version
/// (a write to an absent key cannot detect a concurrent one).
pub fn initialise_store() {
    let mut keys: Vec<String> = (0..revocation::SHARDS).map(revocation::shard_key).collect();
    keys.extend([
        revocation::HORIZONS_KEY.to_string(),
        revocation::SEEN_KEY.to_string(),
    ]);
    let mut store = HostStore;
    for key in keys {
        if matches!(crate::store::Store::get(&store, &key), Ok(None)) {
            let _ = crate::store::Store::set_if_cas(&mut store, &key, &[1], 0);
        }
    }
    let generation = revocation::GENERATION_KEY;
    if matches!(crate::store::Store::get(&store, generation), Ok(None)) {
        let _ = crate::store::Store::set_if_cas(&mut store, generation, &[0; 8], 0);
    }
}

/// Queues the call that ends `session` at its IdP, when its issuer has one configured.
/// `token` is the session's token (only RFC 7009 sends it).
pub fn queue_idp_call(state: &mut VmState, session: &Session, token: Option<&str>, now_secs: u64) {
    let Some(settings) = &state.config.revocation else {
        return;
    };
    let found =
        (settings.idp_sessions.iter().enumerate()).find(|(_, a)| a.issuer == session.issuer);
    let Some((index, api)) = found else {
        return;
    };
    let Some(call) = end_session_call(index, api, session, token) else {
        log::warn!(
            "cannot end the session at {}: the session lacks what the {:?} API needs",
            api.issuer,
            api.api
        );
        state.metrics.increment(metrics::IDP_SESSION_GAVE_UP);
        return;
    };
    if let Some(rev) = state.revocation.as_mut() {
        if rev.idp_calls.push(call, now_secs).is_some() {
            state.metrics.increment(metrics::IDP_SESSION_GAVE_UP);
            log::error!("too many IdP calls waiting: the oldest was dropped");
        }
    }
}

/// Starts every IdP call that is due. Returns (call token, call, attempts so far).
pub fn start_due_idp_calls(state: &mut VmState, now_secs: u64) -> Vec<(u32, EndSessionCall, u32)> {
    let mut started = Vec::new();
    let config = Rc::clone(&state.config);
    let Some(settings) = &config.revocation else {
        return started;
    };
    let Some(rev) = state.revocation.as_mut() else {
        return started;
    };
    for (call, attempts) in rev.idp_calls.take_due(now_secs) {
        let (Some(api), Some(secret)) = (
            settings.idp_sessions.get(call.api),
            rev.idp_credentials.get(call.api),
        ) else {
            continue;
        };
        let authorization = match &call.credential {
            Credential::Ssws => format!("SSWS {secret}"),
            Credential::Bearer => format!("Bearer {secret}"),
            Credential::Basic { client_id } => {
                let pair = format!("{client_id}:{secret}");
                format!("Basic {}", base64_standard(pair.as_bytes()))
            }
        };
        let mut headers = vec![
            (":method", call.method),
            (":path", call.path.as_str()),
            (":authority", api.authority.as_str()),
            ("accept", "application/json"),
            ("authorization", authorization.as_str()),
        ];
        if call.body.is_some() {
            headers.push(("content-type", "application/x-www-form-urlencoded"));
        }
        let dispatched = hostcalls::dispatch_http_call(
            &api.cluster,
            headers,
            call.body.as_deref().map(str::as_bytes),
            vec![],
            Duration::from_millis(api.timeout_ms),
        );
        match dispatched {
            Ok(token) => started.push((token, call, attempts)),
            Err(status) => {
                log::warn!(
                    "ending {} at {}: dispatch_http_call failed: {status:?}",
                    call.what,
                    api.issuer
                );
                state.metrics.increment(metrics::IDP_SESSION_FAILURE);
                retry_later(rev, &mut state.metrics, call, attempts, now_secs);
            }
        }
    }
    started
}

/// Completes an IdP call inside `on_http_call_response`.
pub fn complete_idp_call(
    state: &mut VmState,
    call: EndSessionCall,
    attempts: u32,
    num_headers: usize,
    now_secs: u64,
) {
    let status = if num_headers == 0 {
        0
    } else {
        hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, ":status")
            .ok()
            .flatten()
            .and_then(|s| std::str::from_utf8(&s).ok()?.parse::<u32>().ok())
            .unwrap_or(0)
    };
    let issuer = (state.config.revocation.as_ref())
        .and_then(|r| r.idp_sessions.get(call.api))
        .map(|a| a.issuer.clone())
        .unwrap_or_default();
    if ended(status) {
        state.metrics.increment(metrics::IDP_SESSION_ENDED);
        log::info!("ended {} at {issuer} (HTTP {status})", call.what);
        return;
    }
    state.metrics.increment(metrics::IDP_SESSION_FAILURE);
    let Some(rev) = state.revocation.as_mut() else {
        return;
    };
    if worth_retrying(status) {
        log::warn!(
            "ending {} at {issuer}: HTTP {status}; trying again",
            call.what
        );
        retry_later(rev, &mut state.metrics, call, attempts, now_secs);
    } else {
        state.metrics.increment(metrics::IDP_SESSION_GAVE_UP);
        log::error!(
            "ending {} at {issuer}: HTTP {status}; not retried (check the API credential and its permissions); the session stays revoked here",
            call.what
        );
    }
}

fn retry_later(
    rev: &mut RevocationState,
    metrics: &mut super::metrics::Metrics,
    call: EndSessionCall,
    attempts: u32,
    now_secs: u64,
) {
    if let Retry::GaveUp(call) = rev.idp_calls.failed(call, attempts, now_secs) {
        metrics.increment(metrics::IDP_SESSION_GAVE_UP);
        log::error!(
            "gave up ending {} at the IdP; the session stays revoked here",
            call.what
        );
    }
}

fn base64_standard(bytes: &[u8]) -> String {
    use ct_codecs::{Base64, Encoder};
    Base64::encode_to_string(bytes).unwrap_or_default()
}

/// Seconds between updates of the size gauges.
pub const GAUGE_EVERY_SECS: u64 = 10;

/// Updates the gauges of the set's size (entries, bytes in shared data).
pub fn update_gauges(state: &mut VmState) {
    let (entries, bytes) = revocation::size(&HostStore);
    state
        .metrics
        .set_gauge(metrics::REVOCATION_ENTRIES, entries as u64);
    state
        .metrics
        .set_gauge(metrics::REVOCATION_STORED_BYTES, bytes as u64);
}
