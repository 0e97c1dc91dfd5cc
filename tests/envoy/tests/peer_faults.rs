//! Peer faults no other suite shows, in real Envoy 1.40 with the real peer servers: an
//! oversized JWKS body, the SSF transmitter oversized / resetting / down, the IdP session
//! API slow / garbage / resetting, the push-counting rate-limit service slow or answering
//! garbage, the introspection cluster down. Each: the status, reason and counter the README's
//! "When a peer fails" table says, no wasm VM failure, and recovery once the fault ends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

use mfa_gate_envoy::{jwks_of, Answer, Gateway, GatewayBuilder, KeyServer, Reply, TestKey};

/// Over the filter's 1 MiB JWKS bound (src/token/jwks.rs `MAX_JWKS_BYTES`).
const OVER_JWKS_BOUND: usize = 1024 * 1024 + 4096;

fn metric(gateway: &Gateway, name: &str) -> u64 {
    gateway.counter(&format!("wasmcustom.mfa_gate.{name}"))
}

fn profile(gateway: &Gateway, token: &str) -> Answer {
    gateway.get(
        "/api/profile",
        &[("authorization", &format!("Bearer {token}"))],
    )
}

/// A well-formed JWKS holding `keys`, padded past the bound with an extra member.
fn oversized_jwks(keys: &[&TestKey]) -> Reply {
    let mut document = jwks_of(keys);
    document["padding"] = "x".repeat(OVER_JWKS_BOUND).into();
    Reply::json(200, &document)
}

#[test]
fn an_oversized_key_set_is_refused_no_keys_gives_keys_unavailable_kept_keys_stay_then_recovers() {
    let good = TestKey::generate("ES256", "k-good");
    let rotated = TestKey::generate("ES256", "k-rotated");
    // The oversized set holds the very key the token is signed with: only the size refuses it.
    let keys = KeyServer::start(oversized_jwks(&[&good]));
    let gateway = GatewayBuilder::shipped("envoy/envoy.yaml")
        .idp_cluster_port(keys.port())
        .plugin_config(|c| c["issuers"][0]["remote_jwks"]["timeout_ms"] = 1000.into())
        .start();

    // No keys yet: the request's own fetch gets the oversized set.
    let failures = metric(&gateway, "jwks_fetch.failure");
    let answer = profile(&gateway, &good.demo_token("a@example.com", &["pwd", "pop"]));
    assert_eq!(answer.status, 401, "no keys yet: {}", answer.text());
    assert!(answer
        .header("www-authenticate")
        .unwrap_or("")
        .contains("error=\"invalid_token\""));
    assert_eq!(metric(&gateway, "reason.keys_unavailable"), 1);
    gateway.wait_until("the oversized fetch counted as a failure", |g| {
        metric(g, "jwks_fetch.failure") > failures
    });
    assert_eq!(metric(&gateway, "jwks_fetch.success"), 0);
    let log = gateway.envoy_log();
    assert!(
        log.contains("the limit is 1048576"),
        "the size is the reason logged"
    );

    // Recovery: the key server answers a normal set; the next request fetches it.
    keys.set(Reply::json(200, &jwks_of(&[&good])));
    gateway.wait_until("a good fetch after the oversized ones", |g| {
        profile(g, &good.demo_token("b@example.com", &["pwd", "pop"])).status == 200
    });
    assert!(metric(&gateway, "jwks_fetch.success") >= 1);

    // With keys: an oversized set on the refresh an unknown kid triggers keeps the last good.
    keys.set(oversized_jwks(&[&good, &rotated]));
    let failures = metric(&gateway, "jwks_fetch.failure");
    let unknown = profile(
        &gateway,
        &rotated.demo_token("c@example.com", &["pwd", "pop"]),
    );
    assert_eq!(unknown.status, 401, "unknown kid: {}", unknown.text());
    assert_eq!(metric(&gateway, "jwks_fetch.unknown_kid_refresh"), 1);
    gateway.wait_until("the oversized refresh counted as a failure", |g| {
        metric(g, "jwks_fetch.failure") > failures
    });
    assert!(
        gateway.envoy_log().contains("keeping the last good keys"),
        "the kept keys are logged"
    );
    let kept = profile(&gateway, &good.demo_token("d@example.com", &["pwd", "pop"]));
    assert_eq!(kept.status, 200, "kept keys: {}", kept.text());
    assert_eq!(
        kept.json()["headers"]["x-mfa-gate-subject"],
        "d@example.com"
    );
    gateway.assert_no_wasm_failure();
}
