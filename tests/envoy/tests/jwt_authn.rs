//! envoy/envoy-jwt-authn.yaml in real Envoy: Envoy's own `envoy.filters.http.jwt_authn`
//! verifies the token (JWKS from the demo IdP) and leaves the payload in dynamic metadata
//! (`payload_in_metadata: jwt_payload`); mfa-gate decides from those claims. Every case the
//! demo prints gets the same answer as without jwt_authn.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

use mfa_gate_envoy::{DemoCase, GatewayBuilder, TestKey};

#[test]
fn the_demo_grid_holds_behind_envoy_jwt_authn() {
    let gateway = GatewayBuilder::shipped("envoy/envoy-jwt-authn.yaml").start();
    let cases = DemoCase::printed(&gateway);
    for case in &cases {
        case.assert_answer(&case.send(&gateway));
    }
    let with_token = cases.iter().filter(|c| !c.headers.is_empty()).count();
    // mfa-gate read every session from jwt_authn's verified payload.
    let metric = |name: &str| gateway.counter(&format!("wasmcustom.mfa_gate.{name}"));
    assert_eq!(metric("jwt_authn_payload"), with_token as u64);
    assert!(gateway.counter("http.gateway.jwt_authn.allowed") >= with_token as u64);
    gateway.assert_no_wasm_failure();
}

#[test]
fn jwt_authn_refuses_a_bad_token_before_mfa_gate() {
    let gateway = GatewayBuilder::shipped("envoy/envoy-jwt-authn.yaml").start();
    let stranger = TestKey::generate("ES256", "k-stranger");
    for token in [
        stranger.demo_token("kim@example.com", &["pwd", "pop"]),
        "not.a.token".to_string(),
    ] {
        let bearer = format!("Bearer {token}");
        let answer = gateway.get("/api/profile", &[("authorization", &bearer)]);
        assert_eq!(answer.status, 401, "{}", answer.text());
        // jwt_authn's own answer: its plain-text reason, its realm (the request URL).
        let www = answer.header("www-authenticate").unwrap_or("");
        assert!(www.contains("error=\"invalid_token\""), "{www}");
        assert!(
            !www.contains("mfa-gate-demo"),
            "not mfa-gate's answer: {www}"
        );
    }
    let decided: u64 = ["allow", "step_up", "deny"]
        .iter()
        .map(|d| gateway.counter(&format!("wasmcustom.mfa_gate.decision.{d}")))
        .sum();
    assert_eq!(decided, 0, "mfa-gate never saw the refused requests");
    assert_eq!(gateway.counter("http.gateway.jwt_authn.denied"), 2);
    // Without a token jwt_authn lets the request through (allow_missing); mfa-gate refuses it.
    let answer = gateway.get("/api/profile", &[]);
    assert_eq!(answer.status, 401);
    assert_eq!(
        answer.header("www-authenticate"),
        Some("Bearer realm=\"mfa-gate-demo\"")
    );
    assert_eq!(
        gateway.counter("wasmcustom.mfa_gate.reason.missing_token"),
        1
    );
    gateway.assert_no_wasm_failure();
}
