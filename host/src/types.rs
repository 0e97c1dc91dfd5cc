//! Plain data types shared by the runtime core and its users (`replay`, the tests).
//!
//! CONTRACT between the runtime core (lib/runtime) and its users (replay, the tests):
//! change a type here only in a way both sides are updated for.

use std::collections::BTreeMap;
use std::sync::Arc;

/// A header list in wire order; names and values are raw bytes (names lower-case).
pub type HeaderList = Vec<(Vec<u8>, Vec<u8>)>;

/// What Envoy's `failure_policy` does when a worker's VM has trapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailurePolicy {
    /// Later streams on that worker get 503, details `wasm_fail_stream` (Envoy's default).
    #[default]
    FailClosed,
    /// Later streams on that worker bypass the filter.
    FailOpen,
}

/// Which clock the time hostcalls, WASI clocks and ticks follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockMode {
    /// A virtual clock that starts at this Unix time (ms) and moves only when advanced.
    Virtual { start_unix_ms: u64 },
    /// The system clock.
    Real,
}

/// Facts about the downstream TLS peer, for `connection.*` properties.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerCertificate {
    pub mtls: bool,
    pub sha256_digest: Option<String>,
    pub uri_san: Option<String>,
    pub subject: Option<String>,
}

/// One downstream request as Envoy's HCM hands it to the filter chain.
#[derive(Debug, Clone, Default)]
pub struct DownstreamRequest {
    /// Full header list including pseudo-headers (`:method`, `:path`, `:authority`, `:scheme`).
    /// The runtime adds `x-forwarded-proto` and `x-request-id` if missing, as HCM does.
    pub headers: HeaderList,
    pub body: Vec<u8>,
    pub trailers: HeaderList,
    /// Dynamic metadata `filter_metadata` as JSON: `{"<filter name>": {<Struct as JSON>}}`.
    pub filter_metadata: serde_json::Map<String, serde_json::Value>,
    /// `ip:port`.
    pub source_address: Option<String>,
    pub destination_address: Option<String>,
    pub peer: PeerCertificate,
    /// `xds.route_name` / `xds.cluster_name`.
    pub route_name: Option<String>,
    pub cluster_name: Option<String>,
}

/// A response, from an upstream or a local reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: HeaderList,
    pub body: Vec<u8>,
    pub trailers: HeaderList,
}

/// The request as the upstream receives it (after the filter's changes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamRequest {
    pub headers: HeaderList,
    pub body: Vec<u8>,
    pub trailers: HeaderList,
}

/// The router: forwards an allowed request. `replay` implements it with canned answers,
/// tests with closures.
pub trait Upstream {
    /// Returns the upstream's response, or an error text (answered 503 as Envoy's router does).
    fn forward(&mut self, request: &UpstreamRequest) -> Result<HttpResponse, String>;
}

impl<F> Upstream for F
where
    F: FnMut(&UpstreamRequest) -> Result<HttpResponse, String>,
{
    fn forward(&mut self, request: &UpstreamRequest) -> Result<HttpResponse, String> {
        self(request)
    }
}

/// A log line the filter (or the host about the filter) emitted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LogLine {
    /// trace, debug, info, warn, error, critical.
    pub level: &'static str,
    /// The context id that was current (0 = VM, root id, or stream id).
    pub context_id: u32,
    /// Which worker VM.
    pub worker: usize,
    /// The text (shared: a stream's copy and the host's store hold the same line).
    pub message: Arc<str>,
}

/// Everything one stream did.
#[derive(Debug, Clone, Default)]
pub struct Exchange {
    /// What the downstream client received.
    pub response: HttpResponse,
    /// Local reply details (`wasm_fail_stream`, the filter's own details), if a local reply.
    pub response_code_details: Option<String>,
    /// The request as the upstream saw it; None if it never reached the upstream.
    pub upstream_request: Option<UpstreamRequest>,
    /// Log lines emitted while this stream was processed (any context on that worker).
    pub logs: Vec<LogLine>,
    /// Which worker handled it.
    pub worker: usize,
}

/// Metric values by Envoy stat name without the `wasmcustom.` prefix.
pub type MetricSnapshot = BTreeMap<String, i64>;

/// A request the filter made with `dispatch_http_call`, as a cluster receives it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterRequest {
    pub cluster: String,
    pub headers: HeaderList,
    pub body: Vec<u8>,
    pub trailers: HeaderList,
    pub timeout_ms: u64,
}

/// How a cluster answers one call (in-process clusters; injectable faults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterReply {
    /// A normal response (any status).
    Response(HttpResponse),
    /// Answer after this many (virtual or real) milliseconds; past the call's timeout → 504.
    Delayed {
        delay_ms: u64,
        response: HttpResponse,
    },
    /// Connection refused → Envoy's router answers 503.
    ConnectFailure,
    /// Stream reset → on_http_call_response(0,0,0), get_status BrokenConnection.
    Reset,
    /// Never answers → 504 after the call's timeout (or never, if timeout is 0).
    NoAnswer,
}

/// A unary gRPC call the filter made with `proxy_grpc_call`, as a gRPC cluster receives it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrpcCall {
    /// The cluster named by the call (the plain name, or the `envoy_grpc.cluster_name` of a
    /// serialized `GrpcService`).
    pub cluster: String,
    /// The fully qualified service name, e.g. `mfa.v1.Push`.
    pub service: String,
    pub method: String,
    /// The call's initial metadata (request headers) in the filter's order.
    pub initial_metadata: HeaderList,
    /// The request message, without the 5-byte gRPC frame header.
    pub message: Vec<u8>,
    /// 0 = none.
    pub timeout_ms: u64,
}

/// How a gRPC cluster answers one unary call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrpcReply {
    /// The call succeeds with this response message after `delay_ms` (past the call's
    /// timeout it fails as a timeout instead).
    Message { bytes: Vec<u8>, delay_ms: u64 },
    /// The server closes the call with this `grpc-status` and `grpc-message`. Code 0 without a
    /// message is what Envoy calls an Internal (13) failure with an empty message.
    Status {
        code: u32,
        message: String,
        delay_ms: u64,
    },
    /// Never answers: the call fails when its timeout fires (never, if the timeout is 0).
    NoAnswer,
    /// The cluster cannot be connected: UNAVAILABLE (14) with Envoy's connect-failure text.
    Unreachable,
}

impl GrpcReply {
    /// A response message at once.
    pub fn message(bytes: &[u8]) -> GrpcReply {
        GrpcReply::Message {
            bytes: bytes.to_vec(),
            delay_ms: 0,
        }
    }

    /// A failure status at once.
    pub fn status(code: u32, message: &str) -> GrpcReply {
        GrpcReply::Status {
            code,
            message: message.to_string(),
            delay_ms: 0,
        }
    }
}
