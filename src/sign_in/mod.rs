//! The gateway finishes a browser's step-up sign-in itself, for applications that cannot
//! (OpenID Connect Core §3.1, the authorization code flow, with PKCE, RFC 7636):
//!
//! 1. [`begin`]: a step-up redirect carries a fresh random `state`, a `nonce` and a PKCE
//!    S256 challenge, and sets a short-lived HttpOnly cookie bound to that `state` that
//!    also carries where to go back and what was asked ([`state`]).
//! 2. [`callback`]: the provider sends the browser to the callback path with `code` and
//!    `state`; the cookie must match, be intact and fresh, and its `state` not used before
//!    ([`used`]); then the code is exchanged at the token endpoint (the glue's callout).
//! 3. [`exchange`]: the token endpoint's answer is read, its ID token verified as any
//!    session token (its `nonce`, and its level and `auth_time` against what was asked),
//!    the session cookie set and the browser sent back.
//!
//! Every failure is an HTML page ([`pages`]), never a loop and never a session.
//! Nothing here reads the VM environment: the glue reads the secrets into
//! [`SignInSecrets`] and attaches them to the configuration.

pub mod callback;
pub mod exchange;
pub mod pages;
pub mod state;
pub mod used;

#[cfg(test)]
mod tests;

use crate::assurance::Level;

/// Default lifetime of a sign-in's state cookie, seconds.
pub const DEFAULT_STATE_TTL_SECS: u64 = 600;
/// Default timeout of the token endpoint call, milliseconds.
pub const DEFAULT_TIMEOUT_MS: u64 = 5000;
/// Default logout path.
pub const DEFAULT_LOGOUT_PATH: &str = "/.mfa-gate/logout";
/// The state cookie's name.
pub const STATE_COOKIE: &str = "mfa_gate_signin";
/// The largest token endpoint answer read, bytes.
pub const MAX_TOKEN_ANSWER_BYTES: usize = 64 * 1024;
/// The largest session cookie set, bytes (browsers keep about 4096 per cookie).
pub const MAX_SESSION_COOKIE_BYTES: usize = 4000;

/// How the gateway authenticates to the token endpoint (OpenID Connect Core §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// HTTP Basic with the client id and secret (RFC 6749 §2.3.1).
    SecretBasic,
    /// `client_id` and `client_secret` in the form body.
    SecretPost,
    /// A JWT signed with the client's ES256 key (RFC 7523 §2.2).
    PrivateKeyJwt,
}

/// The token endpoint, reached through an Envoy cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenEndpoint {
    /// Envoy cluster name.
    pub cluster: String,
    /// The endpoint's URL as configured (the `aud` of a client assertion).
    pub url: String,
    /// `:authority` of the call.
    pub authority: String,
    /// `:path` of the call.
    pub path: String,
    /// Call timeout, milliseconds.
    pub timeout_ms: u64,
}

/// The compiled `sign_in` section.
#[derive(Debug, Clone)]
pub struct SignInConfig {
    /// The issuer (index into `Config::issuers`) whose step-up this finishes.
    pub issuer: usize,
    /// The OAuth client id (the issuer's `step_up.client_id`).
    pub client_id: String,
    /// The registered redirect URI (the issuer's `step_up.redirect_uri`).
    pub redirect_uri: String,
    /// Its path: where the provider sends the browser back.
    pub callback_path: String,
    /// Where a browser signs out (the session cookie is cleared).
    pub logout_path: String,
    /// Where the browser goes after signing out (a path on this origin).
    pub after_logout: String,
    /// The token endpoint.
    pub token_endpoint: TokenEndpoint,
    /// How the gateway authenticates there.
    pub client_auth: ClientAuth,
    /// The VM environment variable with the client secret (secret methods).
    pub client_secret_env: Option<String>,
    /// The VM environment variable with the client's private EC P-256 JWK (private_key_jwt).
    pub client_key_env: Option<String>,
    /// The VM environment variable with the key that protects state cookies (≥ 32 bytes;
    /// every Envoy of a fleet must have the same one).
    pub state_key_env: String,
    /// The session cookie set after sign-in (one of the cookie token sources).
    pub session_cookie: String,
    /// Lifetime of a sign-in's state cookie, seconds.
    pub state_ttl_secs: u64,
    /// Whether cookies are marked `Secure` (only a plain-HTTP test setup turns it off).
    pub secure_cookies: bool,
    /// Read from the VM environment by the glue at configure time.
    pub secrets: Option<SignInSecrets>,
}

/// The sign-in's secrets, read from the VM environment (never from the configuration).
#[derive(Clone)]
pub struct SignInSecrets {
    /// Protects state cookies and derives each sign-in's PKCE verifier and nonce.
    pub state_key: Vec<u8>,
    /// The client secret (secret methods).
    pub client_secret: Option<String>,
    /// The client's signing key (private_key_jwt).
    pub client_key: Option<ClientKey>,
}

/// The client's ES256 key for `private_key_jwt`, given as a private JWK (RFC 7517, RFC 7518
/// §6.2: `kty` EC, `crv` P-256, `x`, `y` and `d`; its `kid`, when present, goes in the
/// assertion's header), as providers hand them out (Okta generates one in its console).
#[derive(Clone)]
pub struct ClientKey {
    /// The signing key (ring checks that `x` and `y` are `d`'s public key).
    signing: std::sync::Arc<ring::signature::EcdsaKeyPair>,
    /// The JWK's `kid`.
    pub kid: Option<String>,
}

