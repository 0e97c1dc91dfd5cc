//! The jwt_authn path: Envoy's native jwt_authn filter verified the token and stored the
//! payload with `payload_in_metadata`; mfa-gate reads it from the `metadata` property
//! (the bytes Envoy hands a filter, reproduced by host/src/metadata.rs) instead of
//! verifying again. Client-supplied headers are never taken as a payload.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::{json, Value};

fn metadata_config() -> String {
    json!({
        "jwt_authn": {"payload_in_metadata": "jwt_payload"},
        "issuers": [{"issuer": ISS, "profile": "okta"}],
        "routes": [{"name":"admin","match":{"path_prefix":"/admin"},"require":{"level":"phishing_resistant"}}]
    })
    .to_string()
}

fn with_payload(
    path: &str,
    payload: Option<Value>,
    headers: &[(&str, &[u8])],
) -> mfa_gate_host::DownstreamRequest {
    let mut req = request("GET", path, headers);
    if let Some(p) = payload {
        req.filter_metadata.insert(
            "envoy.filters.http.jwt_authn".to_string(),
            json!({ "jwt_payload": p }),
        );
    }
    req
}

#[test]
fn verified_payload_in_metadata_is_classified_without_a_token() {
    let mut gate = Gate::new(&metadata_config());
    let ex = gate.send(with_payload(
        "/admin",
        Some(claims("alice", &["pwd", "pop"])),
        &[],
    ));
    assert_eq!(ex.response.status, 200, "{:?}", ex.logs);
    assert_eq!(
        upstream_header(&ex, "x-mfa-gate-subject").as_deref(),
        Some("alice")
    );
    assert_eq!(decision(&ex)["source"], "jwt_authn");
    assert_eq!(gate.metric("mfa_gate.jwt_authn_payload"), 1);

    let ex = gate.send(with_payload(
        "/admin",
        Some(claims("bob", &["okta_verify", "swk"])),
        &[],
    ));
    assert_eq!(ex.response.status, 401);
    assert!(header(&ex, "www-authenticate")
        .unwrap()
        .contains("insufficient_user_authentication"));
}

#[test]
fn no_payload_means_no_session_even_with_a_bearer_token() {
    let mut gate = Gate::new(&metadata_config());
    let token = KEY.token(&claims("alice", &["pop"]));
    let auth = format!("Bearer {token}");
    let ex = gate.send(with_payload(
        "/admin",
        None,
        &[("authorization", auth.as_bytes())],
    ));
    assert_eq!(ex.response.status, 401);
    assert_eq!(reasons(&ex), vec!["missing_token"]);
}

#[test]
fn client_headers_pretending_to_be_a_payload_are_ignored() {
    let mut gate = Gate::new(&metadata_config());
    let forged = claims("mallory", &["pop"]).to_string();
    let ex = gate.send(with_payload(
        "/admin",
        None,
        &[
            ("x-jwt-payload", forged.as_bytes()),
            ("jwt_payload", forged.as_bytes()),
        ],
    ));
    assert_eq!(ex.response.status, 401);
}

#[test]
fn payload_from_an_unconfigured_issuer_is_refused() {
    let mut gate = Gate::new(&metadata_config());
    let mut c = claims("alice", &["pop"]);
    c["iss"] = json!("https://other.example");
    let ex = gate.send(with_payload("/admin", Some(c), &[]));
    assert_eq!(ex.response.status, 401);
    assert_eq!(reasons(&ex), vec!["unknown_issuer"]);
}

#[test]
fn a_second_credential_beside_the_verified_one_is_refused() {
    let mut gate = Gate::new(&metadata_config());
    // jwt_authn verified one token; the payload does not say which, so two differing
    // credentials (a Basic header beside the bearer token) are refused outright.
    let ex = gate.send(with_payload(
        "/admin",
        Some(claims("alice", &["pwd", "pop"])),
        &[
            ("authorization", b"Bearer a.b.c"),
            ("authorization", b"Basic YWRtaW46aHVudGVyMg=="),
        ],
    ));
    assert_eq!(ex.response.status, 400, "{:?}", ex.logs);
    assert_eq!(reasons(&ex), ["multiple_credentials"]);
    // One credential, as jwt_authn leaves it: allowed.
    let ex = gate.send(with_payload(
        "/admin",
        Some(claims("alice", &["pwd", "pop"])),
        &[("authorization", b"Bearer a.b.c")],
    ));
    assert_eq!(ex.response.status, 200, "{:?}", ex.logs);
}
