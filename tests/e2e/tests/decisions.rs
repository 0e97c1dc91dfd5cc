//! Every decision the filter makes, through the compiled .wasm in the host: allow, RFC 9470
//! step-up (API), redirect step-up (browser), policy deny, RFC 6750 401s, audience 403,
//! CORS preflight, report-only, and identity headers (client copies stripped).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::json;

const PUSH: &[&str] = &["pwd", "okta_verify", "swk"];
const WEBAUTHN: &[&str] = &["pwd", "pop"];
const OTP: &[&str] = &["pwd", "otp"];

fn okta_gate() -> Gate {
    Gate::new(&config_with(json!({"profile":"okta"}), json!({})))
}

#[test]
fn phishing_resistant_session_reaches_admin_with_identity_headers() {
    let mut gate = okta_gate();
    let token = KEY.token(&claims("alice", WEBAUTHN));
    let ex = gate.get_with_token("/admin/users", &token);
    assert_eq!(ex.response.status, 200);
    assert_eq!(
        upstream_header(&ex, "x-mfa-gate-subject").as_deref(),
        Some("alice")
    );
    assert_eq!(
        upstream_header(&ex, "x-mfa-gate-level").as_deref(),
        Some("phishing_resistant")
    );
    let methods = upstream_header(&ex, "x-mfa-gate-methods").unwrap();
    assert!(methods.contains("webauthn"), "{methods}");
    let record = decision(&ex);
    assert_eq!(record["decision"], "allow");
    assert_eq!(record["rule"], "admin");
    assert_eq!(record["subject"], "alice");
    assert_eq!(record["session_id"], "sid-alice");
    assert_eq!(record["level"], "phishing_resistant");
    assert_eq!(gate.metric("mfa_gate.decision.allow"), 1);
}

#[test]
fn push_session_on_admin_gets_rfc9470_step_up() {
    let mut gate = okta_gate();
    let token = KEY.token(&claims("bob", PUSH));
    let ex = gate.get_with_token("/admin/users", &token);
    assert_eq!(ex.response.status, 401);
    assert!(ex.upstream_request.is_none(), "must not reach the upstream");
    let challenge = header(&ex, "www-authenticate").unwrap();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(
        challenge.contains("error=\"insufficient_user_authentication\""),
        "{challenge}"
    );
    assert!(challenge.contains("acr_values=\"phr\""), "{challenge}");
    // RFC 9470 §3 quotes max_age: max_age="5".
    assert!(challenge.contains("max_age=\"900\""), "{challenge}");
    let record = decision(&ex);
    assert_eq!(record["decision"], "step_up");
    assert_eq!(record["level"], "push");
    assert_eq!(record["required_level"], "phishing_resistant");
    assert!(
        reasons(&ex)
            .iter()
            .any(|r| r.starts_with("level_below_required")),
        "{:?}",
        reasons(&ex)
    );
    assert_eq!(gate.metric("mfa_gate.decision.step_up"), 1);
    assert_eq!(gate.metric("mfa_gate.reason.level_below_required"), 1);
    assert_eq!(
        ex.response_code_details.as_deref(),
        Some("mfa_gate_step_up"),
        "{:?}",
        ex.response
    );
}

#[test]
fn push_session_from_a_browser_is_redirected_to_the_provider() {
    let cfg = config_with(
        json!({"profile":"okta","step_up":{"authorization_endpoint":"https://idp.example.test/authorize","client_id":"legacy-app","redirect_uri":"https://app.example.test/callback"}}),
        json!({}),
    );
    let mut gate = Gate::new(&cfg);
    let token = KEY.token(&claims("bob", PUSH));
    let cookie = format!("theme=dark; session={token}");
    let ex = gate.get(
        "/admin/users?page=2",
        &[
            ("cookie", cookie.as_bytes()),
            ("accept", b"text/html,application/xhtml+xml"),
        ],
    );
    assert_eq!(ex.response.status, 302);
    let location = header(&ex, "location").unwrap();
    assert!(
        location.starts_with("https://idp.example.test/authorize?"),
        "{location}"
    );
    for part in [
        "acr_values=phr",
        "max_age=900",
        "prompt=login",
        "client_id=legacy-app",
    ] {
        assert!(location.contains(part), "{part} missing in {location}");
    }
    // The return URL is relative: never built from the client's Host.
    assert!(
        location.ends_with("&state=%2Fadmin%2Fusers%3Fpage%3D2"),
        "{location}"
    );
}

#[test]
fn push_session_on_otp_route_with_deny_gets_403() {
    let mut gate = okta_gate();
    let ex = gate.get_with_token("/reports/q3", &KEY.token(&claims("bob", PUSH)));
    assert_eq!(ex.response.status, 403);
    assert_eq!(decision(&ex)["decision"], "deny");
    let ex = gate.get_with_token("/reports/q3", &KEY.token(&claims("carol", OTP)));
    assert_eq!(ex.response.status, 200);
}

#[test]
fn old_authentication_needs_step_up_even_when_strong() {
    let mut gate = okta_gate();
    let mut c = claims("alice", WEBAUTHN);
    c["auth_time"] = json!(NOW - 1200);
    let ex = gate.get_with_token("/admin", &KEY.token(&c));
    assert_eq!(ex.response.status, 401);
    assert!(
        reasons(&ex).iter().any(|r| r.starts_with("auth_too_old")),
        "{:?}",
        reasons(&ex)
    );
}

#[test]
fn missing_token_is_401_without_error_code() {
    let mut gate = okta_gate();
    let ex = gate.get("/admin", &[]);
    assert_eq!(ex.response.status, 401);
    let challenge = header(&ex, "www-authenticate").unwrap();
    assert!(challenge.starts_with("Bearer realm="), "{challenge}");
    assert!(!challenge.contains("error="), "{challenge}");
    assert_eq!(reasons(&ex), vec!["missing_token"]);
}

