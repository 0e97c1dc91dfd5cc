//! The push-bombing defence in real Envoy, on the shipped gateway (envoy/envoy.yaml): its
//! `duo` push endpoint guards the demo IdP's Duo-shaped `POST /auth/v2/auth`.
//! - per-user prompt limits hold across two workers (local counting in shared data), and
//!   per client address;
//! - the fatigue signature (deny, deny, approve) marks the session the approval gave, and
//!   the gate steps it up on the next request although its token says push;
//! - through a real rate-limit service (mfa-gate-rls on limitador + Redis), two Envoys
//!   share their counts; with the service stopped, each failure mode does what it says.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

use mfa_gate_envoy::{Answer, Gateway, GatewayBuilder, RateLimitService, Redis};
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// A Duo Auth API push prompt for `user`, answered by the demo "phone" with `answer`, from
/// the client address `client` (the load balancer's X-Forwarded-For entry).
fn prompt(gateway: &Gateway, user: &str, answer: &str, client: &str) -> Answer {
    let body = format!(
        "username={}&factor=push&device=auto&demo_answer={answer}",
        user.replace('@', "%40")
    );
    gateway.request(
        "POST",
        "/auth/v2/auth",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("x-forwarded-for", client),
        ],
        body.as_bytes(),
    )
}

/// The push decision records so far.
fn push_records(gateway: &Gateway) -> Vec<Value> {
    gateway
        .decision_records()
        .into_iter()
        .filter(|r| r["kind"] == "push")
        .collect()
}

fn metric(gateway: &Gateway, name: &str) -> u64 {
    gateway.counter(&format!("wasmcustom.mfa_gate.{name}"))
}

/// The thread id of an Envoy log line `[date][thread][level][logger] ...`.
fn thread_of(line: &str) -> Option<&str> {
    line.split("][").nth(1)
}

#[test]
fn per_user_limit_holds_across_two_workers() {
    let gateway = GatewayBuilder::shipped("envoy/envoy.yaml")
        .concurrency(2)
        .start();
    // Twelve users, four prompts each, each user from its own address (so the per-client
    // limit stays out of it): the first three pass, the fourth is refused, wherever the
    // connection lands (SO_REUSEPORT spreads the 48 connections over both workers).
    for n in 0..12 {
        let user = format!("user{n}@example.com");
        let client = format!("198.51.100.{}", 10 + n);
        for attempt in 1..=3 {
            let answer = prompt(&gateway, &user, "deny", &client);
            assert_eq!(
                answer.status,
                200,
                "{user} prompt {attempt}: {}",
                answer.text()
            );
            assert_eq!(answer.json()["response"]["status"], "deny");
        }
        let refused = prompt(&gateway, &user, "deny", &client);
        assert_eq!(refused.status, 429, "{user} prompt 4: {}", refused.text());
        let retry_after: u64 = refused.header("retry-after").unwrap().parse().unwrap();
        assert!(
            (1..=300).contains(&retry_after),
            "Retry-After {retry_after}"
        );
        let body = refused.json();
        assert_eq!(body["error"], "push_rate_limited");
        assert_eq!(body["scope"], "user");
    }
    let log = gateway.envoy_log();
    let threads: BTreeSet<&str> = log
        .lines()
        .filter(|l| l.contains("] decision {\"kind\":\"push\""))
        .filter_map(thread_of)
        .collect();
    assert_eq!(
        threads.len(),
        2,
        "both workers counted prompts: {threads:?}"
    );

    let records = push_records(&gateway);
    let limited: Vec<&Value> = records
        .iter()
        .filter(|r| r["reason"] == "push_rate_limited")
        .collect();
    assert_eq!(limited.len(), 12);
    assert!(limited
        .iter()
        .all(|r| r["status"] == 429 && r["counting"] == "local"));
    // The prompt events: a first prompt, then repeats with their count in the window.
    let repeated: Vec<u64> = records
        .iter()
        .filter(|r| r["event"] == "push_prompt_repeated")
        .filter_map(|r| r["repeated"].as_u64())
        .collect();
    assert_eq!(
        repeated.len(),
        24,
        "prompts 2 and 3 of each user: {records:?}"
    );
    assert!(repeated.iter().all(|c| (2..=3).contains(c)));
    assert_eq!(metric(&gateway, "push.prompt"), 12);
    assert_eq!(metric(&gateway, "push.prompt_repeated"), 24);
    assert_eq!(metric(&gateway, "push.denied"), 36);
    assert_eq!(metric(&gateway, "push.rate_limited"), 12);
    // Never a user name in a log line: records carry a key prefix only.
    assert!(!log.contains("user3@example.com"), "a user name was logged");
    gateway.assert_no_wasm_failure();
}

