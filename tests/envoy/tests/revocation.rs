//! Revocation in real Envoy: the demo IdP as a Shared Signals transmitter ends a session
//! (its Okta-shaped `DELETE /api/v1/users/<id>/sessions`) and every worker, and every
//! Envoy of a two-node fleet, refuses it; pushed (RFC 8935), polled (RFC 8936) and
//! back-channel logout; a rule's own `revoke`; bad Security Event Tokens refused with the
//! right `err` and never recorded; the transmitter down or answering garbage.
//!
//! The delays it measures are printed (`cargo test ... -- --nocapture` shows them).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

use jwt_simple::prelude::*;
use mfa_gate_envoy::revocation::{
    assert_session_revoked, end_sessions_at_idp, OKTA_API_TOKEN, POLL_BEARER, POLL_BEARER_ENV,
    PUSH_BEARER, PUSH_BEARER_ENV, PUSH_PATH,
};
use mfa_gate_envoy::{
    http_request, now_secs, Answer, Gateway, GatewayBuilder, KeyServer, Reply, DEMO_AUDIENCE,
    DEMO_ISSUER,
};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Where the gateway takes logout tokens (pushed SETs: `PUSH_PATH`).
const LOGOUT_PATH: &str = "/.mfa-gate/backchannel-logout";
/// The cluster polls go to when a test scripts the transmitter.
const SCRIPTED_CLUSTER: &str = "scripted_transmitter";
const SESSION_REVOKED: &str = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";

/// How the transmitter's events reach the gateway, and whose keys sign them.
#[derive(Clone)]
struct Setup {
    /// Push: the demo pushes every SET to the listener.
    push: bool,
    /// Poll: (stream path on the demo, interval seconds).
    poll: Option<(String, u64)>,
    /// Back-channel logout: the demo posts logout tokens to the listener.
    logout: bool,
    /// The transmitter's keys inline (else the demo's `/ssf/jwks.json`).
    inline_jwks: Option<Value>,
    /// Polls go to [`SCRIPTED_CLUSTER`] at this port instead of the demo.
    scripted_poll_port: Option<u16>,
    /// The demo streams (`--ssf-stream`).
    streams: Vec<String>,
    /// Extra routes, first in the list.
    routes: Vec<Value>,
}

impl Setup {
    fn push() -> Setup {
        Setup {
            push: true,
            poll: None,
            logout: false,
            inline_jwks: None,
            scripted_poll_port: None,
            streams: Vec::new(),
            routes: Vec::new(),
        }
    }

    fn poll(stream_path: &str, interval_secs: u64) -> Setup {
        Setup {
            push: false,
            poll: Some((stream_path.to_string(), interval_secs)),
            ..Setup::push()
        }
    }
}

/// The plugin's `revocation` section for `setup`; `authority` is the demo IdP's.
fn revocation_section(setup: &Setup, authority: &str) -> Value {
    let mut transmitter = json!({
        "name": "demo",
        "issuer": DEMO_ISSUER,
        "audience": DEMO_AUDIENCE,
        "algorithms": ["ES256"],
    });
    match &setup.inline_jwks {
        Some(jwks) => transmitter["jwks"] = jwks.clone(),
        None => {
            transmitter["remote_jwks"] = json!({
                "cluster": "demo_idp",
                "path": "/ssf/jwks.json",
                "authority": authority,
                "timeout_ms": 1000,
            })
        }
    }
    if setup.push {
        transmitter["push"] = json!({"path": PUSH_PATH, "bearer_env": PUSH_BEARER_ENV});
    }
    if let Some((path, interval)) = &setup.poll {
        let cluster = if setup.scripted_poll_port.is_some() {
            SCRIPTED_CLUSTER
        } else {
            "demo_idp"
        };
        transmitter["poll"] = json!({
            "cluster": cluster,
            "path": path,
            "authority": authority,
            "interval_secs": interval,
            "timeout_ms": 500,
            "bearer_env": POLL_BEARER_ENV,
        });
    }
    // Without push or poll there is no transmitter (back-channel logout alone).
    let transmitters = if setup.push || setup.poll.is_some() {
        vec![transmitter]
    } else {
        Vec::new()
    };
    let mut section = json!({
        "max_token_lifetime_secs": 3600,
        "transmitters": transmitters,
    });
    if setup.logout {
        section["backchannel_logout"] = json!({"path": LOGOUT_PATH, "audiences": [DEMO_AUDIENCE]});
    }
    section
}

