//! The whole sign-in natively: the engine's redirect, the callback, the code exchange's
//! answer, and the browser's next request, with every refusal on the way.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::callback::{callback, CallbackStep};
use super::exchange::{finish, Finished, TokenAnswer};
use super::state::{code_challenge, PendingSignIn};
use super::{ClientKey, SignInSecrets};
use crate::config::{self, Config};
use crate::engine::{
    self, ClaimsInput, NothingRevoked, Outcome, Request, SessionCache, SharedSignals,
};
use crate::events::fixture::{self, ISSUER, KEYS, NOW};
use crate::store::MemoryStore;
use crate::token::jwks::KeySet;
use serde_json::{json, Value};

const CLIENT: &str = "legacy-app";
const KEY: &[u8] = b"a state key of thirty-two bytes or more!";

fn config() -> Config {
    let text = json!({
        "issuers": [{
            "issuer": ISSUER,
            "audiences": [CLIENT],
            "jwks": serde_json::from_str::<Value>(&KEYS.jwks).unwrap(),
            "step_up": {
                "authorization_endpoint": "https://idp.example.com/authorize",
                "client_id": CLIENT,
                "redirect_uri": "https://app.example.com/.mfa-gate/callback"
            }
        }],
        "token_sources": [{"cookie": "app_session"}],
        "routes": [{
            "name": "admin",
            "match": {"path_prefix": "/admin"},
            "require": {"level": "phishing_resistant", "acr_values": "phr", "max_auth_age_secs": 600},
            "on_insufficient": "step_up",
            "browser": "redirect"
        }],
        "sign_in": {
            "issuer": ISSUER,
            "token_endpoint": {"cluster": "idp", "url": "https://idp.example.com/oauth/token"},
            "client_secret_env": "CLIENT_SECRET",
            "state_key_env": "STATE_KEY",
            "session_cookie": "app_session"
        }
    });
    let mut config = config::parse(text.to_string().as_bytes()).unwrap();
    let sign_in = config.sign_in.as_mut().unwrap();
    let env = |name: &str| match name {
        "CLIENT_SECRET" => Some("s3cret".to_string()),
        "STATE_KEY" => Some(String::from_utf8(KEY.to_vec()).unwrap()),
        _ => None,
    };
    sign_in.secrets = Some(SignInSecrets::read(sign_in, env).unwrap());
    config
}

fn keys(config: &Config) -> Vec<Option<KeySet>> {
    config
        .issuers
        .iter()
        .map(|i| i.initial_keys(None))
        .collect()
}

fn headers(list: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    [(":authority", "app.example.com"), (":scheme", "https")]
        .iter()
        .chain(list)
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect()
}

fn evaluate(
    config: &Config,
    view: &Vec<(String, Vec<u8>)>,
    cache: &mut SessionCache,
) -> engine::Evaluation {
    let signals = SharedSignals::new(MemoryStore::default());
    let request = Request {
        headers: view,
        claims: ClaimsInput::Token,
        now_secs: NOW,
        may_fetch_keys: false,
        revocations: &NothingRevoked,
        signals: &signals,
    };
    engine::evaluate(config, &request, &keys(config), cache)
}

fn header<'a>(reply: &'a crate::response::LocalReply, name: &str) -> Vec<&'a str> {
    reply
        .headers
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

fn query_param(url: &str, name: &str) -> String {
    let query = url.split_once('?').unwrap().1;
    let value = query
        .split('&')
        .find_map(|p| p.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("{name} missing in {url}"));
    String::from_utf8(crate::request::percent_decode(value.as_bytes()).into_owned()).unwrap()
}

/// The browser asks for /admin/users without a session: the redirect, its state, nonce and
/// challenge, and the state cookie's value.
struct Begun {
    state: String,
    nonce: String,
    challenge: String,
    cookie: String,
}

