//! The demo identity provider's OAuth 2.0 / OpenID Connect side: the authorization code
//! flow with PKCE (RFC 6749 §4.1, RFC 7636 S256 only), the token endpoint with three client
//! authentication methods ([`client_auth`](super::client_auth)), opaque access tokens with
//! RFC 7662 introspection and RFC 7009 revocation.
//!
//! The flow: `GET /authorize?response_type=code&...` is checked (known client, a
//! `redirect_uri` on the gateway origin, S256, `state` and `nonce`) and kept under a random
//! request id for [`PENDING_TTL_SECS`]; the sign-in page links to `/authorize/approve`,
//! which makes a one-time code ([`CODE_TTL_SECS`]) bound to the client, the redirect URI,
//! the challenge, the nonce and the user, and sends the browser back with it. `POST
//! /oauth/token` trades the code (once) for an opaque access token and a signed ID token.
//!
//! A request without `code_challenge` and `nonce` is not a code flow request: it gets the
//! legacy step-up page (mfa-gate's own step-up redirect carries `response_type=code` but no
//! PKCE). Bad requests get a 400 page; the browser is never sent to an unchecked
//! `redirect_uri`. Everything kept is bounded ([`ExpiringMap`]). Nothing here logs a code,
//! a token or a secret.

use super::client_auth::{self, Client, ClientKey};
use super::expiring::ExpiringMap;
use super::server::{html_escape, parse_query, percent_encode, DemoRequest, DemoResponse};
use super::users::{DemoUser, AUDIENCE, ISSUER, USERS};
use super::IdentityProvider;
use crate::error::CliResult;
use crate::keys;
use crate::security_event;
use jwt_simple::reexports::ct_codecs::{Base64UrlSafeNoPadding, Encoder};
use serde_json::json;

/// How long a pending authorization request waits for the user.
pub const PENDING_TTL_SECS: u64 = 600;
/// How long a code can be traded.
pub const CODE_TTL_SECS: u64 = 60;
/// Lifetime of access and ID tokens from the token endpoint, and of opaque tokens.
pub const TOKEN_TTL_SECS: u64 = 3600;
/// Pending requests kept at most.
const MAX_PENDING: usize = 1024;
/// Codes kept at most.
const MAX_CODES: usize = 1024;
/// Opaque tokens kept at most.
const MAX_OPAQUE: usize = 4096;
/// The longest authorization request parameter accepted (Envoy's oauth2 `state` is long).
const MAX_PARAM_BYTES: usize = 4096;

/// The demo client's secret when neither `--client-secret` nor `MFA_GATE_CLIENT_SECRET` is given.
pub const DEFAULT_CLIENT_SECRET: &str = "demo-oidc-client-secret";

/// How the demo's OAuth client authenticates: its secret, and optionally its public key.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// `client_secret` of the client `mfa-gate-demo`.
    pub secret: String,
    /// A PEM public key (ES256 or RS256) for `private_key_jwt`.
    pub key_pem: Option<String>,
}

impl Default for ClientSettings {
    fn default() -> ClientSettings {
        ClientSettings {
            secret: DEFAULT_CLIENT_SECRET.to_string(),
            key_pem: None,
        }
    }
}

/// An authorization request waiting for the user.
#[derive(Debug, Clone)]
struct Pending {
    redirect_uri: String,
    state: String,
    nonce: String,
    code_challenge: String,
}

/// What a code was issued for.
#[derive(Clone)]
struct Grant {
    client_id: String,
    redirect_uri: String,
    code_challenge: String,
    nonce: String,
    user: &'static DemoUser,
    auth_time: u64,
    sid: String,
}

/// The provider's code-flow state.
pub struct Oidc {
    client: Client,
    pending: ExpiringMap<Pending>,
    codes: ExpiringMap<Grant>,
    /// Opaque access tokens → their introspection claims.
    opaque: ExpiringMap<serde_json::Map<String, serde_json::Value>>,
}

