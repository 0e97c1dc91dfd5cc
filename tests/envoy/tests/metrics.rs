//! Every counter in the README's metrics table appears in Envoy's `/stats` under the name the
//! README gives, with the `wasmcustom.` prefix Envoy 1.40 shows there. Fixed counters exist
//! from the start (reading 0); each listed reason code is produced by a real request and
//! counted under `wasmcustom.mfa_gate.reason.<code>`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

use mfa_gate_envoy::{
    demo_claims, jwks_of, now_secs, repo_root, GatewayBuilder, KeyServer, TestKey,
};
use serde_json::json;

/// Names in the README's "## Metrics" table: `mfa_gate.a.b` / `.c` rows expanded, and for
/// `mfa_gate.reason.<code>` the codes its row lists. Returns (fixed names, reason codes).
fn readme_metrics() -> (Vec<String>, Vec<String>) {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let section = readme
        .split("\n## Metrics")
        .nth(1)
        .expect("a Metrics section in README.md");
    let section = section.split("\n## ").next().unwrap();
    let (mut names, mut codes) = (Vec::new(), Vec::new());
    for row in section.lines().filter(|l| l.starts_with("| `mfa_gate.")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let quoted = |cell: &str| -> Vec<String> {
            cell.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect()
        };
        let listed = quoted(cells[1]);
        if listed[0] == "mfa_gate.risk.signal.<signal>" {
            // The last column lists signals: each has its counter.
            for signal in quoted(cells[cells.len() - 2]) {
                names.push(format!("mfa_gate.risk.signal.{signal}"));
            }
            continue;
        }
        if listed[0].contains('<') {
            assert_eq!(listed[0], "mfa_gate.reason.<code>", "{row}");
            // The last column lists the codes (the table may grow columns before it).
            codes = quoted(cells[cells.len() - 2]);
            continue;
        }
        let first = listed[0].clone();
        let parent = first.rsplit_once('.').unwrap().0.to_string();
        names.push(first);
        for short in &listed[1..] {
            assert!(short.starts_with('.'), "{row}: {short}");
            names.push(format!("{parent}{short}"));
        }
    }
    assert!(names.len() >= 15, "README metrics: {names:?}");
    assert!(codes.len() >= 5, "README reason codes: {codes:?}");
    (names, codes)
}

/// Request headers, the status they get, the reason code they produce.
type HeaderCase<'a> = (Vec<(&'a str, &'a str)>, u16, &'a str);

