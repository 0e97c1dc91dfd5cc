//! The demo `make run` starts, in real Envoy: envoy/envoy.yaml with the release filter,
//! `mfa-gate demo` as IdP and app. Every case the demo prints gets the answer printed
//! beside it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

use mfa_gate_envoy::GatewayBuilder;

#[test]
fn push_session_reads_the_profile() {
    let gateway = GatewayBuilder::shipped("envoy/envoy.yaml").start();
    let bearer = format!("Bearer {}", gateway.token("push"));
    let answer = gateway.get("/api/profile", &[("authorization", &bearer)]);
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["headers"]["x-mfa-gate-level"], "push");
    assert_eq!(gateway.counter("wasmcustom.mfa_gate.decision.allow"), 1);
    gateway.assert_no_wasm_failure();
}