fn begin(config: &Config) -> Begun {
    let view = headers(&[
        (":method", "GET"),
        (":path", "/admin/users?tab=2"),
        ("accept", "text/html"),
    ]);
    let evaluation = evaluate(config, &view, &mut SessionCache::new(16));
    let Outcome::Reply(reply) = evaluation.outcome else {
        panic!("expected a redirect: {:?}", evaluation.outcome);
    };
    assert_eq!(reply.status, 302);
    let location = header(&reply, "location")[0];
    assert!(
        location.starts_with("https://idp.example.com/authorize?"),
        "{location}"
    );
    for (name, value) in [
        ("response_type", "code"),
        ("client_id", CLIENT),
        ("redirect_uri", "https://app.example.com/.mfa-gate/callback"),
        ("code_challenge_method", "S256"),
        ("acr_values", "phr"),
        ("max_age", "600"),
        ("prompt", "login"),
    ] {
        assert_eq!(query_param(location, name), value, "{name}");
    }
    let set_cookie = header(&reply, "set-cookie")[0];
    assert!(
        set_cookie.starts_with("mfa_gate_signin=v1."),
        "{set_cookie}"
    );
    for attribute in [
        "HttpOnly",
        "Secure",
        "SameSite=Lax",
        "Path=/",
        "Max-Age=600",
    ] {
        assert!(set_cookie.contains(attribute), "{attribute}: {set_cookie}");
    }
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    Begun {
        state: query_param(location, "state"),
        nonce: query_param(location, "nonce"),
        challenge: query_param(location, "code_challenge"),
        cookie,
    }
}

fn callback_view(state: &str, cookie: &str) -> Vec<(String, Vec<u8>)> {
    let path = format!("/.mfa-gate/callback?code=the-code&state={state}");
    headers(&[(":method", "GET"), (":path", &path), ("cookie", cookie)])
}

/// The callback with `view`, at `now`, with the fixture's 60 s of skew.
fn back(
    sign_in: &super::SignInConfig,
    view: &dyn crate::request::RequestView,
    store: &mut MemoryStore,
    now: u64,
) -> CallbackStep {
    callback(
        sign_in,
        sign_in.secrets.as_ref().unwrap(),
        view,
        store,
        now,
        60,
    )
}

fn refused(step: CallbackStep) -> String {
    match step {
        CallbackStep::Refuse { reason, reply } => {
            assert!(String::from_utf8_lossy(&reply.body).contains("Sign-in failed"));
            assert!(header(&reply, "set-cookie")[0].starts_with("mfa_gate_signin=;"));
            reason
        }
        CallbackStep::Exchange(_) => panic!("expected a refusal"),
    }
}

fn id_token(nonce: &str, amr: &[&str], auth_time: u64) -> String {
    fixture::mint(
        "JWT",
        &json!({"iss": ISSUER, "aud": CLIENT, "sub": "kim", "sid": "s-1", "iat": NOW, "exp": NOW + 3600,
                "auth_time": auth_time, "nonce": nonce, "amr": amr}),
    )
}

fn finish_with(
    config: &Config,
    pending: &PendingSignIn,
    answer: TokenAnswer<'_>,
    cache: &mut SessionCache,
) -> Finished {
    let sign_in = config.sign_in.as_ref().unwrap();
    let trust = engine::trust(config);
    finish(
        sign_in,
        sign_in.secrets.as_ref().unwrap(),
        pending,
        answer,
        &trust,
        &keys(config),
        cache,
        NOW + 5,
    )
}

