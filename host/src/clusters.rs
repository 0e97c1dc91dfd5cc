//! Clusters that `proxy_http_call` (dispatch_http_call) can name, and how a call's reply is made
//! into what Envoy hands the filter (§3.3).

use std::collections::HashMap;
use std::fmt;

use crate::types::{ClusterReply, ClusterRequest, HttpResponse};

/// What a `dispatch_http_call` cluster name maps to.
pub enum Cluster {
    /// In-process answers (tests): closures, canned replies, injected faults.
    Handler(Box<dyn FnMut(&ClusterRequest) -> ClusterReply + Send>),
    /// A real HTTP/1.1 upstream on loopback, `"127.0.0.1:port"`.
    Http { address: String },
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cluster::Handler(_) => f.write_str("Cluster::Handler(..)"),
            Cluster::Http { address } => write!(f, "Cluster::Http {{ address: {address:?} }}"),
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

    pub(crate) fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
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
}