/// envoy/envoy.yaml with revocation as `setup` says, the demo IdP a transmitter.
fn builder(setup: &Setup) -> GatewayBuilder {
    let plugin = setup.clone();
    let mut demo_args = vec![
        "--okta-api-token".to_string(),
        OKTA_API_TOKEN.to_string(),
        "--ssf-bearer".to_string(),
        POLL_BEARER.to_string(),
    ];
    for stream in &setup.streams {
        demo_args.extend(["--ssf-stream".to_string(), stream.clone()]);
    }
    if setup.push {
        demo_args.extend([
            "--ssf-push-url".to_string(),
            format!("http://127.0.0.1:{{listener}}{PUSH_PATH}"),
            "--ssf-push-bearer".to_string(),
            PUSH_BEARER.to_string(),
        ]);
    }
    if setup.logout {
        demo_args.extend([
            "--backchannel-logout-url".to_string(),
            format!("http://127.0.0.1:{{listener}}{LOGOUT_PATH}"),
        ]);
    }
    let demo_args: Vec<&str> = demo_args.iter().map(String::as_str).collect();
    let mut builder = GatewayBuilder::shipped("envoy/envoy.yaml")
        .plugin_config(move |c| {
            let authority = c["issuers"][0]["remote_jwks"]["authority"]
                .as_str()
                .unwrap()
                .to_string();
            c["revocation"] = revocation_section(&plugin, &authority);
            let routes = c["routes"].as_array_mut().unwrap();
            for (i, route) in plugin.routes.iter().enumerate() {
                routes.insert(i, route.clone());
            }
        })
        // The push and logout endpoints read the body before the headers go on: Envoy
        // hands a wasm filter the body of a request whose headers it paused only with this.
        .plugin_option("allow_on_headers_stop_iteration", true.into())
        .envoy_env(PUSH_BEARER_ENV, PUSH_BEARER)
        .envoy_env(POLL_BEARER_ENV, POLL_BEARER)
        .host_env_keys(&[PUSH_BEARER_ENV, POLL_BEARER_ENV])
        .demo_args(&demo_args);
    if let Some(port) = setup.scripted_poll_port {
        builder = builder.loopback_cluster(SCRIPTED_CLUSTER, port);
    }
    builder
}

fn metric(gateway: &Gateway, name: &str) -> u64 {
    gateway.counter(&format!("wasmcustom.mfa_gate.{name}"))
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn profile(gateway: &Gateway, token: &str) -> Answer {
    gateway.get("/api/profile", &[("authorization", &bearer(token))])
}

/// How many sessions the demo IdP's session API ended in its last call (its log says).
fn sessions_ended(gateway: &Gateway) -> u64 {
    let log = std::fs::read_to_string(gateway.scratch().path().join("demo.log")).unwrap();
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains("session API ended"))
        .unwrap_or_else(|| panic!("the demo logged no ended sessions: {log}"));
    line.split("ended ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot read {line:?}"))
}

/// The claims of a JWT (unverified: the test's own tokens).
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&Base64UrlSafeNoPadding::decode_to_vec(payload, None).unwrap()).unwrap()
}

/// Every decision record in Envoy's log (`... decision {json}`).
fn decisions(gateway: &Gateway) -> Vec<Value> {
    gateway
        .envoy_log()
        .lines()
        .filter_map(|l| l.split_once("] decision ").map(|(_, json)| json))
        .filter_map(|json| serde_json::from_str(json).ok())
        .collect()
}

/// The `revocation` member of the last decision record with reason `session_revoked`.
fn last_revocation_hit(gateway: &Gateway) -> Value {
    let records = decisions(gateway);
    let hit = records
        .iter()
        .rev()
        .find(|r| r.to_string().contains("session_revoked"))
        .unwrap_or_else(|| panic!("no session_revoked record\n{}", gateway.log_tail()));
    hit["revocation"].clone()
}

/// The Envoy threads that wrote decision records.
fn deciding_threads(gateway: &Gateway) -> BTreeSet<String> {
    gateway
        .envoy_log()
        .lines()
        .filter(|l| l.contains("] decision {"))
        .filter_map(|l| l.split("][").nth(1).map(str::to_string))
        .collect()
}

/// Sends `token` to `/api/profile` until both workers have decided a request (each
/// worker's VM then has the session in its cache); every answer must be 200.
fn warm_both_workers(gateway: &Gateway, token: &str) {
    for _ in 0..60 {
        let answer = profile(gateway, token);
        assert_eq!(answer.status, 200, "warming: {}", answer.text());
        if deciding_threads(gateway).len() >= 2 {
            return;
        }
    }
    panic!("60 requests never reached both workers");
}

