//! The two ends of the browser's trip to the provider: [`begin`] sends it (the step-up
//! redirect with `state`, `nonce` and PKCE, and the state cookie), [`callback`] takes it
//! back (checks `state` against the cookie, refuses replays, and builds the token request).

use super::state::{self, PendingSignIn};
use super::used::{self, ClaimError};
use super::{pages, Asked, ClientAuth, SignInConfig, SignInSecrets, STATE_COOKIE};
use crate::request::{percent_decode, RequestView};
use crate::response::{percent_encode, LocalReply, StepUpEndpoint};
use crate::store::Store;
use ct_codecs::{Base64, Encoder};

/// The step-up redirect of a sign-in the gateway finishes: 302 to the authorization
/// endpoint with `response_type=code`, `state`, `nonce`, the S256 challenge, `acr_values`,
/// `max_age` and `prompt=login`, and the state cookie. `random`: 16 fresh random bytes
/// (`None` when the host has none: 503, never a predictable state).
pub fn begin(
    config: &SignInConfig,
    secrets: &SignInSecrets,
    step_up: &StepUpEndpoint,
    asked: Asked,
    return_url: &str,
    random: Option<[u8; 16]>,
    now: u64,
) -> LocalReply {
    let Some(random) = random else {
        return pages::failed(503, "no_randomness", "/");
    };
    let pending = PendingSignIn {
        state: state::new_state(&random),
        return_url: state::same_origin_path(return_url),
        asked,
        issued_at: now,
    };
    let key = &secrets.state_key;
    let verifier = state::code_verifier(key, &pending.state);
    let max_age = pending.asked.max_age.map(|m| m.to_string());
    let mut params: Vec<(&str, String)> = vec![
        ("response_type", "code".into()),
        ("client_id", step_up.client_id.clone()),
        ("redirect_uri", step_up.redirect_uri.clone()),
        ("scope", "openid".into()),
        ("state", pending.state.clone()),
        ("nonce", state::nonce(key, &pending.state)),
        ("code_challenge", state::code_challenge(&verifier)),
        ("code_challenge_method", "S256".into()),
        ("prompt", "login".into()),
    ];
    if !pending.asked.acr_values.is_empty() {
        params.push(("acr_values", pending.asked.acr_values.clone()));
    }
    if let Some(m) = max_age {
        params.push(("max_age", m));
    }
    let endpoint: String = (step_up.authorization_endpoint.split('#').next())
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_graphic() && *c != '"' && *c != '\\')
        .collect();
    let mut location = endpoint;
    location.push(if location.contains('?') { '&' } else { '?' });
    let query: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect();
    location.push_str(&query.join("&"));
    let cookie = state::encode_cookie(key, &pending);
    LocalReply {
        status: 302,
        headers: vec![
            ("location".into(), location),
            ("cache-control".into(), "no-store".into()),
            (
                "set-cookie".into(),
                cookie_header(config, STATE_COOKIE, &cookie, Some(config.state_ttl_secs)),
            ),
        ],
        body: Vec::new(),
        details: "mfa_gate_sign_in_redirect",
    }
}

/// A `set-cookie` value: HttpOnly, SameSite=Lax, Path=/, Secure unless turned off;
/// `max_age` 0 clears it.
pub fn cookie_header(
    config: &SignInConfig,
    name: &str,
    value: &str,
    max_age: Option<u64>,
) -> String {
    let mut header = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if config.secure_cookies {
        header.push_str("; Secure");
    }
    if let Some(age) = max_age {
        header.push_str(&format!("; Max-Age={age}"));
    }
    header
}

/// The `set-cookie` that clears the state cookie.
pub fn clear_state(config: &SignInConfig) -> (String, String) {
    (
        "set-cookie".into(),
        cookie_header(config, STATE_COOKIE, "", Some(0)),
    )
}

/// The code exchange to make: the call's headers and form body, and the sign-in it is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenCall {
    /// Headers beyond the pseudo-headers (content type, accept, client authentication).
    pub headers: Vec<(String, String)>,
    /// The form body.
    pub body: Vec<u8>,
    /// The sign-in, checked again on the answer.
    pub pending: PendingSignIn,
}

/// What a callback request leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackStep {
    /// Exchange the code.
    Exchange(Box<TokenCall>),
    /// Answer now: an error page (the reason code is in it and its `details`).
    Refuse { reason: String, reply: LocalReply },
}

fn refuse(config: &SignInConfig, status: u32, reason: &str, retry: &str) -> CallbackStep {
    let mut reply = pages::failed(status, reason, retry);
    reply.headers.push(clear_state(config));
    CallbackStep::Refuse {
        reason: reason.to_string(),
        reply,
    }
}

/// The query's parameters, percent-decoded; `None` when one is repeated or not UTF-8.
fn query_params(target: &[u8]) -> Option<Vec<(String, String)>> {
    let Some(q) = target.iter().position(|&b| b == b'?') else {
        return Some(Vec::new());
    };
    let mut params: Vec<(String, String)> = Vec::new();
    for pair in target[q + 1..]
        .split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
    {
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        let name = String::from_utf8(percent_decode(name).into_owned()).ok()?;
        let value = String::from_utf8(percent_decode(value).into_owned()).ok()?;
        if params.iter().any(|(n, _)| *n == name) {
            return None;
        }
        params.push((name, value));
    }
    Some(params)
}

/// Every value of the state cookie across the request's `Cookie` headers.
fn state_cookies(view: &dyn RequestView) -> Vec<Vec<u8>> {
    let mut found = Vec::new();
    view.each_header(&mut |name, value| {
        if name.eq_ignore_ascii_case(b"cookie") {
            found.extend(
                crate::token::extract::cookie_values(value, STATE_COOKIE.as_bytes())
                    .map(<[u8]>::to_vec),
            );
        }
    });
    found
}

