//! The code flow through the handler functions: authorize → approve → token with each
//! client authentication, the ID token checked with the demo JWKS by mfa-gate's own
//! verifier, every refusal, and introspection / revocation of opaque tokens.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::super::transmitter::SignalsConfig;
use super::super::{DemoPorts, IdentityProvider};
use super::*;
use jwt_simple::prelude::*;
use jwt_simple::reexports::ct_codecs::Base64;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const REDIRECT: &str = "http://127.0.0.1:10000/oauth2/callback";
const SECRET: &str = "test-client-secret";

struct Setup {
    idp: IdentityProvider,
    client_key: ES256KeyPair,
}

fn setup() -> Setup {
    let client_key = ES256KeyPair::generate();
    let settings = ClientSettings {
        secret: SECRET.into(),
        key_pem: Some(client_key.public_key().to_pem().unwrap()),
    };
    let (idp, _outbound) =
        IdentityProvider::new(DemoPorts::default(), SignalsConfig::default(), &settings).unwrap();
    Setup { idp, client_key }
}

fn get(path_and_query: &str) -> DemoRequest {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    DemoRequest {
        method: "GET".into(),
        path: path.into(),
        query: parse_query(query),
        headers: Vec::new(),
        body: Vec::new(),
    }
}

fn post(path: &str, form: &[(&str, &str)], authorization: Option<String>) -> DemoRequest {
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let mut headers = vec![(
        "content-type".to_string(),
        "application/x-www-form-urlencoded".to_string(),
    )];
    if let Some(a) = authorization {
        headers.push(("authorization".into(), a));
    }
    DemoRequest {
        method: "POST".into(),
        path: path.into(),
        query: Vec::new(),
        headers,
        body: body.into_bytes(),
    }
}

fn basic(id: &str, secret: &str) -> Option<String> {
    Some(format!(
        "Basic {}",
        Base64::encode_to_string(format!("{id}:{secret}")).unwrap()
    ))
}

fn call(s: &Setup, request: &DemoRequest, now: u64) -> DemoResponse {
    s.idp
        .oidc
        .route(&s.idp, request, now)
        .expect("an OAuth route")
}

fn header<'a>(r: &'a DemoResponse, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn json_body(r: &DemoResponse) -> serde_json::Value {
    serde_json::from_str(&r.body).unwrap()
}

fn authorize_query(overrides: &[(&str, Option<&str>)]) -> String {
    let mut params = vec![
        ("response_type", Some("code")),
        ("client_id", Some("mfa-gate-demo")),
        ("redirect_uri", Some(REDIRECT)),
        ("scope", Some("openid")),
        ("state", Some("st/1 &x")),
        ("nonce", Some("n-0S6_WzA2Mj")),
        ("code_challenge", Some(CHALLENGE)),
        ("code_challenge_method", Some("S256")),
        ("acr_values", Some("phr")),
    ];
    for (name, value) in overrides {
        match params.iter_mut().find(|(k, _)| k == name) {
            Some(p) => p.1 = *value,
            None => params.push((name, *value)),
        }
    }
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        if let Some(v) = v {
            ser.append_pair(k, v);
        }
    }
    format!("/authorize?{}", ser.finish())
}

/// The pending request id from the sign-in page.
fn request_id(page: &DemoResponse) -> String {
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Re-authenticate with your passkey"));
    assert!(page.body.contains("Use my passkey"));
    assert!(page.body.contains("Cancel"));
    page.body
        .split("/authorize/approve?request=")
        .nth(1)
        .and_then(|rest| rest.split("&amp;").next())
        .unwrap()
        .to_string()
}

/// authorize + approve as `user`: the code.
fn code_for(s: &Setup, user: &str, now: u64) -> String {
    let page = call(s, &get(&authorize_query(&[])), now);
    let id = request_id(&page);
    let back = call(
        s,
        &get(&format!("/authorize/approve?request={id}&user={user}")),
        now,
    );
    assert_eq!(back.status, 302);
    let location = header(&back, "location").unwrap();
    let query = location.strip_prefix(&format!("{REDIRECT}?")).unwrap();
    let params = parse_query(query);
    assert_eq!(params[1], ("state".to_string(), "st/1 &x".to_string()));
    assert_eq!(params[0].0, "code");
    params[0].1.clone()
}

