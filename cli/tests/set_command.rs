//! `mfa-gate set`: the SETs and logout tokens it mints decode with the right header and
//! claims and verify with the key's JWKS; `--push` POSTs them to a recording receiver and
//! exits by its answer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

mod common;
#[path = "common/signals.rs"]
mod signals;

use common::{assert_one_line_error, mfa_gate, scratch, stderr, stdout};
use serde_json::{json, Value};
use signals::{
    assert_set, decode, verify_with_exp, Receiver, AUDIENCE, CAEP, ISSUER, LOGOUT_EVENT, RISC,
};

/// A fresh ES256 key: (path of the private JWK, the public JWKS).
fn key(name: &str) -> (String, Value) {
    let dir = scratch(name);
    let path = dir.join("key.json").to_string_lossy().into_owned();
    let out = mfa_gate(&["keygen", "--kid", "set-test", "--out", &path]);
    assert!(out.status.success(), "{}", stderr(&out));
    (path, serde_json::from_str(&stdout(&out)).unwrap())
}

/// `mfa-gate set --key KEY ARGS... --push URL`.
fn push(key: &str, args: &[&str], url: &str) -> std::process::Output {
    mfa_gate(&[&["set", "--key", key], args, &["--push", url]].concat())
}

fn set(args: &[&str]) -> String {
    let out = mfa_gate(&[&["set"], args].concat());
    assert!(out.status.success(), "set {args:?}: {}", stderr(&out));
    stdout(&out).trim().to_string()
}