/// `n` requests with `token`: every one is refused as revoked, by both workers.
fn assert_refused_by_every_worker(gateway: &Gateway, token: &str, n: usize) {
    let threads_before = deciding_threads(gateway).len();
    for i in 0..n {
        assert_session_revoked(&profile(gateway, token), &format!("request {i}"));
    }
    assert!(threads_before >= 2, "both workers were warmed");
    let revoked_threads: BTreeSet<String> = gateway
        .envoy_log()
        .lines()
        .filter(|l| l.contains("] decision {") && l.contains("session_revoked"))
        .filter_map(|l| l.split("][").nth(1).map(str::to_string))
        .collect();
    assert_eq!(
        revoked_threads.len(),
        2,
        "both workers refused the revoked session: {revoked_threads:?}"
    );
}

/// Waits (up to `limit`) until `token` is refused as revoked; the time it took.
fn time_until_refused(gateway: &Gateway, token: &str, since: Instant, limit: Duration) -> Duration {
    loop {
        let answer = profile(gateway, token);
        if answer.status == 401 {
            assert_session_revoked(&answer, "after the revocation");
            return since.elapsed();
        }
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert!(
            since.elapsed() < limit,
            "not refused within {limit:?}\n{}",
            gateway.log_tail()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_pushed_session_revoked_is_enforced_by_every_worker_on_the_next_request() {
    let gateway = builder(&Setup::push()).concurrency(2).start();
    let token = gateway.token("push");
    assert!(
        claims_of(&token)["sid"].is_string(),
        "demo tokens carry a sid"
    );
    warm_both_workers(&gateway, &token);
    assert_eq!(metric(&gateway, "revocation.event.accepted"), 0);

    let ended = Instant::now();
    end_sessions_at_idp(gateway.idp_port, "push");
    // The demo's start minted tokens too: one SET per session of the user.
    let sessions = sessions_ended(&gateway);
    assert!(sessions >= 1);
    gateway.wait_until("the pushed SETs accepted", |g| {
        metric(g, "revocation.event.accepted") >= sessions
    });
    let push_delay = ended.elapsed();
    println!(
        "push: DELETE at the IdP to its {sessions} SETs accepted by the gateway: {push_delay:?}"
    );

    // The very next requests, on both workers (their caches held the session).
    assert_refused_by_every_worker(&gateway, &token, 24);
    assert_eq!(metric(&gateway, "revocation.event.accepted"), sessions);
    assert_eq!(metric(&gateway, "revocation.event.rejected"), 0);
    assert!(metric(&gateway, "revocation.hit") >= 24);
    assert_eq!(metric(&gateway, "reason.session_revoked"), 24);
    let hit = last_revocation_hit(&gateway);
    assert_eq!(hit["entry"], "session", "{hit}");
    assert_eq!(hit["source"], "push", "{hit}");
    assert_eq!(hit["effect"], "revoke", "{hit}");

    // Signing in again: a new session (new sid, later iat) is let in.
    std::thread::sleep(Duration::from_millis(1100));
    let fresh = gateway.token("push");
    assert_ne!(claims_of(&fresh)["sid"], claims_of(&token)["sid"]);
    for _ in 0..6 {
        let answer = profile(&gateway, &fresh);
        assert_eq!(answer.status, 200, "a new session: {}", answer.text());
    }
    gateway.assert_no_wasm_failure();
}

#[test]
fn a_polled_session_revoked_is_enforced_within_one_poll_interval() {
    let interval = 1;
    let gateway = builder(&Setup::poll("/ssf/poll", interval))
        .concurrency(2)
        .start();
    gateway.wait_until("a first poll", |g| {
        metric(g, "revocation.poll.success") >= 1
    });
    let token = gateway.token("push");
    warm_both_workers(&gateway, &token);

    let ended = Instant::now();
    end_sessions_at_idp(gateway.idp_port, "push");
    let limit = Duration::from_millis(interval * 1000 + 1500);
    let delay = time_until_refused(&gateway, &token, ended, Duration::from_secs(10));
    println!("poll (interval {interval} s): DELETE at the IdP to the first refusal: {delay:?}");
    assert!(delay < limit, "enforced after {delay:?}, over {limit:?}");
    assert_refused_by_every_worker(&gateway, &token, 20);
    let sessions = sessions_ended(&gateway);
    gateway.wait_until("every SET polled", |g| {
        metric(g, "revocation.event.accepted") == sessions
    });
    assert_eq!(last_revocation_hit(&gateway)["source"], "poll");
    assert_eq!(metric(&gateway, "revocation.poll.failure"), 0);
    gateway.assert_no_wasm_failure();
}

#[test]
fn a_backchannel_logout_ends_the_session_and_a_form_with_two_tokens_is_refused() {
    let setup = Setup {
        push: false,
        logout: true,
        ..Setup::push()
    };
    let gateway = builder(&setup).start();
    let token = gateway.token("otp");
    assert_eq!(profile(&gateway, &token).status, 200);

    end_sessions_at_idp(gateway.idp_port, "otp");
    let sessions = sessions_ended(&gateway);
    gateway.wait_until("the logout tokens accepted", |g| {
        metric(g, "revocation.event.accepted") >= sessions
    });
    assert_session_revoked(&profile(&gateway, &token), "logged out");
    let hit = last_revocation_hit(&gateway);
    assert_eq!(hit["source"], "backchannel_logout", "{hit}");
    assert_eq!(hit["entry"], "session", "{hit}");

    // A second logout token from the IdP, then both in one form: 400.
    let emitted = http_request(
        gateway.idp_port,
        "POST",
        "/ssf/emit",
        &[("content-type", "application/json")],
        json!({"event": "backchannel-logout", "user": "otp"})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(emitted.status, 200, "{}", emitted.text());
    let logout_token = emitted.json()["logout_token"].as_str().unwrap().to_string();
    let rejected = metric(&gateway, "revocation.event.rejected");
    let form = format!("logout_token={logout_token}&logout_token={logout_token}");
    let answer = gateway.request(
        "POST",
        LOGOUT_PATH,
        &[("content-type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    );
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert_eq!(metric(&gateway, "revocation.event.rejected"), rejected + 1);
    // Not a form at all: 400 too.
    let answer = gateway.request(
        "POST",
        LOGOUT_PATH,
        &[("content-type", "application/x-www-form-urlencoded")],
        b"nothing=here",
    );
    assert_eq!(answer.status, 400, "{}", answer.text());
    gateway.assert_no_wasm_failure();
}

#[test]
fn a_rules_revoke_ends_the_session_on_every_route_and_worker() {
    let setup = Setup {
        routes: vec![json!({
            "name": "keys",
            "match": {"path_prefix": "/admin/keys"},
            "require": {"level": "phishing_resistant"},
            "on_insufficient": "revoke"
        })],
        ..Setup::push()
    };
    let gateway = builder(&setup).concurrency(2).start();
    let token = gateway.token("push");
    warm_both_workers(&gateway, &token);

    let answer = gateway.get("/admin/keys", &[("authorization", &bearer(&token))]);
    assert_session_revoked(&answer, "a push session on /admin/keys");
    assert_eq!(metric(&gateway, "decision.revoke"), 1);
    let hit = decisions(&gateway)
        .into_iter()
        .rev()
        .find(|r| r["decision"] == "revoke")
        .unwrap_or_else(|| panic!("no revoke record\n{}", gateway.log_tail()));
    assert_eq!(hit["status"], 401, "{hit}");

    assert_refused_by_every_worker(&gateway, &token, 20);
    assert_eq!(last_revocation_hit(&gateway)["source"], "gate");
    let fresh = gateway.token("push");
    let answer = profile(&gateway, &fresh);
    assert_eq!(answer.status, 200, "a fresh session: {}", answer.text());
    gateway.assert_no_wasm_failure();
}

/// An ES256 key of the test's own, its public JWKS, and SETs it signs.
struct Signer {
    key: ES256KeyPair,
    jwks: Value,
}

impl Signer {
    fn new(kid: &str) -> Signer {
        let key = ES256KeyPair::generate().with_key_id(kid);
        let mut jwk: Value = serde_json::from_str(&key.public_key().to_jwk()).unwrap();
        jwk["kid"] = json!(kid);
        jwk["use"] = json!("sig");
        jwk["alg"] = json!("ES256");
        Signer {
            key,
            jwks: json!({"keys": [jwk]}),
        }
    }

    /// `payload` exactly as given (nothing added), header `typ`.
    fn sign(&self, typ: &str, payload: &Value) -> String {
        let mut claims = Claims::with_custom_claims(
            payload.as_object().unwrap().clone(),
            jwt_simple::prelude::Duration::from_secs(0),
        );
        claims.issued_at = None;
        claims.expires_at = None;
        claims.invalid_before = None;
        let options = HeaderOptions {
            signature_type: Some(typ.to_string()),
            ..Default::default()
        };
        self.key.sign_with_options(claims, &options).unwrap()
    }

    /// `payload` signed, `with` one claim set to `value`.
    fn sign_with(&self, typ: &str, payload: &Value, name: &str, value: Value) -> String {
        let mut payload = payload.clone();
        payload[name] = value;
        self.sign(typ, &payload)
    }

    /// `payload` signed, without these claims.
    fn sign_without(&self, typ: &str, payload: &Value, names: &[&str]) -> String {
        let mut payload = payload.clone();
        for name in names {
            payload.as_object_mut().unwrap().remove(*name);
        }
        self.sign(typ, &payload)
    }

    /// `payload` "MACed" HS256 with this key's public JWK as the secret (the algorithm
    /// confusion attack).
    fn hs256_with_public_key(&self, typ: &str, payload: &Value) -> String {
        let kid = self.jwks["keys"][0]["kid"].clone();
        let input = signing_input(&json!({"alg": "HS256", "typ": typ, "kid": kid}), payload);
        let secret = self.jwks["keys"][0].to_string();
        let tag = hmac_sha256::HMAC::mac(input.as_bytes(), secret.as_bytes());
        format!("{input}.{}", b64(&tag))
    }
}

/// `header.payload`, base64url.
fn signing_input(header: &Value, payload: &Value) -> String {
    format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(payload.to_string().as_bytes())
    )
}

/// `payload` unsigned (`alg: none`, empty signature).
fn alg_none(typ: &str, payload: &Value) -> String {
    format!(
        "{}.",
        signing_input(&json!({"alg": "none", "typ": typ}), payload)
    )
}

/// `token` with one signature byte changed.
fn tampered(token: &str) -> String {
    let dot = token.rfind('.').unwrap();
    let mut signature = Base64UrlSafeNoPadding::decode_to_vec(&token[dot + 1..], None).unwrap();
    signature[10] ^= 0x01;
    format!("{}.{}", &token[..dot], b64(&signature))
}

/// After a set of bad tokens: none accepted, nothing recorded, `session` still let in.
fn assert_nothing_recorded(gateway: &Gateway, session: &str) {
    assert_eq!(
        metric(gateway, "revocation.event.accepted"),
        0,
        "0 accepted"
    );
    assert_eq!(metric(gateway, "revocation.entries_added"), 0);
    let answer = profile(gateway, session);
    assert_eq!(
        answer.status,
        200,
        "the session still passes: {}",
        answer.text()
    );
}

fn b64(bytes: &[u8]) -> String {
    Base64UrlSafeNoPadding::encode_to_string(bytes).unwrap()
}

/// A CAEP session-revoked SET for the session `sid` of `sub`.
fn session_revoked_set(sub: &str, sid: &str) -> Value {
    json!({
        "iss": DEMO_ISSUER,
        "aud": DEMO_AUDIENCE,
        "iat": now_secs(),
        "jti": format!("set-{sid}"),
        "sub_id": {"format": "complex",
                   "user": {"format": "iss_sub", "iss": DEMO_ISSUER, "sub": sub},
                   "session": {"format": "opaque", "id": sid}},
        "events": {SESSION_REVOKED: {"event_timestamp": now_secs()}},
    })
}

fn push(gateway: &Gateway, authorization: Option<&str>, method: &str, body: &str) -> Answer {
    let mut headers = vec![("content-type", "application/secevent+jwt")];
    if let Some(a) = authorization {
        headers.push(("authorization", a));
    }
    gateway.request(method, PUSH_PATH, &headers, body.as_bytes())
}

#[test]
fn bad_security_event_tokens_are_refused_and_none_is_recorded() {
    let signer = Signer::new("test-transmitter");
    let stranger = Signer::new("stranger");
    let setup = Setup {
        inline_jwks: Some(signer.jwks.clone()),
        ..Setup::push()
    };
    let gateway = builder(&setup).start();
    let token = gateway.token("push");
    let claims = claims_of(&token);
    let (sub, sid) = (
        claims["sub"].as_str().unwrap(),
        claims["sid"].as_str().unwrap(),
    );
    assert_eq!(profile(&gateway, &token).status, 200);
    let good = session_revoked_set(sub, sid);
    let valid = signer.sign("secevent+jwt", &good);

    // The endpoint itself: a bearer credential, POST only.
    let with_bearer = bearer(PUSH_BEARER);
    for (what, authorization) in [
        ("no credential", None),
        ("a wrong credential", Some("Bearer not-the-credential")),
        ("another scheme", Some("Basic cHVzaDpwdXNo")),
    ] {
        let answer = push(&gateway, authorization, "POST", &valid);
        assert_eq!(answer.status, 401, "{what}: {}", answer.text());
        assert!(
            answer
                .header("www-authenticate")
                .is_some_and(|w| w.starts_with("Bearer")),
            "{what}: {:?}",
            answer.headers
        );
    }
    let answer = push(&gateway, Some(&with_bearer), "GET", "");
    assert_eq!(answer.status, 405, "GET: {}", answer.text());

    // Each bad token: 400 with its err, counted, nothing recorded.
    let mut other_events = good.clone();
    other_events["events"]
        ["https://schemas.openid.net/secevent/risc/event-type/account-disabled"] = json!({});
    const TYP: &str = "secevent+jwt";
    let with = |name: &str, value: Value| signer.sign_with(TYP, &good, name, value);
    let cases: Vec<(&str, String, &str)> = vec![
        ("a tampered signature", tampered(&valid), "invalid_key"),
        (
            "a wrong iss",
            with("iss", json!("https://other.example")),
            "invalid_issuer",
        ),
        (
            "a wrong aud",
            with("aud", json!("someone-else")),
            "invalid_audience",
        ),
        ("typ JWT", signer.sign("JWT", &good), "invalid_request"),
        ("an unknown kid", stranger.sign(TYP, &good), "invalid_key"),
        (
            "two events",
            signer.sign(TYP, &other_events),
            "invalid_request",
        ),
        ("alg none", alg_none(TYP, &good), "invalid_key"),
        (
            "HS256 with the public key as secret",
            signer.hs256_with_public_key(TYP, &good),
            "invalid_key",
        ),
        (
            "an exp",
            with("exp", json!(now_secs() + 300)),
            "invalid_request",
        ),
        ("not a JWT", "not-a-token".to_string(), "invalid_request"),
    ];
    for (i, (what, set, err)) in cases.iter().enumerate() {
        let answer = push(&gateway, Some(&with_bearer), "POST", set);
        assert_eq!(answer.status, 400, "{what}: {}", answer.text());
        let body = answer.json();
        assert_eq!(body["err"], *err, "{what}: {body}");
        assert!(
            body["description"].as_str().is_some_and(|d| !d.is_empty()),
            "{what}: {body}"
        );
        assert_eq!(
            metric(&gateway, "revocation.event.rejected"),
            i as u64 + 1,
            "{what}"
        );
    }
    assert_nothing_recorded(&gateway, &token);

    // The valid one: 202, the session refused; again: 202, counted as replayed.
    let answer = push(&gateway, Some(&with_bearer), "POST", &valid);
    assert_eq!(answer.status, 202, "valid: {}", answer.text());
    assert_eq!(metric(&gateway, "revocation.event.accepted"), 1);
    assert_session_revoked(&profile(&gateway, &token), "after the valid SET");
    let answer = push(&gateway, Some(&with_bearer), "POST", &valid);
    assert_eq!(answer.status, 202, "redelivered: {}", answer.text());
    assert_eq!(metric(&gateway, "revocation.event.replayed"), 1);
    assert_eq!(metric(&gateway, "revocation.event.accepted"), 1);
    gateway.assert_no_wasm_failure();
}

#[test]
fn a_fleet_of_two_envoys_each_polling_its_stream_enforces_one_revocation() {
    let interval = 1;
    let streams = vec!["node-a".to_string(), "node-b".to_string()];
    let node_a = builder(&Setup {
        streams: streams.clone(),
        ..Setup::poll("/ssf/poll/node-a", interval)
    })
    .start();
    // Node b polls node a's IdP: its demo_idp cluster points there.
    let node_b = builder(&Setup {
        streams,
        ..Setup::poll("/ssf/poll/node-b", interval)
    })
    .idp_cluster_port(node_a.idp_port)
    .start();
    for node in [&node_a, &node_b] {
        node.wait_until("a first poll", |g| {
            metric(g, "revocation.poll.success") >= 1
        });
    }
    let token = node_a.token("push");
    assert_eq!(profile(&node_a, &token).status, 200);
    assert_eq!(profile(&node_b, &token).status, 200);

    let ended = Instant::now();
    end_sessions_at_idp(node_a.idp_port, "push");
    let limit = Duration::from_millis(interval * 1000 + 1500);
    let mut delays = Vec::new();
    for (name, node) in [("a", &node_a), ("b", &node_b)] {
        let delay = time_until_refused(node, &token, ended, Duration::from_secs(10));
        println!("fleet: node {name} refuses the session {delay:?} after the DELETE");
        delays.push(delay);
    }
    // Node b was checked after node a: its own delay is at most what was measured.
    for delay in &delays {
        assert!(*delay < limit, "enforced after {delay:?}, over {limit:?}");
    }
    let sessions = sessions_ended(&node_a);
    for node in [&node_a, &node_b] {
        node.wait_until("every SET polled", |g| {
            metric(g, "revocation.event.accepted") == sessions
        });
        assert_eq!(last_revocation_hit(node)["source"], "poll");
    }

    // The transmitter goes away: revocations stay, polls fail and back off.
    let mut node_a = node_a;
    node_a.stop_demo();
    let failures = metric(&node_b, "revocation.poll.failure");
    let window = Duration::from_secs(8);
    std::thread::sleep(window);
    for node in [&node_a, &node_b] {
        assert_session_revoked(&profile(node, &token), "the transmitter down");
    }
    let failed = metric(&node_b, "revocation.poll.failure") - failures;
    println!("fleet: transmitter down, node b polled {failed} times in {window:?} (interval {interval} s)");
    assert!(failed >= 1, "failed polls are counted");
    assert!(
        failed <= 4,
        "polls back off: {failed} in {window:?} with a {interval} s interval"
    );
    node_a.assert_no_wasm_failure();
    node_b.assert_no_wasm_failure();
}

#[test]
fn a_transmitter_answering_garbage_or_too_slowly_is_counted_and_backed_off_and_revocations_stay() {
    let interval = 1;
    let transmitter = KeyServer::start(Reply::json(200, &json!({"sets": {}})));
    let setup = Setup {
        push: true,
        scripted_poll_port: Some(transmitter.port()),
        ..Setup::poll("/ssf/poll", interval)
    };
    let gateway = builder(&setup).concurrency(2).start();
    let token = gateway.token("push");
    assert_eq!(profile(&gateway, &token).status, 200);
    end_sessions_at_idp(gateway.idp_port, "push");
    let sessions = sessions_ended(&gateway);
    gateway.wait_until("the pushed SETs accepted", |g| {
        metric(g, "revocation.event.accepted") >= sessions
    });
    assert_session_revoked(&profile(&gateway, &token), "pushed");

    let window = Duration::from_secs(6);
    let count_polls = |what: &str| {
        let (hits, failures) = (
            transmitter.hits(),
            metric(&gateway, "revocation.poll.failure"),
        );
        std::thread::sleep(window);
        let polls = transmitter.hits() - hits;
        let failed = metric(&gateway, "revocation.poll.failure") - failures;
        println!("transmitter {what}: {polls} polls ({failed} failed) in {window:?}, interval {interval} s");
        (polls, failed)
    };
    let (healthy, healthy_failures) = count_polls("healthy");
    assert!(healthy >= 3, "about one poll a second: {healthy}");
    assert_eq!(healthy_failures, 0);

    for (what, reply) in [
        (
            "answering garbage",
            Reply::text(200, "<html>maintenance</html>"),
        ),
        ("answering 503", Reply::text(503, "unavailable")),
        (
            "slower than the poll timeout (500 ms)",
            Reply::Delayed(
                Duration::from_millis(1500),
                Box::new(Reply::json(200, &json!({"sets": {}}))),
            ),
        ),
    ] {
        transmitter.set(reply);
        // One failure to start the back-off, then count.
        let before = metric(&gateway, "revocation.poll.failure");
        gateway.wait_until(&format!("{what}: a failed poll"), |g| {
            metric(g, "revocation.poll.failure") > before
        });
        let (polls, failed) = count_polls(what);
        assert!(failed >= 1, "{what}: failed polls counted");
        assert!(
            failed + 1 >= polls as u64,
            "{what}: every poll failed ({failed} of {polls})"
        );
        assert!(
            polls < healthy,
            "{what}: polls back off ({polls} vs {healthy})"
        );
        assert!(polls <= 3, "{what}: {polls} polls in {window:?}");
        assert_session_revoked(&profile(&gateway, &token), what);
        transmitter.set(Reply::json(200, &json!({"sets": {}})));
        let successes = metric(&gateway, "revocation.poll.success");
        let deadline = Instant::now() + Duration::from_secs(40);
        while metric(&gateway, "revocation.poll.success") == successes {
            assert!(Instant::now() < deadline, "{what}: polls never recovered");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    gateway.assert_no_wasm_failure();
}

#[test]
fn with_stop_iteration_allowed_a_body_waits_while_keys_are_fetched() {
    // The push endpoint needs allow_on_headers_stop_iteration; with it Envoy hands the
    // filter the body of a request whose headers wait for the issuer's keys. That body
    // must wait too: the request is not sent on before the decision.
    let key = mfa_gate_envoy::TestKey::generate("ES256", "k-slow");
    // No keys at start; the request's own fetch then takes 1.5 s.
    let keys = KeyServer::start(Reply::text(500, "not yet"));
    let gateway = builder(&Setup::push())
        .echo_upstream()
        .idp_cluster_port(keys.port())
        .start();
    gateway.wait_until("the first fetch failed", |g| {
        metric(g, "jwks_fetch.failure") >= 1
    });
    keys.set(Reply::Delayed(
        Duration::from_millis(1500),
        Box::new(Reply::json(200, &mfa_gate_envoy::jwks_of(&[&key]))),
    ));
    let echo = gateway.echo().unwrap();
    let password_only = key.demo_token("pat@example.com", &["pwd"]);
    let answer = gateway.request(
        "POST",
        "/admin/users",
        &[
            ("authorization", &bearer(&password_only)),
            ("content-type", "application/json"),
            ("accept", "application/json"),
        ],
        br#"{"role": "admin"}"#,
    );
    assert!(
        answer.status == 401 || answer.status == 403,
        "a password session on /admin while keys were fetched: {} {}",
        answer.status,
        answer.text()
    );
    assert_eq!(echo.requests(), 0, "nothing reached the upstream");
    // A session the rule admits, with a body, still reaches it whole.
    let passkey = key.demo_token("kim@example.com", &["pwd", "pop"]);
    let answer = gateway.request(
        "POST",
        "/api/profile",
        &[("authorization", &bearer(&passkey))],
        b"payload",
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["body"], "payload");
    gateway.assert_no_wasm_failure();
}

const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// A logout token's claims for session `sid` of `sub` at the demo issuer.
fn logout_claims(sub: &str, sid: &str) -> Value {
    json!({
        "iss": DEMO_ISSUER,
        "aud": DEMO_AUDIENCE,
        "iat": now_secs(),
        "exp": now_secs() + 120,
        "jti": format!("logout-{sid}"),
        "sub": sub,
        "sid": sid,
        "events": {LOGOUT_EVENT: {}},
    })
}

fn logout(gateway: &Gateway, token: &str) -> Answer {
    gateway.request(
        "POST",
        LOGOUT_PATH,
        &[("content-type", "application/x-www-form-urlencoded")],
        format!("logout_token={token}").as_bytes(),
    )
}

#[test]
fn bad_logout_tokens_are_refused_and_none_is_recorded() {
    // The issuer's keys are the test's own (served where the demo_idp cluster points),
    // so the test signs session tokens and logout tokens alike.
    let signer = Signer::new("issuer-key");
    let stranger = Signer::new("stranger");
    let keys = KeyServer::serving(&signer.jwks);
    let setup = Setup {
        push: false,
        logout: true,
        ..Setup::push()
    };
    let gateway = builder(&setup).idp_cluster_port(keys.port()).start();
    let (sub, sid) = ("pat@example.com", "sid-under-test");
    let session = signer.sign(
        "JWT",
        &json!({"iss": DEMO_ISSUER, "aud": DEMO_AUDIENCE, "sub": sub, "sid": sid,
                "amr": ["pwd", "pop"], "iat": now_secs(), "auth_time": now_secs(),
                "exp": now_secs() + 600}),
    );
    assert_eq!(profile(&gateway, &session).status, 200);

    const TYP: &str = "logout+jwt";
    let good = logout_claims(sub, sid);
    let valid = signer.sign(TYP, &good);
    let with = |name: &str, value: Value| signer.sign_with(TYP, &good, name, value);
    let without = |names: &[&str]| signer.sign_without(TYP, &good, names);
    let cases: Vec<(&str, String)> = vec![
        ("a tampered signature", tampered(&valid)),
        ("a wrong iss", with("iss", json!("https://other.example"))),
        ("a wrong aud", with("aud", json!("someone-else"))),
        ("typ JWT", signer.sign("JWT", &good)),
        ("the session token itself", session.clone()),
        ("an unknown kid", stranger.sign(TYP, &good)),
        ("alg none", alg_none(TYP, &good)),
        (
            "HS256 with the public key as secret",
            signer.hs256_with_public_key(TYP, &good),
        ),
        ("a nonce", with("nonce", json!("n-0S6_WzA2Mj"))),
        ("no events", without(&["events"])),
        ("no exp", without(&["exp"])),
        ("neither sub nor sid", without(&["sub", "sid"])),
    ];
    for (i, (what, token)) in cases.iter().enumerate() {
        let answer = logout(&gateway, token);
        assert_eq!(answer.status, 400, "{what}: {}", answer.text());
        assert_eq!(
            metric(&gateway, "revocation.event.rejected"),
            i as u64 + 1,
            "{what}"
        );
    }
    assert_nothing_recorded(&gateway, &session);

    let answer = logout(&gateway, &valid);
    assert_eq!(answer.status, 200, "valid: {}", answer.text());
    assert_session_revoked(&profile(&gateway, &session), "logged out");
    let answer = logout(&gateway, &valid);
    assert_eq!(answer.status, 200, "redelivered: {}", answer.text());
    assert_eq!(metric(&gateway, "revocation.event.replayed"), 1);
    assert_eq!(metric(&gateway, "revocation.event.accepted"), 1);
    gateway.assert_no_wasm_failure();
}