fn token_form<'a>(code: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    for (k, v) in extra {
        match form.iter_mut().find(|(name, _)| name == k) {
            Some(p) => p.1 = v,
            None => form.push((k, v)),
        }
    }
    form
}

fn assertion(s: &Setup, aud: &str, iss: &str, jti: &str) -> String {
    let claims = Claims::create(Duration::from_secs(120))
        .with_issuer(iss)
        .with_subject(iss)
        .with_audience(aud)
        .with_jwt_id(jti);
    s.client_key.sign(claims).unwrap()
}

fn verify_id_token(s: &Setup, token: &str, now: u64) -> serde_json::Map<String, serde_json::Value> {
    let keys = mfa_gate::jwks::KeySet::from_jwks_json(s.idp.jwks.to_string().as_bytes()).unwrap();
    let options = mfa_gate::verify::VerifyOptions {
        issuer: ISSUER.into(),
        audiences: vec![AUDIENCE.into()],
        algorithms: vec![mfa_gate::verify::Algorithm::ES256],
        clock_skew_secs: 60,
        max_token_bytes: 8192,
    };
    mfa_gate::verify::verify(token.as_bytes(), &keys, &options, now)
        .unwrap()
        .claims
}

#[test]
fn the_code_flow_with_each_client_authentication() {
    let s = setup();
    let now = keys::now_secs();
    let token_url = "http://127.0.0.1:10001/oauth/token";
    for method in ["basic", "post", "jwt_endpoint", "jwt_issuer"] {
        let code = code_for(&s, "passkey", now);
        let jwt_aud = if method == "jwt_endpoint" {
            token_url
        } else {
            ISSUER
        };
        let signed = assertion(&s, jwt_aud, AUDIENCE, &format!("jti-{method}"));
        let (extra, auth): (Vec<(&str, &str)>, _) = match method {
            "basic" => (vec![], basic(AUDIENCE, SECRET)),
            "post" => (
                vec![("client_id", AUDIENCE), ("client_secret", SECRET)],
                None,
            ),
            _ => (
                vec![
                    ("client_assertion_type", client_auth::JWT_BEARER_ASSERTION),
                    ("client_assertion", signed.as_str()),
                ],
                None,
            ),
        };
        let reply = call(
            &s,
            &post("/oauth/token", &token_form(&code, &extra), auth),
            now,
        );
        assert_eq!(reply.status, 200, "{method}: {}", reply.body);
        assert_eq!(header(&reply, "cache-control"), Some("no-store"));
        let body = json_body(&reply);
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 3600);
        let claims = verify_id_token(&s, body["id_token"].as_str().unwrap(), now);
        assert_eq!(claims["sub"], "kim@example.com");
        assert_eq!(claims["aud"], AUDIENCE);
        assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
        assert_eq!(claims["acr"], "phr");
        assert_eq!(claims["amr"], json!(["pwd", "pop"]));
        assert_eq!(claims["auth_time"], now);
        assert_eq!(claims["exp"], now + 3600);
        let sid = s.idp.sessions.newest("passkey").unwrap();
        assert_eq!(claims["sid"], sid.as_str());
        // The access token is opaque and introspects to the same sign-in.
        let access = body["access_token"].as_str().unwrap();
        assert_eq!(access.len(), 43);
        assert!(!access.contains('.'));
        let seen = call(
            &s,
            &post(
                "/oauth/introspect",
                &[("token", access)],
                basic(AUDIENCE, SECRET),
            ),
            now,
        );
        let seen = json_body(&seen);
        assert_eq!(seen["active"], true);
        assert_eq!(seen["sid"], sid.as_str());
        assert_eq!(seen["acr"], "phr");
    }
}

