//! Remote JWKS: fetching with `dispatch_http_call` and applying a response (when to fetch
//! is [`crate::schedule`]'s). A failed or unparsable fetch keeps the last good keys, logs a
//! warning and counts `mfa_gate.jwks_fetch.failure`.

use super::state::VmState;
use crate::config::{Config, RemoteJwks};
use crate::metrics;
use crate::schedule::FetchKind;
use crate::token::jwks::{KeySet, MAX_JWKS_BYTES};
use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType};
use std::time::Duration;

/// Where key source `index` fetches from: issuers first, then transmitters (in order).
fn remote_jwks(config: &Config, index: usize) -> Option<&RemoteJwks> {
    match config.issuers.get(index) {
        Some(issuer) => issuer.remote_jwks.as_ref(),
        None => {
            let transmitters = config
                .revocation
                .as_ref()
                .map(|r| r.transmitters.as_slice());
            let t = transmitters?.get(index - config.issuers.len())?;
            t.remote_jwks.as_ref()
        }
    }
}

/// The name of key source `index` for logs: an issuer's `iss` or a transmitter's name.
fn source_name(config: &Config, index: usize) -> String {
    match config.issuers.get(index) {
        Some(issuer) => format!("issuer {:?}", issuer.verify.issuer),
        None => {
            let transmitters = config
                .revocation
                .as_ref()
                .map(|r| r.transmitters.as_slice());
            let name = transmitters
                .and_then(|t| t.get(index - config.issuers.len()))
                .map_or("?", |t| t.name.as_str());
            format!("transmitter {name:?}")
        }
    }
}

/// Starts a fetch of key source `index`'s JWKS from the current context. Returns the call
/// token.
pub fn dispatch(state: &VmState, index: usize) -> Result<u32, String> {
    let Some(remote) = remote_jwks(&state.config, index) else {
        return Err("key source has no remote_jwks".to_string());
    };
    hostcalls::dispatch_http_call(
        &remote.cluster,
        vec![
            (":method", "GET"),
            (":path", &remote.path),
            (":authority", &remote.authority),
            ("accept", "application/json"),
        ],
        None,
        vec![],
        Duration::from_millis(remote.timeout_ms),
    )
    .map_err(|status| {
        format!(
            "dispatch_http_call to cluster {:?} failed: {status:?}",
            remote.cluster
        )
    })
}

/// Completes a fetch of issuer `index` inside `on_http_call_response`: applies the response
/// and tells the schedule how it ended. Returns true if a new key set was installed.
pub fn complete(
    state: &mut VmState,
    index: usize,
    kind: FetchKind,
    num_headers: usize,
    body_size: usize,
    now_secs: u64,
) -> bool {
    let installed = apply_response(state, index, num_headers, body_size);
    state.schedule.finished(index, kind, installed, now_secs);
    installed
}

/// Reads the current http-call response (inside `on_http_call_response`) and applies it to
/// issuer `index`. Returns true if a new key set was installed.
fn apply_response(state: &mut VmState, index: usize, num_headers: usize, body_size: usize) -> bool {
    let result = read_key_set(num_headers, body_size);
    let issuer = source_name(&state.config, index);
    match result {
        Ok(mut keys) => {
            if let Some(issuer) = state.config.issuers.get(index) {
                issuer.add_secret(&mut keys);
            }
            log::info!("jwks for {issuer}: {} keys loaded", keys.len());
            if let Some(slot) = state.keys.get_mut(index) {
                let had_keys = slot.is_some();
                *slot = Some(keys);
                // Keys may have been removed (rotation or compromise): re-verify sessions.
                if had_keys {
                    state.cache.clear();
                }
            }
            state.metrics.increment(metrics::JWKS_FETCH_SUCCESS);
            true
        }
        Err(why) => {
            let kept = state.keys.get(index).is_some_and(Option::is_some);
            log::warn!(
                "jwks fetch for {issuer} failed: {why}; {}",
                if kept {
                    "keeping the last good keys"
                } else {
                    "no keys loaded yet"
                }
            );
            state.metrics.increment(metrics::JWKS_FETCH_FAILURE);
            false
        }
    }
}

fn read_key_set(num_headers: usize, body_size: usize) -> Result<KeySet, String> {
    // After a reset Envoy calls back with (0, 0, 0) and the response maps are unavailable:
    // reading them would answer BadArgument, which the SDK turns into a panic.
    if num_headers == 0 {
        return Err("no response (connection reset)".to_string());
    }
    let status = hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, ":status")
        .ok()
        .flatten();
    let Some(status) = status else {
        return Err("no response (connection reset)".to_string());
    };
    let status = String::from_utf8_lossy(&status).into_owned();
    if status != "200" {
        return Err(format!("key server answered HTTP {status}"));
    }
    if body_size > MAX_JWKS_BYTES {
        return Err(format!(
            "response is {body_size} bytes; the limit is {MAX_JWKS_BYTES}"
        ));
    }
    let body = hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
        .ok()
        .flatten()
        .unwrap_or_default();
    KeySet::from_jwks_json(&body).map_err(|e| format!("unusable JWKS: {e}"))
}
