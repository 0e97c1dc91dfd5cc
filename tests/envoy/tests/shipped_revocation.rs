//! Revocation as `envoy/envoy.yaml` ships it (`make run`'s walk-through): the demo IdP's
//! session API ends a user's sessions and the gateway refuses them within one poll
//! interval; a rule's `revoke` ends the session here and at the IdP (the Okta-shaped
//! `DELETE`), which ends the user's other sessions too, so those are refused next; a
//! failing IdP API is counted and the local revocation stands.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

use mfa_gate_envoy::revocation::assert_session_revoked;
use mfa_gate_envoy::{http_request, Answer, Gateway, GatewayBuilder};
use std::time::{Duration, Instant};

/// The shipped config polls every 2 s; one interval and a margin for a busy machine.
const POLL_LIMIT: Duration = Duration::from_secs(5);

fn profile(gateway: &Gateway, token: &str) -> Answer {
    gateway.get(
        "/api/profile",
        &[("authorization", &format!("Bearer {token}"))],
    )
}

fn metric(gateway: &Gateway, name: &str) -> u64 {
    gateway.counter(&format!("wasmcustom.mfa_gate.{name}"))
}

/// Waits until `token` is refused; returns how long it took.
fn refused_within(gateway: &Gateway, token: &str, limit: Duration, what: &str) -> Duration {
    let started = Instant::now();
    loop {
        let answer = profile(gateway, token);
        if answer.status == 401 {
            assert_session_revoked(&answer, what);
            return started.elapsed();
        }
        assert_eq!(answer.status, 200, "{what}: {}", answer.text());
        assert!(
            started.elapsed() < limit,
            "{what}: still let in after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn ending_sessions_at_the_idp_is_enforced_within_one_poll_interval() {
    let gateway = GatewayBuilder::shipped("envoy/envoy.yaml").start();
    let token = gateway.token("push");
    assert_eq!(profile(&gateway, &token).status, 200);
    let ended = http_request(
        gateway.idp_port,
        "DELETE",
        "/api/v1/users/push/sessions",
        &[("authorization", "SSWS demo-okta-api-token")],
        b"",
    );
    assert_eq!(ended.status, 204, "{}", ended.text());
    let delay = refused_within(&gateway, &token, POLL_LIMIT, "after the IdP ended it");
    println!("shipped config: IdP ended the session, refused after {delay:?}");
    assert!(metric(&gateway, "revocation.poll.success") >= 1);
    assert!(metric(&gateway, "revocation.event.accepted") >= 1);
    // Every route, not just the one that asked.
    let admin = gateway.get(
        "/admin/users",
        &[("authorization", &format!("Bearer {token}"))],
    );
    assert_session_revoked(&admin, "/admin/users");
    // Signing in again is a new session.
    assert_eq!(profile(&gateway, &gateway.token("push")).status, 200);
    gateway.assert_no_wasm_failure();
}

#[test]
fn a_rules_revoke_ends_the_session_here_and_at_the_idp() {
    let gateway = GatewayBuilder::shipped("envoy/envoy.yaml").start();
    // Two sessions of the same user; the second one trips the revoke rule.
    let other = gateway.token("push");
    let tripping = gateway.token("push");
    assert_eq!(profile(&gateway, &other).status, 200);
    let keys = gateway.get(
        "/admin/keys/rotate",
        &[("authorization", &format!("Bearer {tripping}"))],
    );
    assert_session_revoked(&keys, "/admin/keys");
    assert_eq!(metric(&gateway, "decision.revoke"), 1);
    assert_session_revoked(
        &profile(&gateway, &tripping),
        "the revoked session elsewhere",
    );
    // The gateway asked the IdP to end the user's sessions (Okta: all of them)...
    let asked = Instant::now();
    gateway.wait_until("the IdP call", |g| {
        g.counter("wasmcustom.mfa_gate.idp_session.ended") == 1
    });
    // ...so the IdP's session-revoked events, polled back, refuse the other one too.
    let delay = refused_within(&gateway, &other, POLL_LIMIT, "the user's other session");
    println!(
        "shipped config: gateway revoke -> IdP call ended in {:?}; the other session refused {delay:?} later",
        asked.elapsed().saturating_sub(delay)
    );
    assert_eq!(metric(&gateway, "idp_session.gave_up"), 0);
    let log = gateway.envoy_log();
    assert!(
        log.contains("ended user pat%40example.com at https://idp.mfa-gate.test (HTTP 204)"),
        "{}",
        gateway.log_tail()
    );
    assert!(
        !log.contains("demo-okta-api-token"),
        "the API credential must never reach a log"
    );
    gateway.assert_no_wasm_failure();
}

#[test]
fn a_failing_idp_api_is_counted_and_the_local_revocation_stands() {
    // The IdP takes another API token than the gateway has: its DELETE answers 401.
    let gateway = GatewayBuilder::shipped("envoy/envoy.yaml")
        .demo_args(&["--okta-api-token", "another-token"])
        .start();
    let token = gateway.token("push");
    let keys = gateway.get(
        "/admin/keys/rotate",
        &[("authorization", &format!("Bearer {token}"))],
    );
    assert_session_revoked(&keys, "/admin/keys");
    gateway.wait_until("the IdP call to fail", |g| {
        g.counter("wasmcustom.mfa_gate.idp_session.gave_up") == 1
    });
    assert_eq!(metric(&gateway, "idp_session.ended"), 0);
    assert!(metric(&gateway, "idp_session.failure") >= 1);
    assert!(gateway.envoy_log().contains("HTTP 401; not retried"));
    assert_session_revoked(&profile(&gateway, &token), "still revoked here");
    gateway.assert_no_wasm_failure();
}
