//! `--concurrency 2`: the filter is configured on both workers and both answer; each worker
//! VM serves a session from its own cache after the first request, and only one of them
//! verified it: the other took it from the sessions shared by all workers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

use mfa_gate_envoy::GatewayBuilder;
use std::collections::BTreeSet;

/// The thread id of an Envoy log line `[date][thread][level][logger] ...`.
fn thread_of(line: &str) -> Option<&str> {
    line.split("][").nth(1)
}

#[test]
fn both_workers_are_configured_and_answer() {
    // start() waits until each of the 2 workers' VMs logged its "configured" line.
    let gateway = GatewayBuilder::shipped("envoy/envoy.yaml")
        .concurrency(2)
        .start();
    let bearer = format!("Bearer {}", gateway.token("passkey"));
    let log = gateway.envoy_log();
    let main_thread = log.lines().next().and_then(thread_of).unwrap().to_string();
    let configured: BTreeSet<&str> = log
        .lines()
        .filter(|l| l.contains("configured: 1 issuers, 5 routes"))
        .filter_map(thread_of)
        .filter(|t| *t != main_thread)
        .collect();
    assert_eq!(
        configured.len(),
        2,
        "one configured VM per worker: {configured:?}"
    );

    // New connections are spread over the workers (SO_REUSEPORT): 40 give both some.
    for _ in 0..40 {
        let answer = gateway.get("/admin/users", &[("authorization", &bearer)]);
        assert_eq!(answer.status, 200, "{}", answer.text());
    }
    let log = gateway.envoy_log();
    let answered: BTreeSet<&str> = log
        .lines()
        .filter(|l| l.contains("] decision {"))
        .filter_map(thread_of)
        .collect();
    assert_eq!(
        answered.len(),
        2,
        "both workers decided requests: {answered:?}"
    );
    assert!(answered.iter().all(|t| configured.contains(t)));
    let metric = |name: &str| gateway.counter(&format!("wasmcustom.mfa_gate.{name}"));
    // The counters are Envoy's, summed over the workers. The first worker verifies the
    // token; the other takes the verified session from shared data, without verifying.
    assert_eq!(metric("decision.allow"), 40);
    assert_eq!(metric("token_cache.miss"), 1, "one verification per Envoy");
    assert_eq!(
        metric("token_cache.shared_hit"),
        1,
        "one per other worker VM"
    );
    assert_eq!(metric("token_cache.hit"), 38);
    gateway.assert_no_wasm_failure();
}
