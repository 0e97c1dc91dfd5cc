//! The push-endpoint rule kind through the host: the release filter guards a Duo-shaped
//! push endpoint; prompts are counted in shared data (both workers) or by a rate-limit
//! service reached with real gRPC callouts (the host's `Cluster::Grpc`: the filter's
//! `ShouldRateLimit` request decoded, answers and faults scripted on the virtual clock).
//! Real Envoy with the real service: `tests/envoy/tests/push.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use mfa_gate::wire::rls::{
    DescriptorStatus, Duration, RateLimit, RateLimitRequest, RateLimitResponse,
};
use mfa_gate_host::{Cluster, Clusters, DownstreamRequest, Exchange, GrpcCall, GrpcReply};
use prost::Message;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

fn push_config(counting: Value) -> String {
    config_with(
        json!({}),
        json!({"push_prompts": {
            "endpoints": [{"name": "duo", "provider": "duo"}],
            "counting": counting,
        }}),
    )
}

fn prompt(user: &str, client: &str) -> DownstreamRequest {
    let mut r = request(
        "POST",
        "/auth/v2/auth",
        &[("content-type", b"application/x-www-form-urlencoded")],
    );
    r.body = format!("username={user}&factor=push").into_bytes();
    r.source_address = Some(format!("{client}:5000"));
    r
}

/// Sends a prompt; the provider (the upstream) answers Duo's "deny".
fn send(gate: &mut Gate, req: DownstreamRequest) -> Exchange {
    let mut upstream = |_: &mfa_gate_host::UpstreamRequest| {
        Ok(mfa_gate_host::HttpResponse {
            status: 200,
            headers: vec![(b"content-type".to_vec(), b"application/json".to_vec())],
            body: br#"{"stat":"OK","response":{"result":"deny","status":"deny"}}"#.to_vec(),
            trailers: vec![],
        })
    };
    gate.host.handle(req, &mut upstream)
}

#[test]
fn local_counts_are_shared_by_both_workers() {
    let mut gate = Gate::with_clusters(&push_config(json!({"mode": "local"})), Clusters::new(), 2);
    let mut workers = Vec::new();
    for n in 1..=3 {
        let ex = send(&mut gate, prompt("jane", "198.51.100.1"));
        assert_eq!(
            ex.response.status, 200,
            "prompt {n}: {:?} {:?}",
            ex.response_code_details, ex.logs
        );
        assert!(ex.upstream_request.is_some());
        workers.push(ex.worker);
    }
    workers.sort_unstable();
    workers.dedup();
    assert_eq!(workers, [0, 1], "round robin put prompts on both workers");
    let refused = send(&mut gate, prompt("jane", "198.51.100.1"));
    assert_eq!(refused.response.status, 429);
    assert!(
        refused.upstream_request.is_none(),
        "the 4th prompt reached the provider"
    );
    assert_eq!(header(&refused, "retry-after").as_deref(), Some("300"));
    let record = decision(&refused);
    assert_eq!(record["reason"], "push_rate_limited");
    assert_eq!(record["counting"], "local");
    assert_eq!(gate.metric("mfa_gate.push.rate_limited"), 1);
    assert_eq!(gate.metric("mfa_gate.push.denied"), 3);
    // A 413 past the body cap, a 400 without a user.
    let mut big = prompt("joe", "198.51.100.2");
    big.body = vec![b'a'; 20_000];
    assert_eq!(send(&mut gate, big).response.status, 413);
    let mut anonymous = prompt("joe", "198.51.100.2");
    anonymous.body = b"factor=push".to_vec();
    let ex = send(&mut gate, anonymous);
    assert_eq!(ex.response.status, 400);
    assert_eq!(decision(&ex)["reason"], "push_user_missing");
}

/// A scripted rate-limit service: counts per `user` entry, 3 allowed, and records what it
/// was asked.
#[derive(Clone, Default)]
struct Service {
    asked: Arc<Mutex<Vec<RateLimitRequest>>>,
    fault: Arc<Mutex<Option<GrpcReply>>>,
}