impl Oidc {
    /// The state for the client `mfa-gate-demo` authenticating as `settings` says.
    pub fn new(settings: &ClientSettings) -> CliResult<Oidc> {
        let key = settings
            .key_pem
            .as_deref()
            .map(ClientKey::from_pem)
            .transpose()?;
        Ok(Oidc {
            client: Client::new(AUDIENCE, &settings.secret, key),
            pending: ExpiringMap::new(MAX_PENDING),
            codes: ExpiringMap::new(MAX_CODES),
            opaque: ExpiringMap::new(MAX_OPAQUE),
        })
    }

    /// Answers the code-flow routes; `None` for any other request.
    pub(super) fn route(
        &self,
        idp: &IdentityProvider,
        request: &DemoRequest,
        now: u64,
    ) -> Option<DemoResponse> {
        Some(match request.path.as_str() {
            "/authorize" if is_code_flow(request) => self.authorize(idp, request, now),
            "/authorize/approve" => self.approve(idp, request, now),
            "/oauth/token" => self.token(idp, request, now),
            "/oauth/introspect" => self.introspect(idp, request, now),
            "/oauth/revoke" => self.revoke(idp, request, now),
            _ => return None,
        })
    }

    /// `GET /authorize` of a code flow: check, keep, show the sign-in page.
    fn authorize(&self, idp: &IdentityProvider, request: &DemoRequest, now: u64) -> DemoResponse {
        let pending = match self.check_authorize(idp, request) {
            Ok(p) => p,
            Err(what) => return bad_request_page(&what),
        };
        let id = security_event::random_id();
        self.pending
            .insert(&id, pending, now.saturating_add(PENDING_TTL_SECS), now);
        let approve = |rest: &str| html_escape(&format!("/authorize/approve?request={id}&{rest}"));
        let others: Vec<String> = USERS
            .iter()
            .filter(|u| u.id != "passkey")
            .map(|u| {
                format!(
                    "<a href=\"{}\">{}</a>",
                    approve(&format!("user={}", u.id)),
                    html_escape(u.id)
                )
            })
            .collect();
        let links = format!(
            "<p><a href=\"{}\">Use my passkey</a> (signs you in as kim@example.com)</p>\n\
             <p><a href=\"{}\">Cancel</a></p>\n\
             <p>Other demo users: {}</p>\n",
            approve("user=passkey"),
            approve("deny=1"),
            others.join(", ")
        );
        DemoResponse::html(200, super::step_up_page(request, &links))
    }

    fn check_authorize(
        &self,
        idp: &IdentityProvider,
        request: &DemoRequest,
    ) -> Result<Pending, String> {
        for (name, value) in &request.query {
            if value.len() > MAX_PARAM_BYTES {
                return Err(format!("{name} is longer than {MAX_PARAM_BYTES} bytes"));
            }
        }
        let param = |name: &str| request.param(name).filter(|v| !v.is_empty());
        let client_id = param("client_id").ok_or("client_id is missing")?;
        if client_id != self.client.id {
            return Err(format!("unknown client_id \"{client_id}\""));
        }
        let redirect_uri = param("redirect_uri").ok_or("redirect_uri is missing")?;
        let gateway = format!("http://127.0.0.1:{}/", idp.ports.proxy);
        if !redirect_uri.starts_with(&gateway) || redirect_uri.contains('#') {
            return Err(format!(
                "redirect_uri \"{redirect_uri}\" is not on the gateway {gateway} (or has a fragment)"
            ));
        }
        if request.param("response_type") != Some("code") {
            return Err("response_type must be \"code\"".into());
        }
        if request.param("code_challenge_method") != Some("S256") {
            return Err("code_challenge_method must be \"S256\" (plain is not accepted)".into());
        }
        let code_challenge = param("code_challenge").ok_or("code_challenge is missing")?;
        if !is_pkce_value(code_challenge, 43, 43) {
            return Err("code_challenge must be 43 base64url characters (S256)".into());
        }
        let state = param("state").ok_or("state is missing")?;
        let nonce = param("nonce").ok_or("nonce is missing")?;
        Ok(Pending {
            redirect_uri: redirect_uri.to_string(),
            state: state.to_string(),
            nonce: nonce.to_string(),
            code_challenge: code_challenge.to_string(),
        })
    }