#[test]
fn per_client_limit_refuses_a_spray_over_many_users() {
    let gateway = GatewayBuilder::shipped("envoy/envoy.yaml").start();
    // Default per-client limit: 20 prompts in 5 minutes from one address.
    for n in 0..20 {
        let answer = prompt(
            &gateway,
            &format!("spray{n}@example.com"),
            "timeout",
            "203.0.113.50",
        );
        assert_eq!(answer.status, 200, "prompt {n}: {}", answer.text());
    }
    let refused = prompt(&gateway, "spray20@example.com", "timeout", "203.0.113.50");
    assert_eq!(refused.status, 429, "{}", refused.text());
    assert_eq!(refused.json()["scope"], "client");
    // Another address is not held back.
    let other = prompt(&gateway, "spray20@example.com", "timeout", "203.0.113.51");
    assert_eq!(other.status, 200, "{}", other.text());
    assert_eq!(metric(&gateway, "push.timeout"), 21);
    gateway.assert_no_wasm_failure();
}

#[test]
fn deny_deny_approve_marks_the_session_and_the_gate_steps_it_up() {
    let gateway = GatewayBuilder::shipped("envoy/envoy.yaml").start();
    let client = "198.51.100.7";
    // The attacker bombs pat: two prompts denied, then a tired approval.
    for answer in ["deny", "deny"] {
        let a = prompt(&gateway, "pat@example.com", answer, client);
        assert_eq!(a.status, 200, "{}", a.text());
    }
    let approved = prompt(&gateway, "pat@example.com", "allow", client);
    assert_eq!(approved.status, 200, "{}", approved.text());
    let token = approved.json()["response"]["session_token"]
        .as_str()
        .expect("the demo IdP signs the approved user in")
        .to_string();

    let records = push_records(&gateway);
    let events: Vec<&str> = records.iter().filter_map(|r| r["event"].as_str()).collect();
    assert_eq!(
        events,
        [
            "push_prompt",
            "push_denied",
            "push_prompt_repeated",
            "push_denied",
            "push_prompt_repeated",
            "push_approved_after_repeats"
        ],
        "{records:?}"
    );
    let last = records.last().unwrap();
    assert_eq!(last["marked"], true);
    assert_eq!(
        last["unanswered"], 2,
        "two unanswered prompts before the approval"
    );

    // The session the approval gave says push, which /api accepts: the gate steps it up.
    let bearer = format!("Bearer {token}");
    let api = gateway.get(
        "/api/profile",
        &[("authorization", &bearer), ("x-forwarded-for", client)],
    );
    assert_eq!(api.status, 401, "{}", api.text());
    let challenge = api.header("www-authenticate").unwrap();
    assert!(
        challenge.contains("insufficient_user_authentication"),
        "{challenge}"
    );
    let gate = gateway
        .decision_records()
        .into_iter()
        .rfind(|r| r["rule"] == "api")
        .unwrap();
    assert_eq!(gate["decision"], "step_up");
    assert!(
        gate["reasons"].to_string().contains("push_fatigue"),
        "{gate}"
    );
    assert_eq!(metric(&gateway, "push.approved_after_repeats"), 1);
    assert_eq!(metric(&gateway, "push.pressured_session"), 1);

    // A user who approved the only prompt they got is not marked.
    let calm = prompt(&gateway, "nia@example.com", "allow", "198.51.100.8");
    let calm_token = calm.json()["response"]["session_token"]
        .as_str()
        .unwrap()
        .to_string();
    let ok = gateway.get(
        "/api/profile",
        &[
            ("authorization", &format!("Bearer {calm_token}")),
            ("x-forwarded-for", "198.51.100.8"),
        ],
    );
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(metric(&gateway, "push.approved"), 1);
    gateway.assert_no_wasm_failure();
}

/// The rate-limit service's limits: mfa-gate's defaults (3 per user in 5 minutes).
fn limits() -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../envoy/ratelimit-limits.yaml"),
    )
    .unwrap()
}