/// A request to the callback path: the provider's `code` and `state` against the state
/// cookie. The state is claimed in `store` (a second use is a replay) before the code is
/// exchanged. `skew_secs`: the issuer's clock skew.
pub fn callback(
    config: &SignInConfig,
    secrets: &SignInSecrets,
    view: &dyn RequestView,
    store: &mut dyn Store,
    now: u64,
    skew_secs: u64,
) -> CallbackStep {
    let method = view.header(":method").unwrap_or_default();
    if method != b"GET" {
        return refuse(config, 405, "callback_method_not_get", "/");
    }
    let target = view.header(":path").unwrap_or_default();
    let Some(params) = query_params(target) else {
        return refuse(config, 400, "callback_query_unreadable", "/");
    };
    let param = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let cookies = state_cookies(view);
    let pending = match cookies.as_slice() {
        [] => return refuse(config, 401, "state_cookie_missing", "/"),
        [one] => state::decode_cookie(
            &secrets.state_key,
            one,
            now,
            config.state_ttl_secs,
            skew_secs,
        ),
        _ => return refuse(config, 401, "state_cookie_repeated", "/"),
    };
    let pending = match pending {
        Ok(p) => p,
        Err(e) => return refuse(config, 401, e.reason(), "/"),
    };
    let retry = pending.return_url.clone();
    let Some(sent_state) = param("state") else {
        return refuse(config, 401, "state_missing", &retry);
    };
    if !state::same_state(sent_state.as_bytes(), pending.state.as_bytes()) {
        return refuse(config, 401, "state_mismatch", &retry);
    }
    let expires = pending.issued_at.saturating_add(config.state_ttl_secs);
    match used::claim(
        store,
        &secrets.state_key,
        &pending.state,
        expires.saturating_add(skew_secs),
        now,
    ) {
        Ok(()) => {}
        Err(ClaimError::Replayed) => return refuse(config, 401, "state_replayed", &retry),
        Err(ClaimError::Unavailable) => {
            return refuse(config, 503, "state_store_unavailable", &retry)
        }
    }
    if let Some(error) = param("error") {
        let code: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        return refuse(config, 401, &format!("provider_error:{code}"), &retry);
    }
    let Some(code) = param("code").filter(|c| !c.is_empty()) else {
        return refuse(config, 401, "code_missing", &retry);
    };
    let verifier = state::code_verifier(&secrets.state_key, &pending.state);
    let mut form: Vec<(&str, String)> = vec![
        ("grant_type", "authorization_code".into()),
        ("code", code.to_string()),
        ("redirect_uri", config.redirect_uri.clone()),
        ("code_verifier", verifier),
    ];
    let mut headers = vec![
        (
            "content-type".to_string(),
            "application/x-www-form-urlencoded".to_string(),
        ),
        ("accept".to_string(), "application/json".to_string()),
    ];
    let secret = secrets.client_secret.as_deref().unwrap_or_default();
    match config.client_auth {
        ClientAuth::SecretBasic => {
            // RFC 6749 §2.3.1: each part form-encoded before Basic encoding.
            let pair = format!(
                "{}:{}",
                percent_encode(&config.client_id),
                percent_encode(secret)
            );
            let basic = Base64::encode_to_string(pair.as_bytes()).unwrap_or_default();
            headers.push(("authorization".into(), format!("Basic {basic}")));
        }
        ClientAuth::SecretPost => {
            form.push(("client_id", config.client_id.clone()));
            form.push(("client_secret", secret.to_string()));
        }
        ClientAuth::PrivateKeyJwt => {
            let Some(assertion) = client_assertion(config, secrets, now) else {
                return refuse(config, 500, "client_assertion_unsigned", &retry);
            };
            form.push(("client_id", config.client_id.clone()));
            form.push((
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
            ));
            form.push(("client_assertion", assertion));
        }
    }
    let body = form
        .iter()
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes();
    CallbackStep::Exchange(Box::new(TokenCall {
        headers,
        body,
        pending,
    }))
}

/// The RFC 7523 client assertion: iss = sub = the client id, aud = the token endpoint,
/// a minute's lifetime and a random `jti`, signed ES256 with the client's key.
fn client_assertion(config: &SignInConfig, secrets: &SignInSecrets, now: u64) -> Option<String> {
    use ct_codecs::{Base64UrlSafeNoPadding, Encoder};
    let key = secrets.client_key.as_ref()?;
    let mut header = serde_json::json!({"alg": "ES256", "typ": "JWT"});
    if let Some(kid) = &key.kid {
        header["kid"] = kid.as_str().into();
    }
    let claims = serde_json::json!({
        "iss": config.client_id,
        "sub": config.client_id,
        "aud": config.token_endpoint.url,
        "iat": now,
        "exp": now.saturating_add(60),
        "jti": state::new_state(&super::fresh_random()?),
    });
    let b64 = |bytes: &[u8]| Base64UrlSafeNoPadding::encode_to_string(bytes).ok();
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes())?,
        b64(claims.to_string().as_bytes())?
    );
    let signature = key.sign(input.as_bytes())?;
    Some(format!("{input}.{}", b64(&signature)?))
}

/// A request to the logout path: the session cookie cleared, back to `after_logout`.
pub fn logout(config: &SignInConfig) -> LocalReply {
    LocalReply {
        status: 302,
        headers: vec![
            ("location".into(), config.after_logout.clone()),
            ("cache-control".into(), "no-store".into()),
            (
                "set-cookie".into(),
                cookie_header(config, &config.session_cookie, "", Some(0)),
            ),
            clear_state(config),
        ],
        body: Vec::new(),
        details: "mfa_gate_sign_out",
    }
}