    /// `GET /authorize/approve?request=ID&(user=U|deny=1)`: back to the client with a code
    /// or `error=access_denied`.
    fn approve(&self, idp: &IdentityProvider, request: &DemoRequest, now: u64) -> DemoResponse {
        let id = request.param("request").unwrap_or_default();
        let Some((pending, expires_at)) = self.pending.take(id) else {
            return bad_request_page("unknown or already answered authorization request");
        };
        if expires_at <= now {
            return bad_request_page("the authorization request expired: start again");
        }
        let back = |params: &[(&str, &str)]| {
            let query: Vec<String> = params
                .iter()
                .map(|(k, v)| format!("{k}={}", percent_encode(v)))
                .collect();
            let sep = if pending.redirect_uri.contains('?') {
                '&'
            } else {
                '?'
            };
            DemoResponse {
                status: 302,
                headers: vec![
                    (
                        "location".into(),
                        format!("{}{sep}{}", pending.redirect_uri, query.join("&")),
                    ),
                    ("cache-control".into(), "no-store".into()),
                ],
                body: String::new(),
            }
        };
        if request.param("deny").is_some() {
            return back(&[("error", "access_denied"), ("state", &pending.state)]);
        }
        let user_id = request.param("user").unwrap_or_default();
        let Some(user) = USERS.iter().find(|u| u.id == user_id) else {
            return bad_request_page(&format!("no demo user \"{user_id}\""));
        };
        let sid = security_event::random_id();
        idp.sessions.start(user.id, &sid, now);
        let code = random_token();
        let grant = Grant {
            client_id: self.client.id.clone(),
            redirect_uri: pending.redirect_uri.clone(),
            code_challenge: pending.code_challenge.clone(),
            nonce: pending.nonce.clone(),
            user,
            auth_time: now,
            sid,
        };
        self.codes
            .insert(&code, grant, now.saturating_add(CODE_TTL_SECS), now);
        back(&[("code", &code), ("state", &pending.state)])
    }

