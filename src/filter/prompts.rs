//! One push endpoint stream: the request (and its body, up to the cap) handed to
//! [`crate::push_endpoint`], its [`Next`] carried out (forward, local reply, or a
//! `ShouldRateLimit` call to the rate-limit service, then decide again), and the provider's
//! answer read back for the prompt's outcome. Holds no decisions: every one is made in the
//! pure module, natively tested.

use super::clock;
use super::local_reply;
use super::shared_data::HostStore;
use super::state::VmState;
use crate::prompts::record::PromptRecord;
use crate::prompts::{Matched, PromptSettings};
use crate::push_endpoint::{self, Decided, Forwarded, Held};
use crate::request::RequestView;
use crate::wire::rls;
use proxy_wasm::hostcalls;
use proxy_wasm::types::{Action, BufferType, LogLevel, MapType};
use std::time::Duration;

/// Largest provider answer read for its outcome, bytes (the rest passes unread).
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Where a push endpoint stream is.
#[derive(Debug)]
pub enum PushStream {
    /// Waiting for the request body.
    Body { matched: Matched },
    /// Waiting for the rate-limit service (call token).
    Asking { token: u32, held: Held },
    /// Forwarded: reading the provider's answer.
    Forwarded {
        forwarded: Forwarded,
        status: u16,
        body: Vec<u8>,
        overflow: bool,
    },
}

/// The push endpoint the request is for, if any (its `:path` as sent and as the upstream
/// would serve it: see [`crate::prompts::classify`]).
pub fn classify(settings: &PromptSettings, view: &dyn RequestView) -> Option<Matched> {
    let method = view.header(":method").unwrap_or_default();
    let target = view.header(":path").unwrap_or_default();
    crate::prompts::classify(settings, method, target)
}

/// The client's address without its port (`source.address`), when the host gives it.
pub fn client_address() -> Option<Vec<u8>> {
    let address = hostcalls::get_property(vec!["source", "address"])
        .ok()
        .flatten()?;
    push_endpoint::address_without_port(&address).map(<[u8]>::to_vec)
}

/// Judges a push endpoint request whose body is `body` (complete).
pub fn start(state: &VmState, matched: &Matched, view: &dyn RequestView, body: &[u8]) -> Decided {
    let Some(settings) = state.config.push_prompts.as_ref() else {
        return Decided::pass();
    };
    let client = client_address();
    push_endpoint::start(
        settings,
        matched,
        view,
        body,
        client.as_deref(),
        clock::now_secs(),
        &mut HostStore,
    )
}

/// A body over the cap: refused without reading it.
pub fn too_large(state: &VmState, matched: &Matched) -> Decided {
    match state.config.push_prompts.as_ref() {
        Some(settings) => push_endpoint::body_too_large(settings, matched),
        None => Decided::pass(),
    }
}

/// Starts the rate-limit service call; `Err` with the reason when the host refuses it.
pub fn ask(question: &push_endpoint::Question) -> Result<u32, &'static str> {
    hostcalls::dispatch_grpc_call(
        &question.cluster,
        rls::SERVICE,
        rls::METHOD,
        Vec::new(),
        Some(&question.message),
        Duration::from_millis(question.timeout_ms),
    )
    .map_err(|_| "rls_dispatch_refused")
}

/// Decides a held prompt on the service's answer (`status_code` 0: the message is in the
/// gRPC receive buffer).
pub fn answered(state: &VmState, held: Held, status_code: u32, size: usize) -> Decided {
    let answer = if status_code == 0 {
        let bytes = if size > rls::MAX_ANSWER_BYTES {
            None
        } else {
            hostcalls::get_buffer(BufferType::GrpcReceiveBuffer, 0, size)
                .ok()
                .flatten()
        };
        match bytes {
            Some(bytes) => rls::decode_answer(&bytes).map_err(rls::AnswerError::code),
            None if size > rls::MAX_ANSWER_BYTES => Err("rls_answer_too_large"),
            None => rls::decode_answer(&[]).map_err(rls::AnswerError::code),
        }
    } else {
        Err(push_endpoint::grpc_failure(status_code))
    };
    let Some(settings) = state.config.push_prompts.as_ref() else {
        return Decided::pass();
    };
    push_endpoint::after_service(settings, held, answer, clock::now_secs(), &mut HostStore)
}

/// Decides a held prompt whose service call could not start (`code`: why).
pub fn unasked(state: &VmState, held: Held, code: &'static str) -> Decided {
    let Some(settings) = state.config.push_prompts.as_ref() else {
        return Decided::pass();
    };
    push_endpoint::after_service(settings, held, Err(code), clock::now_secs(), &mut HostStore)
}

/// Settles a forwarded request on its provider's answer.
pub fn settle(
    state: &mut VmState,
    context_id: u32,
    forwarded: &Forwarded,
    status: u16,
    body: &[u8],
) {
    // The configuration is shared (an Rc), not copied: the log and metrics need `state`.
    let config = std::rc::Rc::clone(&state.config);
    let Some(settings) = config.push_prompts.as_ref() else {
        return;
    };
    if let Some((record, counters)) = push_endpoint::settle_answer(
        settings,
        forwarded,
        status,
        body,
        clock::now_secs(),
        &mut HostStore,
    ) {
        log_record(state, context_id, &record);
        for counter in counters {
            state.metrics.increment_static(counter);
        }
    }
}

/// Logs a push decision record and bumps its counters.
pub fn account(state: &mut VmState, context_id: u32, decided: &Decided) {
    if let Some(record) = &decided.record {
        log_record(state, context_id, record);
    }
    for &counter in &decided.counters {
        state.metrics.increment_static(counter);
    }
}

fn log_record(state: &mut VmState, context_id: u32, record: &PromptRecord) {
    let line = &mut state.log_line;
    line.clear();
    line.push_str("[ctx ");
    crate::json::push_u64(line, u64::from(context_id));
    line.push_str("] decision ");
    record.write_json(line);
    if hostcalls::log(LogLevel::Info, line).is_err() {
        log::warn!("[ctx {context_id}] cannot log the push decision record");
    }
}

/// Sends a local reply (the prompt never reaches the provider).
pub fn reply(context_id: u32, reply: &crate::response::LocalReply) -> Action {
    if !local_reply::send(reply) {
        log::warn!(
            "[ctx {context_id}] host refused the local reply {}",
            reply.status
        );
    }
    Action::Pause
}

/// The provider's `:status`, 0 when unreadable.
pub fn response_status() -> u16 {
    hostcalls::get_map_value_bytes(MapType::HttpResponseHeaders, ":status")
        .ok()
        .flatten()
        .and_then(|v| std::str::from_utf8(&v).ok()?.parse().ok())
        .unwrap_or(0)
}

/// Appends the current response body chunk to `body`, within [`MAX_ANSWER_BYTES`];
/// returns false once the answer is larger (then it is not read for an outcome).
pub fn collect_chunk(body: &mut Vec<u8>, chunk_size: usize) -> bool {
    if body.len().saturating_add(chunk_size) > MAX_ANSWER_BYTES {
        return false;
    }
    if chunk_size == 0 {
        return true;
    }
    match hostcalls::get_buffer(BufferType::HttpResponseBody, 0, chunk_size) {
        Ok(Some(bytes)) => {
            body.extend_from_slice(&bytes);
            true
        }
        _ => true,
    }
}
