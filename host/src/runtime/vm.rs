//! Per-worker VM state (the wasmtime `Store` data) and the per-stream state hostcalls act on.

use std::collections::HashMap;
use std::sync::Arc;

use wasmtime::{Memory, StoreLimits, StoreLimitsBuilder, TypedFunc};

use crate::clusters::CallOutcome;
use crate::shared::{lock, MetricKind, Shared, StatHandle};
use crate::types::{DownstreamRequest, HeaderList, HttpResponse, LogLine};

/// What a callback may do with a header map or body buffer right now (§3.1 access windows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    None,
    ReadOnly,
    ReadWrite,
}

/// A `proxy_send_local_response` waiting for the callback to return (§3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LocalReply {
    pub status: u32,
    pub body: Vec<u8>,
    pub headers: HeaderList,
    /// 0..=16 only; the SDK's −1 (and anything else) means none.
    pub grpc_status: Option<u32>,
    /// Whitespace already replaced with `_`.
    pub details: String,
}

/// The one HTTP stream a worker is processing.
pub(crate) struct StreamState {
    pub id: u32,
    /// Connection facts, metadata and route info (headers/body/trailers moved into the fields below).
    pub info: DownstreamRequest,
    pub connection_id: u64,
    pub start_unix_ns: u64,
    pub request_headers: HeaderList,
    pub request_headers_access: Access,
    /// The body chunk the filter sees now (or the body it has buffered by pausing).
    pub request_body: Vec<u8>,
    /// Body chunks the filter already let through (Continue), in order.
    pub request_body_passed: Vec<u8>,
    pub request_body_access: Access,
    pub request_trailers: HeaderList,
    pub request_trailers_access: Access,
    /// Response headers with `:status` first, as Envoy hands them to filters.
    pub response_headers: HeaderList,
    pub response_headers_access: Access,
    pub response_body: Vec<u8>,
    pub response_body_passed: Vec<u8>,
    pub response_body_access: Access,
    pub response_trailers: HeaderList,
    pub response_trailers_access: Access,
    pub response_started: bool,
    pub response_code_details: Option<String>,
    pub continue_request: bool,
    pub continue_response: bool,
    pub close: bool,
    pub local_reply: Option<LocalReply>,
    /// Filter state set with `proxy_set_property` (`wasm.<path>` → bytes).
    pub filter_state: HashMap<Vec<u8>, Vec<u8>>,
}

impl StreamState {
    /// The whole request body so far: what was let through, then the current chunk.
    pub(crate) fn request_body_sent(&self) -> Vec<u8> {
        [self.request_body_passed.as_slice(), &self.request_body].concat()
    }

    /// The whole response body so far.
    pub(crate) fn response_body_sent(&self) -> Vec<u8> {
        [self.response_body_passed.as_slice(), &self.response_body].concat()
    }

    pub(crate) fn new(
        id: u32,
        info: DownstreamRequest,
        connection_id: u64,
        start_unix_ns: u64,
    ) -> Self {
        StreamState {
            id,
            info,
            connection_id,
            start_unix_ns,
            request_headers: Vec::new(),
            request_headers_access: Access::None,
            request_body: Vec::new(),
            request_body_passed: Vec::new(),
            request_body_access: Access::None,
            request_trailers: Vec::new(),
            request_trailers_access: Access::None,
            response_headers: Vec::new(),
            response_headers_access: Access::None,
            response_body: Vec::new(),
            response_body_passed: Vec::new(),
            response_body_access: Access::None,
            response_trailers: Vec::new(),
            response_trailers_access: Access::None,
            response_started: false,
            response_code_details: None,
            continue_request: false,
            continue_response: false,
            close: false,
            local_reply: None,
            filter_state: HashMap::new(),
        }
    }

    /// First value of a request header (for properties).
    pub(crate) fn request_header(&self, name: &[u8]) -> Option<&[u8]> {
        self.request_headers
            .iter()
            .find(|(key, _)| key.as_slice() == name)
            .map(|(_, value)| value.as_slice())
    }
}

/// A cluster reply waiting for its delivery time.
pub(crate) struct ScheduledReply {
    /// Unix ms when it is delivered; None = never (no answer, no timeout).
    pub due_ms: Option<u64>,
    pub sequence: u64,
    pub token: u32,
    pub outcome: CallOutcome,
}

/// The `Store` data of one worker VM.
pub(crate) struct VmState {
    pub shared: Arc<Shared>,
    pub worker: usize,
    pub memory: Option<Memory>,
    pub alloc: Option<TypedFunc<i32, i32>>,
    /// During `_initialize`/`main`: only logging and basic WASI calls are allowed.
    pub initializing: bool,
    /// The context hostcalls act on (the callback's, or one set with set_effective_context).
    pub effective_context: u32,
    pub root_context: u32,
    pub next_context: u32,
    /// PluginConfiguration is readable only during on_configure.
    pub in_configure: bool,
    /// Inside on_log: unavailable maps give NotFound instead of BadArgument.
    pub in_log: bool,
    pub stream: Option<StreamState>,
    /// The reply being delivered in on_http_call_response: headers (with `:status`), body, trailers.
    pub call_response: Option<(HeaderList, Vec<u8>, HeaderList)>,
    /// Root context status for `proxy_get_status`.
    pub status_code: u32,
    pub status_message: Vec<u8>,
    pub last_call_token: u32,
    /// The last gRPC call token (cpp-host's next_grpc_call_id_: 1, then 5, 9, 13…).
    pub last_grpc_call_token: u32,
    /// The message being delivered in on_grpc_receive (the GrpcReceiveBuffer).
    pub grpc_receive: Option<Vec<u8>>,
    /// The gRPC call whose end is being delivered (still cancellable, as in Envoy).
    pub grpc_delivering: Option<u32>,
    pub scheduled: Vec<ScheduledReply>,
    pub next_sequence: u64,
    pub tick_period_ms: u64,
    pub next_tick_ms: Option<u64>,
    /// Metric ids of this VM → (kind, resolved stat), indexed by id.
    pub metric_ids: Vec<Option<(MetricKind, StatHandle)>>,
    pub metric_counters: [u32; 3],
    /// Log lines of the stream being handled (also kept in the shared store).
    pub stream_logs: Option<Vec<LogLine>>,
    pub rng_state: u64,
    /// Caps linear memory so a runaway module cannot exhaust the host.
    pub limits: StoreLimits,
}