#[test]
fn a_browser_signs_in_through_the_gateway_and_is_let_in() {
    let config = config();
    let sign_in = config.sign_in.as_ref().unwrap();
    let begun = begin(&config);
    let mut store = MemoryStore::default();
    let step = back(
        sign_in,
        &callback_view(&begun.state, &begun.cookie),
        &mut store,
        NOW + 5,
    );
    let CallbackStep::Exchange(call) = step else {
        panic!("expected the exchange: {step:?}");
    };
    let body = String::from_utf8(call.body.clone()).unwrap();
    let verifier = body
        .split('&')
        .find_map(|p| p.strip_prefix("code_verifier="))
        .unwrap();
    assert_eq!(code_challenge(verifier), begun.challenge, "PKCE S256");
    assert!(body.contains("grant_type=authorization_code") && body.contains("code=the-code"));
    assert!(body.contains("redirect_uri=https%3A%2F%2Fapp.example.com%2F.mfa-gate%2Fcallback"));
    let basic = call
        .headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .unwrap();
    assert_eq!(
        basic.1, "Basic bGVnYWN5LWFwcDpzM2NyZXQ=",
        "legacy-app:s3cret"
    );
    assert_eq!(call.pending.return_url, "/admin/users?tab=2");

    let token = id_token(&begun.nonce, &["phr"], NOW);
    let answer =
        json!({"id_token": token, "access_token": "x", "token_type": "Bearer"}).to_string();
    let mut cache = SessionCache::new(16);
    let finished = finish_with(
        &config,
        &call.pending,
        TokenAnswer::Answered {
            status: 200,
            body: answer.as_bytes(),
        },
        &mut cache,
    );
    assert_eq!(finished.failure, None);
    assert_eq!(finished.reply.status, 302);
    assert_eq!(header(&finished.reply, "location"), ["/admin/users?tab=2"]);
    let cookies = header(&finished.reply, "set-cookie");
    assert!(
        cookies[0].starts_with(&format!("app_session={token};")),
        "{}",
        cookies[0]
    );
    assert!(
        cookies[0].contains("HttpOnly")
            && cookies[0].contains("Secure")
            && cookies[0].contains("Max-Age=3595")
    );
    assert!(cookies[1].starts_with("mfa_gate_signin=;") && cookies[1].contains("Max-Age=0"));

    // The browser's next request carries the session cookie: let in, from the cache.
    let next = headers(&[
        (":method", "GET"),
        (":path", "/admin/users?tab=2"),
        ("cookie", &format!("app_session={token}")),
    ]);
    let evaluation = evaluate(&config, &next, &mut cache);
    assert!(
        matches!(evaluation.outcome, Outcome::Continue { .. }),
        "{:?}",
        evaluation.outcome
    );
    assert!(
        evaluation
            .counters
            .fixed()
            .contains(&crate::metrics::TOKEN_CACHE_HIT),
        "{:?}",
        evaluation.counters
    );

    // The same callback again: a replay.
    let again = back(
        sign_in,
        &callback_view(&begun.state, &begun.cookie),
        &mut store,
        NOW + 6,
    );
    assert_eq!(refused(again), "state_replayed");
}

#[test]
fn callbacks_that_do_not_belong_to_this_browser_are_refused() {
    let config = config();
    let sign_in = config.sign_in.as_ref().unwrap();
    let begun = begin(&config);
    let mut store = MemoryStore::default();
    let mut tampered = begun.state.clone().into_bytes();
    tampered[0] = if tampered[0] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let cases = [
        (callback_view(&tampered, &begun.cookie), "state_mismatch"),
        (
            callback_view(&begun.state, "other=1"),
            "state_cookie_missing",
        ),
        (
            callback_view(&begun.state, &format!("{}; {}", begun.cookie, begun.cookie)),
            "state_cookie_repeated",
        ),
        (
            callback_view(&begun.state, &begun.cookie.replace("v1.", "v1.A")),
            "state_cookie_altered",
        ),
        (
            headers(&[
                (":method", "GET"),
                (":path", "/.mfa-gate/callback?code=c"),
                ("cookie", &begun.cookie),
            ]),
            "state_missing",
        ),
        (
            headers(&[
                (":method", "GET"),
                (":path", "/.mfa-gate/callback?code=c&code=d"),
                ("cookie", &begun.cookie),
            ]),
            "callback_query_unreadable",
        ),
        (
            headers(&[
                (":method", "POST"),
                (":path", "/.mfa-gate/callback"),
                ("cookie", &begun.cookie),
            ]),
            "callback_method_not_get",
        ),
    ];
    for (view, reason) in cases {
        assert_eq!(refused(back(sign_in, &view, &mut store, NOW + 5)), reason);
    }
    // Too late: the cookie's lifetime has passed.
    let late = back(
        sign_in,
        &callback_view(&begun.state, &begun.cookie),
        &mut store,
        NOW + 700,
    );
    assert_eq!(refused(late), "state_cookie_expired");
    // The provider said no: the state is used up with it.
    let path = format!(
        "/.mfa-gate/callback?error=access_denied&state={}",
        begun.state
    );
    let view = headers(&[
        (":method", "GET"),
        (":path", &path),
        ("cookie", &begun.cookie),
    ]);
    assert_eq!(
        refused(back(sign_in, &view, &mut store, NOW + 5)),
        "provider_error:access_denied"
    );
    let after = back(
        sign_in,
        &callback_view(&begun.state, &begun.cookie),
        &mut store,
        NOW + 6,
    );
    assert_eq!(refused(after), "state_replayed");
}