    /// `POST /oauth/token`: a code (once) for an opaque access token and an ID token.
    fn token(&self, idp: &IdentityProvider, request: &DemoRequest, now: u64) -> DemoResponse {
        let form = match self.authenticated_form(idp, request, now) {
            Ok(form) => form,
            Err(reply) => return reply,
        };
        let field = |name: &str| {
            form.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        if field("grant_type") != Some("authorization_code") {
            return oauth_error(
                400,
                "unsupported_grant_type",
                "grant_type must be authorization_code",
            );
        }
        let Some(code) = field("code") else {
            return oauth_error(400, "invalid_request", "code is missing");
        };
        // Taken out before any check: a code is tried once, right or wrong.
        let Some((grant, expires_at)) = self.codes.take(code) else {
            return oauth_error(400, "invalid_grant", "unknown or already used code");
        };
        if expires_at <= now {
            return oauth_error(400, "invalid_grant", "code expired");
        }
        if grant.client_id != self.client.id {
            return oauth_error(400, "invalid_grant", "code was issued to another client");
        }
        if field("redirect_uri") != Some(grant.redirect_uri.as_str()) {
            return oauth_error(
                400,
                "invalid_grant",
                "redirect_uri differs from the authorization request",
            );
        }
        let Some(verifier) = field("code_verifier") else {
            return oauth_error(400, "invalid_grant", "code_verifier is missing");
        };
        if !is_pkce_value(verifier, 43, 128) || !s256_matches(verifier, &grant.code_challenge) {
            return oauth_error(
                400,
                "invalid_grant",
                "code_verifier does not match code_challenge",
            );
        }
        let mut id_claims = user_claims(idp, grant.user, now, grant.auth_time, &grant.sid);
        id_claims.insert("aud".into(), grant.client_id.clone().into());
        id_claims.insert("nonce".into(), grant.nonce.clone().into());
        let id_token = match idp.key.sign(&id_claims) {
            Ok(t) => t,
            Err(_) => return oauth_error(500, "server_error", "cannot sign the ID token"),
        };
        let access_token =
            self.issue_opaque(idp, grant.user, now, grant.auth_time, &grant.sid, None);
        DemoResponse::json(
            200,
            &json!({
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": TOKEN_TTL_SECS,
                "id_token": id_token,
                "scope": "openid",
            }),
        )
        .with_header("cache-control", "no-store")
        .with_header("pragma", "no-cache")
    }

    /// An opaque access token for `user` (a new sign-in: `sid` names its session), kept for
    /// introspection until it expires or is revoked.
    pub(super) fn issue_opaque(
        &self,
        idp: &IdentityProvider,
        user: &DemoUser,
        now: u64,
        auth_time: u64,
        sid: &str,
        jkt: Option<&str>,
    ) -> String {
        let mut claims = user_claims(idp, user, now, auth_time, sid);
        claims.insert("client_id".into(), self.client.id.clone().into());
        claims.insert("token_type".into(), "Bearer".into());
        if let Some(jkt) = jkt {
            claims.insert("cnf".into(), json!({ "jkt": jkt }));
        }
        let token = random_token();
        self.opaque
            .insert(&token, claims, now.saturating_add(TOKEN_TTL_SECS), now);
        token
    }

    /// `POST /oauth/introspect` (RFC 7662): the claims of a live opaque token.
    fn introspect(&self, idp: &IdentityProvider, request: &DemoRequest, now: u64) -> DemoResponse {
        let form = match self.authenticated_form(idp, request, now) {
            Ok(form) => form,
            Err(reply) => return reply,
        };
        let token = form
            .iter()
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.as_str());
        let Some(token) = token else {
            return oauth_error(400, "invalid_request", "token is missing");
        };
        let body = match self.opaque.get(token, now) {
            Some(mut claims) => {
                claims.insert("active".into(), true.into());
                serde_json::Value::Object(claims)
            }
            None => json!({ "active": false }),
        };
        DemoResponse::json(200, &body).with_header("cache-control", "no-store")
    }

    /// `POST /oauth/revoke` (RFC 7009): the opaque token is inactive from now on. 200 for
    /// any token, known or not (§2.2).
    fn revoke(&self, idp: &IdentityProvider, request: &DemoRequest, now: u64) -> DemoResponse {
        let form = match self.authenticated_form(idp, request, now) {
            Ok(form) => form,
            Err(reply) => return reply,
        };
        if let Some((_, token)) = form.iter().find(|(k, _)| k == "token") {
            self.opaque.take(token);
        }
        DemoResponse::empty(200)
    }