/// Largest linear memory a VM may grow to (a failed grow makes the module's allocator fail).
pub(crate) const MAX_MEMORY_BYTES: usize = 1 << 30;

impl VmState {
    pub(crate) fn new(shared: Arc<Shared>, worker: usize) -> Self {
        let seed =
            shared.clock.now_unix_ns() ^ ((worker as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        VmState {
            shared,
            worker,
            memory: None,
            alloc: None,
            initializing: false,
            effective_context: 0,
            root_context: 1,
            next_context: 1,
            in_configure: false,
            in_log: false,
            stream: None,
            call_response: None,
            status_code: 0,
            status_message: Vec::new(),
            last_call_token: 0,
            last_grpc_call_token: 1,
            grpc_receive: None,
            grpc_delivering: None,
            scheduled: Vec::new(),
            next_sequence: 0,
            tick_period_ms: 0,
            next_tick_ms: None,
            metric_ids: Vec::new(),
            metric_counters: [0; 3],
            stream_logs: None,
            rng_state: seed,
            limits: StoreLimitsBuilder::new()
                .memory_size(MAX_MEMORY_BYTES)
                .build(),
        }
    }

    /// Allocates the next context id (one counter per VM; 0 is the VM context).
    pub(crate) fn allocate_context_id(&mut self) -> u32 {
        let id = self.next_context;
        self.next_context = self.next_context.wrapping_add(1).max(1);
        id
    }

    /// Records a log line for the effective context.
    pub(crate) fn log(&mut self, level: &'static str, message: String) {
        let line = LogLine {
            level,
            context_id: self.effective_context,
            worker: self.worker,
            message: message.into(),
        };
        if let Some(stream_logs) = self.stream_logs.as_mut() {
            stream_logs.push(line.clone());
        }
        lock(&self.shared.logs).push(line);
    }

    /// The stream, if the effective context is that stream.
    pub(crate) fn active_stream(&self) -> Option<&StreamState> {
        self.stream
            .as_ref()
            .filter(|stream| stream.id == self.effective_context)
    }

    pub(crate) fn active_stream_mut(&mut self) -> Option<&mut StreamState> {
        let effective = self.effective_context;
        self.stream.as_mut().filter(|stream| stream.id == effective)
    }

    /// Next pseudo-random 64 bits (splitmix64; WASI random_get and x-request-id).
    pub(crate) fn next_random(&mut self) -> u64 {
        self.rng_state = self.rng_state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng_state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Schedules a cluster reply `delay_ms` from now (None = never).
    pub(crate) fn schedule_reply(
        &mut self,
        token: u32,
        delay_ms: Option<u64>,
        outcome: CallOutcome,
    ) {
        let now = self.shared.clock.now_unix_ms();
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        self.scheduled.push(ScheduledReply {
            due_ms: delay_ms.map(|delay| now.saturating_add(delay)),
            sequence,
            token,
            outcome,
        });
    }

    /// Drops the pending reply of a call (a cancelled gRPC call); false if none is pending.
    pub(crate) fn cancel_scheduled(&mut self, token: u32) -> bool {
        let before = self.scheduled.len();
        self.scheduled.retain(|reply| reply.token != token);
        self.scheduled.len() != before
    }

    /// Index of the earliest reply due at or before `now_ms`.
    pub(crate) fn due_reply(&self, now_ms: u64) -> Option<usize> {
        self.scheduled
            .iter()
            .enumerate()
            .filter(|(_, reply)| reply.due_ms.is_some_and(|due| due <= now_ms))
            .min_by_key(|(_, reply)| (reply.due_ms, reply.sequence))
            .map(|(index, _)| index)
    }

    /// When the next reply that will ever arrive is due.
    pub(crate) fn next_reply_due(&self) -> Option<u64> {
        self.scheduled.iter().filter_map(|reply| reply.due_ms).min()
    }
}

/// Builds the HttpCallResponse view of a cluster response: `:status` first.
pub(crate) fn response_header_map(response: &HttpResponse) -> HeaderList {
    let mut headers = Vec::with_capacity(response.headers.len() + 1);
    headers.push((
        b":status".to_vec(),
        response.status.to_string().into_bytes(),
    ));
    headers.extend(
        response
            .headers
            .iter()
            .filter(|(name, _)| name.as_slice() != b":status")
            .cloned(),
    );
    headers
}