#[test]
fn a_token_answer_that_does_not_prove_what_was_asked_gives_no_session() {
    let config = config();
    let sign_in = config.sign_in.as_ref().unwrap();
    let begun = begin(&config);
    let step = back(
        sign_in,
        &callback_view(&begun.state, &begun.cookie),
        &mut MemoryStore::default(),
        NOW + 5,
    );
    let CallbackStep::Exchange(call) = step else {
        panic!()
    };
    let pending = &call.pending;
    let answer = |token: String| json!({"id_token": token}).to_string();
    let push = answer(id_token(&begun.nonce, &["mfa", "push"], NOW));
    let wrong_nonce = answer(id_token("another-nonce", &["phr"], NOW));
    let old = answer(id_token(&begun.nonce, &["phr"], NOW - 4000));
    let stranger = answer(fixture::mint_stranger(
        "JWT",
        &json!({"iss": ISSUER, "aud": CLIENT, "exp": NOW + 60, "nonce": begun.nonce}),
    ));
    let cases: Vec<(TokenAnswer<'_>, &str, u32)> = vec![
        (
            TokenAnswer::Answered {
                status: 200,
                body: push.as_bytes(),
            },
            "level_not_met:push",
            401,
        ),
        (
            TokenAnswer::Answered {
                status: 200,
                body: wrong_nonce.as_bytes(),
            },
            "nonce_mismatch",
            502,
        ),
        (
            TokenAnswer::Answered {
                status: 200,
                body: old.as_bytes(),
            },
            "max_age_exceeded",
            401,
        ),
        (
            TokenAnswer::Answered {
                status: 200,
                body: stranger.as_bytes(),
            },
            "id_token_invalid:unknown_kid",
            502,
        ),
        (
            TokenAnswer::Answered {
                status: 400,
                body: br#"{"error":"invalid_grant"}"#,
            },
            "token_endpoint_failed:invalid_grant",
            502,
        ),
        (
            TokenAnswer::Answered {
                status: 503,
                body: b"<html>",
            },
            "token_endpoint_failed:503",
            502,
        ),
        (
            TokenAnswer::Answered {
                status: 200,
                body: b"{not json",
            },
            "token_answer_malformed:json",
            502,
        ),
        (
            TokenAnswer::Answered {
                status: 200,
                body: br#"{"access_token":"x"}"#,
            },
            "token_answer_malformed:no_id_token",
            502,
        ),
        (TokenAnswer::Unavailable, "token_endpoint_unavailable", 502),
    ];
    for (answer, reason, status) in cases {
        let finished = finish_with(&config, pending, answer, &mut SessionCache::new(16));
        assert_eq!(finished.failure.as_deref(), Some(reason));
        assert_eq!(finished.reply.status, status, "{reason}");
        let cookies = header(&finished.reply, "set-cookie");
        assert_eq!(
            cookies.len(),
            1,
            "only the state cookie is cleared: {cookies:?}"
        );
        assert!(String::from_utf8_lossy(&finished.reply.body).contains("Sign-in failed"));
    }
}

