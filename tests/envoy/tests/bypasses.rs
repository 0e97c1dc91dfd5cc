//! Issue 10's ways past a privileged rule, rerun in real Envoy: each repro against the
//! shipped `envoy/envoy.yaml` (and README-style variants of it), and the path tricks again
//! with Envoy's normalisation off, so the filter's own defence is proven too. Every case
//! ends in the gate's (or Envoy's) refusal, or reaches the upstream only in a form that
//! cannot be read as privileged.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mfa_gate_envoy::{cli, Answer, Gateway, GatewayBuilder, Scratch};
use serde_json::{json, Value};

const PATH_TRICKS: [&str; 10] = [
    "/x/../admin/users",
    "/api/../admin/users",
    "//admin/users",
    "/%61dmin/users",
    "/admin%2Fusers",
    "/%2e%2e/admin/users",
    "/admin;x=1/users",
    "/./admin/users",
    "/api/%2e%2e/admin/users",
    "/ADMIN/users",
];

fn bearer(gateway: &Gateway, user: &str) -> String {
    format!("Bearer {}", gateway.token(user))
}

/// The path the echo upstream received, when the answer came from it.
fn upstream_path(answer: &Answer) -> Option<String> {
    let body = serde_json::from_slice::<Value>(&answer.body).ok()?;
    body["path"].as_str().map(str::to_string)
}

