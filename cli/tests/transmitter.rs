//! The demo identity provider as a Shared Signals transmitter, over real loopback HTTP:
//! discovery and keys, every event it emits (header, claims, signature with the served
//! JWKS), RFC 8936 poll semantics, RFC 8935 push to a recording receiver, the Okta-shaped
//! session API and the back-channel logout tokens it sends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

mod common;
#[path = "common/signals.rs"]
mod signals;

use serde_json::{json, Value};
use signals::{
    assert_set, decode, http, verify_with_exp, Demo, Receiver, AUDIENCE, CAEP, ISSUER,
    LOGOUT_EVENT, RISC,
};
use std::time::{Duration, Instant};

const POLL: &str = "poll-credential-1";
const OKTA: &str = "okta-api-token-1";

fn demo(name: &str, extra: &[&str]) -> Demo {
    let mut args = vec!["--ssf-bearer", POLL, "--okta-api-token", OKTA];
    args.extend_from_slice(extra);
    Demo::start(name, &args)
}

fn sets_of(answer: &Value) -> Vec<(String, String)> {
    let mut sets: Vec<(String, String)> = answer["sets"]
        .as_object()
        .unwrap_or_else(|| panic!("sets: {answer}"))
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    sets.sort();
    sets
}

fn poll_now(demo: &Demo, body: Value) -> Value {
    let mut body = body;
    body["returnImmediately"] = true.into();
    let answer = demo.poll("/ssf/poll", POLL, body);
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.json()
}

#[test]
fn discovery_names_the_issuer_jwks_and_delivery_methods() {
    let demo = demo("ssf-discovery", &[]);
    let answer = http("GET", &demo.url("/.well-known/ssf-configuration"), &[], "");
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let config = answer.json();
    assert_eq!(config["issuer"], ISSUER);
    assert_eq!(config["spec_version"], "1_0");
    assert_eq!(
        config["delivery_methods_supported"],
        json!(["urn:ietf:rfc:8935", "urn:ietf:rfc:8936"])
    );
    assert_eq!(config["jwks_uri"], demo.url("/ssf/jwks.json"));
    // The SET key is its own, and not in the session tokens' JWKS.
    let ssf = demo.get_json("/ssf/jwks.json");
    let session = demo.get_json("/.well-known/jwks.json");
    let kid = |jwks: &Value| jwks["keys"][0]["kid"].as_str().unwrap().to_string();
    assert_eq!(ssf["keys"].as_array().unwrap().len(), 1);
    assert_eq!(session["keys"].as_array().unwrap().len(), 1);
    assert!(kid(&ssf).starts_with("demo-ssf-"), "{ssf}");
    assert_ne!(kid(&ssf), kid(&session));
    let oidc = demo.get_json("/.well-known/openid-configuration");
    assert_eq!(oidc["backchannel_logout_supported"], true);
    assert_eq!(oidc["backchannel_logout_session_supported"], true);
    // The stream configuration (SSF 8.1.1.2) points the receiver at its poll endpoint.
    let streams = http(
        "GET",
        config["configuration_endpoint"].as_str().unwrap(),
        &[("authorization", &format!("Bearer {POLL}"))],
        "",
    );
    assert_eq!(streams.status, 200, "{}", streams.body);
    let streams = streams.json();
    assert_eq!(streams[0]["iss"], ISSUER);
    assert_eq!(streams[0]["aud"], AUDIENCE);
    assert_eq!(streams[0]["delivery"]["method"], "urn:ietf:rfc:8936");
    assert_eq!(
        streams[0]["delivery"]["endpoint_url"],
        demo.url("/ssf/poll/default")
    );
    let refused = http("GET", &demo.url("/ssf/stream"), &[], "");
    assert_eq!(refused.status, 401);
}

#[test]
fn each_sign_in_gets_its_own_sid() {
    let demo = demo("ssf-sid", &[]);
    let first = decode(&demo.token("push")).claims;
    let second = decode(&demo.token("push")).claims;
    let sid = |c: &Value| c["sid"].as_str().unwrap().to_string();
    assert_eq!(sid(&first).len(), 32, "{first}");
    assert_ne!(sid(&first), sid(&second));
    // The tokens the demo prints carry one too.
    let printed = demo.printed["cases"][0]["headers"][0][1].as_str().unwrap();
    let token = printed.strip_prefix("Bearer ").unwrap();
    assert!(decode(token).claims["sid"].is_string());
}