#[test]
fn a_push_user_gets_a_push_acr_and_amr() {
    let s = setup();
    let now = keys::now_secs();
    let code = code_for(&s, "push", now);
    let reply = call(
        &s,
        &post(
            "/oauth/token",
            &token_form(&code, &[]),
            basic(AUDIENCE, SECRET),
        ),
        now,
    );
    let body = json_body(&reply);
    let claims = verify_id_token(&s, body["id_token"].as_str().unwrap(), now);
    assert_eq!(claims["sub"], "pat@example.com");
    assert_eq!(claims["acr"], "urn:okta:loa:2fa:any");
    assert_eq!(claims["amr"], json!(["pwd", "okta_verify", "swk"]));
}

fn token_error(reply: &DemoResponse) -> (u16, String, String) {
    let body = json_body(reply);
    (
        reply.status,
        body["error"].as_str().unwrap().to_string(),
        body["error_description"].as_str().unwrap().to_string(),
    )
}

#[test]
fn the_token_endpoint_refuses() {
    let s = setup();
    let now = keys::now_secs();
    let good = || basic(AUDIENCE, SECRET);
    let trade = |code: &str, extra: &[(&str, &str)], auth: Option<String>, at: u64| {
        call(
            &s,
            &post("/oauth/token", &token_form(code, extra), auth),
            at,
        )
    };

    // Replayed code.
    let code = code_for(&s, "passkey", now);
    assert_eq!(trade(&code, &[], good(), now).status, 200);
    let (status, error, _) = token_error(&trade(&code, &[], good(), now));
    assert_eq!((status, error.as_str()), (400, "invalid_grant"));

    // Wrong verifier (a valid-looking one), wrong redirect_uri, no verifier: invalid_grant.
    let other_verifier = "x".repeat(43);
    let other_redirect = "http://127.0.0.1:10000/elsewhere";
    for extra in [
        vec![("code_verifier", other_verifier.as_str())],
        vec![("redirect_uri", other_redirect)],
        vec![("code_verifier", "")],
    ] {
        let code = code_for(&s, "passkey", now);
        let (status, error, why) = token_error(&trade(&code, &extra, good(), now));
        assert_eq!(
            (status, error.as_str()),
            (400, "invalid_grant"),
            "{extra:?}: {why}"
        );
    }

    // Wrong secret, unknown client, no authentication: 401 invalid_client, and the code
    // is not used up by an unauthenticated request.
    let code = code_for(&s, "passkey", now);
    for auth in [
        basic(AUDIENCE, "wrong"),
        basic("another-client", SECRET),
        None,
    ] {
        let reply = trade(&code, &[], auth, now);
        let (status, error, _) = token_error(&reply);
        assert_eq!((status, error.as_str()), (401, "invalid_client"));
        assert!(header(&reply, "www-authenticate")
            .unwrap()
            .starts_with("Basic"));
    }
    let (status, error, _) = token_error(&trade(
        &code,
        &[("client_id", AUDIENCE), ("client_secret", "wrong")],
        None,
        now,
    ));
    assert_eq!((status, error.as_str()), (401, "invalid_client"));
    assert_eq!(trade(&code, &[], good(), now).status, 200);

    // Expired: a code lives 60 s.
    let code = code_for(&s, "passkey", now);
    let (status, error, why) = token_error(&trade(&code, &[], good(), now + CODE_TTL_SECS + 1));
    assert_eq!(
        (status, error.as_str(), why.as_str()),
        (400, "invalid_grant", "code expired")
    );

    // Another grant type; a GET.
    let code = code_for(&s, "passkey", now);
    let (status, error, _) = token_error(&trade(&code, &[("grant_type", "password")], good(), now));
    assert_eq!((status, error.as_str()), (400, "unsupported_grant_type"));
    assert_eq!(call(&s, &get("/oauth/token"), now).status, 405);
}