/// The header names and values the echo upstream received.
fn upstream_headers(answer: &Answer) -> Vec<(String, String)> {
    answer.json()["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| {
            (
                pair[0].as_str().unwrap().to_ascii_lowercase(),
                pair[1].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn hcm_without_normalisation(hcm: &mut serde_yaml::Value) {
    let map = hcm.as_mapping_mut().unwrap();
    for key in [
        "normalize_path",
        "merge_slashes",
        "path_with_escaped_slashes_action",
    ] {
        map.remove(key);
    }
}

#[test]
fn the_shipped_config_closes_every_path_trick() {
    let gateway = GatewayBuilder::shipped("envoy/envoy.yaml")
        .echo_upstream()
        .start();
    let push = bearer(&gateway, "push");
    for path in PATH_TRICKS {
        let answer = gateway.get(path, &[("authorization", &push)]);
        eprintln!("shipped config: {path} -> {}", answer.status);
        // Envoy resolves most of these to /admin/users (then the gate steps the push
        // session up), redirects %2F to the decoded path, and the gate refuses the rest.
        assert!(
            matches!(answer.status, 400 | 401 | 301 | 307 | 308),
            "{path}: {} {}",
            answer.status,
            answer.text()
        );
        assert_eq!(upstream_path(&answer), None, "{path} reached the upstream");
        if answer.status == 401 {
            assert!(
                answer
                    .header("www-authenticate")
                    .unwrap()
                    .contains("insufficient_user_authentication"),
                "{path}"
            );
        }
        if matches!(answer.status, 301 | 307 | 308) {
            let location = answer.header("location").unwrap();
            assert!(location.ends_with("/admin/users"), "{path} -> {location}");
        }
    }
    // A passkey session still reaches the admin pages by their plain path.
    let passkey = bearer(&gateway, "passkey");
    let answer = gateway.get("/admin/users", &[("authorization", &passkey)]);
    assert_eq!(answer.status, 200, "{}", answer.text());
    gateway.assert_no_wasm_failure();
}

#[test]
fn with_normalisation_off_the_filter_refuses_every_path_trick() {
    let gateway = GatewayBuilder::shipped("envoy/envoy.yaml")
        .echo_upstream()
        .hcm(hcm_without_normalisation)
        .start();
    let push = bearer(&gateway, "push");
    for path in PATH_TRICKS {
        let answer = gateway.get(path, &[("authorization", &push)]);
        assert_eq!(upstream_path(&answer), None, "{path} reached the upstream");
        if path == "/ADMIN/users" {
            // Plain bytes: the case-insensitive reading matches the admin rule.
            assert_eq!(answer.status, 401, "{path}: {}", answer.text());
            continue;
        }
        assert_eq!(answer.status, 400, "{path}: {}", answer.text());
        let reason = answer.json()["reason"].as_str().unwrap().to_string();
        assert!(reason.starts_with("ambiguous_path:"), "{path}: {reason}");
    }
    assert!(gateway.counter("wasmcustom.mfa_gate.reason.ambiguous_path") >= 9);
    gateway.assert_no_wasm_failure();
}

#[test]
fn forged_identity_headers_never_reach_the_app() {
    let forged = [
        ("x_mfa_gate_level", "phishing_resistant"),
        ("x_mfa_gate_subject", "admin@example.com"),
    ];
    // The shipped config: Envoy refuses underscore header names outright.
    let gateway = GatewayBuilder::shipped("envoy/envoy.yaml")
        .echo_upstream()
        .start();
    let push = bearer(&gateway, "push");
    let mut headers = vec![("authorization", push.as_str())];
    headers.extend(forged);
    let answer = gateway.get("/api/profile", &headers);
    assert_eq!(answer.status, 400, "{}", answer.text());
    drop(gateway);

    // A README-style listener that lets them through: the filter strips them.
    let gateway = GatewayBuilder::shipped("envoy/envoy.yaml")
        .echo_upstream()
        .hcm(|hcm| {
            hcm.as_mapping_mut()
                .unwrap()
                .remove("common_http_protocol_options");
        })
        .start();
    let push = bearer(&gateway, "push");
    let mut headers = vec![("authorization", push.as_str())];
    headers.extend(forged);
    let answer = gateway.get("/api/profile", &headers);
    assert_eq!(answer.status, 200, "{}", answer.text());
    let seen = upstream_headers(&answer);
    assert!(!seen.iter().any(|(name, _)| name.contains('_')), "{seen:?}");
    let level: Vec<_> = seen
        .iter()
        .filter(|(n, _)| n == "x-mfa-gate-level")
        .collect();
    assert_eq!(level.len(), 1, "{seen:?}");
    assert_eq!(level[0].1, "push");
    // No token, public route: nothing of ours at all.
    let answer = gateway.get("/health", &forged);
    assert_eq!(answer.status, 200, "{}", answer.text());
    let seen = upstream_headers(&answer);
    assert!(
        !seen
            .iter()
            .any(|(n, _)| n.replace('_', "-").starts_with("x-mfa-gate-")),
        "{seen:?}"
    );
    gateway.assert_no_wasm_failure();
}

#[test]
fn preflights_carry_nothing_or_are_gated() {
    let gateway = GatewayBuilder::shipped("envoy/envoy.yaml")
        .echo_upstream()
        .start();
    let push = bearer(&gateway, "push");
    let cors = [
        ("origin", "http://app.example.test"),
        ("access-control-request-method", "POST"),
    ];
    let mut with_token = cors.to_vec();
    with_token.push(("authorization", push.as_str()));
    let answer = gateway.request("OPTIONS", "/admin/users", &with_token, b"");
    assert_eq!(answer.status, 401, "{}", answer.text());
    assert_eq!(upstream_path(&answer), None);
    let answer = gateway.request("OPTIONS", "/payments/transfer", &cors, b"amount=1000");
    assert_eq!(answer.status, 401, "{}", answer.text());
    assert_eq!(upstream_path(&answer), None);
    // A genuine preflight reaches the app, which answers CORS itself.
    let answer = gateway.request("OPTIONS", "/admin/users", &cors, b"");
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(upstream_path(&answer).as_deref(), Some("/admin/users"));
    assert_eq!(gateway.counter("wasmcustom.mfa_gate.cors_preflight"), 1);
    drop(gateway);

    let gateway = GatewayBuilder::shipped("envoy/envoy.yaml")
        .echo_upstream()
        .plugin_config(|c| c["unmatched"] = json!("deny"))
        .start();
    let answer = gateway.request("OPTIONS", "/elsewhere", &cors, b"");
    assert_eq!(answer.status, 403, "{}", answer.text());
    gateway.assert_no_wasm_failure();
}

/// The shipped config with a first rule for a host: below phishing-resistant, 403.
fn host_rule_gateway() -> Gateway {
    GatewayBuilder::shipped("envoy/envoy.yaml")
        .echo_upstream()
        .plugin_config(|c| {
            c["routes"].as_array_mut().unwrap().insert(
                0,
                json!({"name": "admin-host", "match": {"path_prefix": "/", "hosts": ["admin.example.com"]},
                       "require": {"level": "phishing_resistant"}, "on_insufficient": "deny"}),
            );
        })
        .start()
}

fn raw_get(gateway: &Gateway, path: &str, header_lines: &[String]) -> Answer {
    let mut request = format!("GET {path} HTTP/1.1\r\n");
    for line in header_lines {
        request.push_str(line);
        request.push_str("\r\n");
    }
    request.push_str("connection: close\r\n\r\n");
    gateway.raw(request.as_bytes())
}

#[test]
fn odd_hosts_cannot_dodge_a_host_rule() {
    let gateway = host_rule_gateway();
    let push = format!("authorization: {}", bearer(&gateway, "push"));
    let plain = raw_get(
        &gateway,
        "/api/profile",
        &["host: admin.example.com".into(), push.clone()],
    );
    assert_eq!(plain.status, 403, "{}", plain.text());
    let other = raw_get(
        &gateway,
        "/api/profile",
        &["host: other.example.com".into(), push.clone()],
    );
    assert_eq!(other.status, 200, "{}", other.text());
    for hosts in [
        vec!["host: admin.example.com:abc"],
        vec!["host: admin.example.com:443:443"],
        vec!["host: admin.example.com.."],
        vec!["host: evil@admin.example.com"],
        vec!["host: admin.example.com,other"],
        vec!["host: admin.example.com", "host: other"],
        vec!["host: other", "x-forwarded-host: admin.example.com"],
    ] {
        let mut lines: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
        lines.push(push.clone());
        let answer = raw_get(&gateway, "/api/profile", &lines);
        assert!(
            matches!(answer.status, 400 | 403),
            "{hosts:?}: {} {}",
            answer.status,
            answer.text()
        );
        assert_eq!(upstream_path(&answer), None, "{hosts:?} reached the app");
    }
    gateway.assert_no_wasm_failure();
}

#[test]
fn method_overrides_and_head_are_judged_as_the_method() {
    let gateway = GatewayBuilder::shipped("envoy/envoy.yaml")
        .echo_upstream()
        .plugin_config(|c| {
            let routes = c["routes"].as_array_mut().unwrap();
            routes.insert(
                0,
                json!({"name": "delete-orders", "match": {"path_prefix": "/orders", "methods": ["DELETE"]},
                       "require": {"level": "phishing_resistant"}, "on_insufficient": "deny"}),
            );
            routes.insert(
                1,
                json!({"name": "read-reports", "match": {"path_prefix": "/reports", "methods": ["GET"]},
                       "require": {"level": "phishing_resistant"}, "on_insufficient": "deny"}),
            );
        })
        .start();
    let push = bearer(&gateway, "push");
    let auth = ("authorization", push.as_str());
    // A plain POST is no DELETE: it falls through to require_token and passes.
    let answer = gateway.request("POST", "/orders/7", &[auth], b"{}");
    assert_eq!(answer.status, 200, "{}", answer.text());
    for (path, extra) in [
        ("/orders/7", Some(("x-http-method-override", "DELETE"))),
        ("/orders/7", Some(("x-http-method", "DELETE"))),
        ("/orders/7?_method=DELETE", None),
        (
            "/orders/7",
            Some(("content-type", "application/x-www-form-urlencoded")),
        ),
    ] {
        let mut headers = vec![auth];
        headers.extend(extra);
        let answer = gateway.request("POST", path, &headers, b"_method=DELETE");
        assert_eq!(answer.status, 403, "{path} {extra:?}: {}", answer.text());
        assert_eq!(upstream_path(&answer), None);
    }
    let answer = gateway.request("HEAD", "/reports/q3", &[auth], b"");
    assert_eq!(answer.status, 403);
    gateway.assert_no_wasm_failure();
}

#[test]
fn a_second_credential_is_refused() {
    let gateway = GatewayBuilder::shipped("envoy/envoy.yaml")
        .echo_upstream()
        .start();
    let passkey = gateway.token("passkey");
    let push = gateway.token("push");
    let cases: Vec<Vec<String>> = vec![
        vec![format!("cookie: mfa_session={passkey}; mfa_session={push}")],
        vec![
            format!("cookie: mfa_session={passkey}"),
            format!("cookie: mfa_session={push}"),
        ],
        vec![
            format!("cookie: mfa_session={passkey}"),
            "authorization: Basic YWRtaW46aHVudGVyMg==".into(),
        ],
        vec![
            format!("authorization: Bearer {passkey}"),
            format!("cookie: mfa_session={push}"),
        ],
    ];
    for lines in cases {
        let mut lines = lines.clone();
        lines.push(format!("host: 127.0.0.1:{}", gateway.port));
        let answer = raw_get(&gateway, "/admin/users", &lines);
        assert_eq!(answer.status, 400, "{lines:?}: {}", answer.text());
        assert!(answer
            .header("www-authenticate")
            .unwrap()
            .contains("error=\"invalid_request\""));
        assert_eq!(upstream_path(&answer), None);
    }
    assert!(gateway.counter("wasmcustom.mfa_gate.reason.multiple_credentials") >= 4);
    // One token in a second Cookie line is found, and passes.
    let answer = raw_get(
        &gateway,
        "/admin/users",
        &[
            format!("host: 127.0.0.1:{}", gateway.port),
            "cookie: theme=dark".into(),
            format!("cookie: mfa_session={passkey}"),
        ],
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    gateway.assert_no_wasm_failure();
}

#[test]
fn a_disabled_identity_header_is_still_stripped() {
    let gateway = GatewayBuilder::shipped("envoy/envoy.yaml")
        .echo_upstream()
        .plugin_config(|c| c["upstream_headers"] = json!({"subject": ""}))
        .start();
    let push = bearer(&gateway, "push");
    let answer = gateway.get(
        "/api/profile",
        &[
            ("authorization", &push),
            ("x-mfa-gate-subject", "admin@example.com"),
        ],
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    let seen = upstream_headers(&answer);
    assert!(
        !seen.iter().any(|(n, _)| n == "x-mfa-gate-subject"),
        "{seen:?}"
    );
    gateway.assert_no_wasm_failure();
}

/// A test issuer with its own key (made with `mfa-gate keygen`), added to the shipped
/// config, and a way to sign any claims with it.
struct TestIssuer {
    scratch: Scratch,
    key: String,
    jwks: Value,
}

const TEST_ISSUER: &str = "https://test-issuer.mfa-gate.test";

impl TestIssuer {
    fn new() -> TestIssuer {
        let scratch = Scratch::new("test-issuer");
        let key = scratch.path().join("key.json").display().to_string();
        let out = cli(&["keygen", "--alg", "ES256", "--kid", "t1", "--out", &key]);
        let jwks = serde_json::from_slice(&out.stdout).expect("keygen prints the JWKS");
        TestIssuer { scratch, key, jwks }
    }

    fn sign(&self, claims: &Value) -> String {
        let file = self
            .scratch
            .write("claims.json", claims.to_string())
            .display()
            .to_string();
        let out = cli(&[
            "token", "--key", &self.key, "--claims", &file, "--kid", "t1",
        ]);
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }
}

#[test]
fn an_odd_auth_time_is_no_authentication_age() {
    let issuer = TestIssuer::new();
    let jwks = issuer.jwks.clone();
    let gateway = GatewayBuilder::shipped("envoy/envoy.yaml")
        .echo_upstream()
        .plugin_config(move |c| {
            c["issuers"].as_array_mut().unwrap().push(json!({
                "issuer": TEST_ISSUER, "audiences": ["mfa-gate-demo"], "algorithms": ["ES256"],
                "jwks": jwks, "profile": "generic"
            }));
        })
        .start();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = |auth_time: Value| {
        json!({"iss": TEST_ISSUER, "aud": "mfa-gate-demo", "sub": "kim", "acr": "phr",
               "iat": now, "exp": now + 600, "auth_time": auth_time})
    };
    let fresh = issuer.sign(&claims(json!(now - 5)));
    let answer = gateway.get(
        "/admin/users",
        &[("authorization", &format!("Bearer {fresh}"))],
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    for (auth_time, reason) in [
        (json!("1700000000"), "auth_time_malformed"),
        (json!(-1), "auth_time_malformed"),
        (json!(1e300), "auth_time_malformed"),
        (json!(now + 10 * 365 * 86_400), "auth_time_in_future"),
    ] {
        let token = issuer.sign(&claims(auth_time.clone()));
        let answer = gateway.get(
            "/admin/users",
            &[("authorization", &format!("Bearer {token}"))],
        );
        assert_eq!(answer.status, 401, "{auth_time}: {}", answer.text());
        assert!(answer
            .header("www-authenticate")
            .unwrap()
            .contains("insufficient_user_authentication"));
        assert!(
            gateway.counter(&format!("wasmcustom.mfa_gate.reason.{reason}")) >= 1,
            "{auth_time}: no {reason} counted"
        );
    }
    gateway.assert_no_wasm_failure();
}

#[test]
fn the_step_up_state_is_a_path_never_the_clients_host() {
    let gateway = GatewayBuilder::shipped("envoy/envoy.yaml")
        .echo_upstream()
        .start();
    let push = gateway.token("push");
    let cookie = format!("cookie: mfa_session={push}");
    let answer = raw_get(
        &gateway,
        "/admin/users",
        &[
            format!("host: 127.0.0.1:{}@evil.example", gateway.port),
            "accept: text/html".into(),
            cookie.clone(),
        ],
    );
    assert!(
        matches!(answer.status, 400),
        "{} {}",
        answer.status,
        answer.text()
    );
    let answer = raw_get(
        &gateway,
        "/admin/users?tab=2",
        &[
            format!("host: 127.0.0.1:{}", gateway.port),
            "accept: text/html".into(),
            cookie,
        ],
    );
    assert_eq!(answer.status, 302, "{}", answer.text());
    // The gateway finishes the sign-in itself: `state` is random, and the return URL, a
    // path, travels in the state cookie; the callback sends the browser back to that path.
    let location = answer.header("location").unwrap();
    let state = location
        .split("&state=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    assert_eq!(state.len(), 22, "{location}");
    assert!(!location.contains("evil"), "{location}");
    let started = mfa_gate_envoy::sign_in::start(
        &gateway,
        "/admin/users?tab=2",
        &format!("mfa_session={push}"),
    );
    let back = mfa_gate_envoy::sign_in::approve_with_passkey(&gateway, &started);
    let done = mfa_gate_envoy::sign_in::callback(&gateway, &back, &started.state_cookie);
    assert_eq!(
        done.header("location"),
        Some("/admin/users?tab=2"),
        "{}",
        done.text()
    );
    gateway.assert_no_wasm_failure();
}