/// A gateway that counts prompts through the service at `rls`, with `on_unavailable`.
fn counted_by_service(rls: std::net::SocketAddr, on_unavailable: &str) -> Gateway {
    let on_unavailable = on_unavailable.to_string();
    GatewayBuilder::shipped("envoy/envoy.yaml")
        .plugin_config(move |config| {
            config["push_prompts"]["counting"] = json!({
                "mode": "service",
                "cluster": "ratelimit",
                "domain": "mfa-gate",
                "timeout_ms": 500,
                "on_unavailable": on_unavailable,
            });
        })
        .bootstrap(move |bootstrap| {
            let clusters = bootstrap["static_resources"]["clusters"]
                .as_sequence_mut()
                .unwrap();
            clusters.push(mfa_gate_envoy::rls_cluster("ratelimit", rls));
        })
        .start()
}

#[test]
fn two_envoys_share_their_counts_through_the_rate_limit_service() {
    let redis = Redis::start();
    let rls = RateLimitService::start(&redis.url(), &limits());
    let first = counted_by_service(rls.address(), "local");
    let second = counted_by_service(rls.address(), "local");
    let user = "fleet@example.com";
    for (n, gateway) in [&first, &second, &first].into_iter().enumerate() {
        let answer = prompt(gateway, user, "deny", "198.51.100.20");
        assert_eq!(answer.status, 200, "prompt {}: {}", n + 1, answer.text());
    }
    let refused = prompt(&second, user, "deny", "198.51.100.20");
    assert_eq!(refused.status, 429, "{}", refused.text());
    assert!(refused.header("retry-after").is_some());
    let record = push_records(&second).into_iter().last().unwrap();
    assert_eq!(record["counting"], "service");
    assert_eq!(record["reason"], "push_rate_limited");
    let admitted: Vec<u64> = push_records(&first)
        .iter()
        .chain(push_records(&second).iter())
        .filter(|r| r["decision"] == "allow" && r["counting"] == "service")
        .filter_map(|r| r["remaining"].as_u64())
        .collect();
    let mut admitted = admitted;
    admitted.sort_unstable();
    assert_eq!(
        admitted,
        [0, 1, 2],
        "the service's remaining count in the records"
    );
    assert_eq!(metric(&first, "push.service.answered"), 2);
    assert_eq!(metric(&second, "push.service.answered"), 2);
    first.assert_no_wasm_failure();
    second.assert_no_wasm_failure();
}

#[test]
fn with_the_service_down_each_failure_mode_does_what_it_says() {
    let redis = Redis::start();
    let mut rls = RateLimitService::start(&redis.url(), &limits());
    let fallback = counted_by_service(rls.address(), "local");
    let deny = counted_by_service(rls.address(), "deny");
    let allow = counted_by_service(rls.address(), "allow");
    rls.stop();

    // local (the default): counted in this Envoy's shared data instead.
    for n in 1..=3 {
        let a = prompt(&fallback, "down@example.com", "deny", "198.51.100.30");
        assert_eq!(a.status, 200, "prompt {n}: {}", a.text());
    }
    let refused = prompt(&fallback, "down@example.com", "deny", "198.51.100.30");
    assert_eq!(refused.status, 429, "{}", refused.text());
    let last = push_records(&fallback).into_iter().last().unwrap();
    assert_eq!(last["counting"], "local_fallback");
    assert_eq!(metric(&fallback, "push.service.fallback_local"), 4);

    // deny: no prompt without a count.
    let denied = prompt(&deny, "down@example.com", "deny", "198.51.100.31");
    assert_eq!(denied.status, 503, "{}", denied.text());
    assert_eq!(denied.json()["reason"], "push_limit_unavailable");

    // allow: prompts go on uncounted.
    for _ in 0..5 {
        let a = prompt(&allow, "down@example.com", "deny", "198.51.100.32");
        assert_eq!(a.status, 200, "{}", a.text());
    }
    let last = push_records(&allow).into_iter().last().unwrap();
    assert_eq!(last["counting"], "none");
    for gateway in [&fallback, &deny, &allow] {
        assert!(metric(gateway, "push.service.unavailable") >= 1);
        gateway.assert_no_wasm_failure();
    }
}
