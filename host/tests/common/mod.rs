//! Helpers shared by the host's integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use mfa_gate_host::{
    Clusters, DownstreamRequest, Exchange, Host, HostOptions, HttpResponse, LogLine,
    UpstreamRequest,
};

/// Path of a release fixture `.wasm`; panics with how to build it if missing.
pub fn fixture(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/wasm32-wasip1/release")
        .join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: build it first: make wasm",
        path.display()
    );
    path
}

pub fn noop_wasm() -> PathBuf {
    fixture("noop_filter")
}

pub fn conformance_wasm() -> PathBuf {
    fixture("conformance_filter")
}

/// Loads the conformance filter with default options (2 workers, virtual clock).
pub fn conformance_host(clusters: Clusters) -> Host {
    conformance_host_with(HostOptions::default(), clusters)
}

pub fn conformance_host_with(options: HostOptions, clusters: Clusters) -> Host {
    Host::load(&conformance_wasm(), options, clusters).expect("conformance filter loads")
}

/// A GET request with the usual pseudo-headers plus `extra` headers.
pub fn get(path: &str, extra: &[(&str, &str)]) -> DownstreamRequest {
    let mut headers: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (b":authority".to_vec(), b"app.example".to_vec()),
        (b":path".to_vec(), path.as_bytes().to_vec()),
        (b":method".to_vec(), b"GET".to_vec()),
        (b":scheme".to_vec(), b"https".to_vec()),
    ];
    for (name, value) in extra {
        headers.push((name.as_bytes().to_vec(), value.as_bytes().to_vec()));
    }
    DownstreamRequest {
        headers,
        source_address: Some("10.0.0.7:51234".to_string()),
        destination_address: Some("10.0.0.1:8443".to_string()),
        ..DownstreamRequest::default()
    }
}

/// A request for a conformance scenario.
pub fn scenario(name: &str) -> DownstreamRequest {
    get("/conformance", &[("x-conformance", name)])
}

/// An upstream answering 200 "upstream-body" with `x-upstream: yes`.
pub fn ok_upstream() -> impl FnMut(&UpstreamRequest) -> Result<HttpResponse, String> {
    |_request: &UpstreamRequest| {
        Ok(HttpResponse {
            status: 200,
            headers: vec![(b"x-upstream".to_vec(), b"yes".to_vec())],
            body: b"upstream-body".to_vec(),
            trailers: Vec::new(),
        })
    }
}

/// Runs a scenario on worker 0 with the ok upstream.
pub fn run(host: &mut Host, request: DownstreamRequest) -> Exchange {
    let mut upstream = ok_upstream();
    host.handle_on(0, request, &mut upstream)
}

/// A response header value as text.
pub fn response_header(exchange: &Exchange, name: &str) -> Option<String> {
    exchange
        .response
        .headers
        .iter()
        .find(|(key, _)| key.as_slice() == name.as_bytes())
        .map(|(_, value)| String::from_utf8_lossy(value).into_owned())
}

/// An upstream request header value as text.
pub fn upstream_header(exchange: &Exchange, name: &str) -> Option<String> {
    exchange
        .upstream_request
        .as_ref()?
        .headers
        .iter()
        .find(|(key, _)| key.as_slice() == name.as_bytes())
        .map(|(_, value)| String::from_utf8_lossy(value).into_owned())
}

/// Messages of log lines, in order.
pub fn messages(lines: &[LogLine]) -> Vec<String> {
    lines.iter().map(|line| line.message.to_string()).collect()
}

/// The message of the first log line starting with `prefix`, without the prefix.
pub fn logged(lines: &[LogLine], prefix: &str) -> Option<String> {
    lines
        .iter()
        .find_map(|line| line.message.strip_prefix(prefix).map(str::to_string))
}
