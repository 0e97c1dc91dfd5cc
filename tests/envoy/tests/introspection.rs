//! Opaque session tokens through RFC 7662 introspection in real Envoy: the filter POSTs
//! the token to an introspection endpoint the test scripts (`dispatch_http_call` on the
//! `demo_idp` cluster), caches the answer in shared data for every worker, and decides:
//! active → the level from the answer's amr; `active:false` → 401 `token_inactive`; the
//! endpoint down, failing, slow or answering garbage → 401 `introspection_unavailable`
//! for a token it never answered, while answered tokens still pass until their TTL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

use mfa_gate_envoy::{now_secs, Answer, Gateway, GatewayBuilder, IntrospectionServer, Reply};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

const SECRET_ENV: &str = "MFA_GATE_INTROSPECTION_SECRET";
const SECRET: &str = "introspection-secret-9f3e";
const ISSUER: &str = "https://idp.mfa-gate.test";

/// envoy/envoy.yaml whose issuer also introspects at `server` (300 ms timeout), the
/// client secret passed to the VMs from the Envoy process's environment.
fn gateway(server: &IntrospectionServer, concurrency: u32) -> Gateway {
    GatewayBuilder::shipped("envoy/envoy.yaml")
        .idp_cluster_port(server.port())
        .concurrency(concurrency)
        .envoy_env(SECRET_ENV, SECRET)
        .host_env_keys(&[SECRET_ENV])
        .plugin_config(|c| {
            c["issuers"][0]["introspection"] = json!({
                "cluster": "demo_idp",
                "endpoint": "http://127.0.0.1:10001/oauth/introspect",
                "client_id": "mfa-gate-demo",
                "client_secret_env": SECRET_ENV,
                "auth": "client_secret_basic",
                "timeout_ms": 300,
                "cache_ttl_secs": 300,
                "inactive_ttl_secs": 10
            })
        })
        .start()
}

/// An active answer for a user who signed in with `amr`.
fn active(user: &str, amr: &[&str]) -> Value {
    let now = now_secs();
    json!({"active": true, "iss": ISSUER, "sub": user, "aud": "mfa-gate-demo",
           "amr": amr, "iat": now - 30, "auth_time": now - 30, "exp": now + 3600,
           "client_id": "demo-app", "token_type": "Bearer"})
}

fn profile(gateway: &Gateway, token: &str) -> Answer {
    gateway.get(
        "/api/profile",
        &[("authorization", &format!("Bearer {token}"))],
    )
}

fn metric(gateway: &Gateway, name: &str) -> u64 {
    gateway.counter(&format!("wasmcustom.mfa_gate.{name}"))
}

/// The last decision record's first reason.
fn last_reason(gateway: &Gateway) -> String {
    let records = gateway.decision_records();
    let last = records
        .last()
        .unwrap_or_else(|| panic!("no record\n{}", gateway.log_tail()));
    last["reasons"][0].as_str().unwrap_or_default().to_string()
}

fn assert_refused(gateway: &Gateway, answer: &Answer, reason: &str) {
    assert_eq!(answer.status, 401, "{reason}: {}", answer.text());
    let www = answer.header("www-authenticate").unwrap_or("");
    assert!(www.contains("error=\"invalid_token\""), "{reason}: {www}");
    assert_eq!(last_reason(gateway), reason, "{}", gateway.log_tail());
}

