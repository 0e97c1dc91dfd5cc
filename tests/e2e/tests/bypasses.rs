//! The ways past a privileged rule reported in issue 10, each closed: the release filter in
//! the host, with the gate's own defence only (no proxy normalises anything here). The same
//! cases run in real Envoy in `tests/envoy/tests/bypasses.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::{json, Value};

fn push_token() -> String {
    KEY.token(&claims("pat", &["pwd", "mfa", "push"]))
}

/// A phishing-resistant session (generic profile: `acr` `phr`).
fn passkey_claims() -> Value {
    let mut c = claims("kim", &["hwk", "pop"]);
    c["acr"] = json!("phr");
    c
}

fn passkey_token() -> String {
    KEY.token(&passkey_claims())
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Every header name the upstream received, lower-cased.
fn upstream_names(exchange: &mfa_gate_host::Exchange) -> Vec<String> {
    exchange
        .upstream_request
        .as_ref()
        .map(|u| {
            u.headers
                .iter()
                .map(|(k, _)| String::from_utf8_lossy(k).to_ascii_lowercase())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn path_tricks_are_refused_before_any_rule() {
    let mut g = Gate::new(&config());
    let auth = bearer(&push_token());
    for (path, reason) in [
        ("/x/../admin/users", "ambiguous_path:dot_segment"),
        ("/public/../admin/users", "ambiguous_path:dot_segment"),
        ("//admin/users", "ambiguous_path:double_slash"),
        ("/%61dmin/users", "ambiguous_path:percent_encoding"),
        ("/admin%2Fusers", "ambiguous_path:percent_encoding"),
        ("/%2e%2e/admin/users", "ambiguous_path:percent_encoding"),
        ("/admin;x=1/users", "ambiguous_path:semicolon"),
        ("/./admin/users", "ambiguous_path:dot_segment"),
        (
            "/public/%2e%2e/admin/users",
            "ambiguous_path:percent_encoding",
        ),
        ("/admin\\users", "ambiguous_path:backslash"),
    ] {
        let ex = g.get(path, &[("authorization", auth.as_bytes())]);
        assert_eq!(ex.response.status, 400, "{path}");
        assert!(ex.upstream_request.is_none(), "{path} reached the upstream");
        assert_eq!(reasons(&ex), [reason], "{path}");
        let body: Value = serde_json::from_slice(&ex.response.body).unwrap();
        assert_eq!(body["reason"], reason, "{path}");
    }
    assert!(g.metric("mfa_gate.reason.ambiguous_path") >= 10);
    // Plain encodings that mean nothing special still pass.
    let ex = g.get(
        "/orders/hello%20world",
        &[("authorization", auth.as_bytes())],
    );
    assert_eq!(ex.response.status, 200);
}

#[test]
fn normalize_mode_judges_the_path_the_upstream_serves() {
    let config = config_with(json!({}), json!({"paths": {"ambiguous": "normalize"}}));
    let mut g = Gate::new(&config);
    let auth = bearer(&push_token());
    for path in [
        "/x/../admin/users",
        "/public/../admin/users",
        "//admin/users",
        "/%61dmin/users",
        "/admin%2Fusers",
        "/public/%2e%2e/admin/users",
        "/admin;x=1/users",
    ] {
        let ex = g.get(path, &[("authorization", auth.as_bytes())]);
        assert_eq!(ex.response.status, 401, "{path}");
        assert_eq!(decision(&ex)["rule"], "admin", "{path}");
        assert_eq!(decision(&ex)["decision"], "step_up", "{path}");
    }
    let ex = g.get(
        "/public/../admin/users",
        &[("authorization", bearer(&passkey_token()).as_bytes())],
    );
    assert_eq!(ex.response.status, 200);
}

#[test]
fn case_insensitive_paths_are_opt_in() {
    let auth = bearer(&push_token());
    let mut g = Gate::new(&config_with(
        json!({}),
        json!({"paths": {"case_insensitive": true}}),
    ));
    let ex = g.get("/ADMIN/users", &[("authorization", auth.as_bytes())]);
    assert_eq!(ex.response.status, 401);
    assert_eq!(decision(&ex)["rule"], "admin");
    // The exact reading still counts: /PUBLIC is not public on a case-sensitive upstream,
    // so without a token it gets what unmatched routes get.
    let ex = g.get("/PUBLIC/health", &[]);
    assert_eq!(ex.response.status, 401);
    let ex = g.get("/public/health", &[]);
    assert_eq!(ex.response.status, 200);
}

#[test]
fn identity_headers_are_stripped_under_every_spelling() {
    let mut g = Gate::new(&config());
    let auth = bearer(&push_token());
    let forged: [(&str, &[u8]); 4] = [
        ("x_mfa_gate_level", b"phishing_resistant"),
        ("x_mfa_gate_subject", b"admin@example.com"),
        ("x-mfa_gate-methods", b"webauthn"),
        ("x_mfa-gate_level", b"phishing_resistant"),
    ];
    let mut headers: Vec<(&str, &[u8])> = vec![("authorization", auth.as_bytes())];
    headers.extend(forged);
    let ex = g.get("/orders", &headers);
    assert_eq!(ex.response.status, 200);
    let names = upstream_names(&ex);
    assert!(
        !names.iter().any(|n| n.contains('_')),
        "a folded identity header reached the upstream: {names:?}"
    );
    assert_eq!(
        upstream_header(&ex, "x-mfa-gate-level").as_deref(),
        Some("push")
    );
    // Without a token on a public route, nothing of ours reaches the upstream at all.
    let ex = g.get("/public/health", &forged);
    assert_eq!(ex.response.status, 200);
    let names = upstream_names(&ex);
    assert!(
        !names
            .iter()
            .any(|n| n.replace('_', "-").starts_with("x-mfa-gate-")),
        "{names:?}"
    );
}

#[test]
fn a_disabled_identity_header_is_still_stripped() {
    let config = config_with(json!({}), json!({"upstream_headers": {"subject": ""}}));
    let mut g = Gate::new(&config);
    let auth = bearer(&push_token());
    let ex = g.get(
        "/orders",
        &[
            ("authorization", auth.as_bytes()),
            ("x-mfa-gate-subject", b"admin@example.com"),
            ("x_mfa_gate_subject", b"admin@example.com"),
        ],
    );
    assert_eq!(ex.response.status, 200);
    assert_eq!(upstream_header(&ex, "x-mfa-gate-subject"), None);
    assert_eq!(upstream_header(&ex, "x_mfa_gate_subject"), None);
}

#[test]
fn preflights_carry_nothing_or_are_gated() {
    let mut g = Gate::new(&config());
    let auth = bearer(&push_token());
    let cors: [(&str, &[u8]); 2] = [
        ("origin", b"https://app.example.test"),
        ("access-control-request-method", b"DELETE"),
    ];
    // A genuine preflight passes, counted on its own.
    let ex = g.send(request("OPTIONS", "/admin/users", &cors));
    assert_eq!(ex.response.status, 200);
    assert_eq!(g.metric("mfa_gate.cors_preflight"), 1);
    // With a push token it is an ordinary request: stepped up like any other.
    let mut with_token = cors.to_vec();
    with_token.push(("authorization", auth.as_bytes()));
    let ex = g.send(request("OPTIONS", "/admin/users", &with_token));
    assert_eq!(ex.response.status, 401);
    assert_eq!(decision(&ex)["decision"], "step_up");
    // With a body (and no token) likewise: 401, never forwarded.
    let mut with_body = cors.to_vec();
    with_body.push(("content-length", b"11"));
    let ex = g.send(request("OPTIONS", "/reports/transfer", &with_body));
    assert_eq!(ex.response.status, 401);
    assert!(ex.upstream_request.is_none());
    assert_eq!(g.metric("mfa_gate.cors_preflight"), 1);
    // unmatched: deny holds for preflights too.
    let mut g = Gate::new(&config_with(json!({}), json!({"unmatched": "deny"})));
    let ex = g.send(request("OPTIONS", "/anything", &cors));
    assert_eq!(ex.response.status, 403);
}

fn host_rule_config() -> String {
    config_with(
        json!({}),
        json!({"routes": [
            {"name": "admin-host", "match": {"path_prefix": "/", "hosts": ["admin.example.com"]},
             "require": {"level": "phishing_resistant"}, "on_insufficient": "deny"},
            {"name": "app", "match": {"path_prefix": "/"}, "require": {"level": "push"}}
        ]}),
    )
}

fn send_with_authority(g: &mut Gate, authority: &[u8], extra: &[(&str, &[u8])]) -> u16 {
    let auth = bearer(&push_token());
    let mut req = request("GET", "/users", &[("authorization", auth.as_bytes())]);
    req.headers
        .retain(|(k, _)| k.as_slice() != b":authority".as_slice());
    req.headers
        .push((b":authority".to_vec(), authority.to_vec()));
    for (k, v) in extra {
        req.headers.push((k.as_bytes().to_vec(), v.to_vec()));
    }
    g.send(req).response.status
}

#[test]
fn odd_hosts_are_refused_and_forwarded_hosts_are_judged() {
    let mut g = Gate::new(&host_rule_config());
    assert_eq!(send_with_authority(&mut g, b"admin.example.com", &[]), 403);
    assert_eq!(send_with_authority(&mut g, b"ADMIN.example.com.", &[]), 403);
    assert_eq!(send_with_authority(&mut g, b"app.example.com", &[]), 200);
    for odd in [
        &b"admin.example.com:abc"[..],
        b"admin.example.com:443:443",
        b"admin.example.com..",
        b"evil@admin.example.com",
        b"admin.example.com,other",
    ] {
        assert_eq!(
            send_with_authority(&mut g, odd, &[]),
            400,
            "{}",
            String::from_utf8_lossy(odd)
        );
    }
    // A client's X-Forwarded-Host / Forwarded names a host the upstream may believe.
    assert_eq!(
        send_with_authority(
            &mut g,
            b"other",
            &[("x-forwarded-host", b"admin.example.com")]
        ),
        403
    );
    assert_eq!(
        send_with_authority(
            &mut g,
            b"other",
            &[("forwarded", b"for=192.0.2.1;host=admin.example.com")]
        ),
        403
    );
    assert_eq!(
        send_with_authority(
            &mut g,
            b"other",
            &[("x-forwarded-host", b"evil@admin.example.com")]
        ),
        400
    );
}

#[test]
fn method_overrides_and_head_are_matched_as_the_method() {
    let config = config_with(
        json!({}),
        json!({"routes": [
            {"name": "delete", "match": {"path_prefix": "/orders", "methods": ["DELETE"]},
             "require": {"level": "phishing_resistant"}, "on_insufficient": "deny"},
            {"name": "read", "match": {"path_prefix": "/orders", "methods": ["GET"]},
             "require": {"level": "otp"}, "on_insufficient": "deny"},
            {"name": "rest", "match": {"path_prefix": "/"}, "require": {"level": "push"}}
        ]}),
    );
    let mut g = Gate::new(&config);
    let auth = bearer(&push_token());
    let send = |g: &mut Gate, method: &str, path: &str, extra: &[(&str, &[u8])]| {
        let mut headers: Vec<(&str, &[u8])> = vec![("authorization", auth.as_bytes())];
        headers.extend_from_slice(extra);
        let ex = g.send(request(method, path, &headers));
        (ex.response.status, decision(&ex)["rule"].clone())
    };
    assert_eq!(send(&mut g, "POST", "/orders/1", &[]), (200, json!("rest")));
    for (method, path, extra) in [
        (
            "POST",
            "/orders/1",
            &[("x-http-method-override", &b"DELETE"[..])][..],
        ),
        (
            "POST",
            "/orders/1",
            &[("x-http-method", &b"delete"[..])][..],
        ),
        (
            "POST",
            "/orders/1",
            &[("x-method-override", &b"DELETE"[..])][..],
        ),
        ("POST", "/orders/1?_method=DELETE", &[][..]),
        (
            "POST",
            "/orders/1",
            &[("content-type", &b"application/x-www-form-urlencoded"[..])][..],
        ),
    ] {
        assert_eq!(
            send(&mut g, method, path, extra),
            (403, json!("delete")),
            "{method} {path} {extra:?}"
        );
    }
    // HEAD is served as GET.
    assert_eq!(send(&mut g, "HEAD", "/orders/1", &[]), (403, json!("read")));
}

#[test]
fn a_second_credential_is_refused() {
    let mut g = Gate::new(&config());
    let push = push_token();
    let passkey = passkey_token();
    let cases: Vec<Vec<(&str, Vec<u8>)>> = vec![
        vec![(
            "cookie",
            format!("session={passkey}; session={push}").into_bytes(),
        )],
        vec![
            ("cookie", format!("session={passkey}").into_bytes()),
            ("cookie", format!("session={push}").into_bytes()),
        ],
        vec![
            ("cookie", format!("session={passkey}").into_bytes()),
            ("authorization", b"Basic YWRtaW46aHVudGVyMg==".to_vec()),
        ],
        vec![
            ("authorization", bearer(&passkey).into_bytes()),
            ("cookie", format!("session={push}").into_bytes()),
        ],
    ];
    for headers in cases {
        let list: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (*k, v.as_slice())).collect();
        let ex = g.get("/admin/users", &list);
        assert_eq!(ex.response.status, 400);
        assert!(ex.upstream_request.is_none());
        assert_eq!(reasons(&ex), ["multiple_credentials"]);
        assert!(header(&ex, "www-authenticate")
            .unwrap()
            .contains("error=\"invalid_request\""));
    }
    // The same token twice is one credential; a token in a second Cookie line is found.
    let same = bearer(&passkey);
    let cookie = format!("session={passkey}");
    let ex = g.get(
        "/admin/users",
        &[
            ("authorization", same.as_bytes()),
            ("cookie", cookie.as_bytes()),
        ],
    );
    assert_eq!(ex.response.status, 200);
    let ex = g.get(
        "/admin/users",
        &[("cookie", b"theme=dark"), ("cookie", cookie.as_bytes())],
    );
    assert_eq!(ex.response.status, 200);
}

#[test]
fn an_odd_auth_time_is_no_authentication_age() {
    let mut g = Gate::new(&config());
    for (auth_time, reason) in [
        (json!("1700000000"), "auth_time_malformed"),
        (json!(-1), "auth_time_malformed"),
        (json!(1e300), "auth_time_malformed"),
        (json!(NOW + 10 * 365 * 86_400), "auth_time_in_future"),
    ] {
        let mut c = passkey_claims();
        c["auth_time"] = auth_time.clone();
        let ex = g.get_with_token("/admin/users", &KEY.token(&c));
        assert_eq!(ex.response.status, 401, "{auth_time}");
        assert!(
            reasons(&ex).contains(&reason.to_string()),
            "{auth_time}: {:?}",
            reasons(&ex)
        );
    }
}

#[test]
fn the_step_up_state_never_carries_the_clients_host() {
    let config = config_with(
        json!({"step_up": {"authorization_endpoint": "https://idp.example.test/authorize",
                            "client_id": "app", "redirect_uri": "https://app.example.test/callback"}}),
        json!({}),
    );
    let mut g = Gate::new(&config);
    let auth = bearer(&push_token());
    let mut req = request(
        "GET",
        "/admin/users?x=1",
        &[("authorization", auth.as_bytes()), ("accept", b"text/html")],
    );
    req.headers
        .retain(|(k, _)| k.as_slice() != b":authority".as_slice());
    req.headers.push((
        b":authority".to_vec(),
        b"127.0.0.1:10000@evil.example".to_vec(),
    ));
    assert_eq!(g.send(req).response.status, 400);
    let ex = g.get(
        "/admin/users?x=1",
        &[("authorization", auth.as_bytes()), ("accept", b"text/html")],
    );
    assert_eq!(ex.response.status, 302);
    let location = header(&ex, "location").unwrap();
    assert!(
        location.ends_with("&state=%2Fadmin%2Fusers%3Fx%3D1"),
        "{location}"
    );
}
