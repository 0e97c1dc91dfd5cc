//! `mfa-gate demo` on its own: a port already in use is one clear error line. The demo end
//! to end (every printed case and curl line, in real Envoy) is tests/envoy/tests/demo_grid.rs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

mod common;

use std::net::TcpListener;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

#[test]
fn demo_reports_a_port_in_use_clearly() {
    let busy = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = busy.local_addr().expect("addr").port();
    let out = common::mfa_gate(&[
        "demo",
        "--idp-port",
        &port.to_string(),
        "--app-port",
        &free_port().to_string(),
    ]);
    common::assert_one_line_error(&out, &format!("port {port} on 127.0.0.1 is already in use"));
}
