//! Pins, byte for byte, what users and log pipelines read: `mfa-gate explain` (table and
//! `--json`) and the decision record the filter logs (`DecisionRecord::to_json`, the same
//! writer the filter's log line uses), with each answer's status, headers, body and
//! counters, over one request per kind of answer. Tokens are signed with a fixed Ed25519
//! test key (deterministic signatures) and every run uses the same clock (`--now`).
//!
//! The expected text is `tests/golden/*.txt`. After a change that is meant to alter it,
//! rerun with `UPDATE_GOLDEN=1` and review the diff.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

mod common;

use common::{mfa_gate, scratch, stderr, stdout, write};
use mfa_gate::claims::Claims;
use mfa_gate::engine::{self, ClaimsInput, Outcome, SessionCache};
use mfa_gate::jwks::KeySet;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

const NOW: u64 = 1_700_000_000;
const ISSUER: &str = "https://idp.golden.test";
const HS_ISSUER: &str = "https://hs.golden.test";
const REMOTE_ISSUER: &str = "https://remote.golden.test";
/// A fixed Ed25519 test key (made with `mfa-gate keygen --alg EdDSA --kid golden`).
const PRIVATE_KEY: &str = r#"{"alg":"EdDSA","crv":"Ed25519","d":"PbgOtOaHigK5UO70jb68e6u-zl_cYq5ohVLeo3LnJws","kid":"golden","kty":"OKP","use":"sig","x":"r2yl2boYG8iWG8J3eMpcH4ajY3YC7RgzWRtrGu_PsYs"}"#;
const PUBLIC_X: &str = "r2yl2boYG8iWG8J3eMpcH4ajY3YC7RgzWRtrGu_PsYs";
/// 32 bytes, base64: `0123456789abcdef0123456789abcdef`.
const HMAC_B64: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

fn gate_config() -> Value {
    json!({
        "realm": "golden",
        "issuers": [
            {"issuer": ISSUER, "audiences": ["api://golden"],
             "jwks": {"keys": [{"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": "golden", "x": PUBLIC_X}]},
             "profile": "okta",
             "custom_claims": [{"claim": "auth_strength", "values": {"push_nm": "push_number_match"}}],
             "step_up": {"authorization_endpoint": "https://idp.golden.test/authorize",
                         "client_id": "golden-app", "redirect_uri": "https://app.golden.test/callback"}},
            {"issuer": HS_ISSUER, "audiences": ["api://golden"], "algorithms": ["HS256"],
             "hmac_secret_base64": HMAC_B64},
            {"issuer": REMOTE_ISSUER, "audiences": ["api://golden"],
             "remote_jwks": {"cluster": "remote_idp", "path": "/jwks"}}
        ],
        "token_sources": [{"authorization_bearer": true}, {"cookie": "session"}],
        "routes": [
            {"name": "health", "match": {"path": "/health"}},
            {"name": "admin", "match": {"path_prefix": "/admin"},
             "require": {"level": "phishing_resistant", "max_auth_age_secs": 900}},
            {"name": "payments", "match": {"path_prefix": "/payments", "methods": ["POST"]},
             "require": {"level": "push_number_match"}, "on_insufficient": "deny"},
            {"name": "reports", "match": {"path_prefix": "/reports"},
             "require": {"level": "otp"}, "mode": "report_only"},
            {"name": "tenant \"t\"", "match": {"path_prefix": "/t/", "hosts": ["*.tenant.golden.test"]},
             "require": {"level": "otp"}},
            {"name": "api", "match": {"path_prefix": "/api"}, "require": {"level": "push"}, "browser": "api"}
        ]
    })
}

fn jwt_authn_config() -> Value {
    json!({
        "jwt_authn": {"payload_in_metadata": "jwt_payload"},
        "issuers": [{"issuer": ISSUER, "profile": "okta"}],
        "routes": [{"name": "admin", "match": {"path_prefix": "/admin"},
                    "require": {"level": "phishing_resistant"}}],
        "unmatched": "deny"
    })
}

