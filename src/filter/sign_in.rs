//! The sign-in's own paths in the glue: the callback (checked by the pure
//! [`crate::sign_in::callback`], then the code exchanged with `dispatch_http_call`) and the
//! logout. Each outcome is logged (reason codes only, never a token or cookie) and counted.

use super::clock;
use super::introspection::Trusted;
use super::local_reply;
use super::shared_data::HostStore;
use super::state::VmState;
use crate::metrics;
use crate::request::RequestView;
use crate::response::LocalReply;
use crate::sign_in::callback::{self, CallbackStep};
use crate::sign_in::exchange::{self, TokenAnswer};
use crate::sign_in::state::PendingSignIn;
use crate::sign_in::{path_of, SignInPath, MAX_TOKEN_ANSWER_BYTES};
use proxy_wasm::hostcalls;
use proxy_wasm::types::{Action, BufferType, MapType};
use std::time::Duration;

/// A code exchange in flight: its call token and the sign-in it finishes.
pub struct Exchanging {
    pub token: u32,
    pub pending: PendingSignIn,
}

/// What a request to a sign-in path leads to.
pub enum Started {
    /// Answered now.
    Answered(Action),
    /// Waiting for the token endpoint.
    Exchanging(Exchanging),
}

fn send(context_id: u32, reply: &LocalReply) -> Action {
    if !local_reply::send(reply) {
        log::warn!(
            "[ctx {context_id}] host refused the local reply {}",
            reply.status
        );
    }
    Action::Pause
}

fn log_outcome(context_id: u32, event: &str, reason: Option<&str>, level: Option<&str>) {
    let mut line = format!("[ctx {context_id}] sign_in {{\"event\":\"{event}\"");
    if let Some(reason) = reason {
        line.push_str(",\"reason\":");
        crate::json::json_str(&mut line, reason);
    }
    if let Some(level) = level {
        line.push_str(",\"level\":");
        crate::json::json_str(&mut line, level);
    }
    line.push('}');
    log::info!("{line}");
}

/// A request for the callback or logout path: answered, or the code exchange started.
/// `None` when the request is for another path (or sign-in is not configured).
pub fn start(state: &mut VmState, context_id: u32, view: &dyn RequestView) -> Option<Started> {
    let config = std::rc::Rc::clone(&state.config);
    let sign_in = config.sign_in.as_ref()?;
    let secrets = sign_in.secrets.as_ref()?;
    let target = view.header(":path").unwrap_or_default();
    match path_of(sign_in, target)? {
        SignInPath::Logout => {
            state.metrics.increment(metrics::SIGN_IN_SIGNED_OUT);
            log_outcome(context_id, "signed_out", None, None);
            Some(Started::Answered(send(
                context_id,
                &callback::logout(sign_in),
            )))
        }
        SignInPath::Callback => {
            let now = clock::now_secs();
            let skew =
                (config.issuers.get(sign_in.issuer)).map_or(60, |i| i.verify.clock_skew_secs);
            match callback::callback(sign_in, secrets, view, &mut HostStore, now, skew) {
                CallbackStep::Refuse { reason, reply } => {
                    state.metrics.increment(metrics::SIGN_IN_REFUSED);
                    log_outcome(context_id, "refused", Some(&reason), None);
                    Some(Started::Answered(send(context_id, &reply)))
                }
                CallbackStep::Exchange(call) => {
                    let endpoint = &sign_in.token_endpoint;
                    let mut headers: Vec<(&str, &str)> = vec![
                        (":method", "POST"),
                        (":path", &endpoint.path),
                        (":authority", &endpoint.authority),
                    ];
                    headers.extend(call.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                    let dispatched = hostcalls::dispatch_http_call(
                        &endpoint.cluster,
                        headers,
                        Some(&call.body),
                        Vec::new(),
                        Duration::from_millis(endpoint.timeout_ms),
                    );
                    match dispatched {
                        Ok(token) => Some(Started::Exchanging(Exchanging {
                            token,
                            pending: call.pending,
                        })),
                        Err(status) => {
                            log::warn!(
                                "[ctx {context_id}] cannot call the token endpoint (cluster {}): {status:?}",
                                endpoint.cluster
                            );
                            Some(Started::Answered(finish(
                                state,
                                context_id,
                                &call.pending,
                                TokenAnswer::Unavailable,
                            )))
                        }
                    }
                }
            }
        }
    }
}

/// The token endpoint answered (`num_headers` 0 and no body when the call failed): the
/// sign-in is finished or refused, and the browser answered.
pub fn answered(
    state: &mut VmState,
    context_id: u32,
    pending: &PendingSignIn,
    num_headers: usize,
    body_size: usize,
) -> Action {
    let status = hostcalls::get_map_value(MapType::HttpCallResponseHeaders, ":status")
        .ok()
        .flatten()
        .and_then(|s| s.parse::<u32>().ok());
    let answer_body = if body_size > MAX_TOKEN_ANSWER_BYTES {
        // Read one byte past the cap: the pure code calls it too large.
        hostcalls::get_buffer(
            BufferType::HttpCallResponseBody,
            0,
            MAX_TOKEN_ANSWER_BYTES + 1,
        )
    } else {
        hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
    };
    let body = answer_body.ok().flatten().unwrap_or_default();
    let answer = match status {
        Some(status) if num_headers > 0 => TokenAnswer::Answered {
            status,
            body: &body,
        },
        _ => TokenAnswer::Unavailable,
    };
    finish(state, context_id, pending, answer)
}

fn finish(
    state: &mut VmState,
    context_id: u32,
    pending: &PendingSignIn,
    answer: TokenAnswer<'_>,
) -> Action {
    let config = std::rc::Rc::clone(&state.config);
    let Some(sign_in) = config.sign_in.as_ref() else {
        return Action::Continue;
    };
    let Some(secrets) = sign_in.secrets.as_ref() else {
        return Action::Continue;
    };
    let trust = crate::engine::trust(&config);
    let now = clock::now_secs();
    // The ID token's session is shared like a request's: every VM then serves the cookie.
    let trusted = Trusted {
        keys: &state.keys,
        answers: None,
        sessions: state.shared_sessions.as_ref(),
    };
    let finished = exchange::finish(
        sign_in,
        secrets,
        pending,
        answer,
        &trust,
        &trusted,
        &mut state.cache,
        now,
    );
    match &finished.failure {
        None => {
            state.metrics.increment(metrics::SIGN_IN_COMPLETED);
            log_outcome(context_id, "completed", None, finished.level);
        }
        Some(reason) => {
            state.metrics.increment(metrics::SIGN_IN_FAILED);
            log_outcome(context_id, "failed", Some(reason), None);
        }
    }
    send(context_id, &finished.reply)
}