#[test]
fn logout_clears_the_session_and_bad_sections_are_refused() {
    let config = config();
    let sign_in = config.sign_in.as_ref().unwrap();
    assert_eq!(
        super::path_of(sign_in, b"/.mfa-gate/logout"),
        Some(super::SignInPath::Logout)
    );
    assert_eq!(
        super::path_of(sign_in, b"/.mfa-gate/callback?x"),
        Some(super::SignInPath::Callback)
    );
    assert_eq!(super::path_of(sign_in, b"//.mfa-gate/callback"), None);
    let reply = super::callback::logout(sign_in);
    assert_eq!(reply.status, 302);
    assert!(header(&reply, "set-cookie")[0].starts_with("app_session=;"));

    let mut text: Value = serde_json::from_str(&json!({
        "issuers": [{"issuer": ISSUER, "audiences": ["other"], "jwks": serde_json::from_str::<Value>(&KEYS.jwks).unwrap(),
            "step_up": {"authorization_endpoint": "https://idp/authorize", "client_id": CLIENT, "redirect_uri": "https://app/"}}],
        "token_sources": [{"cookie": "app_session"}],
        "sign_in": {"issuer": ISSUER, "token_endpoint": {"cluster": "", "url": "idp/token"},
            "client_auth": "private_key_jwt", "client_secret_env": "X", "state_key_env": "1BAD",
            "session_cookie": "elsewhere", "after_logout": "//evil", "state_ttl_secs": 5}
    }).to_string()).unwrap();
    let errors = config::parse(text.to_string().as_bytes())
        .unwrap_err()
        .to_string();
    for expected in [
        "sign_in.issuer: the issuer's audiences must include",
        "sign_in.issuer: the step_up redirect_uri must have a path",
        "sign_in.after_logout",
        "sign_in.token_endpoint.cluster",
        "sign_in.token_endpoint.url",
        "sign_in.client_key_env: private_key_jwt needs client_key_env",
        "sign_in.state_key_env",
        "sign_in.session_cookie",
        "sign_in.state_ttl_secs",
    ] {
        assert!(errors.contains(expected), "{expected}\n{errors}");
    }
    text["sign_in"]["issuer"] = json!("https://unknown/");
    let errors = config::parse(text.to_string().as_bytes())
        .unwrap_err()
        .to_string();
    assert!(errors.contains("is not one of the issuers"), "{errors}");

    let short = |name: &str| {
        (name == "K")
            .then(|| "short".to_string())
            .or(Some("x".into()))
    };
    let mut settings = sign_in.clone();
    settings.state_key_env = "K".into();
    let e = SignInSecrets::read(&settings, short).unwrap_err();
    assert!(e.contains("at least 32"), "{e}");
    let e = SignInSecrets::read(&settings, |_| None).unwrap_err();
    assert!(e.contains("environment variable K is not set"), "{e}");
}

