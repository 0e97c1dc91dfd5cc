//! Remote JWKS in real Envoy (`dispatch_http_call` to the `demo_idp` cluster), with a key
//! server the test scripts: the cluster down, answering 500, garbage, slower than the
//! timeout, or hanging up. Last good keys are kept, `keys_unavailable` 401 when there are
//! none, counters as the README says; key rotation: an unknown `kid` triggers one refresh.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

use mfa_gate_envoy::{
    free_port, jwks_of, Answer, Gateway, GatewayBuilder, KeyServer, Reply, TestKey,
};
use std::time::Duration;

/// envoy/envoy.yaml with its `demo_idp` cluster at `port` and a 300 ms fetch timeout.
fn gateway_with_keys_at(port: u16) -> Gateway {
    GatewayBuilder::shipped("envoy/envoy.yaml")
        .idp_cluster_port(port)
        .plugin_config(|c| c["issuers"][0]["remote_jwks"]["timeout_ms"] = 300.into())
        .start()
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn profile(gateway: &Gateway, token: &str) -> Answer {
    gateway.get("/api/profile", &[("authorization", &bearer(token))])
}

fn metric(gateway: &Gateway, name: &str) -> u64 {
    gateway.counter(&format!("wasmcustom.mfa_gate.{name}"))
}

/// The faults a key server can have once it is reachable.
fn faults() -> Vec<(&'static str, Reply)> {
    vec![
        ("HTTP 500", Reply::text(500, "internal error")),
        (
            "garbage",
            Reply::Http {
                status: 200,
                headers: vec![("content-type".into(), "application/json".into())],
                body: b"{\"keys\": [ not json".to_vec(),
            },
        ),
        (
            "an empty key set",
            Reply::json(200, &serde_json::json!({"keys": []})),
        ),
        (
            "slower than the timeout",
            Reply::Delayed(
                Duration::from_millis(1500),
                Box::new(Reply::json(200, &serde_json::json!({"keys": []}))),
            ),
        ),
        ("a hang-up", Reply::Hangup),
    ]
}

fn assert_keys_unavailable(answer: &Answer, what: &str) {
    assert_eq!(answer.status, 401, "{what}: {}", answer.text());
    let www = answer.header("www-authenticate").unwrap_or("");
    assert!(www.contains("error=\"invalid_token\""), "{what}: {www}");
    assert_eq!(answer.json()["error"], "invalid_token", "{what}");
}

#[test]
fn cluster_down_gives_keys_unavailable_never_5xx() {
    let key = TestKey::generate("ES256", "k-down");
    let gateway = gateway_with_keys_at(free_port());
    let answer = profile(
        &gateway,
        &key.demo_token("pat@example.com", &["pwd", "pop"]),
    );
    assert_keys_unavailable(&answer, "cluster down");
    assert!(metric(&gateway, "reason.keys_unavailable") >= 1);
    assert!(metric(&gateway, "jwks_fetch.failure") >= 1);
    assert_eq!(metric(&gateway, "jwks_fetch.success"), 0);
    assert_eq!(metric(&gateway, "decision.deny"), 1);
    gateway.assert_no_wasm_failure();
}

#[test]
fn no_keys_yet_and_every_fault_gives_keys_unavailable() {
    let key = TestKey::generate("ES256", "k-none");
    let keys = KeyServer::start(Reply::text(500, "not yet"));
    let gateway = gateway_with_keys_at(keys.port());
    let mut denied = 0;
    for (what, fault) in faults() {
        keys.set(fault);
        let failures = metric(&gateway, "jwks_fetch.failure");
        let hits = keys.hits();
        // Without keys, the request itself asks for them, and waits for the answer.
        let answer = profile(&gateway, &key.demo_token(what, &["pwd", "pop"]));
        assert_keys_unavailable(&answer, what);
        denied += 1;
        assert!(keys.hits() > hits, "{what}: the request fetched keys");
        gateway.wait_until(&format!("{what}: jwks_fetch.failure counted"), |g| {
            metric(g, "jwks_fetch.failure") > failures
        });
        assert_eq!(
            metric(&gateway, "reason.keys_unavailable"),
            denied,
            "{what}"
        );
    }
    assert_eq!(metric(&gateway, "jwks_fetch.success"), 0);
    assert!(
        gateway.envoy_log().contains("no keys loaded yet"),
        "the failed fetch is logged"
    );
    gateway.assert_no_wasm_failure();
}

/// Good keys first; then each fault on the refresh an unknown `kid` triggers: the token with
/// the unknown kid is refused, sessions signed with the kept key still pass.
fn last_good_keys_kept_through(what: &str, fault: Reply) {
    let good = TestKey::generate("ES256", "k-good");
    let other = TestKey::generate("ES256", "k-other");
    let keys = KeyServer::serving(&jwks_of(&[&good]));
    let gateway = gateway_with_keys_at(keys.port());
    let answer = profile(
        &gateway,
        &good.demo_token("first@example.com", &["pwd", "pop"]),
    );
    assert_eq!(answer.status, 200, "{what}: {}", answer.text());
    assert!(metric(&gateway, "jwks_fetch.success") >= 1);

    keys.set(fault);
    let failures = metric(&gateway, "jwks_fetch.failure");
    let unknown = profile(
        &gateway,
        &other.demo_token("other@example.com", &["pwd", "pop"]),
    );
    assert_eq!(unknown.status, 401, "{what}: {}", unknown.text());
    assert_eq!(
        metric(&gateway, "jwks_fetch.unknown_kid_refresh"),
        1,
        "{what}"
    );
    assert_eq!(metric(&gateway, "reason.unknown_kid"), 1, "{what}");
    gateway.wait_until(&format!("{what}: the failed refresh counted"), |g| {
        metric(g, "jwks_fetch.failure") > failures
    });
    assert!(
        gateway.envoy_log().contains("keeping the last good keys"),
        "{what}: the kept keys are logged"
    );

    // A new session (no cache entry) verifies with the kept key.
    let kept = profile(
        &gateway,
        &good.demo_token("second@example.com", &["pwd", "pop"]),
    );
    assert_eq!(kept.status, 200, "{what}: {}", kept.text());
    assert_eq!(
        kept.json()["headers"]["x-mfa-gate-subject"],
        "second@example.com"
    );
    gateway.assert_no_wasm_failure();
}

#[test]
fn last_good_keys_kept_through_500() {
    last_good_keys_kept_through("HTTP 500", Reply::text(500, "internal error"));
}

#[test]
fn last_good_keys_kept_through_garbage() {
    last_good_keys_kept_through("garbage", Reply::text(200, "<html>not a key set</html>"));
}

#[test]
fn last_good_keys_kept_through_a_slow_key_server() {
    let slow = Reply::Delayed(
        Duration::from_millis(1500),
        Box::new(Reply::text(200, "late")),
    );
    last_good_keys_kept_through("slower than the timeout", slow);
}

#[test]
fn last_good_keys_kept_through_a_hang_up() {
    last_good_keys_kept_through("a hang-up", Reply::Hangup);
}

#[test]
fn rotation_an_unknown_kid_triggers_exactly_one_refresh() {
    let old = TestKey::generate("ES256", "k-old");
    let new = TestKey::generate("ES256", "k-new");
    let never = TestKey::generate("ES256", "k-never-published");
    let keys = KeyServer::serving(&jwks_of(&[&old]));
    let gateway = gateway_with_keys_at(keys.port());
    assert_eq!(
        profile(&gateway, &old.demo_token("a@example.com", &["pwd", "pop"])).status,
        200
    );
    let before = keys.hits();

    // The IdP publishes the new key and signs with it.
    keys.set(Reply::json(200, &jwks_of(&[&old, &new])));
    let answer = profile(&gateway, &new.demo_token("b@example.com", &["pwd", "pop"]));
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(keys.hits(), before + 1, "one refresh for the unknown kid");
    assert_eq!(metric(&gateway, "jwks_fetch.unknown_kid_refresh"), 1);

    // Another unknown kid within 30 s: refused without another fetch.
    let answer = profile(
        &gateway,
        &never.demo_token("c@example.com", &["pwd", "pop"]),
    );
    assert_eq!(answer.status, 401, "{}", answer.text());
    assert!(answer
        .header("www-authenticate")
        .unwrap()
        .contains("invalid_token"));
    assert_eq!(keys.hits(), before + 1, "rate-limited: no second refresh");
    assert_eq!(metric(&gateway, "jwks_fetch.unknown_kid_refresh"), 1);
    assert_eq!(metric(&gateway, "reason.unknown_kid"), 1);

    // Both published keys verify.
    assert_eq!(
        profile(&gateway, &old.demo_token("d@example.com", &["pwd", "pop"])).status,
        200
    );
    assert_eq!(
        profile(&gateway, &new.demo_token("e@example.com", &["pwd", "pop"])).status,
        200
    );
    gateway.assert_no_wasm_failure();
}