impl ClientKey {
    /// Reads a private EC P-256 JWK.
    pub fn from_jwk(text: &str) -> Result<ClientKey, &'static str> {
        use ct_codecs::{Base64UrlSafeNoPadding, Decoder};
        let jwk: serde_json::Value = serde_json::from_str(text).map_err(|_| "not a JSON JWK")?;
        let field = |name: &str| jwk.get(name).and_then(|v| v.as_str());
        if field("kty") != Some("EC") || field("crv") != Some("P-256") {
            return Err("not an EC P-256 JWK (kty EC, crv P-256)");
        }
        let d = field("d").ok_or("the JWK has no private part (d)")?;
        let d = Base64UrlSafeNoPadding::decode_to_vec(d, None).map_err(|_| "d is not base64url")?;
        // A scalar written without its leading zero bytes is still the same scalar.
        if d.len() > 32 {
            return Err("d is not a P-256 key");
        }
        let mut scalar = vec![0u8; 32 - d.len()];
        scalar.extend_from_slice(&d);
        let coordinate = |name: &str| {
            field(name)
                .and_then(|v| Base64UrlSafeNoPadding::decode_to_vec(v, None).ok())
                .filter(|bytes| bytes.len() == 32)
        };
        let (Some(x), Some(y)) = (coordinate("x"), coordinate("y")) else {
            return Err("the JWK has no public part (x and y, 32 bytes each)");
        };
        let point = [&[0x04][..], &x, &y].concat();
        let signing = ring::signature::EcdsaKeyPair::from_private_key_and_public_key(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &scalar,
            &point,
            &ring::rand::SystemRandom::new(),
        )
        .map_err(|_| "d is not a P-256 key, or x and y are not its public key")?;
        Ok(ClientKey {
            signing: std::sync::Arc::new(signing),
            kid: field("kid").map(str::to_string),
        })
    }

    /// An ES256 signature (`r || s`, RFC 7518 §3.4) over `input`; `None` when no fresh
    /// randomness could be had.
    pub fn sign(&self, input: &[u8]) -> Option<Vec<u8>> {
        let signature = self
            .signing
            .sign(&ring::rand::SystemRandom::new(), input)
            .ok()?;
        Some(signature.as_ref().to_vec())
    }
}

impl std::fmt::Debug for SignInSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignInSecrets(..)")
    }
}

/// The smallest state key accepted, bytes.
pub const MIN_STATE_KEY_BYTES: usize = 32;

impl SignInSecrets {
    /// The secrets named by `config`, looked up with `env` (the VM environment). Fails
    /// with a message naming the variable when one is missing or too short.
    pub fn read(
        config: &SignInConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<SignInSecrets, String> {
        let required = |name: &str, field: &str| -> Result<String, String> {
            match env(name) {
                Some(v) if !v.is_empty() => Ok(v),
                _ => Err(format!(
                    "sign_in.{field}: environment variable {name} is not set (add it to the plugin's vm_config.environment_variables)"
                )),
            }
        };
        let state_key = required(&config.state_key_env, "state_key_env")?.into_bytes();
        if state_key.len() < MIN_STATE_KEY_BYTES {
            return Err(format!(
                "sign_in.state_key_env: {} holds {} bytes; at least {MIN_STATE_KEY_BYTES} are needed",
                config.state_key_env,
                state_key.len()
            ));
        }
        let client_secret = match &config.client_secret_env {
            Some(name) => Some(required(name, "client_secret_env")?),
            None => None,
        };
        let client_key = match &config.client_key_env {
            Some(name) => {
                let jwk = required(name, "client_key_env")?;
                Some(ClientKey::from_jwk(&jwk).map_err(|why| {
                    format!("sign_in.client_key_env: {name} does not hold the client's key: {why}")
                })?)
            }
            None => None,
        };
        Ok(SignInSecrets {
            state_key,
            client_secret,
            client_key,
        })
    }
}

/// A request for one of the sign-in's own paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInPath {
    /// The provider sent the browser back.
    Callback,
    /// The browser signs out.
    Logout,
}

/// Which sign-in path `target` (`:path`, query included) is, exactly as sent.
pub fn path_of(config: &SignInConfig, target: &[u8]) -> Option<SignInPath> {
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    if path == config.callback_path.as_bytes() {
        Some(SignInPath::Callback)
    } else if path == config.logout_path.as_bytes() {
        Some(SignInPath::Logout)
    } else {
        None
    }
}

/// What a step-up asked for: carried in the state cookie and checked on the way back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked {
    /// The level the route needs.
    pub level: Level,
    /// The `acr_values` sent.
    pub acr_values: String,
    /// The `max_age` sent, seconds.
    pub max_age: Option<u64>,
}

/// Fresh random bytes from the host (WASI `random_get` in Envoy, the OS natively).
pub fn fresh_random() -> Option<[u8; 16]> {
    let mut bytes = [0_u8; 16];
    getrandom::getrandom(&mut bytes).ok()?;
    Some(bytes)
}

pub use callback::begin;
