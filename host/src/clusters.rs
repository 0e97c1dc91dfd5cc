//! Clusters that `proxy_http_call` (dispatch_http_call) and `proxy_grpc_call`
//! (dispatch_grpc_call) can name, and how a call's reply is made into what Envoy hands the
//! filter (§3.3).

use std::collections::HashMap;
use std::fmt;

use crate::types::{ClusterReply, ClusterRequest, GrpcCall, GrpcReply, HttpResponse};

/// What a cluster name maps to.
pub enum Cluster {
    /// In-process answers (tests): closures, canned replies, injected faults.
    Handler(Box<dyn FnMut(&ClusterRequest) -> ClusterReply + Send>),
    /// A real HTTP/1.1 upstream on loopback, `"127.0.0.1:port"`.
    Http { address: String },
    /// An in-process gRPC service for `proxy_grpc_call` (unary calls). The HTTP clusters above
    /// do not speak gRPC: a gRPC call naming one is answered as if the cluster were unknown.
    Grpc(Box<dyn FnMut(&GrpcCall) -> GrpcReply + Send>),
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cluster::Handler(_) => f.write_str("Cluster::Handler(..)"),
            Cluster::Http { address } => write!(f, "Cluster::Http {{ address: {address:?} }}"),
            Cluster::Grpc(_) => f.write_str("Cluster::Grpc(..)"),
        }
    }
}

impl Cluster {
    /// A handler cluster that always answers `status` with `body` (and no extra headers).
    pub fn fixed(status: u16, body: &[u8]) -> Cluster {
        let response = HttpResponse {
            status,
            body: body.to_vec(),
            ..HttpResponse::default()
        };
        Cluster::Handler(Box::new(move |_| ClusterReply::Response(response.clone())))
    }

    /// A gRPC cluster that always gives `reply`.
    pub fn grpc_fixed(reply: GrpcReply) -> Cluster {
        Cluster::Grpc(Box::new(move |_| reply.clone()))
    }
}

struct ClusterEntry {
    cluster: Cluster,
    calls: usize,
}

/// The named clusters a host knows, with how many calls each received.
#[derive(Default)]
pub struct Clusters {
    entries: HashMap<String, ClusterEntry>,
}

impl fmt::Debug for Clusters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&String> = self.entries.keys().collect();
        names.sort();
        f.debug_struct("Clusters").field("names", &names).finish()
    }
}

impl Clusters {
    /// No clusters: every `dispatch_http_call` gets BadArgument (unknown cluster).
    pub fn new() -> Self {
        Clusters::default()
    }

    /// Adds (or replaces) a cluster by name.
    pub fn add(&mut self, name: &str, cluster: Cluster) {
        self.entries
            .insert(name.to_string(), ClusterEntry { cluster, calls: 0 });
    }

    /// Builder form of [`Clusters::add`].
    pub fn with(mut self, name: &str, cluster: Cluster) -> Self {
        self.add(name, cluster);
        self
    }

    /// How many calls the named cluster received (0 if unknown).
    pub fn call_count(&self, name: &str) -> usize {
        self.entries.get(name).map(|entry| entry.calls).unwrap_or(0)
    }

    /// A cluster `proxy_http_call` can name (gRPC clusters too: Envoy's clusters are one set).
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// A cluster that serves gRPC calls.
    pub(crate) fn contains_grpc(&self, name: &str) -> bool {
        self.entries
            .get(name)
            .is_some_and(|entry| matches!(entry.cluster, Cluster::Grpc(_)))
    }

    /// Counts the call and has the gRPC cluster answer it (Unreachable if it is not one).
    pub(crate) fn dispatch_grpc(&mut self, call: &GrpcCall) -> GrpcReply {
        let Some(entry) = self.entries.get_mut(&call.cluster) else {
            return GrpcReply::Unreachable;
        };
        match &mut entry.cluster {
            Cluster::Grpc(handler) => {
                entry.calls += 1;
                handler(call)
            }
            Cluster::Handler(_) | Cluster::Http { .. } => GrpcReply::Unreachable,
        }
    }

    /// Counts the call; an in-process cluster answers at once, an HTTP cluster names the address
    /// to call (outside the clusters lock, so one slow upstream does not block other workers).
    pub(crate) fn dispatch(&mut self, request: &ClusterRequest) -> Dispatch {
        let Some(entry) = self.entries.get_mut(&request.cluster) else {
            return Dispatch::Reply(ClusterReply::ConnectFailure);
        };
        entry.calls += 1;
        match &mut entry.cluster {
            Cluster::Handler(handler) => Dispatch::Reply(handler(request)),
            Cluster::Http { address } => Dispatch::Http(address.clone()),
            // An HTTP/1.1 request to a gRPC service: the connection is refused.
            Cluster::Grpc(_) => Dispatch::Reply(ClusterReply::ConnectFailure),
        }
    }
}

