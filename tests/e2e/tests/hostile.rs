//! Hostile input through the compiled .wasm: every case is answered with the right 401/403
//! and a logged reason, and no worker VM ever traps (checked after every request by
//! `Gate::send`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::json;

fn gate() -> Gate {
    Gate::new(&config_with(json!({"profile":"okta"}), json!({})))
}

fn assert_401(gate: &mut Gate, token: &str, reason: &str) {
    let ex = gate.get_with_token("/orders", token);
    assert_eq!(ex.response.status, 401, "{reason}: {:?}", ex.response);
    let got = reasons(&ex);
    assert!(
        got.iter()
            .any(|r| r == reason || r.starts_with(&format!("{reason}:"))),
        "expected {reason}, got {got:?}"
    );
    assert!(ex.upstream_request.is_none());
    // The token never appears in any log line.
    if token.len() > 20 {
        for line in &ex.logs {
            assert!(
                !line.message.contains(token),
                "token logged: {}",
                line.message
            );
        }
    }
}

#[test]
fn malformed_tokens() {
    let mut g = gate();
    for junk in [
        "a",
        "a.b",
        "a.b.c",
        "....",
        "e30.e30.",
        "eyJhbGciOiJFZERTQSJ9.%%%.sig",
    ] {
        let ex = g.get_with_token("/orders", junk);
        assert_eq!(ex.response.status, 401, "{junk}");
        assert!(header(&ex, "www-authenticate")
            .unwrap()
            .contains("invalid_token"));
    }
}

#[test]
fn alg_none_is_rejected() {
    let mut g = gate();
    let payload = claims("mallory", &["pop"]).to_string();
    let token = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(payload.as_bytes())
    );
    assert_401(&mut g, &token, "alg_none");
}

#[test]
fn hs256_signed_with_the_public_key_is_rejected() {
    let mut g = gate();
    // HS/RS confusion: an HMAC "signature" keyed with public key bytes.
    let header = b64(br#"{"alg":"HS256","typ":"JWT","kid":"ed-1"}"#);
    let payload = b64(claims("mallory", &["pop"]).to_string().as_bytes());
    let token = format!("{header}.{payload}.{}", b64(&[7u8; 32]));
    assert_401(&mut g, &token, "algorithm_not_allowed");
}

#[test]
fn unknown_kid_with_inline_keys_is_rejected() {
    let mut g = gate();
    let stranger = Signer::new("ed-unknown");
    assert_401(
        &mut g,
        &stranger.token(&claims("x", &["pop"])),
        "unknown_kid",
    );
}

#[test]
fn time_claims_are_checked_with_60s_skew() {
    let mut g = gate();
    let mut c = claims("a", &["pop"]);
    c["exp"] = json!(NOW - 61);
    assert_401(&mut g, &KEY.token(&c), "expired");
    c["exp"] = json!(NOW - 59);
    assert_eq!(
        g.get_with_token("/orders", &KEY.token(&c)).response.status,
        200
    );
    let mut c = claims("a", &["pop"]);
    c["nbf"] = json!(NOW + 120);
    assert_401(&mut g, &KEY.token(&c), "not_yet_valid");
    let mut c = claims("a", &["pop"]);
    c.as_object_mut().unwrap().remove("exp");
    assert_401(&mut g, &KEY.token(&c), "missing_exp");
}

#[test]
fn wrong_issuer_is_rejected() {
    let mut g = gate();
    let mut c = claims("a", &["pop"]);
    c["iss"] = json!("https://evil.example");
    assert_401(&mut g, &KEY.token(&c), "unknown_issuer");
}

#[test]
fn oversized_token_is_rejected_before_decoding() {
    let mut g = gate();
    let mut c = claims("a", &["pop"]);
    c["pad"] = json!("x".repeat(64 * 1024));
    let token = KEY.token(&c);
    assert!(token.len() > 64 * 1024);
    assert_401(&mut g, &token, "token_too_large");
}

#[test]
fn amr_not_an_array_classifies_to_none_not_a_crash() {
    let mut g = gate();
    let mut c = claims("a", &[]);
    c["amr"] = json!("pop");
    let ex = g.get_with_token("/admin", &KEY.token(&c));
    assert_eq!(ex.response.status, 401);
    assert_eq!(decision(&ex)["decision"], "step_up");
    c["amr"] = json!({"nested": [1, 2, {"x": null}]});
    let ex = g.get_with_token("/admin", &KEY.token(&c));
    assert_eq!(ex.response.status, 401);
}

#[test]
fn duplicate_claim_keys_are_rejected() {
    let mut g = gate();
    let header = json!({"alg":"EdDSA","typ":"JWT","kid":"ed-1"}).to_string();
    let payload = format!(
        r#"{{"iss":"{ISS}","aud":"{AUD}","sub":"a","exp":{},"amr":["swk"],"amr":["pop"]}}"#,
        NOW + 3600
    );
    assert_401(&mut g, &KEY.sign_raw(&header, &payload), "malformed_token");
}

#[test]
fn non_utf8_authorization_and_cookie_bytes() {
    let mut g = gate();
    let ex = g.get("/orders", &[("authorization", b"Bearer \xff\xfe\xfd")]);
    assert_eq!(ex.response.status, 401);
    let ex = g.get(
        "/orders",
        &[("cookie", b"session=\xff\x00\xfe; other=\x80")],
    );
    assert_eq!(ex.response.status, 401);
    let ex = g.get("/orders", &[("authorization", b"\xc3\x28 \xa0\xa1")]);
    assert_eq!(ex.response.status, 401);
}

#[test]
fn hostile_paths_and_hosts_do_not_trap() {
    let mut g = gate();
    // Paths an upstream could serve as another one: refused before any rule.
    for path in [
        "/admin/../public",
        "//admin",
        "/admin%2Fx",
        "/\u{0}",
        "/%61dmin",
    ] {
        let ex = g.get(path, &[]);
        assert_eq!(ex.response.status, 400, "{path}");
    }
    // A plain path of another case is another route (case-sensitive by default).
    let ex = g.get("/ADMIN", &[]);
    assert_eq!(ex.response.status, 401, "/ADMIN");
}

#[test]
fn many_bad_requests_do_not_grow_memory() {
    let mut g = gate();
    for i in 0..50 {
        g.get_with_token("/orders", &format!("bad.{i}.token"));
    }
    let before = g.host.memory_sizes();
    for i in 0..2000 {
        g.get_with_token("/orders", &format!("bad.{i}.token"));
    }
    assert_eq!(g.host.memory_sizes(), before, "linear memory grew");
}