/// The claims of a user who signed in with `amr`, `age` seconds before [`NOW`].
fn claims(amr: &[&str], age: u64, extra: Value) -> Value {
    let mut claims = json!({"iss": ISSUER, "sub": "pat@golden.test", "sid": "s-1",
        "aud": "api://golden", "amr": amr, "iat": NOW - age, "auth_time": NOW - age,
        "exp": NOW + 600});
    if let (Some(c), Some(e)) = (claims.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    claims
}

struct Signer {
    dir: PathBuf,
    key: String,
    hs_key: String,
}

impl Signer {
    fn new(dir: &Path) -> Self {
        let hs = json!({"kty": "oct", "alg": "HS256", "k": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"});
        Signer {
            dir: dir.to_path_buf(),
            key: write(dir, "key.json", PRIVATE_KEY),
            hs_key: write(dir, "hs.json", &hs.to_string()),
        }
    }

    fn sign_with(&self, key: &str, claims: &Value, extra_args: &[&str]) -> String {
        let file = write(&self.dir, "claims.json", &claims.to_string());
        let mut args = vec!["token", "--key", key, "--claims", &file];
        args.extend_from_slice(extra_args);
        let out = mfa_gate(&args);
        assert!(out.status.success(), "token: {}", stderr(&out));
        stdout(&out).trim().to_string()
    }

    fn sign(&self, claims: &Value) -> String {
        self.sign_with(&self.key, claims, &[])
    }
}

/// The tokens the cases use, by name.
fn tokens(signer: &Signer) -> Vec<(&'static str, String)> {
    let push = ["pwd", "okta_verify", "swk"];
    vec![
        (
            "passkey",
            signer.sign(&claims(&["pwd", "pop"], 100, json!({}))),
        ),
        ("push", signer.sign(&claims(&push, 100, json!({})))),
        (
            "number_match",
            signer.sign(&claims(&push, 100, json!({"auth_strength": "push_nm"}))),
        ),
        ("otp", signer.sign(&claims(&["pwd", "otp"], 100, json!({})))),
        (
            "old_passkey",
            signer.sign(&claims(&["pwd", "pop"], 5000, json!({}))),
        ),
        (
            "expired",
            signer.sign(&claims(&["pwd", "pop"], 5000, json!({"exp": NOW - 1000}))),
        ),
        (
            "wrong_audience",
            signer.sign(&claims(&["pwd", "pop"], 100, json!({"aud": "api://other"}))),
        ),
        (
            "unknown_issuer",
            signer.sign(&claims(
                &["pwd", "pop"],
                100,
                json!({"iss": "https://other.test"}),
            )),
        ),
        (
            "unknown_kid",
            signer.sign_with(
                &signer.key,
                &claims(&["pwd", "pop"], 100, json!({})),
                &["--kid", "rotated"],
            ),
        ),
        (
            "unknown_amr",
            signer.sign(&claims(&["pwd", "weird\"factor"], 100, json!({}))),
        ),
        (
            "no_auth_time",
            signer.sign(&json!({"iss": ISSUER, "sub": "kim", "aud": "api://golden",
                "amr": ["pwd", "pop"], "iat": NOW - 50, "exp": NOW + 600})),
        ),
        (
            "hs256",
            signer.sign_with(
                &signer.hs_key,
                &claims(&["pwd", "otp"], 100, json!({"iss": HS_ISSUER})),
                &[],
            ),
        ),
        (
            "remote",
            signer.sign(&claims(&["pwd", "pop"], 100, json!({"iss": REMOTE_ISSUER}))),
        ),
    ]
}

fn token<'a>(tokens: &'a [(&str, String)], name: &str) -> &'a str {
    &tokens.iter().find(|(n, _)| *n == name).expect(name).1
}

/// Compares `actual` with the golden file, or writes it under `UPDATE_GOLDEN=1`.
fn assert_golden(name: &str, actual: &str) {
    let path = common::repo().join("cli/tests/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (create it with UPDATE_GOLDEN=1)", path.display()));
    if expected != actual {
        let first = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
        panic!(
            "{} differs from the output, first at line {}:\n  expected: {:?}\n  actual:   {:?}",
            path.display(),
            first + 1,
            expected.lines().nth(first),
            actual.lines().nth(first)
        );
    }
}

/// One `explain` case: a name, the token to carry (by name), and the other arguments.
type ExplainCase = (&'static str, Option<&'static str>, &'static [&'static str]);