/// How a dispatched call is answered.
pub(crate) enum Dispatch {
    Reply(ClusterReply),
    /// Send it to this HTTP/1.1 address.
    Http(String),
}

/// What the filter finally receives for one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CallOutcome {
    /// `on_http_call_response(root, token, headers, body, trailers)` with these.
    Response(HttpResponse),
    /// AsyncClient onFailure: `(0, 0, 0)` and get_status = (11, "reset").
    Reset,
    /// gRPC onSuccessRaw: `proxy_on_grpc_receive(root, token, size)`, the message in the
    /// GrpcReceiveBuffer.
    GrpcMessage(Vec<u8>),
    /// gRPC onFailure: `proxy_on_grpc_close(root, token, code)`, get_status = (code, message).
    GrpcClose { code: u32, message: String },
}

/// Envoy router's answer when the call's timeout fires first.
pub(crate) fn timeout_response() -> HttpResponse {
    text_response(504, "upstream request timeout")
}

/// Envoy router's answer when the cluster cannot be connected.
pub(crate) fn connect_failure_response() -> HttpResponse {
    text_response(
        503,
        "upstream connect error or disconnect/reset before headers. reset reason: remote connection failure",
    )
}

/// A router-style local reply: content-length and content-type text/plain.
pub(crate) fn text_response(status: u16, body: &str) -> HttpResponse {
    HttpResponse {
        status,
        headers: vec![
            (
                b"content-length".to_vec(),
                body.len().to_string().into_bytes(),
            ),
            (b"content-type".to_vec(), b"text/plain".to_vec()),
        ],
        body: body.as_bytes().to_vec(),
        trailers: Vec::new(),
    }
}

/// Envoy's router adds `x-envoy-upstream-service-time` (milliseconds) to every response an
/// upstream sent, not to its own replies (timeout, connect failure).
pub(crate) fn with_service_time(mut response: HttpResponse, elapsed_ms: u64) -> HttpResponse {
    if response != timeout_response() && response != connect_failure_response() {
        response.headers.push((
            b"x-envoy-upstream-service-time".to_vec(),
            elapsed_ms.to_string().into_bytes(),
        ));
    }
    response
}

/// When a reply is delivered (relative to the call) and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlannedReply {
    /// Milliseconds after the call; None = never.
    pub delay_ms: Option<u64>,
    pub outcome: CallOutcome,
}

/// Applies the call timeout (0 = none) to a cluster's reply, as Envoy's router would.
pub(crate) fn plan_reply(reply: ClusterReply, timeout_ms: u64) -> PlannedReply {
    let timeout = (timeout_ms > 0).then_some(timeout_ms);
    let timed_out = |delay: u64| match timeout {
        Some(limit) if delay >= limit => Some(limit),
        _ => None,
    };
    match reply {
        ClusterReply::Response(response) => PlannedReply {
            delay_ms: Some(0),
            outcome: CallOutcome::Response(with_service_time(response, 0)),
        },
        ClusterReply::Delayed { delay_ms, response } => match timed_out(delay_ms) {
            Some(limit) => PlannedReply {
                delay_ms: Some(limit),
                outcome: CallOutcome::Response(timeout_response()),
            },
            None => PlannedReply {
                delay_ms: Some(delay_ms),
                outcome: CallOutcome::Response(with_service_time(response, delay_ms)),
            },
        },
        ClusterReply::ConnectFailure => PlannedReply {
            delay_ms: Some(0),
            outcome: CallOutcome::Response(connect_failure_response()),
        },
        ClusterReply::Reset => PlannedReply {
            delay_ms: Some(0),
            outcome: CallOutcome::Reset,
        },
        ClusterReply::NoAnswer => PlannedReply {
            delay_ms: timeout,
            outcome: CallOutcome::Response(timeout_response()),
        },
    }
}

/// gRPC status codes the host's own failures use.
pub(crate) mod grpc_status {
    /// Envoy's AsyncRequestImpl::onRemoteClose: status 0 without a response message.
    pub const INTERNAL: u32 = 13;
    /// The cluster cannot be connected (the router's 503 local reply, as a gRPC status).
    pub const UNAVAILABLE: u32 = 14;
}

/// The call's timeout fired first: Envoy's router answers its own 504 "upstream request
/// timeout", which the async client's local reply turns into gRPC: grpc-status from
/// Grpc::Utility::httpToGrpcStatus(504) = UNAVAILABLE (not DEADLINE_EXCEEDED), grpc-message
/// the body with the response code details in braces *(Envoy 1.40, seen by the real-Envoy
/// conformance test)*.
pub(crate) fn grpc_timeout() -> CallOutcome {
    CallOutcome::GrpcClose {
        code: GRPC_TIMEOUT_STATUS,
        message: "upstream request timeout{response_timeout}".to_string(),
    }
}

