//! The `sign_in` section: the gateway finishes the step-up sign-in of one issuer itself
//! (its `step_up` says where browsers go; this says how the code comes back and is
//! exchanged). Compiles into [`SignInConfig`]; the secrets are named by environment
//! variable and read by the glue.

use super::error::{check_env_name, is_http_url, parse_choice, push, quote};
use super::raw::RawSignIn;
use super::ConfigError;
use crate::sign_in::{
    ClientAuth, SignInConfig, TokenEndpoint, DEFAULT_LOGOUT_PATH, DEFAULT_STATE_TTL_SECS,
    DEFAULT_TIMEOUT_MS,
};
use crate::token::extract::TokenSource;
use crate::token::issuer::IssuerConfig;

/// `http(s)://authority/path?query` split into the authority and the path with its query.
fn split_url(url: &str) -> Option<(String, String)> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    Some((
        authority.to_string(),
        path.split('#').next().unwrap_or("/").to_string(),
    ))
}

/// The `sign_in` section (`None` when absent).
pub(super) fn compile_sign_in(
    raw: Option<RawSignIn>,
    issuers: &[IssuerConfig],
    sources: &[TokenSource],
    errors: &mut Vec<ConfigError>,
) -> Option<SignInConfig> {
    let raw = raw?;
    let base = "sign_in";
    let issuer = crate::token::issuer::issuer_index(issuers, &raw.issuer);
    let step_up = issuer
        .and_then(|i| issuers.get(i))
        .and_then(|i| i.step_up.as_ref());
    if issuer.is_none() {
        push(
            errors,
            format!("{base}.issuer"),
            format!("{} is not one of the issuers", quote(&raw.issuer)),
        );
    } else if step_up.is_none() {
        push(
            errors,
            format!("{base}.issuer"),
            "that issuer has no step_up (authorization_endpoint, client_id, redirect_uri)",
        );
    }
    if let (Some(index), Some(step_up)) = (issuer, step_up) {
        let audiences = issuers.get(index).map(|i| &i.verify.audiences);
        if audiences.is_some_and(|a| !a.contains(&step_up.client_id)) {
            push(
                errors,
                format!("{base}.issuer"),
                format!(
                    "the issuer's audiences must include the step_up client_id {} (the ID token's aud)",
                    quote(&step_up.client_id)
                ),
            );
        }
    }
    let callback_path = step_up
        .and_then(|s| split_url(&s.redirect_uri))
        .map(|(_, path)| path)
        .unwrap_or_default();
    if step_up.is_some() && (callback_path.contains('?') || callback_path == "/") {
        push(
            errors,
            format!("{base}.issuer"),
            "the step_up redirect_uri must have a path of its own and no query (it is the callback path)",
        );
    }
    let logout_path = raw
        .logout_path
        .unwrap_or_else(|| DEFAULT_LOGOUT_PATH.to_string());
    if !logout_path.starts_with('/') || logout_path.contains('?') || logout_path == callback_path {
        push(
            errors,
            format!("{base}.logout_path"),
            format!(
                "{} must be a path of its own (no query)",
                quote(&logout_path)
            ),
        );
    }
    let after_logout = raw.after_logout.unwrap_or_else(|| "/".to_string());
    if crate::sign_in::state::same_origin_path(&after_logout) != after_logout {
        push(
            errors,
            format!("{base}.after_logout"),
            format!("{} must be a path on this origin", quote(&after_logout)),
        );
    }
    let tpath = format!("{base}.token_endpoint");
    if raw.token_endpoint.cluster.is_empty() {
        push(
            errors,
            format!("{tpath}.cluster"),
            "must name an Envoy cluster",
        );
    }
    let url = raw.token_endpoint.url;
    let (authority, path) = match split_url(&url).filter(|_| is_http_url(&url)) {
        Some(parts) => parts,
        None => {
            push(
                errors,
                format!("{tpath}.url"),
                format!("{} is not an http(s) URL", quote(&url)),
            );
            (String::new(), String::new())
        }
    };
    let timeout_ms = raw.token_endpoint.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
    if !(100..=60_000).contains(&timeout_ms) {
        push(
            errors,
            format!("{tpath}.timeout_ms"),
            format!("{timeout_ms} is out of range (100 to 60000)"),
        );
    }
    let client_auth = parse_choice(
        raw.client_auth.as_deref(),
        ClientAuth::SecretBasic,
        &[
            ("client_secret_basic", ClientAuth::SecretBasic),
            ("client_secret_post", ClientAuth::SecretPost),
            ("private_key_jwt", ClientAuth::PrivateKeyJwt),
        ],
        &format!("{base}.client_auth"),
        errors,
    );
    let wants_secret = client_auth != ClientAuth::PrivateKeyJwt;
    match (&raw.client_secret_env, &raw.client_key_env, wants_secret) {
        (Some(name), None, true) => {
            check_env_name(name, &format!("{base}.client_secret_env"), errors)
        }
        (None, Some(name), false) => check_env_name(name, &format!("{base}.client_key_env"), errors),
        (_, _, true) => push(
            errors,
            format!("{base}.client_secret_env"),
            "client_secret_basic and client_secret_post need client_secret_env (and no client_key_env)",
        ),
        (_, _, false) => push(
            errors,
            format!("{base}.client_key_env"),
            "private_key_jwt needs client_key_env (and no client_secret_env)",
        ),
    }
    check_env_name(&raw.state_key_env, &format!("{base}.state_key_env"), errors);
    let cookie_source = sources
        .iter()
        .any(|s| matches!(s, TokenSource::Cookie(c) if *c == raw.session_cookie));
    if !cookie_source {
        push(
            errors,
            format!("{base}.session_cookie"),
            format!(
                "{} must be one of token_sources' cookies (the gate reads the session there)",
                quote(&raw.session_cookie)
            ),
        );
    }
    let state_ttl_secs = raw.state_ttl_secs.unwrap_or(DEFAULT_STATE_TTL_SECS);
    if !(60..=3600).contains(&state_ttl_secs) {
        push(
            errors,
            format!("{base}.state_ttl_secs"),
            format!("{state_ttl_secs} is out of range (60 to 3600)"),
        );
    }
    let step_up = step_up?;
    Some(SignInConfig {
        issuer: issuer?,
        client_id: step_up.client_id.clone(),
        redirect_uri: step_up.redirect_uri.clone(),
        callback_path,
        logout_path,
        after_logout,
        token_endpoint: TokenEndpoint {
            cluster: raw.token_endpoint.cluster,
            url,
            authority,
            path,
            timeout_ms,
        },
        client_auth,
        client_secret_env: raw.client_secret_env,
        client_key_env: raw.client_key_env,
        state_key_env: raw.state_key_env,
        session_cookie: raw.session_cookie,
        state_ttl_secs,
        secure_cookies: raw.secure_cookies.unwrap_or(true),
        secrets: None,
    })
}

#[cfg(test)]
mod tests {
    use super::split_url;

    #[test]
    fn urls_split_into_authority_and_path() {
        assert_eq!(
            split_url("http://127.0.0.1:10001/oauth/token"),
            Some(("127.0.0.1:10001".into(), "/oauth/token".into()))
        );
        assert_eq!(
            split_url("https://idp.example"),
            Some(("idp.example".into(), "/".into()))
        );
        assert_eq!(split_url("https://user@idp.example/x"), None);
        assert_eq!(split_url("ftp://idp.example/x"), None);
    }
}