const EXPLAIN_CASES: &[ExplainCase] = &[
    (
        "passkey on admin",
        Some("passkey"),
        &["--method", "GET", "--path", "/admin/users"],
    ),
    (
        "push on admin (api client)",
        Some("push"),
        &["--method", "GET", "--path", "/admin/users?x=1"],
    ),
    (
        "push on admin (browser)",
        Some("push"),
        &[
            "--method",
            "GET",
            "--path",
            "/admin/users?x=1",
            "-H",
            "Accept: text/html",
        ],
    ),
    (
        "push on payments",
        Some("push"),
        &["--method", "POST", "--path", "/payments/transfer"],
    ),
    (
        "number match on payments",
        Some("number_match"),
        &["--method", "POST", "--path", "/payments/transfer"],
    ),
    (
        "payments read is not gated by the POST rule",
        Some("push"),
        &["--method", "GET", "--path", "/payments/list"],
    ),
    (
        "otp on api",
        Some("otp"),
        &["--method", "GET", "--path", "/api/orders"],
    ),
    (
        "no token on api",
        None,
        &["--method", "GET", "--path", "/api/orders"],
    ),
    (
        "no token on admin (browser)",
        None,
        &[
            "--method",
            "GET",
            "--path",
            "/admin/users",
            "-H",
            "Accept: text/html",
        ],
    ),
    (
        "old sign-in on admin",
        Some("old_passkey"),
        &["--method", "GET", "--path", "/admin/users"],
    ),
    (
        "no auth_time on admin",
        Some("no_auth_time"),
        &["--method", "GET", "--path", "/admin/users"],
    ),
    (
        "expired",
        Some("expired"),
        &["--method", "GET", "--path", "/api/orders"],
    ),
    (
        "wrong audience",
        Some("wrong_audience"),
        &["--method", "GET", "--path", "/api/orders"],
    ),
    (
        "unknown issuer",
        Some("unknown_issuer"),
        &["--method", "GET", "--path", "/api/orders"],
    ),
    (
        "unknown kid",
        Some("unknown_kid"),
        &["--method", "GET", "--path", "/api/orders"],
    ),
    (
        "unknown amr",
        Some("unknown_amr"),
        &["--method", "GET", "--path", "/api/orders"],
    ),
    (
        "hs256 issuer",
        Some("hs256"),
        &["--method", "GET", "--path", "/api/orders"],
    ),
    (
        "report only",
        Some("push"),
        &["--method", "GET", "--path", "/reports/q3"],
    ),
    (
        "public rule",
        None,
        &["--method", "GET", "--path", "/health"],
    ),
    (
        "valid token, no rule",
        Some("push"),
        &["--method", "GET", "--path", "/elsewhere"],
    ),
    (
        "ambiguous path",
        Some("passkey"),
        &["--method", "GET", "--path", "/admin/../api"],
    ),
    (
        "tenant host rule",
        Some("otp"),
        &[
            "--method",
            "GET",
            "--path",
            "/t/x",
            "--host",
            "a.tenant.golden.test",
        ],
    ),
    (
        "tenant host rule, push",
        Some("push"),
        &[
            "--method",
            "GET",
            "--path",
            "/t/x",
            "--host",
            "a.tenant.golden.test",
        ],
    ),
    (
        "invalid host",
        Some("otp"),
        &[
            "--method",
            "GET",
            "--path",
            "/t/x",
            "--host",
            "user@a.tenant.golden.test",
        ],
    ),
    (
        "two credentials",
        Some("passkey"),
        &[
            "--method",
            "GET",
            "--path",
            "/api/x",
            "-H",
            "Cookie: session=other",
        ],
    ),
    (
        "malformed credential",
        None,
        &[
            "--method",
            "GET",
            "--path",
            "/api/x",
            "-H",
            "Authorization: Bearer a\"b",
        ],
    ),
    (
        "cors preflight",
        None,
        &[
            "--method",
            "OPTIONS",
            "--path",
            "/admin/users",
            "-H",
            "Origin: https://app.golden.test",
            "-H",
            "Access-Control-Request-Method: POST",
        ],
    ),
    (
        "options with a credential",
        Some("push"),
        &[
            "--method",
            "OPTIONS",
            "--path",
            "/admin/users",
            "-H",
            "Origin: https://app.golden.test",
            "-H",
            "Access-Control-Request-Method: POST",
        ],
    ),
];