#[test]
fn active_tokens_pass_with_the_level_of_their_amr_and_inactive_ones_are_refused() {
    let server = IntrospectionServer::start();
    server.answer(
        "opaque-strong-1",
        active("strong@example.com", &["pwd", "pop"]),
    );
    server.answer("opaque-weak-1", active("weak@example.com", &["pwd"]));
    let gateway = gateway(&server, 1);

    let answer = profile(&gateway, "opaque-strong-1");
    assert_eq!(
        answer.status,
        200,
        "{}\n{}",
        answer.text(),
        gateway.log_tail()
    );
    let record = gateway.decision_records().pop().unwrap();
    assert_eq!(record["decision"], "allow");
    assert_eq!(record["level"], "phishing_resistant", "{record}");
    assert_eq!(record["subject"], "strong@example.com", "{record}");

    // Password only: the level from amr is below the route's push.
    let answer = profile(&gateway, "opaque-weak-1");
    assert_eq!(answer.status, 401, "{}", answer.text());
    let www = answer.header("www-authenticate").unwrap_or("");
    assert!(www.contains("insufficient_user_authentication"), "{www}");

    // Unknown to the server: active false.
    let answer = profile(&gateway, "opaque-revoked-1");
    assert_refused(&gateway, &answer, "token_inactive");
    // Cached for inactive_ttl_secs: asked once.
    assert_refused(
        &gateway,
        &profile(&gateway, "opaque-revoked-1"),
        "token_inactive",
    );
    assert_eq!(server.calls_for("opaque-revoked-1"), 1);

    assert_eq!(metric(&gateway, "introspection.miss"), 3);
    assert_eq!(metric(&gateway, "introspection.active"), 2);
    assert_eq!(metric(&gateway, "introspection.inactive"), 1);
    assert_eq!(
        metric(&gateway, "introspection.hit"),
        1,
        "the second inactive request"
    );
    assert_eq!(metric(&gateway, "introspection.unavailable"), 0);
    assert_eq!(metric(&gateway, "reason.token_inactive"), 2);

    // The call: a form POST with the token and HTTP Basic client authentication.
    let call = &server.calls()[0];
    assert_eq!(call.target, "/oauth/introspect");
    let body = String::from_utf8_lossy(&call.body);
    assert_eq!(body, "token=opaque-strong-1&token_type_hint=access_token");
    let header = |name: &str| {
        (call.headers.iter())
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(header("content-type"), "application/x-www-form-urlencoded");
    let basic = <ct_codecs::Base64 as ct_codecs::Encoder>::encode_to_string(format!(
        "mfa-gate-demo:{SECRET}"
    ))
    .unwrap();
    assert_eq!(header("authorization"), format!("Basic {basic}"));

    // Neither a token nor the secret is ever logged.
    let log = gateway.envoy_log();
    for secret in [
        "opaque-strong-1",
        "opaque-weak-1",
        "opaque-revoked-1",
        SECRET,
    ] {
        assert!(!log.contains(secret), "{secret} in Envoy's log");
    }
    gateway.assert_no_wasm_failure();
}

#[test]
fn a_failing_endpoint_fails_closed_for_new_tokens_while_answered_ones_pass_then_recovers() {
    let server = IntrospectionServer::start();
    server.answer(
        "opaque-known-2",
        active("known@example.com", &["pwd", "pop"]),
    );
    let gateway = gateway(&server, 1);
    assert_eq!(profile(&gateway, "opaque-known-2").status, 200);

    let big = format!(r#"{{"active":true,"pad":"{}"}}"#, "x".repeat(70 * 1024));
    let faults = [
        ("down", Reply::Hangup),
        ("HTTP 500", Reply::text(500, "internal error")),
        (
            "HTTP 503",
            Reply::json(503, &json!({"error": "temporarily_unavailable"})),
        ),
        (
            "garbage",
            Reply::Http {
                status: 200,
                headers: vec![("content-type".into(), "application/json".into())],
                body: b"{\"active\": tru".to_vec(),
            },
        ),
        (
            "active not a boolean",
            Reply::json(200, &json!({"active": "yes"})),
        ),
        (
            "oversized",
            Reply::Http {
                status: 200,
                headers: vec![("content-type".into(), "application/json".into())],
                body: big.into_bytes(),
            },
        ),
        (
            "slower than the timeout",
            Reply::Delayed(
                Duration::from_millis(1500),
                Box::new(Reply::json(
                    200,
                    &active("slow@example.com", &["pwd", "pop"]),
                )),
            ),
        ),
    ];
    let mut unavailable = 0;
    for (n, (what, fault)) in faults.into_iter().enumerate() {
        server.fault(Some(fault));
        let token = format!("opaque-new-{n}");
        server.answer(&token, active("new@example.com", &["pwd", "pop"]));
        let answer = profile(&gateway, &token);
        unavailable += 1;
        assert_refused(&gateway, &answer, "introspection_unavailable");
        assert_eq!(
            server.calls_for(&token),
            1,
            "{what}: the endpoint was asked"
        );
        assert_eq!(
            metric(&gateway, "introspection.unavailable"),
            unavailable,
            "{what}"
        );
        // The token answered before still passes (cached until its TTL).
        let known = profile(&gateway, "opaque-known-2");
        assert_eq!(known.status, 200, "{what}: {}", known.text());
    }
    assert_eq!(
        metric(&gateway, "reason.introspection_unavailable"),
        unavailable
    );

    // Back: the token refused while it was down is introspected again and passes.
    server.fault(None);
    let answer = profile(&gateway, "opaque-new-0");
    assert_eq!(
        answer.status,
        200,
        "{}\n{}",
        answer.text(),
        gateway.log_tail()
    );
    assert_eq!(server.calls_for("opaque-new-0"), 2);
    gateway.assert_no_wasm_failure();
}

#[test]
fn workers_share_answers_one_call_per_token() {
    let server = IntrospectionServer::start();
    server.answer(
        "opaque-shared-3",
        active("shared@example.com", &["pwd", "pop"]),
    );
    let gateway = gateway(&server, 2);
    // New connections are spread over the workers (SO_REUSEPORT): 40 give both some.
    let n = 40;
    for i in 0..n {
        let answer = profile(&gateway, "opaque-shared-3");
        assert_eq!(answer.status, 200, "request {i}: {}", answer.text());
    }
    let log = gateway.envoy_log();
    let deciding: BTreeSet<&str> = (log.lines())
        .filter(|l| l.contains("] decision {"))
        .filter_map(|l| l.split("][").nth(1))
        .collect();
    assert_eq!(deciding.len(), 2, "both workers decided: {deciding:?}");
    assert_eq!(
        server.calls_for("opaque-shared-3"),
        1,
        "one introspection call for {n} requests on two workers"
    );
    assert_eq!(metric(&gateway, "introspection.miss"), 1);
    assert_eq!(metric(&gateway, "introspection.active"), 1);
    // The other worker's VM read the answer the first one stored, then cached the session.
    assert_eq!(metric(&gateway, "introspection.hit"), 1);
    assert_eq!(
        metric(&gateway, "token_cache.miss"),
        2,
        "one session per VM"
    );
    assert_eq!(metric(&gateway, "token_cache.hit"), n - 2);
    assert_eq!(metric(&gateway, "decision.allow"), n);
    gateway.assert_no_wasm_failure();
}