#[test]
fn every_readme_counter_is_in_envoy_stats_under_its_name() {
    let (names, codes) = readme_metrics();
    let key = TestKey::generate("ES256", "k-metrics");
    let unpublished = TestKey::generate("ES256", "k-unpublished");
    let keys = KeyServer::serving(&jwks_of(&[&key]));
    let gateway = GatewayBuilder::shipped("envoy/envoy.yaml")
        .idp_cluster_port(keys.port())
        .plugin_config(|c| {
            // An issuer whose key endpoint answers no key set (the demo app's JSON echo).
            c["issuers"].as_array_mut().unwrap().push(json!({
                "issuer": "https://keyless.test",
                "audiences": ["mfa-gate-demo"],
                "remote_jwks": {"cluster": "demo_app", "path": "/no-keys-here", "timeout_ms": 300}
            }));
            c["unmatched"] = "allow".into();
        })
        .start();

    let stats = gateway.stats();
    for name in &names {
        let full = format!("wasmcustom.{name}");
        let value = stats.get(&full);
        assert!(
            value.is_some(),
            "{full} (README: `{name}`) in /stats at start"
        );
        // Only the key fetches and revocation polls have happened before the first request
        // (and the set's size gauge counts the keys created at start).
        if !name.starts_with("mfa_gate.jwks_fetch.")
            && !name.starts_with("mfa_gate.revocation.poll.")
            && name != "mfa_gate.revocation.stored_bytes"
        {
            assert_eq!(value, Some(&0), "{full} reads 0 before any request");
        }
    }

    let send = |path: &str, token: Option<&str>| {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = bearer
            .iter()
            .map(|b| ("authorization", b.as_str()))
            .collect();
        gateway.get(path, &headers)
    };
    let now = now_secs();
    let mut claims = demo_claims("old@example.com", &["pwd", "pop"]);
    claims["auth_time"] = (now - 7200).into();
    let too_old = key.token(&claims);
    let mut claims = demo_claims("late@example.com", &["pwd", "pop"]);
    claims["iat"] = (now - 7200).into();
    claims["exp"] = (now - 3600).into();
    let expired = key.token(&claims);
    let mut claims = demo_claims("aud@example.com", &["pwd", "pop"]);
    claims["aud"] = "someone-else".into();
    let wrong_audience = key.token(&claims);
    let mut claims = demo_claims("iss@example.com", &["pwd", "pop"]);
    claims["iss"] = "https://unknown.test".into();
    let unknown_issuer = key.token(&claims);
    let mut claims = demo_claims("keyless@example.com", &["pwd", "pop"]);
    claims["iss"] = "https://keyless.test".into();
    let keyless = key.token(&claims);
    let mut claims = demo_claims("odd@example.com", &["pwd", "pop"]);
    claims["auth_time"] = "yesterday".into();
    let auth_time_malformed = key.token(&claims);
    let mut claims = demo_claims("future@example.com", &["pwd", "pop"]);
    claims["auth_time"] = (now + 86_400).into();
    let auth_time_in_future = key.token(&claims);
    let unknown_kid = unpublished.demo_token("x@example.com", &["pwd"]);
    let good = key.demo_token("kim@example.com", &["pwd", "pop"]);
    let push = key.demo_token("pat@example.com", &["pwd", "okta_verify", "swk"]);
    let bad_signature = {
        let (head, signature) = good.rsplit_once('.').unwrap();
        let mut signature: Vec<char> = signature.chars().collect();
        let middle = signature.len() / 2;
        signature[middle] = if signature[middle] == 'A' { 'B' } else { 'A' };
        format!("{head}.{}", signature.into_iter().collect::<String>())
    };

    let cases: Vec<(&str, Option<&str>, u16, &str)> = vec![
        ("/admin/users", Some(&push), 401, "level_below_required"),
        ("/admin/users", Some(&too_old), 401, "auth_too_old"),
        ("/api/profile", None, 401, "missing_token"),
        ("/api/profile", Some(&expired), 401, "expired"),
        ("/api/profile", Some(&bad_signature), 401, "bad_signature"),
        ("/api/profile", Some(&unknown_kid), 401, "unknown_kid"),
        ("/api/profile", Some(&wrong_audience), 403, "wrong_audience"),
        ("/api/profile", Some(&keyless), 401, "keys_unavailable"),
        ("/api/profile", Some(&unknown_issuer), 401, "unknown_issuer"),
        (
            "/api/profile",
            Some("not a token at all!"),
            401,
            "malformed_credential",
        ),
    ];
    // A session the gate revoked (the shipped /admin/keys rule), then seen on another route.
    let revoked = key.demo_token("rev@example.com", &["pwd", "okta_verify", "swk"]);
    let revoking = send("/admin/keys/rotate", Some(&revoked));
    assert_eq!(revoking.status, 401, "{}", revoking.text());
    let cases: Vec<(&str, Option<&str>, u16, &str)> = cases
        .into_iter()
        .chain([
            (
                "/api/profile",
                Some(revoked.as_str()),
                401,
                "session_revoked",
            ),
            (
                "/admin/users",
                Some(auth_time_malformed.as_str()),
                401,
                "auth_time_malformed",
            ),
            (
                "/admin/users",
                Some(auth_time_in_future.as_str()),
                401,
                "auth_time_in_future",
            ),
            (
                "/admin;x=1/users",
                Some(good.as_str()),
                400,
                "ambiguous_path",
            ),
        ])
        .collect();
    // Reasons that need more than a path and a token.
    let bearer_good = format!("Bearer {good}");
    let cookie_push = format!("mfa_session={push}");
    let odd_host = format!("127.0.0.1:{}@evil.example", gateway.port);
    let header_cases: Vec<HeaderCase> = vec![
        (
            vec![("authorization", &bearer_good), ("cookie", &cookie_push)],
            400,
            "multiple_credentials",
        ),
        (
            vec![("authorization", &bearer_good), ("host", &odd_host)],
            400,
            "invalid_host",
        ),
    ];
    for code in &codes {
        assert!(
            cases.iter().any(|c| c.3 == code) || header_cases.iter().any(|c| c.2 == code),
            "README reason code {code:?} has a case in this test"
        );
    }
    let counted = |code: &str| {
        let counter = format!("wasmcustom.mfa_gate.reason.{code}");
        assert!(
            gateway.counter(&counter) >= 1,
            "{counter} after a {code} request"
        );
    };
    for (path, token, status, code) in &cases {
        let answer = send(path, *token);
        assert_eq!(answer.status, *status, "{code}: {}", answer.text());
        counted(code);
    }
    for (headers, status, code) in &header_cases {
        let answer = gateway.get("/api/profile", headers);
        assert_eq!(answer.status, *status, "{code}: {}", answer.text());
        counted(code);
    }

    // The other counters the table lists, each moved by the event it names.
    assert_eq!(send("/api/profile", Some(&good)).status, 200);
    assert_eq!(send("/api/profile", Some(&good)).status, 200);
    assert_eq!(send("/health", None).status, 200);
    assert_eq!(send("/somewhere-else", None).status, 200);
    let preflight = gateway.request(
        "OPTIONS",
        "/admin/users",
        &[
            ("origin", "https://app.example"),
            ("access-control-request-method", "POST"),
        ],
        &[],
    );
    assert_eq!(preflight.status, 200, "{}", preflight.text());
    let stats = gateway.stats();
    for (name, at_least) in [
        ("decision.allow", 2),
        ("decision.step_up", 4),
        ("decision.deny", 11),
        ("token_cache.hit", 1),
        ("token_cache.miss", 1),
        ("public_allowed", 1),
        ("unmatched_allowed", 1),
        ("cors_preflight", 1),
        ("jwks_fetch.success", 1),
        ("jwks_fetch.failure", 1),
        ("jwks_fetch.unknown_kid_refresh", 1),
    ] {
        let full = format!("wasmcustom.mfa_gate.{name}");
        let value = stats.get(&full).copied().unwrap_or(0);
        assert!(
            value >= at_least,
            "{full} = {value}, expected at least {at_least}"
        );
    }
    // Not one counter under a name the README's table does not give (nor without the prefix).
    for name in stats.keys().filter(|n| n.contains("mfa_gate")) {
        let bare = name
            .strip_prefix("wasmcustom.")
            .unwrap_or_else(|| panic!("{name}: no wasmcustom. prefix"));
        // The table lists reason codes by example ("e.g."): any code is one of its rows.
        let listed = names.iter().any(|n| n == bare) || bare.starts_with("mfa_gate.reason.");
        assert!(listed, "{name} is counted but not in the README's table");
    }
    gateway.assert_no_wasm_failure();
}