#[test]
fn explain_output_is_pinned() {
    let dir = scratch("golden-explain");
    let signer = Signer::new(&dir);
    let tokens = tokens(&signer);
    let config = write(&dir, "config.json", &gate_config().to_string());
    let jwt_authn = write(&dir, "jwt-authn.json", &jwt_authn_config().to_string());
    let passkey_claims = write(
        &dir,
        "passkey-claims.json",
        &claims(&["pwd", "pop"], 100, json!({})).to_string(),
    );
    let push_claims = write(
        &dir,
        "push-claims.json",
        &claims(&["pwd", "okta_verify"], 100, json!({})).to_string(),
    );
    let now = NOW.to_string();
    let mut runs: Vec<(String, Vec<String>)> = Vec::new();
    for (name, token_name, args) in EXPLAIN_CASES {
        let mut a: Vec<String> = vec!["explain".into(), "--config".into(), config.clone()];
        if let Some(t) = token_name {
            a.extend(["--token".into(), token(&tokens, t).to_string()]);
        }
        a.extend(args.iter().map(|s| s.to_string()));
        runs.push((name.to_string(), a));
    }
    for (name, config, claims, path) in [
        (
            "unverified claims",
            &config,
            Some(&passkey_claims),
            "/admin/users",
        ),
        (
            "jwt_authn payload, passkey",
            &jwt_authn,
            Some(&passkey_claims),
            "/admin/users",
        ),
        (
            "jwt_authn payload, push",
            &jwt_authn,
            Some(&push_claims),
            "/admin/users",
        ),
        ("jwt_authn, no payload", &jwt_authn, None, "/admin/users"),
        (
            "jwt_authn, unmatched denied",
            &jwt_authn,
            Some(&passkey_claims),
            "/other",
        ),
    ] {
        let mut a: Vec<String> = vec!["explain".into(), "--config".into(), config.clone()];
        if let Some(c) = claims {
            a.extend(["--claims".into(), c.clone()]);
        }
        a.extend([
            "--method".into(),
            "GET".into(),
            "--path".into(),
            path.into(),
        ]);
        runs.push((name.to_string(), a));
    }
    let mut table = String::new();
    let mut json_out = String::new();
    for (name, mut args) in runs {
        args.extend(["--now".into(), now.clone()]);
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = mfa_gate(&argv);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        table.push_str(&format!("== {name}\n{}", stdout(&out)));
        let mut argv = argv.clone();
        argv.push("--json");
        let out = mfa_gate(&argv);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        // The scratch directory's paths are not part of the output.
        let text = stdout(&out).replace(dir.to_string_lossy().as_ref(), "<dir>");
        json_out.push_str(&format!("== {name}\n{text}"));
    }
    assert_golden("explain.txt", &table);
    assert_golden("explain-json.txt", &json_out);
}

/// Keys per issuer as the filter holds them: inline keys, plus any HMAC secret.
fn key_sets(config: &mfa_gate::config::Config) -> Vec<Option<KeySet>> {
    (config.issuers.iter())
        .map(|issuer| issuer.initial_keys(None))
        .collect()
}

/// An evaluation as text: the record's JSON, the answer and the counters.
fn describe(evaluation: &engine::Evaluation) -> String {
    let mut out = String::new();
    match &evaluation.record {
        Some(record) => out.push_str(&format!("record {}\n", record.to_json())),
        None => out.push_str("no record\n"),
    }
    match &evaluation.outcome {
        Outcome::Continue { remove, set } => {
            out.push_str(&format!("continue remove={remove:?} set={:?}\n", &set[..]));
        }
        Outcome::Reply(reply) => {
            out.push_str(&format!("reply {} {}\n", reply.status, reply.details));
            for (name, value) in &reply.headers {
                out.push_str(&format!("  {name}: {value}\n"));
            }
            out.push_str(&format!(
                "  body {}\n",
                String::from_utf8_lossy(&reply.body)
            ));
        }
        _ => out.push_str("needs keys\n"),
    }
    let counters: Vec<&str> = evaluation.counters.iter().collect();
    out.push_str(&format!("counters {counters:?}\n"));
    out
}

fn request_headers(method: &str, path: &str, extra: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    let mut headers: Vec<(String, Vec<u8>)> = vec![
        (":method".into(), method.as_bytes().to_vec()),
        (":path".into(), path.as_bytes().to_vec()),
        (":authority".into(), b"app.golden.test".to_vec()),
        (":scheme".into(), b"https".to_vec()),
    ];
    headers.extend(
        extra
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec())),
    );
    headers
}

