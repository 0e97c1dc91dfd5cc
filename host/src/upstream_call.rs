//! The seam between `Cluster::Http` and the blocking HTTP/1.1 client (`upstream_http.rs`, owned by
//! host-front). Maps its failures the way Envoy's router does (§3.3): Timeout → 504,
//! ConnectFailed → 503, Reset → on_http_call_response(0,0,0) + BrokenConnection.

use std::time::Duration;

use crate::clusters::{connect_failure_response, timeout_response};
use crate::types::{ClusterReply, ClusterRequest};
use crate::upstream_http::{send_blocking, HttpFailure};

/// Sends one cluster call to a real HTTP/1.1 upstream and turns the result into a reply.
pub(crate) fn call_http_cluster(address: &str, request: &ClusterRequest) -> ClusterReply {
    let timeout = (request.timeout_ms > 0).then(|| Duration::from_millis(request.timeout_ms));
    match send_blocking(address, request, timeout) {
        Ok(response) => ClusterReply::Response(response),
        Err(HttpFailure::Timeout) => ClusterReply::Response(timeout_response()),
        Err(HttpFailure::ConnectFailed(_)) => ClusterReply::Response(connect_failure_response()),
        Err(HttpFailure::Reset(_)) => ClusterReply::Reset,
    }
}
