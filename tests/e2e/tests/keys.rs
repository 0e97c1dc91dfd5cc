//! Remote JWKS through dispatch_http_call: fetch at start, scheduled refresh on ticks,
//! key-server failures (500, garbage, timeout, reset) keeping the last good keys, and the
//! rate-limited refresh an unknown `kid` triggers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use mfa_gate_host::{ClusterReply, Clusters};
use serde_json::json;

const WEBAUTHN: &[&str] = &["pwd", "pop"];

fn remote_config() -> String {
    config_with(
        json!({"profile":"okta","jwks":null,"remote_jwks":{"cluster":"idp_jwks","path":"/keys","authority":"idp.example.test","refresh_interval_secs":600,"timeout_ms":2000}}),
        json!({}),
    )
}

fn gate_with(script: &ClusterScript) -> Gate {
    let mut clusters = Clusters::new();
    clusters.add("idp_jwks", script.cluster());
    Gate::with_clusters(&remote_config(), clusters, 1)
}

#[test]
fn keys_are_fetched_at_start_from_the_named_cluster() {
    let script = ClusterScript::new(vec![ok_json(&jwks(&[&KEY]))]);
    let mut gate = gate_with(&script);
    let ex = gate.get_with_token("/admin", &KEY.token(&claims("alice", WEBAUTHN)));
    assert_eq!(ex.response.status, 200);
    assert_eq!(script.call_count(), 1);
    let call = &script.calls.lock().unwrap()[0];
    let path = call
        .headers
        .iter()
        .find(|(k, _)| k == b":path")
        .map(|(_, v)| v.clone());
    assert_eq!(path.as_deref(), Some(&b"/keys"[..]));
    assert_eq!(gate.metric("mfa_gate.jwks_fetch.success"), 1);
}

#[test]
fn key_server_failures_keep_the_last_good_keys() {
    let script = ClusterScript::new(vec![ok_json(&jwks(&[&KEY]))]);
    let mut gate = gate_with(&script);
    let token = KEY.token(&claims("alice", WEBAUTHN));
    assert_eq!(gate.get_with_token("/admin", &token).response.status, 200);

    let failures = [
        status_reply(500, "oops"),
        ok_json("this is not json"),
        ok_json(r#"{"keys":[]}"#),
        ClusterReply::Reset,
        ClusterReply::ConnectFailure,
        ClusterReply::NoAnswer,
    ];
    let mut expected_failures = 0;
    for failure in failures {
        script.set(vec![failure.clone()]);
        let calls = script.call_count();
        gate.host.advance(600_000 + 5_000);
        gate.host.advance(3_000); // past the 2 s fetch timeout
        assert!(script.call_count() > calls, "no refresh for {failure:?}");
        expected_failures += 1;
        assert!(
            gate.metric("mfa_gate.jwks_fetch.failure") >= expected_failures,
            "failure not counted for {failure:?}"
        );
        // A new token (not cached) still verifies with the last good keys.
        let mut c = claims("alice", WEBAUTHN);
        c["jti"] = json!(format!("{failure:?}"));
        c["iat"] = json!(gate.host.now_unix_ms() / 1000 - 5);
        c["auth_time"] = c["iat"].clone();
        c["exp"] = json!(gate.host.now_unix_ms() / 1000 + 600);
        let ex = gate.get_with_token("/admin", &KEY.token(&c));
        assert_eq!(ex.response.status, 200, "after {failure:?}");
    }
    let warned = gate
        .host
        .logs()
        .iter()
        .any(|l| l.level == "warn" && l.message.contains("keeping the last good keys"));
    assert!(warned, "no warning logged");
}

#[test]
fn no_keys_at_all_answers_401_not_5xx() {
    let script = ClusterScript::new(vec![status_reply(503, "down")]);
    let mut gate = gate_with(&script);
    let ex = gate.get_with_token("/admin", &KEY.token(&claims("alice", WEBAUTHN)));
    assert_eq!(ex.response.status, 401);
    assert_eq!(reasons(&ex), vec!["keys_unavailable"]);
}

#[test]
fn keys_arriving_late_are_waited_for_by_the_request() {
    // The start-up fetch fails; the request fetches again itself and succeeds.
    let script = ClusterScript::new(vec![status_reply(500, ""), ok_json(&jwks(&[&KEY]))]);
    let mut gate = gate_with(&script);
    let ex = gate.get_with_token("/admin", &KEY.token(&claims("alice", WEBAUTHN)));
    assert_eq!(ex.response.status, 200);
    assert_eq!(script.call_count(), 2);
}

#[test]
fn unknown_kid_triggers_one_rate_limited_refresh() {
    let script = ClusterScript::new(vec![ok_json(&jwks(&[&KEY]))]);
    let mut gate = gate_with(&script);
    assert_eq!(script.call_count(), 1);
    // The provider rotated: the new key is served from now on.
    script.set(vec![ok_json(&jwks(&[&KEY, &ROTATED_KEY]))]);
    let ex = gate.get_with_token("/admin", &ROTATED_KEY.token(&claims("alice", WEBAUTHN)));
    assert_eq!(ex.response.status, 200, "{:?}", ex.logs);
    assert_eq!(script.call_count(), 2);
    assert_eq!(gate.metric("mfa_gate.jwks_fetch.unknown_kid_refresh"), 1);

    // A flood of tokens with made-up kids costs at most one fetch per 30 s.
    for i in 0..20 {
        let stranger = Signer::new(&format!("made-up-{i}"));
        let ex = gate.get_with_token("/admin", &stranger.token(&claims("x", WEBAUTHN)));
        assert_eq!(ex.response.status, 401);
    }
    assert_eq!(script.call_count(), 2, "unknown kids must be rate-limited");
    gate.host.advance(31_000);
    let stranger = Signer::new("made-up-later");
    let ex = gate.get_with_token("/admin", &stranger.token(&claims("x", WEBAUTHN)));
    assert_eq!(ex.response.status, 401);
    assert_eq!(
        script.call_count(),
        3,
        "one refresh allowed again after 30 s"
    );
}

#[test]
fn dispatch_to_an_unknown_cluster_is_counted_not_fatal() {
    // No cluster named idp_jwks: dispatch_http_call answers BadArgument.
    let mut gate = Gate::with_clusters(&remote_config(), Clusters::new(), 1);
    let ex = gate.get_with_token("/admin", &KEY.token(&claims("alice", WEBAUTHN)));
    assert_eq!(ex.response.status, 401);
    assert!(gate.metric("mfa_gate.jwks_fetch.failure") >= 1);
}
