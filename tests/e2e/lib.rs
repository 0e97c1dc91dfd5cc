//! End-to-end tests live in `tests/`. This library holds only what the benchmark and the
//! instruction-count example share, so both measure exactly the same request.

use mfa_gate_host::{DownstreamRequest, HttpResponse, UpstreamRequest};

/// The benchmark request: a GET on `path` from an API client, with a bearer token if given.
pub fn bench_request(path: &str, token: Option<&str>) -> DownstreamRequest {
    let mut headers = vec![
        (b":method".to_vec(), b"GET".to_vec()),
        (b":path".to_vec(), path.as_bytes().to_vec()),
        (b":authority".to_vec(), b"app.example.test".to_vec()),
        (b":scheme".to_vec(), b"https".to_vec()),
        (b"user-agent".to_vec(), b"bench".to_vec()),
        (b"accept".to_vec(), b"application/json".to_vec()),
    ];
    if let Some(token) = token {
        headers.push((
            b"authorization".to_vec(),
            format!("Bearer {token}").into_bytes(),
        ));
    }
    DownstreamRequest {
        headers,
        ..DownstreamRequest::default()
    }
}

/// An upstream that answers every request 200, in-process.
pub fn ok_upstream(_: &UpstreamRequest) -> Result<HttpResponse, String> {
    Ok(HttpResponse {
        status: 200,
        ..HttpResponse::default()
    })
}