#[test]
fn private_key_jwt_signs_a_client_assertion_the_provider_can_verify() {
    use ct_codecs::{Base64UrlSafeNoPadding, Encoder};
    use jwt_simple::prelude::*;
    let mut text: Value = serde_json::from_str(&json!({
        "issuers": [{"issuer": ISSUER, "audiences": [CLIENT],
            "jwks": serde_json::from_str::<Value>(&KEYS.jwks).unwrap(),
            "step_up": {"authorization_endpoint": "https://idp.example.com/authorize", "client_id": CLIENT,
                "redirect_uri": "https://app.example.com/.mfa-gate/callback"}}],
        "token_sources": [{"cookie": "app_session"}],
        "routes": [{"name": "admin", "match": {"path_prefix": "/admin"},
            "require": {"level": "phishing_resistant", "max_auth_age_secs": 600},
            "on_insufficient": "step_up", "browser": "redirect"}],
        "sign_in": {"issuer": ISSUER, "token_endpoint": {"cluster": "idp", "url": "https://idp.example.com/oauth/token"},
            "client_auth": "private_key_jwt", "client_key_env": "CLIENT_KEY", "state_key_env": "STATE_KEY",
            "session_cookie": "app_session"}
    }).to_string()).unwrap();
    let mut config = config::parse(text.to_string().as_bytes()).unwrap();
    let d = Base64UrlSafeNoPadding::encode_to_string(KEYS.es256.to_bytes()).unwrap();
    let mut private: Value = serde_json::from_str(&KEYS.es256.public_key().to_jwk()).unwrap();
    private["d"] = json!(d);
    private["kid"] = json!("client-1");
    let jwk = private.to_string();
    // RFC 7518 §6.2: a private EC JWK has its public part too; without it, or with another
    // key's, it is refused at configuration.
    let mut d_only = private.clone();
    d_only.as_object_mut().unwrap().remove("x");
    assert_eq!(
        ClientKey::from_jwk(&d_only.to_string()).err(),
        Some("the JWK has no public part (x and y, 32 bytes each)")
    );
    let mut mismatched = private.clone();
    let other: Value =
        serde_json::from_str(&ES256KeyPair::generate().public_key().to_jwk()).unwrap();
    mismatched["x"] = other["x"].clone();
    mismatched["y"] = other["y"].clone();
    assert_eq!(
        ClientKey::from_jwk(&mismatched.to_string()).err(),
        Some("d is not a P-256 key, or x and y are not its public key")
    );
    let sign_in = config.sign_in.as_mut().unwrap();
    let env = |name: &str| match name {
        "CLIENT_KEY" => Some(jwk.clone()),
        "STATE_KEY" => Some(String::from_utf8(KEY.to_vec()).unwrap()),
        _ => None,
    };
    sign_in.secrets = Some(SignInSecrets::read(sign_in, env).unwrap());
    let begun = begin(&config);
    let sign_in = config.sign_in.as_ref().unwrap();
    let step = back(
        sign_in,
        &callback_view(&begun.state, &begun.cookie),
        &mut MemoryStore::default(),
        NOW + 5,
    );
    let CallbackStep::Exchange(call) = step else {
        panic!("{step:?}")
    };
    assert!(call.headers.iter().all(|(k, _)| k != "authorization"));
    let body = String::from_utf8(call.body).unwrap();
    let param = |name: &str| {
        let v = body
            .split('&')
            .find_map(|p| p.strip_prefix(&format!("{name}=")))
            .unwrap();
        String::from_utf8(crate::request::percent_decode(v.as_bytes()).into_owned()).unwrap()
    };
    assert_eq!(param("client_id"), CLIENT);
    assert_eq!(
        param("client_assertion_type"),
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    );
    let assertion = param("client_assertion");
    let options = VerificationOptions {
        allowed_issuers: Some(HashSet::from_strings(&[CLIENT])),
        allowed_audiences: Some(HashSet::from_strings(&[
            "https://idp.example.com/oauth/token",
        ])),
        // The fixture clock (NOW) is in the past: tolerate the difference.
        time_tolerance: Some(Duration::from_secs(200_000_000)),
        ..Default::default()
    };
    let claims = KEYS
        .es256
        .public_key()
        .verify_token::<NoCustomClaims>(&assertion, Some(options))
        .unwrap();
    assert_eq!(claims.subject.as_deref(), Some(CLIENT));
    assert!(claims.jwt_id.is_some());
    assert_eq!(
        Token::decode_metadata(&assertion).unwrap().key_id(),
        Some("client-1")
    );

    text["sign_in"]["client_key_env"] = json!("CLIENT_KEY");
    let settings = config::parse(text.to_string().as_bytes())
        .unwrap()
        .sign_in
        .unwrap();
    for bad in [
        r#"{"kty":"RSA"}"#,
        r#"{"kty":"EC","crv":"P-256"}"#,
        "not json",
        r#"{"kty":"EC","crv":"P-256","d":"AAAA"}"#,
    ] {
        let env = |name: &str| match name {
            "CLIENT_KEY" => Some(bad.to_string()),
            _ => Some(String::from_utf8(KEY.to_vec()).unwrap()),
        };
        let e = SignInSecrets::read(&settings, env).unwrap_err();
        assert!(e.contains("does not hold the client's key"), "{e}");
    }
}