#[test]
fn private_key_jwt_refusals() {
    let s = setup();
    let now = keys::now_secs();
    let code = code_for(&s, "passkey", now);
    let with = |a: &str| {
        let form = token_form(
            &code,
            &[
                ("client_assertion_type", client_auth::JWT_BEARER_ASSERTION),
                ("client_assertion", a),
            ],
        );
        token_error(&call(&s, &post("/oauth/token", &form, None), now))
    };
    let cases = [
        (
            "wrong aud",
            assertion(&s, "https://elsewhere.example", AUDIENCE, "j1"),
        ),
        ("wrong iss", assertion(&s, ISSUER, "another-client", "j2")),
        ("another key", {
            let other = ES256KeyPair::generate();
            let claims = Claims::create(Duration::from_secs(60))
                .with_issuer(AUDIENCE)
                .with_subject(AUDIENCE)
                .with_audience(ISSUER)
                .with_jwt_id("j3");
            other.sign(claims).unwrap()
        }),
    ];
    for (what, signed) in &cases {
        let (status, error, _) = with(signed);
        assert_eq!((status, error.as_str()), (401, "invalid_client"), "{what}");
    }
    // A jti is used once.
    let once = assertion(&s, ISSUER, AUDIENCE, "j4");
    let first = call(
        &s,
        &post(
            "/oauth/token",
            &token_form(
                &code,
                &[
                    ("client_assertion_type", client_auth::JWT_BEARER_ASSERTION),
                    ("client_assertion", once.as_str()),
                ],
            ),
            None,
        ),
        now,
    );
    assert_eq!(first.status, 200, "{}", first.body);
    let (status, error, why) = with(&once);
    assert_eq!((status, error.as_str()), (401, "invalid_client"));
    assert!(why.contains("jti"), "{why}");
}

#[test]
fn bad_authorization_requests_stay_on_a_400_page() {
    let s = setup();
    let now = keys::now_secs();
    type Overrides<'a> = &'a [(&'a str, Option<&'a str>)];
    let cases: [(&str, Overrides); 9] = [
        ("unknown client_id", &[("client_id", Some("someone-else"))]),
        (
            "not on the gateway",
            &[("redirect_uri", Some("https://evil.example/cb"))],
        ),
        (
            "not on the gateway",
            &[(
                "redirect_uri",
                Some("http://127.0.0.1:10000.evil.example/cb"),
            )],
        ),
        (
            "not on the gateway",
            &[("redirect_uri", Some("http://127.0.0.1:10001/cb"))],
        ),
        ("redirect_uri is missing", &[("redirect_uri", None)]),
        (
            "code_challenge_method",
            &[("code_challenge_method", Some("plain"))],
        ),
        ("code_challenge_method", &[("code_challenge_method", None)]),
        ("state is missing", &[("state", None)]),
        ("nonce is missing", &[("nonce", None)]),
    ];
    for (what, overrides) in cases {
        let reply = call(&s, &get(&authorize_query(overrides)), now);
        assert_eq!(reply.status, 400, "{what}");
        assert!(header(&reply, "location").is_none());
        assert!(reply.body.contains(what), "{what}: {}", reply.body);
    }
}

#[test]
fn mfa_gates_own_step_up_redirect_still_gets_the_legacy_page() {
    let s = setup();
    let legacy = get("/authorize?response_type=code&client_id=mfa-gate-demo&redirect_uri=http%3A%2F%2F127.0.0.1%3A10000%2Fcallback&scope=openid&acr_values=phr&prompt=login&state=%2Fadmin%2Fusers");
    assert!(s
        .idp
        .oidc
        .route(&s.idp, &legacy, keys::now_secs())
        .is_none());
    let page = s.idp.authorize_page(&legacy);
    assert!(
        page.body.contains("/login/passkey?return_to="),
        "{}",
        page.body
    );
}