impl Service {
    fn cluster(&self) -> Cluster {
        let me = self.clone();
        Cluster::Grpc(Box::new(move |call: &GrpcCall| {
            assert_eq!(call.service, "envoy.service.ratelimit.v3.RateLimitService");
            assert_eq!(call.method, "ShouldRateLimit");
            if let Some(fault) = me.fault.lock().unwrap().clone() {
                return fault;
            }
            let request = RateLimitRequest::decode(call.message.as_slice()).unwrap();
            let mut asked = me.asked.lock().unwrap();
            let user = |r: &RateLimitRequest| {
                r.descriptors[0]
                    .entries
                    .iter()
                    .find(|e| e.key == "user")
                    .map(|e| e.value.clone())
            };
            let seen = asked.iter().filter(|r| user(r) == user(&request)).count() as u32;
            asked.push(request);
            let over = seen >= 3;
            let answer = RateLimitResponse {
                overall_code: if over { 2 } else { 1 },
                statuses: vec![DescriptorStatus {
                    code: if over { 2 } else { 1 },
                    current_limit: Some(RateLimit {
                        requests_per_unit: 3,
                        unit: 0,
                        name: "push-per-user-5m".into(),
                    }),
                    limit_remaining: 2u32.saturating_sub(seen),
                    duration_until_reset: Some(Duration {
                        seconds: 120,
                        nanos: 0,
                    }),
                }],
            };
            GrpcReply::message(&answer.encode_to_vec())
        }))
    }
}

fn service_gate(service: &Service, on_unavailable: &str) -> Gate {
    let config = push_config(json!({
        "mode": "service", "cluster": "ratelimit", "timeout_ms": 200,
        "on_unavailable": on_unavailable,
    }));
    Gate::with_clusters(
        &config,
        Clusters::new().with("ratelimit", service.cluster()),
        2,
    )
}

#[test]
fn the_rate_limit_service_counts_and_its_answer_decides() {
    let service = Service::default();
    let mut gate = service_gate(&service, "local");
    for n in 0..3 {
        let ex = send(&mut gate, prompt("jane", "203.0.113.9"));
        assert_eq!(ex.response.status, 200, "prompt {}", n + 1);
        let record = decision(&ex);
        assert_eq!(record["counting"], "service");
        assert_eq!(record["remaining"], 2 - n);
    }
    let refused = send(&mut gate, prompt("jane", "203.0.113.9"));
    assert_eq!(refused.response.status, 429);
    assert_eq!(header(&refused, "retry-after").as_deref(), Some("120"));
    let asked = service.asked.lock().unwrap();
    assert_eq!(asked.len(), 4);
    let entries: Vec<(&str, &str)> = asked[0].descriptors[0]
        .entries
        .iter()
        .map(|e| (e.key.as_str(), e.value.as_str()))
        .collect();
    assert_eq!(asked[0].domain, "mfa-gate");
    assert_eq!(entries[0], ("mfa_gate_push", "duo"));
    assert_eq!(entries[1].0, "user");
    assert!(entries[1].1.len() == 32 && entries[1].1 != "jane");
    assert_eq!(entries[2], ("client", "203.0.113.9"));
    assert_eq!(gate.metric("mfa_gate.push.service.answered"), 4);
}

#[test]
fn service_faults_follow_the_failure_mode() {
    for (mode, fault, want) in [
        ("local", GrpcReply::Unreachable, 200),
        ("allow", GrpcReply::NoAnswer, 200),
        ("deny", GrpcReply::status(14, "down"), 503),
        ("deny", GrpcReply::message(b"\xff\xff garbage"), 503),
    ] {
        let service = Service::default();
        *service.fault.lock().unwrap() = Some(fault.clone());
        let mut gate = service_gate(&service, mode);
        let ex = send(&mut gate, prompt("jane", "203.0.113.9"));
        assert_eq!(ex.response.status, want, "{mode} {fault:?}");
        let record = decision(&ex);
        let counting = match mode {
            "local" => "local_fallback",
            "allow" => "none",
            _ => "service_unavailable",
        };
        assert_eq!(record["counting"], counting, "{mode} {fault:?}");
        assert_eq!(gate.metric("mfa_gate.push.service.unavailable"), 1);
    }
    // local: the fallback counts, so a flood is still stopped while the service is down.
    let service = Service::default();
    *service.fault.lock().unwrap() = Some(GrpcReply::Unreachable);
    let mut gate = service_gate(&service, "local");
    let statuses: Vec<u16> = (0..4)
        .map(|_| {
            send(&mut gate, prompt("jane", "203.0.113.9"))
                .response
                .status
        })
        .collect();
    assert_eq!(statuses, [200, 200, 200, 429]);
}