#[test]
fn invalid_token_is_401_invalid_token_and_audience_mismatch_is_403() {
    let mut gate = okta_gate();
    let other = Signer::new("ed-1");
    let ex = gate.get_with_token("/orders", &other.token(&claims("eve", WEBAUTHN)));
    assert_eq!(ex.response.status, 401);
    assert!(header(&ex, "www-authenticate")
        .unwrap()
        .contains("error=\"invalid_token\""));
    assert_eq!(reasons(&ex), vec!["bad_signature"]);

    let mut c = claims("alice", WEBAUTHN);
    c["aud"] = json!("api://someone-else");
    let ex = gate.get_with_token("/orders", &KEY.token(&c));
    assert_eq!(ex.response.status, 403);
    assert_eq!(reasons(&ex), vec!["wrong_audience"]);
}

#[test]
fn public_routes_and_cors_preflight_pass_without_token() {
    let mut gate = okta_gate();
    let ex = gate.get("/public/logo.png", &[]);
    assert_eq!(ex.response.status, 200);
    let ex = gate.send(request(
        "OPTIONS",
        "/admin/users",
        &[
            ("origin", b"https://app.example.test"),
            ("access-control-request-method", b"POST"),
        ],
    ));
    assert_eq!(ex.response.status, 200);
    assert!(ex.upstream_request.is_some());
    assert_eq!(gate.metric("mfa_gate.cors_preflight"), 1);
    assert_eq!(gate.metric("mfa_gate.public_allowed"), 1);
}

#[test]
fn client_supplied_identity_headers_are_stripped_everywhere() {
    let mut gate = okta_gate();
    let forged: &[(&str, &[u8])] = &[
        ("x-mfa-gate-subject", b"admin"),
        ("x-mfa-gate-level", b"hardware_bound_phishing_resistant"),
        ("x-mfa-gate-methods", b"webauthn"),
    ];
    let ex = gate.get("/public/x", forged);
    assert_eq!(ex.response.status, 200);
    for name in [
        "x-mfa-gate-subject",
        "x-mfa-gate-level",
        "x-mfa-gate-methods",
    ] {
        assert_eq!(upstream_header(&ex, name), None, "{name} leaked");
    }
    let token = KEY.token(&claims("carol", OTP));
    let auth = format!("Bearer {token}");
    let mut headers = forged.to_vec();
    headers.push(("authorization", auth.as_bytes()));
    let ex = gate.get("/reports", &headers);
    assert_eq!(ex.response.status, 200);
    assert_eq!(
        upstream_header(&ex, "x-mfa-gate-subject").as_deref(),
        Some("carol")
    );
    assert_eq!(
        upstream_header(&ex, "x-mfa-gate-level").as_deref(),
        Some("otp")
    );
}

#[test]
fn report_only_logs_and_counts_but_lets_requests_through() {
    let mut gate = Gate::new(&config_with(
        json!({"profile":"okta"}),
        json!({"mode":"report_only"}),
    ));
    let ex = gate.get_with_token("/admin", &KEY.token(&claims("bob", PUSH)));
    assert_eq!(ex.response.status, 200);
    assert!(ex.upstream_request.is_some());
    let record = decision(&ex);
    assert_eq!(record["decision"], "step_up");
    assert_eq!(record["mode"], "report_only");
    let ex = gate.get("/admin", &[]);
    assert_eq!(ex.response.status, 200);
    assert_eq!(gate.metric("mfa_gate.report_only.step_up"), 1);
    assert_eq!(gate.metric("mfa_gate.report_only.deny"), 1);
    assert_eq!(gate.metric("mfa_gate.decision.step_up"), 0);
}

#[test]
fn per_rule_report_only_overrides_global_enforce() {
    let cfg = config_with(
        json!({"profile":"okta"}),
        json!({"routes":[{"name":"admin","match":{"path_prefix":"/admin"},"require":{"level":"phishing_resistant"},"mode":"report_only"}]}),
    );
    let mut gate = Gate::new(&cfg);
    let ex = gate.get_with_token("/admin", &KEY.token(&claims("bob", PUSH)));
    assert_eq!(ex.response.status, 200);
    assert_eq!(decision(&ex)["mode"], "report_only");
    // Unmatched routes still need a valid token (enforced).
    let ex = gate.get("/elsewhere", &[]);
    assert_eq!(ex.response.status, 401);
}

#[test]
fn second_request_with_same_token_is_a_cache_hit() {
    let mut gate = Gate::with_clusters(
        &config_with(json!({"profile":"okta"}), json!({})),
        mfa_gate_host::Clusters::new(),
        1,
    );
    let token = KEY.token(&claims("alice", WEBAUTHN));
    for _ in 0..3 {
        assert_eq!(gate.get_with_token("/admin", &token).response.status, 200);
    }
    assert_eq!(gate.metric("mfa_gate.token_cache.miss"), 1);
    assert_eq!(gate.metric("mfa_gate.token_cache.hit"), 2);
}

#[test]
fn invalid_configuration_fails_to_load_with_the_field_path() {
    let bad = config().replace("\"phishing_resistant\"", "\"phishing_resistent\"");
    let options = mfa_gate_host::HostOptions {
        plugin_configuration: bad.into_bytes(),
        ..mfa_gate_host::HostOptions::default()
    };
    let err = match mfa_gate_host::Host::load(&wasm_path(), options, mfa_gate_host::Clusters::new())
    {
        Ok(_) => panic!("a bad configuration must fail on_configure"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("routes[0].require.level: unknown level \\\"phishing_resistent\\\"")
            || err.contains("routes[0].require.level: unknown level \"phishing_resistent\""),
        "{err}"
    );
}
