//! mfa-gate-rls in real Envoy, through Envoy's own native rate-limit filter
//! (`envoy.filters.http.ratelimit`, domain mfa-gate), not the wasm filter: a route's
//! `rate_limits` action makes the descriptor mfa-gate sends (`mfa_gate_push`, `user`) from
//! request headers, and TWO Envoys ask one service on one Redis. So the service speaks
//! Envoy's RLS v3 as Envoy itself does, and counts are shared across gateways: the 4th
//! prompt of a user is 429 on whichever gateway it lands. With Redis or the service gone,
//! Envoy's `failure_mode_deny` decides (500), and Redis back means answers again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

use mfa_gate_envoy::{rls_cluster, Answer, Gateway, GatewayBuilder, RateLimitService, Redis};
use serde_yaml::Value;
use std::time::{Duration, Instant};

const CLUSTER: &str = "mfa_gate_rls";
const ENDPOINT_HEADER: &str = "x-test-push-endpoint";
const USER_HEADER: &str = "x-test-push-user";

/// The demo limits (what `make run` gives the service).
fn demo_limits() -> String {
    std::fs::read_to_string(mfa_gate_envoy::repo_root().join("envoy/ratelimit-limits.yaml"))
        .unwrap()
}

/// Envoy's rate-limit filter, asking the service on [`CLUSTER`]; an RLS error is a 500.
fn ratelimit_filter() -> Value {
    serde_yaml::from_str(&format!(
        r#"
name: envoy.filters.http.ratelimit
typed_config:
  "@type": type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit
  domain: mfa-gate
  failure_mode_deny: true
  timeout: 3s
  enable_x_ratelimit_headers: DRAFT_VERSION_03
  rate_limit_service:
    transport_api_version: V3
    grpc_service:
      envoy_grpc: {{ cluster_name: {CLUSTER} }}
"#
    ))
    .unwrap()
}

/// The route's action: one descriptor, `mfa_gate_push` and `user` from the test headers
/// (none when either header is absent).
fn rate_limits() -> Value {
    serde_yaml::from_str(&format!(
        r#"
- actions:
  - request_headers: {{ header_name: {ENDPOINT_HEADER}, descriptor_key: mfa_gate_push }}
  - request_headers: {{ header_name: {USER_HEADER}, descriptor_key: user }}
"#
    ))
    .unwrap()
}

/// envoy/envoy.yaml in front of an echo upstream, with the rate-limit filter before the
/// wasm filter and the service's cluster.
fn gateway(rls: &RateLimitService) -> Gateway {
    let cluster = rls_cluster(CLUSTER, rls.address());
    GatewayBuilder::shipped("envoy/envoy.yaml")
        .echo_upstream()
        .http_filters_before_wasm(vec![ratelimit_filter()])
        .hcm(|hcm| {
            let routes = &mut hcm["route_config"]["virtual_hosts"][0]["routes"];
            for route in routes.as_sequence_mut().expect("routes") {
                route["route"]["rate_limits"] = rate_limits();
            }
        })
        .bootstrap(move |b| {
            b["static_resources"]["clusters"]
                .as_sequence_mut()
                .expect("clusters")
                .push(cluster);
        })
        .start()
}

/// A push prompt for `user` (the descriptor mfa-gate would send), on a route the filter
/// lets through (`/health`).
fn prompt(gateway: &Gateway, user: &str) -> Answer {
    gateway.get(
        "/health",
        &[(ENDPOINT_HEADER, "duo-auth"), (USER_HEADER, user)],
    )
}

fn user(n: u32) -> String {
    format!("{n:032x}")
}

#[test]
fn two_envoys_share_one_count_through_the_service() {
    let redis = Redis::start();
    let rls = RateLimitService::start(&redis.url(), &demo_limits());
    let (a, b) = (gateway(&rls), gateway(&rls));
    let alice = user(0xa11ce);

    // Prompts 1-3 split between the gateways, each seeing the shared remaining count.
    for (gateway, remaining) in [(&a, "2"), (&b, "1"), (&a, "0")] {
        let answer = prompt(gateway, &alice);
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert_eq!(answer.header("x-ratelimit-remaining"), Some(remaining));
    }
    // The 4th is refused wherever it lands, with when to come back.
    for gateway in [&b, &a] {
        let refused = prompt(gateway, &alice);
        assert_eq!(refused.status, 429, "{}", refused.text());
        assert_eq!(refused.header("x-ratelimit-remaining"), Some("0"));
        let reset: u64 = refused
            .header("x-ratelimit-reset")
            .unwrap()
            .parse()
            .unwrap();
        assert!(reset > 0 && reset <= 300, "x-ratelimit-reset {reset}");
        // The limiting limit's max_value (Envoy writes no window for a 300 s one: RLS v3
        // units stop at second, minute, hour and day).
        assert_eq!(refused.header("x-ratelimit-limit"), Some("3"));
    }
    assert_eq!(a.counter("cluster.demo_app.ratelimit.over_limit"), 1);
    assert_eq!(b.counter("cluster.demo_app.ratelimit.over_limit"), 1);
    assert_eq!(
        a.counter("cluster.demo_app.ratelimit.ok") + b.counter("cluster.demo_app.ratelimit.ok"),
        3
    );

    // Another user is counted apart; a request without the push headers is not limited.
    let bob = prompt(&b, &user(0xb0b));
    assert_eq!(bob.status, 200);
    assert_eq!(bob.header("x-ratelimit-remaining"), Some("2"));
    for _ in 0..5 {
        assert_eq!(a.get("/health", &[]).status, 200);
    }
    // Only the 3 prompts that passed reached the upstream (the refused ones never did).
    let upstream = |g: &Gateway| g.echo().unwrap().requests();
    assert_eq!(upstream(&a) + upstream(&b), 3 + 1 + 5);
    a.assert_no_wasm_failure();
    b.assert_no_wasm_failure();
}

#[test]
fn redis_or_the_service_gone_is_envoys_failure_mode() {
    let mut redis = Redis::start();
    let mut rls = RateLimitService::start(&redis.url(), &demo_limits());
    let gateway = gateway(&rls);
    assert_eq!(prompt(&gateway, &user(1)).status, 200);

    // Redis gone: the service answers UNAVAILABLE in bounded time, Envoy denies (500).
    redis.stop();
    let started = Instant::now();
    let failed = prompt(&gateway, &user(1));
    assert_eq!(failed.status, 500, "{}", failed.text());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(gateway.counter("cluster.demo_app.ratelimit.error") >= 1);
    assert!(rls.log().contains("Redis"), "{}", rls.log());

    // Redis back (empty): answers again, counting from zero.
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    let answer = loop {
        let answer = prompt(&gateway, &user(1));
        if answer.status != 500 || Instant::now() > deadline {
            break answer;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.header("x-ratelimit-remaining"), Some("2"));

    // The service gone: Envoy's failure mode again.
    rls.stop();
    assert_eq!(prompt(&gateway, &user(1)).status, 500);
    gateway.assert_no_wasm_failure();
}
