//! The noop fixture through the host: load, handle, round robin, workers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use mfa_gate_host::{Clusters, Host, HostOptions, UpstreamRequest};

#[test]
fn noop_filter_forwards_request_and_returns_upstream_response() {
    let mut host = Host::load(&noop_wasm(), HostOptions::default(), Clusters::new()).unwrap();
    assert_eq!(host.workers(), 2);
    let mut upstream = ok_upstream();
    let exchange = host.handle(get("/hello?x=1", &[("user-agent", "t")]), &mut upstream);
    assert_eq!(exchange.response.status, 200);
    assert_eq!(exchange.response.body, b"upstream-body");
    assert_eq!(
        response_header(&exchange, "x-upstream").as_deref(),
        Some("yes")
    );
    assert_eq!(exchange.response_code_details, None);
    // §3.1 Header ordering: HCM adds x-forwarded-proto and x-request-id before filters run.
    assert_eq!(
        upstream_header(&exchange, ":path").as_deref(),
        Some("/hello?x=1")
    );
    assert_eq!(
        upstream_header(&exchange, "x-forwarded-proto").as_deref(),
        Some("https")
    );
    let request_id = upstream_header(&exchange, "x-request-id").unwrap();
    assert_eq!(
        request_id.len(),
        36,
        "uuid-shaped x-request-id: {request_id}"
    );
    assert_eq!(exchange.worker, 0);
}

#[test]
fn handle_round_robins_over_workers() {
    let options = HostOptions {
        workers: 3,
        ..HostOptions::default()
    };
    let mut host = Host::load(&noop_wasm(), options, Clusters::new()).unwrap();
    let mut upstream = ok_upstream();
    let workers: Vec<usize> = (0..4)
        .map(|_| host.handle(get("/", &[]), &mut upstream).worker)
        .collect();
    assert_eq!(workers, vec![0, 1, 2, 0]);
    assert_eq!(host.memory_sizes().len(), 3);
    assert!(host.memory_sizes().iter().all(|size| *size > 0));
    assert_eq!(host.worker_failed(0), None);
}

#[test]
fn upstream_error_is_answered_503_like_envoys_router() {
    let mut host = Host::load(&noop_wasm(), HostOptions::default(), Clusters::new()).unwrap();
    let mut upstream = |_: &UpstreamRequest| Err("connection refused".to_string());
    let exchange = host.handle(get("/", &[]), &mut upstream);
    assert_eq!(exchange.response.status, 503);
    assert!(String::from_utf8_lossy(&exchange.response.body).starts_with("upstream connect error"));
    assert_eq!(
        exchange.response_code_details.as_deref(),
        Some("upstream_reset_before_response_started{connection_failure}")
    );
}

#[test]
fn workers_are_send_and_keep_working_on_threads() {
    let host = Host::load(&noop_wasm(), HostOptions::default(), Clusters::new()).unwrap();
    let handles: Vec<_> = host
        .into_workers()
        .into_iter()
        .map(|mut worker| {
            std::thread::spawn(move || {
                let mut upstream = ok_upstream();
                let exchange = worker.handle(get("/", &[]), &mut upstream);
                (worker.index(), exchange.response.status)
            })
        })
        .collect();
    let mut results: Vec<(usize, u16)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    results.sort();
    assert_eq!(results, vec![(0, 200), (1, 200)]);
}