#[test]
fn every_event_type_is_a_valid_set_for_each_subject_format() {
    let demo = demo("ssf-events", &[]);
    let jwks = demo.get_json("/ssf/jwks.json");
    let sid = decode(&demo.token("otp")).claims["sid"]
        .as_str()
        .unwrap()
        .to_string();
    let cases: [(&str, &str, &[&str]); 9] = [
        ("session-revoked", CAEP, &[]),
        ("token-claims-change", CAEP, &["claims"]),
        (
            "credential-change",
            CAEP,
            &["credential_type", "change_type"],
        ),
        (
            "assurance-level-change",
            CAEP,
            &["namespace", "current_level"],
        ),
        (
            "device-compliance-change",
            CAEP,
            &["previous_status", "current_status"],
        ),
        ("account-credential-change-required", RISC, &[]),
        ("account-purged", RISC, &[]),
        ("account-disabled", RISC, &[]),
        ("sessions-revoked", RISC, &[]),
    ];
    for (name, base, members) in cases {
        let uri = format!("{base}{name}");
        let emitted = demo.emit_ok(json!({"event": name, "user": "otp", "subject": "iss_sub"}));
        assert_eq!(emitted["event"], uri);
        let (jwt, event) = assert_set(emitted["set"].as_str().unwrap(), &jwks, &uri);
        assert_eq!(jwt.claims["jti"], emitted["jti"]);
        assert_eq!(
            jwt.claims["sub_id"],
            json!({"format": "iss_sub", "iss": ISSUER, "sub": "otto@example.com"})
        );
        for member in members {
            assert!(event.get(*member).is_some(), "{name}: {member} in {event}");
        }
        // CAEP events carry event_timestamp (CAEP 1.0 section 2); RISC defines none.
        assert_eq!(
            event.get("event_timestamp").is_some(),
            base == CAEP,
            "{event}"
        );
    }
    let subjects = [
        (
            "email",
            json!({"format": "email", "email": "otto@example.com"}),
        ),
        (
            "opaque",
            json!({"format": "opaque", "id": "otto@example.com"}),
        ),
        (
            "complex",
            json!({"format": "complex",
                "user": {"format": "iss_sub", "iss": ISSUER, "sub": "otto@example.com"},
                "session": {"format": "opaque", "id": sid}}),
        ),
    ];
    for (format, expected) in subjects {
        let emitted = demo.emit_ok(json!({"event": "session-revoked", "user": "otp",
            "subject": format, "reason_admin": "test", "initiating_entity": "policy"}));
        let (jwt, event) = assert_set(
            emitted["set"].as_str().unwrap(),
            &jwks,
            &format!("{CAEP}session-revoked"),
        );
        assert_eq!(jwt.claims["sub_id"], expected, "{format}");
        assert_eq!(event["reason_admin"], json!({"en": "test"}));
        assert_eq!(event["initiating_entity"], "policy");
    }
    // Members are checked against the event's definition.
    let bad = demo.emit(json!({"event": "credential-change", "user": "otp",
        "members": {"change_type": "renamed"}}));
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body.contains("change_type"), "{}", bad.body);
    assert_eq!(
        demo.emit(json!({"event": "account-disabled", "user": "otp", "reason_admin": "x"}))
            .status,
        400
    );
    assert_eq!(
        demo.emit(json!({"event": "nope", "user": "otp"})).status,
        400
    );
    assert_eq!(
        demo.emit(json!({"event": "session-revoked", "user": "nobody"}))
            .status,
        404
    );
}

