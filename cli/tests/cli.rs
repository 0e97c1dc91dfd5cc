//! `mfa-gate check`, `explain`, `token` and `keygen`, run as a user runs them: the built
//! binary, real files, exit codes and output.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

mod common;

use common::{assert_one_line_error, mfa_gate, scratch, stderr, stdout, write};
use serde_json::{json, Value};
use std::path::Path;

const ISSUER: &str = "https://idp.example.com";

/// A test key (keygen) and a configuration that trusts it inline, with one rule per answer.
struct Fixture {
    dir: std::path::PathBuf,
    key: String,
    config: String,
}

fn fixture(name: &str) -> Fixture {
    let dir = scratch(name);
    let key = dir.join("key.json").to_string_lossy().into_owned();
    let out = mfa_gate(&["keygen", "--alg", "ES256", "--kid", "k1", "--out", &key]);
    assert!(out.status.success(), "keygen: {}", stderr(&out));
    let jwks: Value = serde_json::from_slice(&out.stdout).expect("keygen prints the JWKS");
    assert_eq!(jwks["keys"][0]["kid"], "k1");
    assert!(
        jwks["keys"][0].get("d").is_none(),
        "the public JWKS must not carry the private key"
    );
    let config = json!({
        "realm": "test",
        "issuers": [{
            "issuer": ISSUER,
            "audiences": ["api://test"],
            "jwks": jwks,
            "profile": "okta",
            "custom_claims": [{"claim": "auth_strength", "values": {"push_nm": "push_number_match"}}]
        }],
        "routes": [
            {"name": "health", "match": {"path": "/health"}},
            {"name": "admin", "match": {"path_prefix": "/admin"},
             "require": {"level": "phishing_resistant", "acr_values": "phr"}, "on_insufficient": "step_up", "browser": "api"},
            {"name": "payments", "match": {"path_prefix": "/payments"},
             "require": {"level": "push_number_match"}, "on_insufficient": "deny"},
            {"name": "api", "match": {"path_prefix": "/api"}, "require": {"level": "push"}}
        ]
    });
    let config = write(&dir, "config.json", &config.to_string());
    Fixture { dir, key, config }
}

impl Fixture {
    /// Mints a token for a user who signed in with `amr` (plus extra claims).
    fn token(&self, amr: &[&str], extra: Value) -> String {
        let mut claims =
            json!({"iss": ISSUER, "sub": "pat@example.com", "aud": "api://test", "amr": amr});
        if let (Some(c), Some(e)) = (claims.as_object_mut(), extra.as_object()) {
            c.extend(e.clone());
        }
        let file = write(&self.dir, "claims.json", &claims.to_string());
        let out = mfa_gate(&[
            "token", "--key", &self.key, "--claims", &file, "--exp-in", "600",
        ]);
        assert!(out.status.success(), "token: {}", stderr(&out));
        let token = stdout(&out).trim().to_string();
        assert_eq!(token.split('.').count(), 3, "a compact JWS");
        token
    }

    fn explain_json(&self, token: &str, method: &str, path: &str) -> Value {
        let out = mfa_gate(&[
            "explain",
            "--config",
            &self.config,
            "--token",
            token,
            "--method",
            method,
            "--path",
            path,
            "--json",
        ]);
        assert!(out.status.success(), "explain: {}", stderr(&out));
        serde_json::from_slice(&out.stdout).expect("explain --json prints JSON")
    }
}

// ---- check ---------------------------------------------------------------------------