/// The grpc-status Envoy 1.40 gives a unary call whose timeout fired.
pub(crate) const GRPC_TIMEOUT_STATUS: u32 = grpc_status::UNAVAILABLE;

/// The cluster refused the connection: the router's 503 local reply as a gRPC status, its
/// details in braces *(Envoy 1.40's wording)*.
pub(crate) fn grpc_unreachable() -> CallOutcome {
    CallOutcome::GrpcClose {
        code: grpc_status::UNAVAILABLE,
        message: format!(
            "{}{{upstream_reset_before_response_started{{remote_connection_failure|delayed_connect_error:_Connection_refused}}}}",
            String::from_utf8_lossy(&connect_failure_response().body)
        ),
    }
}

/// Applies the call timeout (0 = none) to a gRPC cluster's reply, as Envoy's gRPC async
/// client and router would (source/common/grpc/async_client_impl.cc, AsyncRequestImpl).
pub(crate) fn plan_grpc_reply(reply: GrpcReply, timeout_ms: u64) -> PlannedReply {
    let timeout = (timeout_ms > 0).then_some(timeout_ms);
    let at = |delay: u64, outcome: CallOutcome| match timeout {
        Some(limit) if delay >= limit => PlannedReply {
            delay_ms: Some(limit),
            outcome: grpc_timeout(),
        },
        _ => PlannedReply {
            delay_ms: Some(delay),
            outcome,
        },
    };
    match reply {
        GrpcReply::Message { bytes, delay_ms } => at(delay_ms, CallOutcome::GrpcMessage(bytes)),
        // grpc-status 0 with no message: onFailure(Internal, "").
        GrpcReply::Status {
            code: 0, delay_ms, ..
        } => at(
            delay_ms,
            CallOutcome::GrpcClose {
                code: grpc_status::INTERNAL,
                message: String::new(),
            },
        ),
        GrpcReply::Status {
            code,
            message,
            delay_ms,
        } => at(delay_ms, CallOutcome::GrpcClose { code, message }),
        GrpcReply::NoAnswer => PlannedReply {
            delay_ms: timeout,
            outcome: grpc_timeout(),
        },
        GrpcReply::Unreachable => PlannedReply {
            delay_ms: Some(0),
            outcome: grpc_unreachable(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // §3.3: timeout → 504, delayed past timeout → 504 at the timeout, no timeout = wait forever.
    #[test]
    fn plan_applies_timeout() {
        let ok = HttpResponse {
            status: 200,
            ..HttpResponse::default()
        };
        let late = plan_reply(
            ClusterReply::Delayed {
                delay_ms: 500,
                response: ok.clone(),
            },
            100,
        );
        assert_eq!(late.delay_ms, Some(100));
        assert_eq!(late.outcome, CallOutcome::Response(timeout_response()));
        let early = plan_reply(
            ClusterReply::Delayed {
                delay_ms: 50,
                response: ok.clone(),
            },
            100,
        );
        assert_eq!(
            early.outcome,
            CallOutcome::Response(with_service_time(ok.clone(), 50))
        );
        assert_eq!(plan_reply(ClusterReply::NoAnswer, 0).delay_ms, None);
        assert_eq!(
            plan_reply(ClusterReply::Reset, 0).outcome,
            CallOutcome::Reset
        );
    }

    // A gRPC message late past the timeout fails at the timeout; status 0 without a message is
    // Internal; no answer and no timeout waits forever.
    #[test]
    fn grpc_plan_applies_timeout_and_status_rules() {
        let late = plan_grpc_reply(
            GrpcReply::Message {
                bytes: b"m".to_vec(),
                delay_ms: 300,
            },
            200,
        );
        assert_eq!(late.delay_ms, Some(200));
        assert_eq!(late.outcome, grpc_timeout());
        let early = plan_grpc_reply(
            GrpcReply::Message {
                bytes: b"m".to_vec(),
                delay_ms: 100,
            },
            200,
        );
        assert_eq!(early.delay_ms, Some(100));
        assert_eq!(early.outcome, CallOutcome::GrpcMessage(b"m".to_vec()));
        assert_eq!(
            plan_grpc_reply(GrpcReply::status(0, "fine"), 0).outcome,
            CallOutcome::GrpcClose {
                code: 13,
                message: String::new()
            }
        );
        assert_eq!(plan_grpc_reply(GrpcReply::NoAnswer, 0).delay_ms, None);
        let unreachable = plan_grpc_reply(GrpcReply::Unreachable, 50);
        assert_eq!(unreachable.delay_ms, Some(0));
        assert!(matches!(
            unreachable.outcome,
            CallOutcome::GrpcClose { code: 14, .. }
        ));
    }
}