#[test]
fn poll_redelivers_until_acknowledged_and_honours_max_events() {
    let demo = demo("ssf-poll", &[]);
    assert_eq!(sets_of(&poll_now(&demo, json!({}))), vec![]);
    let jtis: Vec<String> = (0..3)
        .map(|_| {
            demo.emit_ok(json!({"event": "account-disabled", "user": "push"}))["jti"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let first = poll_now(&demo, json!({"maxEvents": 2}));
    let got = sets_of(&first);
    assert_eq!(got.len(), 2);
    assert_eq!(first["moreAvailable"], true);
    // The oldest first, each keyed by its jti.
    let mut oldest = jtis[..2].to_vec();
    oldest.sort();
    assert_eq!(
        got.iter().map(|(j, _)| j.clone()).collect::<Vec<_>>(),
        oldest
    );
    for (jti, set) in &got {
        assert_eq!(decode(set).claims["jti"], jti.as_str());
    }
    // Not acknowledged: delivered again.
    assert_eq!(sets_of(&poll_now(&demo, json!({"maxEvents": 2}))), got);
    // Acknowledged: dropped; the rest comes, and nothing more is available.
    let acked: Vec<&str> = got.iter().map(|(j, _)| j.as_str()).collect();
    let rest = poll_now(&demo, json!({"ack": acked}));
    assert_eq!(
        sets_of(&rest)
            .iter()
            .map(|(j, _)| j.clone())
            .collect::<Vec<_>>(),
        vec![jtis[2].clone()]
    );
    assert!(rest.get("moreAvailable").is_none(), "{rest}");
    // An acknowledge-only request (maxEvents 0) returns nothing, and empties the queue.
    let ack_only = poll_now(&demo, json!({"maxEvents": 0, "ack": [jtis[2]]}));
    assert_eq!(ack_only["sets"], json!({}));
    assert_eq!(poll_now(&demo, json!({}))["sets"], json!({}));
    // A SET the receiver reports an error for is dropped too.
    let refused = demo.emit_ok(json!({"event": "account-purged", "user": "push"}));
    let jti = refused["jti"].as_str().unwrap();
    let errs = json!({"setErrs": {jti: {"err": "invalid_audience", "description": "not for me"}}});
    assert_eq!(poll_now(&demo, errs)["sets"], json!({}));
    demo.wait_for_log("invalid_audience not for me");
}

#[test]
fn poll_refuses_bad_credentials_and_bad_requests() {
    let demo = demo("ssf-poll-auth", &[]);
    let wrong = demo.poll("/ssf/poll", "wrong", json!({}));
    assert_eq!(wrong.status, 401);
    assert!(wrong
        .header("www-authenticate")
        .is_some_and(|h| h.contains("invalid_token")));
    assert_eq!(wrong.json()["err"], "authentication_failed");
    let none = http("POST", &demo.url("/ssf/poll"), &[], "{}");
    assert_eq!(none.status, 401);
    let bad = demo.poll("/ssf/poll", POLL, json!({"maxEvents": "ten"}));
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["err"], "invalid_request");
    assert_eq!(demo.poll("/ssf/poll/other", POLL, json!({})).status, 404);
    // The credential is never logged.
    assert!(!demo.log().contains(POLL));
    // Without --ssf-bearer nothing is accepted.
    let open = Demo::start("ssf-poll-off", &[]);
    let off = open.poll("/ssf/poll", "", json!({}));
    assert_eq!(off.status, 401);
    assert!(off.body.contains("--ssf-bearer"), "{}", off.body);
}

#[test]
fn a_long_poll_returns_when_a_set_arrives() {
    let demo = demo("ssf-long-poll", &["--ssf-long-poll", "20"]);
    let url = demo.url("/ssf/emit");
    let started = Instant::now();
    let emitter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        http(
            "POST",
            &url,
            &[],
            &json!({"event": "account-disabled", "user": "push"}).to_string(),
        )
    });
    let answer = demo.poll("/ssf/poll", POLL, json!({}));
    let waited = started.elapsed();
    assert_eq!(emitter.join().unwrap().status, 200);
    assert_eq!(answer.status, 200);
    assert_eq!(sets_of(&answer.json()).len(), 1);
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_secs(15),
        "{waited:?}"
    );
}

