//! The envoy/ bootstraps run through the project's proxy-wasm host (`mfa-gate-host replay`)
//! with the release filter: the jwt_authn variant with the verified payload handed over in
//! dynamic metadata as Envoy's jwt_authn stores it, and the standalone gateway with its JWKS
//! cluster answered by a canned reply holding a test key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

mod common;

use serde_json::{json, Value};
use std::io::Write;
use std::process::{Command, Stdio};

/// Runs replay on `config` with one JSON request per line; returns one answer per line.
fn replay(config: &str, extra: &[&str], requests: &[Value]) -> Vec<Value> {
    common::filter_wasm();
    let mut child = Command::new(common::host_binary())
        .args(["replay", "--config", config])
        .args(extra)
        .current_dir(common::repo())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start replay");
    {
        let mut stdin = child.stdin.take().expect("stdin");
        for r in requests {
            writeln!(stdin, "{r}").expect("write request");
        }
    }
    let out = child.wait_with_output().expect("replay output");
    assert!(
        out.status.success(),
        "replay: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answers: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON answer"))
        .collect();
    assert_eq!(answers.len(), requests.len(), "{answers:?}");
    answers
}

fn upstream_header<'a>(answer: &'a Value, name: &str) -> Option<&'a str> {
    answer["upstream_headers"]
        .as_array()?
        .iter()
        .find(|h| h[0] == name)
        .and_then(|h| h[1].as_str())
}

const START_SECS: u64 = 1_767_225_600; // the replay clock (2026-01-01)

fn demo_claims(amr: &[&str]) -> Value {
    json!({"iss": "https://idp.mfa-gate.test", "sub": "pat@example.com", "aud": "mfa-gate-demo",
           "amr": amr, "iat": START_SECS, "exp": START_SECS + 600, "auth_time": START_SECS})
}

#[test]
fn jwt_authn_variant_decides_on_the_payload_envoy_verified() {
    let with_payload = |path: &str, amr: &[&str]| json!({"path": path, "metadata": {"envoy.filters.http.jwt_authn": {"jwt_payload": demo_claims(amr)}}});
    let start = format!("{}", START_SECS * 1000);
    let answers = replay(
        "envoy/envoy-jwt-authn.yaml",
        &["--start-unix-ms", &start],
        &[
            with_payload("/admin/users", &["pwd", "okta_verify", "swk"]),
            with_payload("/admin/users", &["pwd", "pop"]),
            with_payload("/payments/transfer", &["pwd", "okta_verify", "swk"]),
            json!({"path": "/api/profile"}),
        ],
    );
    assert_eq!(answers[0]["status"], 401);
    assert_eq!(answers[0]["details"], "mfa_gate_step_up");
    assert_eq!(answers[1]["status"], 200);
    assert_eq!(
        upstream_header(&answers[1], "x-mfa-gate-level"),
        Some("phishing_resistant")
    );
    assert_eq!(answers[2]["status"], 403);
    assert_eq!(answers[3]["status"], 401, "no verified payload, no session");
}

#[test]
fn standalone_gateway_fetches_keys_from_its_idp_cluster_and_decides() {
    let dir = common::scratch("host-standalone");
    let key = dir.join("key.json").to_string_lossy().into_owned();
    let keygen = common::mfa_gate(&["keygen", "--kid", "demo-key", "--out", &key]);
    assert!(keygen.status.success(), "{}", common::stderr(&keygen));
    let jwks = common::stdout(&keygen);
    let canned = common::write(
        &dir,
        "jwks.json",
        &json!({"status": 200, "headers": {"content-type": "application/json"}, "body": jwks})
            .to_string(),
    );
    let token = |amr: &[&str]| {
        let claims = common::write(&dir, "claims.json", &demo_claims(amr).to_string());
        let out = common::mfa_gate(&["token", "--key", &key, "--claims", &claims]);
        assert!(out.status.success(), "{}", common::stderr(&out));
        common::stdout(&out).trim().to_string()
    };
    let bearer = |path: &str, t: &str| json!({"path": path, "headers": {"authorization": format!("Bearer {t}")}});
    let push = token(&["pwd", "okta_verify", "swk"]);
    let passkey = token(&["pwd", "pop"]);
    let start = format!("{}", START_SECS * 1000);
    let cluster = format!("demo_idp={canned}");
    let answers = replay(
        "envoy/envoy.yaml",
        &["--start-unix-ms", &start, "--cluster", &cluster],
        &[
            bearer("/api/profile", &push),
            bearer("/admin/users", &push),
            bearer("/admin/users", &passkey),
            json!({"path": "/health"}),
        ],
    );
    assert_eq!(answers[0]["status"], 200, "{}", answers[0]);
    assert_eq!(
        upstream_header(&answers[0], "x-mfa-gate-level"),
        Some("push")
    );
    assert_eq!(answers[1]["status"], 401);
    let www = answers[1]["headers"].to_string();
    assert!(www.contains("insufficient_user_authentication"), "{www}");
    assert_eq!(answers[2]["status"], 200);
    assert_eq!(answers[3]["status"], 200, "public route");
}