    /// The form of a POST from the authenticated client, or the error reply.
    fn authenticated_form(
        &self,
        idp: &IdentityProvider,
        request: &DemoRequest,
        now: u64,
    ) -> Result<Vec<(String, String)>, DemoResponse> {
        if request.method != "POST" {
            return Err(
                oauth_error(405, "invalid_request", "use POST").with_header("allow", "POST")
            );
        }
        let form_type = request
            .header("content-type")
            .and_then(|c| c.split(';').next())
            .map(|c| {
                c.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if form_type != Some(true) {
            return Err(oauth_error(
                400,
                "invalid_request",
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        let form = parse_query(&String::from_utf8_lossy(&request.body));
        // RFC 6749 §3.2: a parameter MUST NOT be included more than once.
        for (i, (name, _)) in form.iter().enumerate() {
            if form[..i].iter().any(|(k, _)| k == name) {
                return Err(oauth_error(
                    400,
                    "invalid_request",
                    &format!("{name} is given twice"),
                ));
            }
        }
        let endpoint = format!("{}{}", idp.base_url(), request.path);
        let audiences = [endpoint.as_str(), ISSUER];
        if let Err(why) =
            self.client
                .authenticate(request.header("authorization"), &form, &audiences, now)
        {
            return Err(oauth_error(401, "invalid_client", &why)
                .with_header("www-authenticate", "Basic realm=\"mfa-gate-demo\""));
        }
        Ok(form)
    }
}

/// The discovery members of the code flow, added to `/.well-known/openid-configuration`.
pub fn discovery(base: &str) -> serde_json::Map<String, serde_json::Value> {
    let doc = json!({
        "token_endpoint": format!("{base}/oauth/token"),
        "introspection_endpoint": format!("{base}/oauth/introspect"),
        "revocation_endpoint": format!("{base}/oauth/revoke"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": client_auth::METHODS,
        "token_endpoint_auth_signing_alg_values_supported": ["ES256", "RS256"],
        "introspection_endpoint_auth_methods_supported": client_auth::METHODS,
        "revocation_endpoint_auth_methods_supported": client_auth::METHODS,
        "id_token_signing_alg_values_supported": ["ES256"],
        "subject_types_supported": ["public"],
        "scopes_supported": ["openid"],
    });
    match doc {
        serde_json::Value::Object(map) => map,
        _ => serde_json::Map::new(),
    }
}

/// Whether `/authorize` is a code flow request (PKCE or a nonce given) rather than the
/// legacy step-up page.
fn is_code_flow(request: &DemoRequest) -> bool {
    request.param("response_type") == Some("code")
        && (request.param("code_challenge").is_some() || request.param("nonce").is_some())
}

/// The claims of `user` signed in at `auth_time` in session `sid`, issued `now` for
/// [`TOKEN_TTL_SECS`]: what `mint` puts in a token, with the user's `acr`.
fn user_claims(
    idp: &IdentityProvider,
    user: &DemoUser,
    now: u64,
    auth_time: u64,
    sid: &str,
) -> serde_json::Map<String, serde_json::Value> {
    let mut claims = idp.claims(user, now, sid);
    claims.insert("exp".into(), now.saturating_add(TOKEN_TTL_SECS).into());
    claims.insert("auth_time".into(), auth_time.into());
    claims.insert("acr".into(), user.acr.into());
    claims
}

/// 32 random bytes, base64url: a code or an opaque token.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    jwt_simple::reexports::rand::fill(&mut bytes[..]);
    Base64UrlSafeNoPadding::encode_to_string(bytes).unwrap_or_else(|_| security_event::random_id())
}

/// RFC 7636 §4.1: `[A-Za-z0-9-._~]`, between `min` and `max` characters.
fn is_pkce_value(value: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// `BASE64URL(SHA256(verifier)) == challenge` (RFC 7636 §4.6), compared by digest.
fn s256_matches(verifier: &str, challenge: &str) -> bool {
    let computed =
        Base64UrlSafeNoPadding::encode_to_string(hmac_sha256::Hash::hash(verifier.as_bytes()))
            .unwrap_or_default();
    hmac_sha256::Hash::hash(computed.as_bytes()) == hmac_sha256::Hash::hash(challenge.as_bytes())
}

/// An RFC 6749 §5.2 error.
fn oauth_error(status: u16, error: &str, description: &str) -> DemoResponse {
    DemoResponse::json(
        status,
        &json!({ "error": error, "error_description": description }),
    )
    .with_header("cache-control", "no-store")
}

/// A 400 page for a bad authorization request (the browser stays here).
fn bad_request_page(what: &str) -> DemoResponse {
    DemoResponse::html(
        400,
        format!(
            "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>mfa-gate demo IdP</title></head>\n\
             <body style=\"font-family:sans-serif;max-width:40em;margin:3em auto\">\n\
             <h1>Bad authorization request</h1>\n<p>{}</p>\n</body></html>\n",
            html_escape(what)
        ),
    )
}

/// Seconds since the epoch (the handlers take `now` so tests can move the clock).
pub fn now() -> u64 {
    keys::now_secs()
}

#[cfg(test)]
mod tests;
