//! How the demo identity provider authenticates its one OAuth client at the token,
//! introspection and revocation endpoints: `client_secret_basic` (RFC 6749 §2.3.1),
//! `client_secret_post` (the same section, body parameters) and `private_key_jwt`
//! (RFC 7523 §2.2, OpenID Connect Core §9) with a public key the demo is given.
//!
//! A request uses exactly one method (RFC 6749 §2.3: "MUST NOT use more than one").
//! Secrets are compared through their SHA-256 digests (no early exit on the first
//! differing byte); a client assertion's `jti` is kept until its `exp`, so it is used once.
//! Nothing here logs or echoes a secret or an assertion.

use super::expiring::ExpiringMap;
use crate::error::{CliError, CliResult};
use jwt_simple::prelude::*;
use jwt_simple::reexports::ct_codecs::{Base64, Decoder};
use std::collections::HashSet;

/// `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The client authentication methods, as discovery names them.
pub const METHODS: [&str; 3] = [
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
];

/// Assertion ids remembered (each until its assertion expires).
const MAX_JTIS: usize = 4096;

/// The longest an assertion may live (`exp` beyond now + this is refused).
const MAX_ASSERTION_LIFETIME_SECS: u64 = 600;

/// The public key the client signs its assertions with.
pub enum ClientKey {
    /// ECDSA P-256 (`ES256`).
    Es256(ES256PublicKey),
    /// RSA PKCS#1 v1.5 with SHA-256 (`RS256`).
    Rs256(Box<RS256PublicKey>),
}

impl ClientKey {
    /// A public key in PEM form: an EC P-256 key (ES256), else an RSA key (RS256).
    pub fn from_pem(text: &str) -> CliResult<ClientKey> {
        if let Ok(key) = ES256PublicKey::from_pem(text) {
            return Ok(ClientKey::Es256(key));
        }
        RS256PublicKey::from_pem(text)
            .map(|k| ClientKey::Rs256(Box::new(k)))
            .map_err(|_| {
                CliError::new(
                    "--client-key-pem: expected an EC P-256 (ES256) or RSA (RS256) public key in PEM form",
                )
            })
    }

    fn verify(
        &self,
        token: &str,
        options: VerificationOptions,
    ) -> Result<JWTClaims<NoCustomClaims>, String> {
        let verified = match self {
            ClientKey::Es256(k) => k.verify_token::<NoCustomClaims>(token, Some(options)),
            ClientKey::Rs256(k) => k.verify_token::<NoCustomClaims>(token, Some(options)),
        };
        verified.map_err(|e| format!("client_assertion does not verify: {e}"))
    }
}

/// The demo's OAuth client: its id, its secret and, optionally, its assertion key.
pub struct Client {
    /// `client_id`.
    pub id: String,
    secret: String,
    key: Option<ClientKey>,
    used_jtis: ExpiringMap<()>,
}

/// Which method a request authenticated with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// HTTP Basic with the urlencoded id and secret.
    SecretBasic,
    /// `client_id` and `client_secret` in the form body.
    SecretPost,
    /// A signed JWT assertion.
    PrivateKeyJwt,
}

impl Client {
    /// The client `id` with `secret`, and the key of its assertions if it has one.
    pub fn new(id: &str, secret: &str, key: Option<ClientKey>) -> Client {
        Client {
            id: id.to_string(),
            secret: secret.to_string(),
            key,
            used_jtis: ExpiringMap::new(MAX_JTIS),
        }
    }