#[test]
fn set_mints_each_event_with_each_subject() {
    let (key, jwks) = key("set-mint");
    for (event, base) in [
        ("session-revoked", CAEP),
        ("credential-change", CAEP),
        ("assurance-level-change", CAEP),
        ("device-compliance-change", CAEP),
        ("token-claims-change", CAEP),
        ("account-disabled", RISC),
        ("account-purged", RISC),
        ("sessions-revoked", RISC),
        ("account-credential-change-required", RISC),
    ] {
        let token = set(&[
            "--key",
            &key,
            "--event",
            event,
            "--iss-sub",
            "pat@example.com",
        ]);
        let (jwt, _) = assert_set(&token, &jwks, &format!("{base}{event}"));
        assert_eq!(jwt.header["kid"], "set-test");
        assert_eq!(
            jwt.claims["sub_id"],
            json!({"format": "iss_sub", "iss": ISSUER, "sub": "pat@example.com"})
        );
    }
    let uri = format!("{CAEP}session-revoked");
    let complex = set(&[
        "--key",
        &key,
        "--event",
        &uri,
        "--email",
        "pat@example.com",
        "--session",
        "s-1",
        "--txn",
        "t-1",
        "--reason-admin",
        "prompt bombing",
        "--initiating-entity",
        "policy",
        "--event-timestamp",
        "1700000000",
    ]);
    let (jwt, event) = assert_set(&complex, &jwks, &uri);
    assert_eq!(
        jwt.claims["sub_id"],
        json!({"format": "complex",
            "user": {"format": "email", "email": "pat@example.com"},
            "session": {"format": "opaque", "id": "s-1"}})
    );
    assert_eq!(jwt.claims["txn"], "t-1");
    assert_eq!(
        event,
        json!({"event_timestamp": 1_700_000_000u64, "initiating_entity": "policy",
            "reason_admin": {"en": "prompt bombing"}})
    );
    let opaque = set(&[
        "--key",
        &key,
        "--event",
        "credential-change",
        "--opaque",
        "u-7",
        "--member",
        "change_type=revoke",
        "--member",
        "credential_type=fido2-roaming",
        "--aud",
        "a1",
        "--aud",
        "a2",
        "--iss",
        "https://other.example",
        "--jti",
        "j-9",
    ]);
    let claims = decode(&opaque).claims;
    assert_eq!(claims["sub_id"], json!({"format": "opaque", "id": "u-7"}));
    // aud is a set of values (RFC 7519 section 4.1.3): compared without order.
    let mut aud: Vec<&str> = claims["aud"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    aud.sort_unstable();
    assert_eq!(aud, ["a1", "a2"]);
    assert_eq!(claims["iss"], "https://other.example");
    assert_eq!(claims["jti"], "j-9");
    let event = &claims["events"][format!("{CAEP}credential-change")];
    assert_eq!(event["change_type"], "revoke");
    assert_eq!(event["credential_type"], "fido2-roaming");
}

#[test]
fn set_mints_logout_tokens() {
    let (key, jwks) = key("set-logout");
    let token = set(&[
        "--key",
        &key,
        "--event",
        "backchannel-logout",
        "--iss-sub",
        "pat@example.com",
        "--session",
        "s-2",
    ]);
    assert_eq!(decode(&token).header["typ"], "logout+jwt");
    let claims = verify_with_exp(&token, &jwks, ISSUER, AUDIENCE);
    assert_eq!(claims["sub"], "pat@example.com");
    assert_eq!(claims["sid"], "s-2");
    assert_eq!(claims["events"], json!({ LOGOUT_EVENT: {} }));
    assert!(claims.get("nonce").is_none());
    let sid_only = set(&[
        "--key",
        &key,
        "--event",
        "backchannel-logout",
        "--session",
        "s-3",
    ]);
    assert!(decode(&sid_only).claims.get("sub").is_none());
}

#[test]
fn set_refuses_what_the_specs_do_not_allow() {
    let (key, _) = key("set-errors");
    let refused: [(&[&str], &str); 7] = [
        (&["--event", "session-revoked"], "needs a subject"),
        (
            &["--event", "frobnicated", "--email", "a@b"],
            "unknown event",
        ),
        (&["--event", "backchannel-logout"], "needs a sub or a sid"),
        (
            &[
                "--event",
                "account-disabled",
                "--email",
                "a@b",
                "--reason-admin",
                "x",
            ],
            "RISC defines no reason_admin",
        ),
        (
            &[
                "--event",
                "device-compliance-change",
                "--email",
                "a@b",
                "--member",
                "current_status=broken",
            ],
            "current_status must be one of",
        ),
        (
            &[
                "--event",
                "session-revoked",
                "--email",
                "a@b",
                "--opaque",
                "x",
            ],
            "give one of",
        ),
        (
            &[
                "--event",
                "session-revoked",
                "--email",
                "a@b",
                "--push",
                "https://x/",
            ],
            "only http://",
        ),
    ];
    for (args, needle) in refused {
        assert_one_line_error(&mfa_gate(&[&["set", "--key", &key], args].concat()), needle);
    }
}

#[test]
fn set_push_prints_the_receivers_answer_and_exits_by_it() {
    let (key, jwks) = key("set-push");
    let accepting = Receiver::start(202, "");
    let revoked = [
        "--event",
        "session-revoked",
        "--iss-sub",
        "pat@example.com",
        "--bearer",
        "b-1",
    ];
    let out = push(&key, &revoked, &accepting.url("/events"));
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    let mut lines = printed.lines();
    let token = lines.next().unwrap();
    assert_eq!(lines.next(), Some("HTTP 202"));
    let request = &accepting.wait_for(1)[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/events");
    assert_eq!(
        request.header("content-type"),
        Some("application/secevent+jwt")
    );
    assert_eq!(request.header("accept"), Some("application/json"));
    assert_eq!(request.header("authorization"), Some("Bearer b-1"));
    assert_eq!(request.body, token);
    assert_set(&request.body, &jwks, &format!("{CAEP}session-revoked"));

    let body = r#"{"err":"invalid_key","description":"unknown kid"}"#;
    let refusing = Receiver::start(400, body);
    let purged = ["--event", "account-purged", "--email", "a@b"];
    let out = push(&key, &purged, &refusing.url("/events"));
    assert_one_line_error(&out, "answered 400 (expected 202)");
    assert!(
        stdout(&out).contains(&format!("HTTP 400\n{body}")),
        "{}",
        stdout(&out)
    );
    assert!(refusing.wait_for(1)[0].header("authorization").is_none());

    let logout = Receiver::start(200, "");
    let logout_args = ["--event", "backchannel-logout", "--session", "s-4"];
    let out = push(&key, &logout_args, &logout.url("/bcl"));
    assert!(out.status.success(), "{}", stderr(&out));
    let request = &logout.wait_for(1)[0];
    assert_eq!(
        request.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let token = stdout(&out).lines().next().unwrap().to_string();
    assert_eq!(request.body, format!("logout_token={token}"));

    let closed = signals::free_port();
    assert_one_line_error(
        &push(&key, &purged, &format!("http://127.0.0.1:{closed}/events")),
        "cannot connect",
    );
}
