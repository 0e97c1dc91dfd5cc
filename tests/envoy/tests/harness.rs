//! The harness checks what it claims to: a wasm VM that traps is reported, and the echo
//! upstream shows the request exactly as it arrived.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

use mfa_gate_envoy::{release_wasm, EchoUpstream, GatewayBuilder};

#[test]
fn a_trapping_vm_is_reported() {
    // The conformance fixture panics on request when asked to (x-conformance: trap).
    let fixture = release_wasm().with_file_name("conformance_filter.wasm");
    assert!(
        fixture.is_file(),
        "{} is missing: build it first (make wasm)",
        fixture.display()
    );
    let gateway = GatewayBuilder::shipped("envoy/envoy.yaml")
        .wasm_file(fixture)
        .echo_upstream()
        .start();
    assert_eq!(gateway.get("/", &[]).status, 200);
    gateway.assert_no_wasm_failure();

    let trapped = gateway.get("/", &[("x-conformance", "trap")]);
    assert_ne!(
        trapped.status, 200,
        "a trapped VM does not pass the request"
    );
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        gateway.assert_no_wasm_failure()
    }));
    let message = *outcome
        .expect_err("the trap is reported")
        .downcast::<String>()
        .unwrap();
    assert!(message.contains("wasm VM failure"), "{message}");
}

#[test]
fn the_echo_upstream_shows_the_request_as_received() {
    let gateway = GatewayBuilder::shipped("envoy/envoy.yaml")
        .echo_upstream()
        .start();
    let bearer = format!("Bearer {}", gateway.token("passkey"));
    let answer = gateway.request(
        "POST",
        "/api/items?b=2&a=1",
        &[("authorization", &bearer), ("x-one", "1"), ("x-two", "2")],
        b"hello",
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    let echoed = answer.json();
    assert_eq!(echoed["method"], "POST");
    assert_eq!(echoed["path"], "/api/items?b=2&a=1");
    assert_eq!(echoed["body"], "hello");
    let headers = EchoUpstream::headers_seen(&answer);
    let position = |name: &str| headers.iter().position(|(k, _)| k == name);
    assert!(
        position("x-one").unwrap() < position("x-two").unwrap(),
        "{headers:?}"
    );
    assert_eq!(
        headers
            .iter()
            .filter(|(k, _)| k == "x-mfa-gate-level")
            .count(),
        1,
        "{headers:?}"
    );
    assert_eq!(gateway.echo().unwrap().requests(), 1);
}