    /// Authenticates a request from its `Authorization` header and form body. `audiences`
    /// are the values a client assertion's `aud` may take (the endpoint URL, the issuer).
    /// The error is the `error_description` of a 401 `invalid_client`.
    pub fn authenticate(
        &self,
        authorization: Option<&str>,
        form: &[(String, String)],
        audiences: &[&str],
        now: u64,
    ) -> Result<Method, String> {
        let field = |name: &str| {
            form.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let basic = authorization.and_then(|h| {
            let (scheme, rest) = h.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("basic").then_some(rest.trim())
        });
        let post = field("client_secret");
        let assertion = field("client_assertion");
        let given = [basic.is_some(), post.is_some(), assertion.is_some()];
        match given.iter().filter(|g| **g).count() {
            0 => return Err("no client authentication".into()),
            1 => {}
            _ => return Err("more than one client authentication method".into()),
        }
        if let Some(encoded) = basic {
            let (id, secret) = decode_basic(encoded)?;
            if field("client_id").is_some_and(|body_id| body_id != id) {
                return Err("client_id in the body differs from the Basic credentials".into());
            }
            return self
                .check_secret(&id, &secret)
                .map(|()| Method::SecretBasic);
        }
        if let Some(secret) = post {
            let id = field("client_id").ok_or("client_secret without client_id")?;
            return self.check_secret(id, secret).map(|()| Method::SecretPost);
        }
        let assertion = assertion.unwrap_or_default();
        if field("client_assertion_type") != Some(JWT_BEARER_ASSERTION) {
            return Err(format!(
                "client_assertion_type must be {JWT_BEARER_ASSERTION}"
            ));
        }
        self.check_assertion(assertion, field("client_id"), audiences, now)
            .map(|()| Method::PrivateKeyJwt)
    }

    fn check_secret(&self, id: &str, secret: &str) -> Result<(), String> {
        let same = |a: &str, b: &str| {
            hmac_sha256::Hash::hash(a.as_bytes()) == hmac_sha256::Hash::hash(b.as_bytes())
        };
        // Both compared, so an unknown id and a wrong secret take the same path.
        let id_ok = same(id, &self.id);
        let secret_ok = same(secret, &self.secret);
        if id_ok && secret_ok {
            Ok(())
        } else {
            Err("unknown client or wrong client secret".into())
        }
    }

    fn check_assertion(
        &self,
        assertion: &str,
        body_id: Option<&str>,
        audiences: &[&str],
        now: u64,
    ) -> Result<(), String> {
        let key = self.key.as_ref().ok_or(
            "private_key_jwt: the demo has no client key (start it with --client-key-pem)",
        )?;
        if body_id.is_some_and(|id| id != self.id) {
            return Err("unknown client".into());
        }
        let options = VerificationOptions {
            allowed_issuers: Some(HashSet::from([self.id.clone()])),
            allowed_audiences: Some(audiences.iter().map(|a| a.to_string()).collect()),
            required_subject: Some(self.id.clone()),
            artificial_time: Some(Duration::from_secs(now)),
            time_tolerance: Some(Duration::from_secs(30)),
            ..VerificationOptions::default()
        };
        let claims = key.verify(assertion, options)?;
        let exp = claims
            .expires_at
            .map(|d| d.as_secs())
            .ok_or("client_assertion has no exp")?;
        if exp > now.saturating_add(MAX_ASSERTION_LIFETIME_SECS) {
            return Err(format!(
                "client_assertion lives too long (exp more than {MAX_ASSERTION_LIFETIME_SECS} s ahead)"
            ));
        }
        let jti = claims.jwt_id.ok_or("client_assertion has no jti")?;
        if self.used_jtis.contains(&jti, now) {
            return Err("client_assertion jti already used".into());
        }
        // Kept past its exp by the tolerance, so that it cannot come back either.
        self.used_jtis.insert(&jti, (), exp.saturating_add(30), now);
        Ok(())
    }
}

/// `base64(urlenc(id) ":" urlenc(secret))` → (id, secret), RFC 6749 §2.3.1.
fn decode_basic(encoded: &str) -> Result<(String, String), String> {
    let bytes = Base64::decode_to_vec(encoded.as_bytes(), None)
        .map_err(|_| "Basic credentials are not base64")?;
    let text = String::from_utf8(bytes).map_err(|_| "Basic credentials are not UTF-8")?;
    let (id, secret) = text
        .split_once(':')
        .ok_or("Basic credentials have no ':'")?;
    Ok((form_decode(id), form_decode(secret)))
}

/// Decodes one `application/x-www-form-urlencoded` value (`+` is a space).
fn form_decode(text: &str) -> String {
    let escaped = text.replace('&', "%26").replace('=', "%3D");
    form_urlencoded::parse(format!("v={escaped}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use jwt_simple::reexports::ct_codecs::Encoder;

    const AUD: [&str; 2] = [
        "http://127.0.0.1:10001/oauth/token",
        "https://idp.mfa-gate.test",
    ];

    fn basic(id: &str, secret: &str) -> String {
        let enc = |t: &str| form_urlencoded::byte_serialize(t.as_bytes()).collect::<String>();
        let text = format!("{}:{}", enc(id), enc(secret));
        format!(
            "Basic {}",
            Base64::encode_to_string(text.as_bytes()).unwrap()
        )
    }

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn basic_decodes_urlencoded_credentials() {
        let client = Client::new("c&1", "s:e cr+et", None);
        let header = basic("c&1", "s:e cr+et");
        assert_eq!(
            client.authenticate(Some(&header), &[], &AUD, 0),
            Ok(Method::SecretBasic)
        );
        let wrong = basic("c&1", "nope");
        assert!(client.authenticate(Some(&wrong), &[], &AUD, 0).is_err());
    }

    #[test]
    fn one_method_only() {
        let client = Client::new("c", "s", None);
        let both = form(&[("client_id", "c"), ("client_secret", "s")]);
        let err = client
            .authenticate(Some(&basic("c", "s")), &both, &AUD, 0)
            .unwrap_err();
        assert!(err.contains("more than one"), "{err}");
        assert_eq!(
            client.authenticate(None, &both, &AUD, 0),
            Ok(Method::SecretPost)
        );
        assert!(client.authenticate(None, &[], &AUD, 0).is_err());
    }

    #[test]
    fn an_rsa_pem_is_an_rs256_key() {
        let pair = RS256KeyPair::generate(2048).unwrap();
        let pem = pair.public_key().to_pem().unwrap();
        assert!(matches!(ClientKey::from_pem(&pem), Ok(ClientKey::Rs256(_))));
        assert!(ClientKey::from_pem("not a key").is_err());
    }
}