#[test]
fn check_accepts_every_shipped_envoy_file() {
    for file in [
        "envoy/envoy.yaml",
        "envoy/envoy-jwt-authn.yaml",
        "envoy/istio/wasmplugin.yaml",
        "envoy/envoy-gateway/extension-policy.yaml",
    ] {
        let out = mfa_gate(&["check", file]);
        assert!(out.status.success(), "{file}: {}", stderr(&out));
        assert!(
            stdout(&out).starts_with(&format!("ok: {file}")),
            "{}",
            stdout(&out)
        );
        // The shipped bootstraps turn on every HCM setting the gate relies on.
        assert!(
            !stderr(&out).contains("warning:"),
            "{file}: {}",
            stderr(&out)
        );
    }
    let out = mfa_gate(&["check", "envoy/envoy.yaml"]);
    assert!(
        stdout(&out).contains("1 issuer, 5 routes"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn check_warns_about_a_bootstrap_that_leaves_path_and_header_safety_off() {
    let dir = scratch("check-hcm");
    let shipped = std::fs::read_to_string(common::repo().join("envoy/envoy.yaml")).unwrap();
    let unsafe_settings: String = shipped
        .lines()
        .filter(|l| {
            ![
                "normalize_path:",
                "merge_slashes:",
                "path_with_escaped_slashes_action:",
            ]
            .iter()
            .any(|k| l.trim_start().starts_with(k))
        })
        .map(|l| {
            l.replace(
                "headers_with_underscores_action: REJECT_REQUEST",
                "headers_with_underscores_action: ALLOW",
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    let file = write(&dir, "envoy.yaml", &unsafe_settings);
    let out = mfa_gate(&["check", &file]);
    assert!(
        out.status.success(),
        "warnings keep exit 0: {}",
        stderr(&out)
    );
    let warnings: Vec<String> = stderr(&out)
        .lines()
        .filter(|l| l.starts_with(&format!("warning: {file}: listener \"gateway\": ")))
        .map(str::to_string)
        .collect();
    assert_eq!(warnings.len(), 4, "{}", stderr(&out));
    for setting in [
        "normalize_path is off",
        "merge_slashes is off",
        "path_with_escaped_slashes_action is KEEP_UNCHANGED",
        "headers_with_underscores_action is ALLOW",
    ] {
        assert!(
            warnings.iter().any(|w| w.contains(setting)),
            "{setting}: {warnings:?}"
        );
    }
}

#[test]
fn check_names_every_error_with_its_field_path() {
    let dir = scratch("check-bad");
    let bad = write(
        &dir,
        "bad.json",
        r#"{"issuers":[{"issuer":"https://i","audiences":[],"remote_jwks":{"cluster":"c","path":"/k","refresh_interval_secs":1}}],
            "routes":[{"match":{"path_prefix":"/a"},"require":{"level":"phishing_resistent"}}]}"#,
    );
    let out = mfa_gate(&["check", &bad]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("issuers[0].audiences: "), "{err}");
    assert!(
        err.contains("issuers[0].remote_jwks.refresh_interval_secs: "),
        "{err}"
    );
    assert!(
        err.contains(r#"routes[0].require.level: unknown level "phishing_resistent""#),
        "{err}"
    );
    assert!(err.lines().count() >= 3, "one line per error: {err}");
    assert!(stdout(&out).is_empty());
}

#[test]
fn check_reports_unknown_fields_and_malformed_json() {
    let dir = scratch("check-malformed");
    let unknown = write(&dir, "unknown.json", r#"{"issuers":[],"routs":[]}"#);
    let out = mfa_gate(&["check", &unknown]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("routs"), "{}", stderr(&out));

    let malformed = write(&dir, "malformed.json", "{\"issuers\": [");
    let out = mfa_gate(&["check", &malformed]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!stderr(&out).is_empty() && !stderr(&out).contains("panicked"));
}

#[test]
fn check_refuses_a_struct_configuration_envoy_would_pass_as_protobuf() {
    let dir = scratch("check-struct");
    let yaml = std::fs::read_to_string(common::repo().join("envoy/envoy.yaml")).expect("read");
    let yaml = yaml.replace(
        "type.googleapis.com/google.protobuf.StringValue",
        "type.googleapis.com/google.protobuf.Struct",
    );
    let file = write(&dir, "envoy.yaml", &yaml);
    let out = mfa_gate(&["check", &file]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("google.protobuf.StringValue"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn check_bad_files_give_one_error_line() {
    assert_one_line_error(
        &mfa_gate(&["check", "no/such/config.json"]),
        "cannot read no/such/config.json",
    );
    let dir = scratch("check-nothing");
    let empty = write(&dir, "other.yaml", "kind: Service\nmetadata: {name: x}\n");
    assert_one_line_error(
        &mfa_gate(&["check", &empty]),
        "no mfa-gate configuration found",
    );
    assert_one_line_error(&mfa_gate(&["check"]), "check needs a CONFIG");
}

// ---- token + explain -------------------------------------------------------------------

#[test]
fn explain_each_decision_for_minted_tokens() {
    let f = fixture("explain-decisions");
    let push = f.token(&["pwd", "okta_verify", "swk"], json!({}));
    let number_match = f.token(
        &["pwd", "okta_verify", "swk"],
        json!({"auth_strength": "push_nm"}),
    );
    let passkey = f.token(&["pwd", "pop"], json!({}));

    let r = f.explain_json(&push, "GET", "/api/orders");
    assert_eq!(r["decision"], "allow");
    assert_eq!(r["level"], "push");
    assert_eq!(r["rule"], "api");
    assert_eq!(r["answer"]["status"], "passed to the upstream");
    assert!(r["claims"].as_str().unwrap_or("").starts_with("verified"));

    let r = f.explain_json(&push, "GET", "/admin/users");
    assert_eq!(r["decision"], "step_up");
    assert_eq!(r["answer"]["status"], 401);
    let www = r["answer"]["headers"].to_string();
    assert!(
        www.contains("insufficient_user_authentication") && www.contains("phr"),
        "{www}"
    );
    assert!(
        r["reasons"]
            .to_string()
            .contains("level_below_required:push<phishing_resistant"),
        "{}",
        r["reasons"]
    );

    let r = f.explain_json(&push, "POST", "/payments/transfer");
    assert_eq!(r["decision"], "deny");
    assert_eq!(r["answer"]["status"], 403);

    let r = f.explain_json(&number_match, "POST", "/payments/transfer");
    assert_eq!(r["decision"], "allow");
    assert_eq!(r["level"], "push_number_match");

    let r = f.explain_json(&passkey, "GET", "/admin/users");
    assert_eq!(r["decision"], "allow");
    assert_eq!(r["level"], "phishing_resistant");
    assert!(r["answer"]["upstream_headers"]
        .to_string()
        .contains("x-mfa-gate-level"));

    let out = mfa_gate(&[
        "explain", "--config", &f.config, "--method", "GET", "--path", "/health", "--json",
    ]);
    let r: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(r["rule"], "health");
    assert_eq!(r["decision"], "allow");
    assert_eq!(r["answer"]["status"], "passed to the upstream");
}

#[test]
fn explain_table_is_readable() {
    let f = fixture("explain-table");
    let push = f.token(&["pwd", "okta_verify", "swk"], json!({}));
    let out = mfa_gate(&[
        "explain", "--config", &f.config, "--token", &push, "--method", "GET", "--path", "/admin/x",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    for line in [
        "level          push",
        "rule           admin (requires phishing_resistant)",
        "decision       step_up (enforce)",
        "answer         401",
        "reasons        - level_below_required:push<phishing_resistant",
    ] {
        assert!(table.contains(line), "missing {line:?} in:\n{table}");
    }
}

#[test]
fn explain_without_a_token_is_the_missing_token_answer() {
    let f = fixture("explain-missing");
    let out = mfa_gate(&[
        "explain", "--config", &f.config, "--method", "GET", "--path", "/api/x", "--json",
    ]);
    let r: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(r["answer"]["status"], 401);
    assert!(r["reasons"].to_string().contains("missing_token"));
}

#[test]
fn explain_claims_are_marked_unverified() {
    let f = fixture("explain-claims");
    let claims = write(
        &f.dir,
        "c.json",
        &json!({"iss": ISSUER, "sub": "kim", "amr": ["pwd", "pop"]}).to_string(),
    );
    let out = mfa_gate(&[
        "explain", "--config", &f.config, "--claims", &claims, "--method", "GET", "--path",
        "/admin",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("NOT verified"), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("decision       allow"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn explain_rejects_a_token_signed_by_another_key() {
    let f = fixture("explain-forged");
    let other = fixture("explain-forged-other");
    let forged = other.token(&["pwd", "pop"], json!({}));
    let r = f.explain_json(&forged, "GET", "/admin/users");
    assert_eq!(r["answer"]["status"], 401);
    assert!(
        r["answer"]["headers"].to_string().contains("invalid_token"),
        "{}",
        r["answer"]
    );
}

#[test]
fn explain_now_option_expires_tokens() {
    let f = fixture("explain-now");
    let t = f.token(&["pwd", "pop"], json!({}));
    let out = mfa_gate(&[
        "explain",
        "--config",
        &f.config,
        "--token",
        &t,
        "--method",
        "GET",
        "--path",
        "/admin",
        "--now",
        "99999999999",
        "--json",
    ]);
    let r: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(r["answer"]["status"], 401);
    assert!(
        r["reasons"].to_string().contains("expired"),
        "{}",
        r["reasons"]
    );
}

#[test]
fn explain_bad_inputs_give_one_error_line() {
    let f = fixture("explain-bad");
    let base = [
        "explain",
        "--config",
        f.config.as_str(),
        "--method",
        "GET",
        "--path",
        "/api",
    ];
    let with = |extra: &[&str]| {
        let mut args: Vec<&str> = base.to_vec();
        args.extend_from_slice(extra);
        mfa_gate(&args)
    };
    assert_one_line_error(&with(&["--token", "not-a-jwt"]), "malformed token");
    assert_one_line_error(&with(&["--token", "a.b.c"]), "malformed token");
    assert_one_line_error(
        &with(&["--claims", "/no/such/claims.json"]),
        "cannot read /no/such/claims.json",
    );
    let bad_claims = write(&f.dir, "bad-claims.json", "{\"amr\": [");
    assert_one_line_error(&with(&["--claims", &bad_claims]), "not valid JSON");
    assert_one_line_error(&with(&["--header", "no-colon"]), "expected \"Name: value\"");
    assert_one_line_error(&with(&["--now", "soon"]), "--now");
    assert_one_line_error(&with(&["--bogus"]), "--bogus");
    let bad_config = write(
        &f.dir,
        "bad-config.json",
        r#"{"issuers":[{"issuer":"x","audiences":["a"],"unknown":1}]}"#,
    );
    assert_one_line_error(
        &mfa_gate(&[
            "explain",
            "--config",
            &bad_config,
            "--method",
            "GET",
            "--path",
            "/",
        ]),
        "invalid configuration",
    );
    assert_one_line_error(
        &mfa_gate(&["explain", "--config", &f.config, "--path", "/"]),
        "--method",
    );
}

#[test]
fn explain_remote_jwks_needs_a_jwks_file() {
    let f = fixture("explain-remote");
    let token = f.token(
        &["pwd", "pop"],
        json!({"iss": "https://idp.mfa-gate.test", "aud": "mfa-gate-demo"}),
    );
    let args = [
        "explain",
        "--config",
        "envoy/envoy.yaml",
        "--token",
        &token,
        "--method",
        "GET",
        "--path",
        "/admin",
    ];
    assert_one_line_error(&mfa_gate(&args), "--jwks");
    // With the issuer's JWKS given (the fixture key's public JWKS), the filter's answer comes back.
    let jwks_file = f.dir.join("jwks.json");
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(&f.config).expect("config")).expect("json");
    std::fs::write(&jwks_file, config["issuers"][0]["jwks"].to_string()).expect("write");
    let mut with_jwks = args.to_vec();
    let jwks_path = jwks_file.to_string_lossy().into_owned();
    with_jwks.extend_from_slice(&["--jwks", &jwks_path, "--json"]);
    let out = mfa_gate(&with_jwks);
    assert!(out.status.success(), "{}", stderr(&out));
    let r: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(r["decision"], "allow");
    assert_eq!(r["rule"], "admin");
}

#[test]
fn token_supports_each_algorithm_family_and_pem() {
    let dir = scratch("token-algs");
    let claims = write(&dir, "c.json", r#"{"sub":"x"}"#);
    for alg in ["ES256", "ES384", "EdDSA", "RS256", "PS256", "HS256"] {
        let key = dir
            .join(format!("{alg}.json"))
            .to_string_lossy()
            .into_owned();
        let out = mfa_gate(&["keygen", "--alg", alg, "--out", &key]);
        assert!(out.status.success(), "{alg}: {}", stderr(&out));
        let out = mfa_gate(&["token", "--key", &key, "--claims", &claims]);
        assert!(out.status.success(), "{alg}: {}", stderr(&out));
        let header = stdout(&out).split('.').next().unwrap_or("").to_string();
        let header: Value = serde_json::from_slice(&base64url(&header)).expect("header JSON");
        assert_eq!(header["alg"], alg);
    }
}

fn base64url(text: &str) -> Vec<u8> {
    // Small decoder for the test (RFC 4648 §5, no padding).
    let table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in text.chars() {
        let v = table.find(c).expect("base64url") as u32;
        bits = (bits << 6) | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out
}

#[test]
fn token_and_keygen_bad_inputs_give_one_error_line() {
    let dir = scratch("token-bad");
    let claims = write(&dir, "c.json", r#"{"sub":"x"}"#);
    assert_one_line_error(
        &mfa_gate(&["token", "--key", "/no/key.json", "--claims", &claims]),
        "cannot read /no/key.json",
    );
    let junk = write(&dir, "junk.key", "hello");
    assert_one_line_error(
        &mfa_gate(&["token", "--key", &junk, "--claims", &claims]),
        "neither a JSON Web Key nor a PEM",
    );
    let key = dir.join("k.json").to_string_lossy().into_owned();
    assert!(mfa_gate(&["keygen", "--out", &key]).status.success());
    let not_object = write(&dir, "arr.json", "[1,2]");
    assert_one_line_error(
        &mfa_gate(&["token", "--key", &key, "--claims", &not_object]),
        "JSON object",
    );
    let bad_exp = write(&dir, "exp.json", r#"{"exp":"tomorrow"}"#);
    assert_one_line_error(
        &mfa_gate(&["token", "--key", &key, "--claims", &bad_exp]),
        "cannot be signed",
    );
    assert_one_line_error(
        &mfa_gate(&["keygen", "--alg", "none", "--out", &key]),
        "unsupported algorithm",
    );
    assert_one_line_error(&mfa_gate(&["frobnicate"]), "unknown command");
    assert!(Path::new(&key).exists());
}

/// Every subcommand with the options its help must name.
const SUBCOMMAND_OPTIONS: [(&str, &[&str]); 6] = [
    ("check", &["CONFIG"]),
    (
        "explain",
        &[
            "--config", "--token", "--claims", "--method", "--path", "--host", "--header",
            "--jwks", "--now", "--json",
        ],
    ),
    (
        "token",
        &["--key", "--claims", "--kid", "--alg", "--exp-in"],
    ),
    ("keygen", &["--alg", "--kid", "--out", "EdDSA", "HS256"]),
    (
        "set",
        &[
            "--key",
            "--event",
            "--iss",
            "--aud",
            "--iss-sub",
            "--email",
            "--opaque",
            "--session",
            "--member",
            "--push",
            "--bearer",
            "session-revoked",
            "backchannel-logout",
        ],
    ),
    (
        "demo",
        &[
            "--proxy-port",
            "--idp-port",
            "--app-port",
            "--print-json",
            "--ssf-bearer",
            "--ssf-stream",
            "--ssf-push-url",
            "--ssf-push-bearer",
            "--backchannel-logout-url",
            "--okta-api-token",
        ],
    ),
];

#[test]
fn help_and_version() {
    let out = mfa_gate(&["--help"]);
    assert!(out.status.success());
    for (cmd, _) in SUBCOMMAND_OPTIONS {
        assert!(
            stdout(&out).contains(&format!("mfa-gate {cmd} ")),
            "{cmd} listed"
        );
    }
    for text in ["not for production", "<command> --help"] {
        assert!(stdout(&out).contains(text), "{text}");
    }
    assert_eq!(stdout(&mfa_gate(&["-h"])), stdout(&out));
    assert_eq!(stdout(&mfa_gate(&["help"])), stdout(&out));
    assert!(stdout(&mfa_gate(&["--version"])).starts_with("mfa-gate "));
}

#[test]
fn each_subcommand_prints_its_own_usage_with_help() {
    for (cmd, options) in SUBCOMMAND_OPTIONS {
        let long = mfa_gate(&[cmd, "--help"]);
        assert_eq!(
            long.status.code(),
            Some(0),
            "{cmd} --help: {}",
            stderr(&long)
        );
        assert!(stderr(&long).is_empty(), "{cmd} --help: {}", stderr(&long));
        let text = stdout(&long);
        assert!(
            text.starts_with(&format!("Usage: mfa-gate {cmd}")),
            "{cmd}: {text}"
        );
        for option in options {
            assert!(text.contains(option), "{cmd} --help names {option}: {text}");
        }
        for (other, _) in SUBCOMMAND_OPTIONS.iter().filter(|(o, _)| *o != cmd) {
            assert!(
                !text.contains(&format!("mfa-gate {other}")),
                "{cmd} --help is about {cmd} only"
            );
        }
        assert_eq!(stdout(&mfa_gate(&[cmd, "-h"])), text, "{cmd} -h");
        assert_eq!(stdout(&mfa_gate(&["help", cmd])), text, "help {cmd}");
    }
    // Help wins over the other options and does nothing else: no key is written.
    let dir = scratch("keygen-help");
    let key = dir.join("key.json");
    let out = mfa_gate(&["keygen", "--out", key.to_str().unwrap(), "--help"]);
    assert!(out.status.success());
    assert!(!key.exists(), "keygen --help wrote no key");
    assert_one_line_error(&mfa_gate(&["help", "frobnicate"]), "unknown command");
}

// ---- explain --revoked -----------------------------------------------------------------

/// The fixture's configuration with a revocation section (back-channel logout only) and a
/// rule that revokes.
fn with_revocation(f: &Fixture) -> String {
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(&f.config).unwrap()).unwrap();
    config["revocation"] =
        json!({"backchannel_logout": {"path": "/.bcl", "audiences": ["api://test"]}});
    config["routes"].as_array_mut().unwrap().insert(
        0,
        json!({"name": "keys", "match": {"path_prefix": "/admin/keys"},
               "require": {"level": "phishing_resistant"}, "on_insufficient": "revoke"}),
    );
    write(&f.dir, "revocation.json", &config.to_string())
}

fn explain_revoked(config: &str, token: &str, path: &str, revoked: &str) -> Value {
    let out = mfa_gate(&[
        "explain",
        "--config",
        config,
        "--token",
        token,
        "--method",
        "GET",
        "--path",
        path,
        "--revoked",
        revoked,
        "--json",
    ]);
    assert!(out.status.success(), "explain: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("explain --json prints JSON")
}

#[test]
fn explain_shows_the_revocation_entry_that_covers_a_session() {
    let f = fixture("explain-revoked");
    let config = with_revocation(&f);
    let push = f.token(&["pwd", "okta_verify", "swk"], json!({"sid": "s-42"}));
    let passkey = f.token(&["pwd", "pop"], json!({"sid": "s-43"}));
    let entries = |list: Value| write(&f.dir, "revoked.json", &list.to_string());

    // The session's sid is listed: 401 session revoked on every route.
    let listed = entries(json!([{"issuer": ISSUER, "session": "s-42"}]));
    let r = explain_revoked(&config, &push, "/api/orders", &listed);
    assert_eq!(r["decision"], "deny");
    assert_eq!(r["answer"]["status"], 401);
    assert!(
        r["answer"]["headers"]
            .to_string()
            .contains("session revoked"),
        "{}",
        r["answer"]
    );
    assert_eq!(r["revocation"]["entry"], "session");
    assert_eq!(r["revocation"]["source"], "operator");
    assert!(
        r["reasons"].to_string().contains("session_revoked"),
        "{}",
        r["reasons"]
    );
    // Another session of the same user is not covered by a session entry...
    let r = explain_revoked(&config, &passkey, "/api/orders", &listed);
    assert_eq!(r["decision"], "allow");
    assert!(r["revocation"].is_null());
    // ...but a subject entry covers every session issued before it, and none after.
    let listed = entries(json!([{"issuer": ISSUER, "subject": "pat@example.com"}]));
    assert_eq!(
        explain_revoked(&config, &passkey, "/admin/users", &listed)["answer"]["status"],
        401
    );
    let listed = entries(json!([{"issuer": ISSUER, "subject": "pat@example.com", "before": 1000}]));
    assert_eq!(
        explain_revoked(&config, &passkey, "/admin/users", &listed)["decision"],
        "allow"
    );
    // Another issuer's entry covers nothing here.
    let listed = entries(json!([{"issuer": "https://other", "session": "s-42"}]));
    assert_eq!(
        explain_revoked(&config, &push, "/api/orders", &listed)["decision"],
        "allow"
    );

    // Lowered assurance: a passkey session must step up where it was let in.
    let listed =
        entries(json!([{"issuer": ISSUER, "session": "s-43", "effect": "lower_assurance"}]));
    let r = explain_revoked(&config, &passkey, "/admin/users", &listed);
    assert_eq!(r["decision"], "step_up");
    assert_eq!(r["revocation"]["effect"], "lower_assurance");
    assert!(
        r["reasons"].to_string().contains("assurance_lowered"),
        "{}",
        r["reasons"]
    );
    // A route that asks nothing more than a session is still open.
    let r = explain_revoked(&config, &passkey, "/api/orders", &listed);
    assert_eq!(
        r["decision"], "step_up",
        "level none is below push: {}",
        r["reasons"]
    );

    // A rule that revokes: the decision, and a 401.
    let none = entries(json!([]));
    let r = explain_revoked(&config, &push, "/admin/keys/rotate", &none);
    assert_eq!(r["decision"], "revoke");
    assert_eq!(r["answer"]["status"], 401);

    // Bad lists are clear errors.
    for (list, expected) in [
        (json!({"issuer": ISSUER}), "expected a JSON array"),
        (json!([{"session": "x"}]), "issuer"),
        (json!([{"issuer": ISSUER}]), "exactly one of"),
        (
            json!([{"issuer": ISSUER, "session": "x", "subject": "y"}]),
            "exactly one of",
        ),
        (
            json!([{"issuer": ISSUER, "session": "x", "effect": "ban"}]),
            "unknown effect",
        ),
    ] {
        let file = entries(list);
        let out = mfa_gate(&[
            "explain",
            "--config",
            &config,
            "--token",
            &push,
            "--method",
            "GET",
            "--path",
            "/api",
            "--revoked",
            &file,
        ]);
        assert!(!out.status.success());
        assert!(stderr(&out).contains(expected), "{}", stderr(&out));
    }
    // Without a revocation section, --revoked is refused.
    let out = mfa_gate(&[
        "explain",
        "--config",
        &f.config,
        "--token",
        &push,
        "--method",
        "GET",
        "--path",
        "/api",
        "--revoked",
        &none,
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("revocation section"),
        "{}",
        stderr(&out)
    );
}

// ---- explain with risk context ---------------------------------------------------------

#[test]
fn explain_prints_the_score_table_from_the_request_context() {
    let f = fixture("explain-risk");
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(&f.config).unwrap()).unwrap();
    config["risk"] = json!({"location": {"headers": "geoip"},
                            "posture": {"sources": [{"certificate": {"uri_san_prefixes": ["spiffe://devices/"], "posture": "managed"}}]}});
    config["routes"].as_array_mut().unwrap().insert(
        0,
        json!({"name": "scored", "match": {"path_prefix": "/scored"}, "risk": {}}),
    );
    let config = write(&f.dir, "risk.json", &config.to_string());
    let push = f.token(&["pwd", "okta_verify", "swk"], json!({}));
    let run = |path: &str, extra: &[&str]| {
        let mut args = vec![
            "explain",
            "--config",
            &config,
            "--token",
            &push,
            "--method",
            "GET",
            "--path",
            path,
            "--header",
            "x-geo-country: SK",
            "--header",
            "x-geo-city: Bratislava",
        ];
        args.extend_from_slice(extra);
        mfa_gate(&args)
    };
    let explain = |extra: &[&str], json: bool| {
        let mut extra = extra.to_vec();
        if json {
            extra.push("--json");
        }
        let out = run("/scored/x", &extra);
        assert!(out.status.success(), "explain: {}", stderr(&out));
        out
    };
    // Seen in Vienna ten minutes ago: Bratislava is a new country, 30 + 25 = 55.
    let r: Value =
        serde_json::from_slice(&explain(&["--last-seen", "AT,48.21,16.37,600"], true).stdout)
            .unwrap();
    assert_eq!(r["decision"], "step_up", "{r}");
    assert_eq!(r["risk"]["score"], 55, "{r}");
    assert_eq!(r["risk"]["threshold"], "step_up");
    let table = stdout(&explain(&["--last-seen", "AT,48.21,16.37,600"], false));
    assert!(
        table.contains("risk score     55 (reached step_up at 50)"),
        "{table}"
    );
    assert!(table.contains("+25  new_country"), "{table}");
    // On the device CA's certificate: managed, 55 - 10 = 45, let through.
    let r: Value = serde_json::from_slice(
        &explain(
            &[
                "--last-seen",
                "AT,48.21,16.37,600",
                "--client-cert-uri-san",
                "spiffe://devices/laptop-7",
            ],
            true,
        )
        .stdout,
    )
    .unwrap();
    assert_eq!(r["decision"], "allow", "{r}");
    assert_eq!(r["risk"]["score"], 45, "{r}");
    // No history: a first sighting, 30.
    let r: Value = serde_json::from_slice(&explain(&[], true).stdout).unwrap();
    assert_eq!(r["risk"]["score"], 30, "{r}");
    // A malformed sighting is a clear error.
    let out = run("/x", &["--last-seen", "Austria,600"]);
    assert_one_line_error(&out, "--last-seen");
}