#[test]
fn streams_are_independent_and_bounded() {
    let demo = demo(
        "ssf-streams",
        &[
            "--ssf-stream",
            "node-a",
            "--ssf-stream",
            "node-b",
            "--ssf-queue",
            "2",
        ],
    );
    let jtis: Vec<String> = (0..3)
        .map(|_| {
            demo.emit_ok(json!({"event": "account-purged", "user": "push"}))["jti"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    demo.wait_for_log("is full (2 SETs): dropped the oldest");
    let poll = |path: &str, body: Value| {
        let mut body = body;
        body["returnImmediately"] = true.into();
        let answer = demo.poll(path, POLL, body);
        assert_eq!(answer.status, 200, "{path}: {}", answer.body);
        sets_of(&answer.json())
            .into_iter()
            .map(|(j, _)| j)
            .collect::<Vec<_>>()
    };
    let mut newest = jtis[1..].to_vec();
    newest.sort();
    assert_eq!(
        poll("/ssf/poll/node-a", json!({})),
        newest,
        "the oldest dropped"
    );
    assert_eq!(poll("/ssf/poll", json!({})), newest, "/ssf/poll is node-a");
    // Acknowledging on node-a leaves node-b's copy.
    assert_eq!(
        poll("/ssf/poll/node-a", json!({"ack": newest})),
        Vec::<String>::new()
    );
    assert_eq!(poll("/ssf/poll/node-b", json!({})), newest);
}

#[test]
fn push_delivers_each_set_and_logs_the_receivers_answer() {
    let accepting = Receiver::start(202, "");
    let refusing = Receiver::start(
        400,
        r#"{"err":"invalid_audience","description":"wrong audience"}"#,
    );
    for (receiver, expect_log) in [
        (&accepting, "202 accepted"),
        (&refusing, "400 invalid_audience: wrong audience"),
    ] {
        let push_url = receiver.url("/.well-known/mfa-gate/events");
        let demo = demo(
            "ssf-push",
            &[
                "--ssf-push-url",
                &push_url,
                "--ssf-push-bearer",
                "push-secret-1",
            ],
        );
        let emitted = demo.emit_ok(json!({"event": "session-revoked", "user": "push"}));
        let got = receiver.wait_for(1);
        let request = got.last().unwrap();
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/.well-known/mfa-gate/events");
        assert_eq!(
            request.header("content-type"),
            Some("application/secevent+jwt")
        );
        assert_eq!(request.header("accept"), Some("application/json"));
        assert_eq!(
            request.header("authorization"),
            Some("Bearer push-secret-1")
        );
        assert_eq!(request.body, emitted["set"].as_str().unwrap());
        let jwks = demo.get_json("/ssf/jwks.json");
        assert_set(&request.body, &jwks, &format!("{CAEP}session-revoked"));
        let log = demo.wait_for_log(expect_log);
        assert!(!log.contains("push-secret-1"), "credentials are not logged");
    }
}

#[test]
fn the_session_api_ends_every_session_with_one_event_and_logout_token_each() {
    let logout = Receiver::start(200, "");
    let logout_url = logout.url("/backchannel-logout");
    let demo = demo("ssf-sessions", &["--backchannel-logout-url", &logout_url]);
    let path = demo.url("/api/v1/users/number-match/sessions");
    let ssws = format!("SSWS {OKTA}");
    // 401 without the token, with a wrong one, or with another scheme.
    for auth in [None, Some("SSWS nope"), Some(&*format!("Bearer {OKTA}"))] {
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", *a)).collect();
        let answer = http("DELETE", &path, &headers, "");
        assert_eq!(answer.status, 401, "{auth:?}");
        assert_eq!(answer.json()["errorCode"], "E0000011");
    }
    let unknown = http(
        "DELETE",
        &demo.url("/api/v1/users/nobody/sessions"),
        &[("authorization", &ssws)],
        "",
    );
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json()["errorCode"], "E0000007");
    assert_eq!(
        http("GET", &path, &[("authorization", &ssws)], "").status,
        405
    );
    // The demo printed tokens for number-match at start; two more sign-ins now.
    let _ = poll_now(&demo, json!({}));
    let tokens = [demo.token("number-match"), demo.token("number-match")];
    let sids: Vec<String> = tokens
        .iter()
        .map(|t| decode(t).claims["sid"].as_str().unwrap().to_string())
        .collect();
    let ended = http("DELETE", &path, &[("authorization", &ssws)], "");
    assert_eq!(ended.status, 204);
    assert!(ended.body.is_empty());
    let jwks = demo.get_json("/ssf/jwks.json");
    let polled = poll_now(&demo, json!({}));
    let mut revoked_sids = Vec::new();
    let mut txns = Vec::new();
    for (_, set) in sets_of(&polled) {
        let (jwt, event) = assert_set(&set, &jwks, &format!("{CAEP}session-revoked"));
        let subject = &jwt.claims["sub_id"];
        assert_eq!(subject["format"], "complex");
        assert_eq!(
            subject["user"],
            json!({"format": "iss_sub", "iss": ISSUER, "sub": "nia@example.com"})
        );
        assert_eq!(subject["session"]["format"], "opaque");
        revoked_sids.push(subject["session"]["id"].as_str().unwrap().to_string());
        txns.push(jwt.claims["txn"].clone());
        assert_eq!(event["initiating_entity"], "admin");
    }
    for sid in &sids {
        assert!(
            revoked_sids.contains(sid),
            "{sid} revoked: {revoked_sids:?}"
        );
    }
    assert!(txns.windows(2).all(|w| w[0] == w[1]), "one txn: {txns:?}");
    // One logout token per session, signed with the ID-token key.
    let session_jwks = demo.get_json("/.well-known/jwks.json");
    let posted = logout.wait_for(revoked_sids.len());
    let mut logged_out = Vec::new();
    for request in &posted {
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/backchannel-logout");
        assert_eq!(
            request.header("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        let form: Vec<(String, String)> = form_urlencoded::parse(request.body.as_bytes())
            .into_owned()
            .collect();
        assert_eq!(form.len(), 1);
        assert_eq!(form[0].0, "logout_token");
        let token = &form[0].1;
        let jwt = decode(token);
        assert_eq!(jwt.header["typ"], "logout+jwt");
        assert_eq!(jwt.header["kid"], session_jwks["keys"][0]["kid"]);
        let claims = verify_with_exp(token, &session_jwks, ISSUER, AUDIENCE);
        assert_eq!(claims["sub"], "nia@example.com");
        assert_eq!(claims["events"], json!({ LOGOUT_EVENT: {} }));
        assert!(claims.get("nonce").is_none(), "nonce is PROHIBITED");
        assert!(claims["jti"].is_string());
        let (iat, exp) = (
            claims["iat"].as_u64().unwrap(),
            claims["exp"].as_u64().unwrap(),
        );
        assert!(exp > iat && exp - iat <= 120, "short-lived: {claims}");
        logged_out.push(claims["sid"].as_str().unwrap().to_string());
    }
    logged_out.sort();
    revoked_sids.sort();
    assert_eq!(logged_out, revoked_sids);
    demo.wait_for_log("back-channel logout of nia@example.com session");
    // The sessions are gone: a second call ends none and emits nothing.
    let again = http("DELETE", &path, &[("authorization", &ssws)], "");
    assert_eq!(again.status, 204);
    let polled_ack: Vec<String> = sets_of(&polled).into_iter().map(|(j, _)| j).collect();
    assert_eq!(
        poll_now(&demo, json!({"ack": polled_ack}))["sets"],
        json!({})
    );
    assert!(!demo.log().contains(OKTA), "the API token is not logged");
}

#[test]
fn the_operator_can_send_a_logout_token() {
    let logout = Receiver::start(
        400,
        r#"{"error":"invalid_request","error_description":"unknown sid"}"#,
    );
    let demo = demo(
        "ssf-logout",
        &["--backchannel-logout-url", &logout.url("/bcl")],
    );
    let sid = decode(&demo.token("passkey")).claims["sid"]
        .as_str()
        .unwrap()
        .to_string();
    let emitted = demo.emit_ok(json!({"event": "backchannel-logout", "user": "passkey"}));
    assert_eq!(emitted["delivered"], true);
    let claims = verify_with_exp(
        emitted["logout_token"].as_str().unwrap(),
        &demo.get_json("/.well-known/jwks.json"),
        ISSUER,
        AUDIENCE,
    );
    assert_eq!(claims["sid"], sid.as_str());
    assert_eq!(claims["sub"], "kim@example.com");
    assert_eq!(logout.wait_for(1).len(), 1);
    demo.wait_for_log("400 invalid_request: unknown sid");
    // A sub-only logout token: every session of the user.
    let user_wide = demo
        .emit_ok(json!({"event": "backchannel-logout", "user": "passkey", "subject": "iss_sub"}));
    let claims = decode(user_wide["logout_token"].as_str().unwrap()).claims;
    assert!(claims.get("sid").is_none() && claims["sub"] == "kim@example.com");
}