/// One engine case: a name, method, path, extra headers, and whether keys may be fetched.
type RecordCase<'a> = (&'a str, &'a str, &'a str, Vec<(&'a str, String)>, bool);

#[test]
fn decision_records_are_pinned() {
    let dir = scratch("golden-records");
    let signer = Signer::new(&dir);
    let tokens = tokens(&signer);
    let config = mfa_gate::config::parse(gate_config().to_string().as_bytes()).unwrap();
    let keys = key_sets(&config);
    let mut cache = SessionCache::new(100);
    let mut out = String::new();
    let bearer = |name: &str| format!("Bearer {}", token(&tokens, name));
    let cookie = |name: &str| format!("session={}", token(&tokens, name));
    let cases: Vec<RecordCase> = vec![
        (
            "passkey on admin",
            "GET",
            "/admin/users",
            vec![("authorization", bearer("passkey"))],
            false,
        ),
        (
            "passkey on admin again (cache hit)",
            "GET",
            "/admin/users",
            vec![("authorization", bearer("passkey"))],
            false,
        ),
        (
            "push on admin",
            "GET",
            "/admin/users",
            vec![("authorization", bearer("push"))],
            false,
        ),
        (
            "push on admin, browser",
            "GET",
            "/admin/users?next=%2F",
            vec![
                ("authorization", bearer("push")),
                ("accept", "text/html".into()),
            ],
            false,
        ),
        (
            "push on payments",
            "POST",
            "/payments/transfer",
            vec![("authorization", bearer("push"))],
            false,
        ),
        (
            "number match on payments",
            "POST",
            "/payments/transfer",
            vec![("cookie", cookie("number_match"))],
            false,
        ),
        (
            "otp on api",
            "GET",
            "/api/orders",
            vec![("authorization", bearer("otp"))],
            false,
        ),
        ("no token", "GET", "/api/orders", vec![], false),
        (
            "no token, browser",
            "GET",
            "//admin",
            vec![("accept", "text/html".into())],
            false,
        ),
        (
            "no token, browser on admin",
            "GET",
            "/admin/users",
            vec![("accept", "text/html".into())],
            false,
        ),
        (
            "old sign-in",
            "GET",
            "/admin/users",
            vec![("authorization", bearer("old_passkey"))],
            false,
        ),
        (
            "no auth_time",
            "GET",
            "/admin/users",
            vec![("authorization", bearer("no_auth_time"))],
            false,
        ),
        (
            "expired",
            "GET",
            "/api/orders",
            vec![("authorization", bearer("expired"))],
            false,
        ),
        (
            "wrong audience",
            "GET",
            "/api/orders",
            vec![("authorization", bearer("wrong_audience"))],
            false,
        ),
        (
            "unknown issuer",
            "GET",
            "/api/orders",
            vec![("authorization", bearer("unknown_issuer"))],
            false,
        ),
        (
            "unknown kid",
            "GET",
            "/api/orders",
            vec![("authorization", bearer("unknown_kid"))],
            false,
        ),
        (
            "unknown kid, may fetch",
            "GET",
            "/api/orders",
            vec![("authorization", bearer("unknown_kid"))],
            true,
        ),
        (
            "unknown amr",
            "GET",
            "/api/orders",
            vec![("authorization", bearer("unknown_amr"))],
            false,
        ),
        (
            "hs256",
            "GET",
            "/api/orders",
            vec![("authorization", bearer("hs256"))],
            false,
        ),
        (
            "hs256 on admin, browser (issuer without step_up)",
            "GET",
            "/admin/x",
            vec![
                ("authorization", bearer("hs256")),
                ("accept", "text/html".into()),
            ],
            false,
        ),
        (
            "remote issuer without keys",
            "GET",
            "/api/orders",
            vec![("authorization", bearer("remote"))],
            false,
        ),
        (
            "remote issuer without keys, may fetch",
            "GET",
            "/api/orders",
            vec![("authorization", bearer("remote"))],
            true,
        ),
        (
            "report only",
            "GET",
            "/reports/q3",
            vec![("authorization", bearer("push"))],
            false,
        ),
        (
            "public",
            "GET",
            "/health",
            vec![("x-mfa-gate-level", "phishing_resistant".into())],
            false,
        ),
        (
            "valid token, no rule",
            "GET",
            "/elsewhere",
            vec![
                ("authorization", bearer("push")),
                ("X_MFA_GATE_LEVEL", "phishing_resistant".into()),
            ],
            false,
        ),
        (
            "ambiguous path",
            "GET",
            "/admin/%2e%2e/api",
            vec![("authorization", bearer("passkey"))],
            false,
        ),
        (
            "tenant host",
            "GET",
            "/t/x",
            vec![
                ("authorization", bearer("otp")),
                ("x-forwarded-host", "b.tenant.golden.test".into()),
            ],
            false,
        ),
        (
            "invalid forwarded host",
            "GET",
            "/t/x",
            vec![
                ("authorization", bearer("otp")),
                ("x-forwarded-host", "a b".into()),
            ],
            false,
        ),
        (
            "two credentials",
            "GET",
            "/api/x",
            vec![
                ("authorization", bearer("passkey")),
                ("cookie", cookie("push")),
            ],
            false,
        ),
        (
            "malformed credential",
            "GET",
            "/api/x",
            vec![("authorization", "Bearer a\"b".into())],
            false,
        ),
        (
            "cors preflight",
            "OPTIONS",
            "/admin/users",
            vec![
                ("origin", "https://app.golden.test".into()),
                ("access-control-request-method", "POST".into()),
            ],
            false,
        ),
        (
            "method override",
            "POST",
            "/payments/transfer",
            vec![
                ("authorization", bearer("otp")),
                ("x-http-method-override", "GET".into()),
            ],
            false,
        ),
    ];
    for (name, method, path, extra, may_fetch_keys) in &cases {
        let extra: Vec<(&str, &str)> = extra.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let headers = request_headers(method, path, &extra);
        let request = engine::Request {
            headers: &headers,
            claims: ClaimsInput::Token,
            now_secs: NOW,
            may_fetch_keys: *may_fetch_keys,
            revocations: &mfa_gate::engine::NothingRevoked,
            signals: &mfa_gate::engine::SharedSignals::new(mfa_gate::store::MemoryStore::default()),
        };
        let evaluation = engine::evaluate(&config, &request, &keys, &mut cache);
        out.push_str(&format!("== {name}\n{}", describe(&evaluation)));
    }

    // Claims from Envoy jwt_authn, and claims taken as given.
    let jwt_authn = mfa_gate::config::parse(jwt_authn_config().to_string().as_bytes()).unwrap();
    let passkey: Claims = claims(&["pwd", "pop"], 100, json!({}))
        .as_object()
        .unwrap()
        .clone();
    let push: Claims = claims(
        &["pwd", "okta_verify"],
        100,
        json!({"iss": "https://other.test"}),
    )
    .as_object()
    .unwrap()
    .clone();
    let unreadable: Result<Claims, String> = Err("bad".into());
    let verified = Ok(passkey.clone());
    let other = Ok(push.clone());
    let no_claims = Claims::new();
    let inputs: Vec<(&str, &mfa_gate::config::Config, ClaimsInput<'_>, &str)> = vec![
        (
            "jwt_authn payload",
            &jwt_authn,
            ClaimsInput::JwtAuthn(Some(&verified)),
            "/admin/x",
        ),
        (
            "jwt_authn payload, unknown issuer",
            &jwt_authn,
            ClaimsInput::JwtAuthn(Some(&other)),
            "/admin/x",
        ),
        (
            "jwt_authn payload unreadable",
            &jwt_authn,
            ClaimsInput::JwtAuthn(Some(&unreadable)),
            "/admin/x",
        ),
        (
            "jwt_authn, no payload",
            &jwt_authn,
            ClaimsInput::JwtAuthn(None),
            "/admin/x",
        ),
        (
            "jwt_authn, unmatched denied",
            &jwt_authn,
            ClaimsInput::JwtAuthn(Some(&verified)),
            "/other",
        ),
        (
            "jwt_authn metadata absent",
            &jwt_authn,
            ClaimsInput::JwtAuthnMetadata {
                metadata: None,
                payload_key: "jwt_payload",
            },
            "/admin/x",
        ),
        (
            "unverified claims",
            &config,
            ClaimsInput::Unverified(&passkey),
            "/admin/x",
        ),
        (
            "unverified claims without iss",
            &config,
            ClaimsInput::Unverified(&no_claims),
            "/admin/x",
        ),
    ];
    for (name, config, claims, path) in inputs {
        let headers = request_headers("GET", path, &[]);
        let request = engine::Request {
            headers: &headers,
            claims,
            now_secs: NOW,
            may_fetch_keys: false,
            revocations: &mfa_gate::engine::NothingRevoked,
            signals: &mfa_gate::engine::SharedSignals::new(mfa_gate::store::MemoryStore::default()),
        };
        let evaluation = engine::evaluate(config, &request, &key_sets(config), &mut cache);
        out.push_str(&format!("== {name}\n{}", describe(&evaluation)));
    }
    assert_golden("records.txt", &out);
}