#[test]
fn cancel_denies_and_a_request_is_answered_once() {
    let s = setup();
    let now = keys::now_secs();
    let id = request_id(&call(&s, &get(&authorize_query(&[])), now));
    let denied = call(
        &s,
        &get(&format!("/authorize/approve?request={id}&deny=1")),
        now,
    );
    assert_eq!(denied.status, 302);
    assert_eq!(
        header(&denied, "location"),
        Some(format!("{REDIRECT}?error=access_denied&state=st%2F1+%26x").as_str())
    );
    let again = call(
        &s,
        &get(&format!("/authorize/approve?request={id}&user=passkey")),
        now,
    );
    assert_eq!(again.status, 400);
    // A pending request waits 10 minutes.
    let id = request_id(&call(&s, &get(&authorize_query(&[])), now));
    let late = call(
        &s,
        &get(&format!("/authorize/approve?request={id}&user=passkey")),
        now + PENDING_TTL_SECS,
    );
    assert_eq!(late.status, 400);
    assert!(late.body.contains("expired"));
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn opaque_tokens_introspect_until_revoked_or_expired() {
    let s = setup();
    let now = keys::now_secs();
    let minted = block_on(s.idp.handle(get("/token/number-match?format=opaque")));
    assert_eq!(minted.status, 200);
    let token = minted.body.clone();
    assert_eq!(token.len(), 43);
    let introspect = |auth: Option<String>, token: &str, at: u64| {
        call(
            &s,
            &post("/oauth/introspect", &[("token", token)], auth),
            at,
        )
    };
    let good = || basic(AUDIENCE, SECRET);
    let live = json_body(&introspect(good(), &token, now));
    assert_eq!(live["active"], true);
    assert_eq!(live["iss"], ISSUER);
    assert_eq!(live["sub"], "nia@example.com");
    assert_eq!(live["aud"], AUDIENCE);
    assert_eq!(live["client_id"], AUDIENCE);
    assert_eq!(live["token_type"], "Bearer");
    assert_eq!(live["auth_strength"], "push_nm");
    assert_eq!(live["acr"], "urn:okta:loa:2fa:any");
    assert_eq!(live["amr"], json!(["pwd", "okta_verify", "swk"]));
    assert_eq!(
        live["sid"],
        s.idp.sessions.newest("number-match").unwrap().as_str()
    );
    for key in ["exp", "iat", "auth_time"] {
        assert!(live[key].is_u64(), "{key}");
    }

    assert_eq!(introspect(None, &token, now).status, 401);
    assert_eq!(
        introspect(basic(AUDIENCE, "wrong"), &token, now).status,
        401
    );
    assert_eq!(
        json_body(&introspect(good(), "no-such-token", now)),
        json!({"active": false})
    );
    assert_eq!(
        json_body(&introspect(good(), &token, now + TOKEN_TTL_SECS)),
        json!({"active": false})
    );
    // A JWT the IdP minted is not introspected (opaque tokens only).
    let jwt = block_on(s.idp.handle(get("/token/passkey"))).body;
    assert_eq!(
        json_body(&introspect(good(), &jwt, now)),
        json!({"active": false})
    );

    let revoke = |auth: Option<String>, token: &str| {
        call(&s, &post("/oauth/revoke", &[("token", token)], auth), now).status
    };
    assert_eq!(revoke(None, &token), 401);
    assert_eq!(json_body(&introspect(good(), &token, now))["active"], true);
    assert_eq!(revoke(good(), &token), 200);
    assert_eq!(revoke(good(), &token), 200);
    assert_eq!(
        json_body(&introspect(good(), &token, now)),
        json!({"active": false})
    );
}

#[test]
fn discovery_names_the_code_flow_endpoints() {
    let s = setup();
    let doc = block_on(s.idp.handle(get("/.well-known/openid-configuration")));
    let doc = json_body(&doc);
    assert_eq!(doc["token_endpoint"], "http://127.0.0.1:10001/oauth/token");
    assert_eq!(
        doc["introspection_endpoint"],
        "http://127.0.0.1:10001/oauth/introspect"
    );
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        json!([
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt"
        ])
    );
    assert_eq!(
        doc["authorization_endpoint"],
        "http://127.0.0.1:10001/authorize"
    );
    let bad = block_on(s.idp.handle(get("/token/push?format=xml")));
    assert_eq!(bad.status, 400);
}
