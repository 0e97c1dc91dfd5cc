//! The demo `make run` starts, in real Envoy: envoy/envoy.yaml with the release filter, and
//! `mfa-gate demo` as IdP and app. Every case the demo prints gets the answer printed beside
//! it, sent by the harness and as the printed curl line; the README's grid (no-token row
//! included) and the browser step-up round trip hold.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

use mfa_gate_envoy::{http_get, sign_in, Answer, DemoCase, Gateway, GatewayBuilder};
use std::process::Command;

fn demo() -> Gateway {
    GatewayBuilder::shipped("envoy/envoy.yaml").start()
}

fn curl_installed() {
    let found = Command::new("curl")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "curl is needed to run the demo's printed curl lines: install it (apt-get install curl)"
    );
}

/// Runs a printed curl line as a user pastes it (it fetches a fresh token from the IdP);
/// returns the HTTP status.
fn run_curl_line(line: &str) -> String {
    let script =
        format!("{line} -o /dev/null -w '%{{http_code}}'").replace("curl -si ", "curl -s ");
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .output()
        .expect("run bash");
    assert!(
        out.status.success(),
        "{line}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn every_printed_case_and_curl_line_gets_the_printed_answer() {
    curl_installed();
    let gateway = demo();
    let cases = DemoCase::printed(&gateway);
    assert!(
        cases.len() >= 14,
        "4 users x 3 routes, no token, browser: {}",
        cases.len()
    );
    for case in &cases {
        case.assert_answer(&case.send(&gateway));
        let line = &case.curl;
        assert!(
            line.contains(&format!("127.0.0.1:{}{}", gateway.port, case.path)),
            "{line}"
        );
        assert_eq!(
            run_curl_line(line),
            case.status().to_string(),
            "{}: {line}",
            case.describe()
        );
    }
    // Each harness request and each curl line was decided once (the first miss per user
    // verifies, the rest are cache hits).
    let decided: u64 = ["allow", "step_up", "deny"]
        .iter()
        .map(|d| gateway.counter(&format!("wasmcustom.mfa_gate.decision.{d}")))
        .sum();
    assert_eq!(decided, 2 * cases.len() as u64);
    gateway.assert_no_wasm_failure();
}

#[test]
fn the_readme_grid_holds_including_the_no_token_row() {
    let gateway = demo();
    let routes = [
        ("GET", "/api/profile"),
        ("POST", "/payments/transfer"),
        ("GET", "/admin/users"),
    ];
    let grid = [
        ("push", [200, 403, 401]),
        ("number-match", [200, 200, 401]),
        ("otp", [200, 200, 401]),
        ("passkey", [200, 200, 200]),
    ];
    for (user, statuses) in grid {
        let bearer = format!("Bearer {}", gateway.token(user));
        for ((method, path), status) in routes.iter().zip(statuses) {
            let answer = gateway.request(method, path, &[("authorization", &bearer)], &[]);
            assert_eq!(
                answer.status,
                status,
                "{user} {method} {path}: {}",
                answer.text()
            );
        }
    }
    for (method, path) in routes {
        let answer = gateway.request(method, path, &[], &[]);
        assert_eq!(answer.status, 401, "no token {method} {path}");
        assert_eq!(
            answer.header("www-authenticate"),
            Some("Bearer realm=\"mfa-gate-demo\""),
            "no token {method} {path}: RFC 6750 without an error code"
        );
    }
    // The README's step-up answer and the app's view of an allowed passkey session.
    let bearer = format!("Bearer {}", gateway.token("push"));
    let step_up = gateway.get("/admin/users", &[("authorization", &bearer)]);
    let www = step_up.header("www-authenticate").unwrap();
    for part in [
        "Bearer realm=\"mfa-gate-demo\"",
        "error=\"insufficient_user_authentication\"",
        "acr_values=\"phr\"",
        "max_age=\"3600\"",
    ] {
        assert!(www.contains(part), "{www}");
    }
    let bearer = format!("Bearer {}", gateway.token("passkey"));
    let app = gateway
        .get("/admin/users", &[("authorization", &bearer)])
        .json();
    assert_eq!(app["app"], "mfa-gate demo app");
    assert_eq!(app["headers"]["x-mfa-gate-level"], "phishing_resistant");
    assert_eq!(app["headers"]["x-mfa-gate-methods"], "pwd,webauthn");
    assert_eq!(app["headers"]["x-mfa-gate-subject"], "kim@example.com");
    gateway.assert_no_wasm_failure();
}

/// The README's browser walk-through: sign in with push, get sent to the IdP for a passkey,
/// come back through the gateway's callback, allowed.
#[test]
fn browser_step_up_round_trip() {
    let gateway = demo();
    let login = http_get(gateway.idp_port, "/login/push");
    assert_eq!(login.status, 302);
    let cookie = session_cookie(&login);
    let admin = format!("http://127.0.0.1:{}/admin/users", gateway.port);
    assert_eq!(login.header("location"), Some(admin.as_str()));

    let started = sign_in::start(&gateway, "/admin/users", &cookie);
    for part in [
        "acr_values=phr",
        "max_age=3600",
        "prompt=login",
        "client_id=mfa-gate-demo",
    ] {
        assert!(
            started.authorize_path.contains(part),
            "{part} in {}",
            started.authorize_path
        );
    }
    let back = sign_in::approve_with_passkey(&gateway, &started);
    let done = sign_in::callback(&gateway, &back, &started.state_cookie);
    assert_eq!(done.status, 302, "{}", done.text());
    assert_eq!(done.header("location"), Some("/admin/users"));
    let session = sign_in::set_cookie(&done, "mfa_session").expect("the session cookie");
    let session = session.split(';').next().unwrap();
    let allowed = gateway.get(
        "/admin/users",
        &[("accept", "text/html"), ("cookie", session)],
    );
    assert_eq!(allowed.status, 200, "{}", allowed.text());
    assert_eq!(
        allowed.json()["headers"]["x-mfa-gate-level"],
        "phishing_resistant"
    );
    gateway.assert_no_wasm_failure();
}

fn session_cookie(answer: &Answer) -> String {
    let set_cookie = answer.header("set-cookie").expect("set-cookie");
    set_cookie.split(';').next().unwrap().to_string()
}

/// The demo IdP's opaque tokens (`/token/<user>?format=opaque`) are introspected at its
/// RFC 7662 endpoint: the same answers as its JWTs, by the level the answer's amr/acr give;
/// a revoked one stays good until its cached answer's TTL, a made-up one is refused.
#[test]
fn opaque_demo_tokens_are_introspected() {
    let gateway = demo();
    let opaque = |user: &str| {
        let answer = http_get(gateway.idp_port, &format!("/token/{user}?format=opaque"));
        assert_eq!(answer.status, 200, "{}", answer.text());
        let token = answer.text().trim().to_string();
        assert_eq!(token.matches('.').count(), 0, "opaque, not a JWT: {token}");
        token
    };
    let passkey = format!("Bearer {}", opaque("passkey"));
    let admin = gateway.get("/admin/users", &[("authorization", &passkey)]);
    assert_eq!(admin.status, 200, "{}", admin.text());
    assert_eq!(
        admin.json()["headers"]["x-mfa-gate-level"],
        "phishing_resistant"
    );
    let push = format!("Bearer {}", opaque("push"));
    let stepped = gateway.get("/admin/users", &[("authorization", &push)]);
    assert_eq!(stepped.status, 401, "{}", stepped.text());
    let www = stepped.header("www-authenticate").unwrap_or_default();
    assert!(www.contains("insufficient_user_authentication"), "{www}");
    let unknown = gateway.get(
        "/api/profile",
        &[("authorization", "Bearer not-a-token-the-idp-issued")],
    );
    assert_eq!(unknown.status, 401, "{}", unknown.text());
    assert!(gateway.envoy_log().contains("token_inactive"));
    assert_eq!(
        gateway.counter("wasmcustom.mfa_gate.introspection.active"),
        2
    );
    gateway.assert_no_wasm_failure();
}
