//! Test signing keys: generate one (`mfa-gate keygen`), load one from a private JWK or a PEM
//! file, publish its public JWK, and sign a claim set (`mfa-gate token`).
//!
//! For demos and tests only: keys are written in the clear and tokens carry whatever claims
//! the caller asks for.

use crate::error::{CliError, CliResult};
use jwt_simple::prelude::*;
use jwt_simple::reexports::ct_codecs::{Base64UrlSafeNoPadding, Decoder, Encoder};

/// RSA modulus size for generated keys.
const RSA_BITS: usize = 2048;

/// The algorithms `keygen` and `token` support.
pub const ALGORITHMS: [&str; 12] = [
    "ES256", "ES384", "EdDSA", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "HS256",
    "HS384", "HS512",
];

/// A private signing key of one JWS algorithm.
pub enum SigningKey {
    Es256(ES256KeyPair),
    Es384(ES384KeyPair),
    EdDsa(Ed25519KeyPair),
    Rs256(RS256KeyPair),
    Rs384(RS384KeyPair),
    Rs512(RS512KeyPair),
    Ps256(PS256KeyPair),
    Ps384(PS384KeyPair),
    Ps512(PS512KeyPair),
    Hs256(HS256Key, Vec<u8>),
    Hs384(HS384Key, Vec<u8>),
    Hs512(HS512Key, Vec<u8>),
}

fn unknown_alg(alg: &str) -> CliError {
    CliError::new(format!(
        "unsupported algorithm \"{alg}\" (expected one of: {})",
        ALGORITHMS.join(", ")
    ))
}

fn key_error(what: &str, e: jwt_simple::Error) -> CliError {
    CliError::new(format!("{what}: {e}"))
}

impl SigningKey {
    /// A fresh random key for `alg`, with key id `kid`.
    pub fn generate(alg: &str, kid: &str) -> CliResult<SigningKey> {
        let rsa = |e| key_error("cannot generate an RSA key", e);
        Ok(match alg {
            "ES256" => SigningKey::Es256(ES256KeyPair::generate().with_key_id(kid)),
            "ES384" => SigningKey::Es384(ES384KeyPair::generate().with_key_id(kid)),
            "EdDSA" => SigningKey::EdDsa(Ed25519KeyPair::generate().with_key_id(kid)),
            "RS256" => SigningKey::Rs256(
                RS256KeyPair::generate(RSA_BITS)
                    .map_err(rsa)?
                    .with_key_id(kid),
            ),
            "RS384" => SigningKey::Rs384(
                RS384KeyPair::generate(RSA_BITS)
                    .map_err(rsa)?
                    .with_key_id(kid),
            ),
            "RS512" => SigningKey::Rs512(
                RS512KeyPair::generate(RSA_BITS)
                    .map_err(rsa)?
                    .with_key_id(kid),
            ),
            "PS256" => SigningKey::Ps256(
                PS256KeyPair::generate(RSA_BITS)
                    .map_err(rsa)?
                    .with_key_id(kid),
            ),
            "PS384" => SigningKey::Ps384(
                PS384KeyPair::generate(RSA_BITS)
                    .map_err(rsa)?
                    .with_key_id(kid),
            ),
            "PS512" => SigningKey::Ps512(
                PS512KeyPair::generate(RSA_BITS)
                    .map_err(rsa)?
                    .with_key_id(kid),
            ),
            "HS256" | "HS384" | "HS512" => {
                let mut secret = vec![0u8; 32];
                jwt_simple::reexports::rand::fill(&mut secret[..]);
                SigningKey::hmac(alg, secret, kid)?
            }
            other => return Err(unknown_alg(other)),
        })
    }

    fn hmac(alg: &str, secret: Vec<u8>, kid: &str) -> CliResult<SigningKey> {
        Ok(match alg {
            "HS256" => SigningKey::Hs256(HS256Key::from_bytes(&secret).with_key_id(kid), secret),
            "HS384" => SigningKey::Hs384(HS384Key::from_bytes(&secret).with_key_id(kid), secret),
            "HS512" => SigningKey::Hs512(HS512Key::from_bytes(&secret).with_key_id(kid), secret),
            other => return Err(unknown_alg(other)),
        })
    }

    /// Loads a key file: a private JWK (JSON) or a PEM private key. `alg` chooses the
    /// algorithm; without it the JWK's `alg`, else its key type decides (EC P-256 → ES256,
    /// P-384 → ES384, OKP → EdDSA, RSA → RS256, oct → HS256). A PEM needs `alg` unless it
    /// is an EC or Ed25519 key (tried in that order).
    pub fn load(text: &str, alg: Option<&str>, kid: Option<&str>) -> CliResult<SigningKey> {
        if text.trim_start().starts_with('{') {
            SigningKey::from_jwk(text, alg, kid)
        } else if text.contains("-----BEGIN") {
            SigningKey::from_pem(text, alg, kid)
        } else {
            Err(CliError::new(
                "the key file is neither a JSON Web Key nor a PEM private key",
            ))
        }
    }

    fn from_jwk(text: &str, alg: Option<&str>, kid: Option<&str>) -> CliResult<SigningKey> {
        let jwk: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| CliError::new(format!("the key file is not valid JSON: {e}")))?;
        let field = |name: &str| jwk.get(name).and_then(|v| v.as_str()).map(str::to_string);
        let kty = field("kty").ok_or_else(|| CliError::new("the JWK has no \"kty\""))?;
        let crv = field("crv").unwrap_or_default();
        let alg = match alg.map(str::to_string).or_else(|| field("alg")) {
            Some(a) => a,
            None => match (kty.as_str(), crv.as_str()) {
                ("EC", "P-256") => "ES256".to_string(),
                ("EC", "P-384") => "ES384".to_string(),
                ("OKP", _) => "EdDSA".to_string(),
                ("RSA", _) => "RS256".to_string(),
                ("oct", _) => "HS256".to_string(),
                _ => {
                    return Err(CliError::new(format!(
                        "unsupported JWK key type \"{kty}\" {crv}"
                    )))
                }
            },
        };
        let kid = kid.map(str::to_string).or_else(|| field("kid"));
        if kty == "oct" {
            let k = field("k").ok_or_else(|| CliError::new("the oct JWK has no \"k\""))?;
            let secret = Base64UrlSafeNoPadding::decode_to_vec(k.as_bytes(), None)
                .map_err(|_| CliError::new("the oct JWK's \"k\" is not base64url"))?;
            return SigningKey::hmac(&alg, secret, kid.as_deref().unwrap_or(""));
        }
        let bad = |e| key_error(&format!("the JWK is not a usable {alg} private key"), e);
        let key = match alg.as_str() {
            "ES256" => SigningKey::Es256(ES256KeyPair::from_jwk(text).map_err(bad)?),
            "ES384" => SigningKey::Es384(ES384KeyPair::from_jwk(text).map_err(bad)?),
            "EdDSA" => SigningKey::EdDsa(Ed25519KeyPair::from_jwk(text).map_err(bad)?),
            "RS256" => SigningKey::Rs256(RS256KeyPair::from_jwk(text).map_err(bad)?),
            "RS384" => SigningKey::Rs384(RS384KeyPair::from_jwk(text).map_err(bad)?),
            "RS512" => SigningKey::Rs512(RS512KeyPair::from_jwk(text).map_err(bad)?),
            "PS256" => SigningKey::Ps256(PS256KeyPair::from_jwk(text).map_err(bad)?),
            "PS384" => SigningKey::Ps384(PS384KeyPair::from_jwk(text).map_err(bad)?),
            "PS512" => SigningKey::Ps512(PS512KeyPair::from_jwk(text).map_err(bad)?),
            other => return Err(unknown_alg(other)),
        };
        Ok(match kid {
            Some(k) => key.with_key_id(&k),
            None => key,
        })
    }

    fn from_pem(text: &str, alg: Option<&str>, kid: Option<&str>) -> CliResult<SigningKey> {
        let key = match alg {
            Some(alg) => {
                let bad = |e| key_error(&format!("the PEM is not a usable {alg} private key"), e);
                match alg {
                    "ES256" => SigningKey::Es256(ES256KeyPair::from_pem(text).map_err(bad)?),
                    "ES384" => SigningKey::Es384(ES384KeyPair::from_pem(text).map_err(bad)?),
                    "EdDSA" => SigningKey::EdDsa(Ed25519KeyPair::from_pem(text).map_err(bad)?),
                    "RS256" => SigningKey::Rs256(RS256KeyPair::from_pem(text).map_err(bad)?),
                    "RS384" => SigningKey::Rs384(RS384KeyPair::from_pem(text).map_err(bad)?),
                    "RS512" => SigningKey::Rs512(RS512KeyPair::from_pem(text).map_err(bad)?),
                    "PS256" => SigningKey::Ps256(PS256KeyPair::from_pem(text).map_err(bad)?),
                    "PS384" => SigningKey::Ps384(PS384KeyPair::from_pem(text).map_err(bad)?),
                    "PS512" => SigningKey::Ps512(PS512KeyPair::from_pem(text).map_err(bad)?),
                    other => return Err(unknown_alg(other)),
                }
            }
            None => {
                if let Ok(k) = ES256KeyPair::from_pem(text) {
                    SigningKey::Es256(k)
                } else if let Ok(k) = ES384KeyPair::from_pem(text) {
                    SigningKey::Es384(k)
                } else if let Ok(k) = Ed25519KeyPair::from_pem(text) {
                    SigningKey::EdDsa(k)
                } else {
                    return Err(CliError::new(
                        "cannot tell the PEM key's algorithm: pass --alg (e.g. --alg RS256)",
                    ));
                }
            }
        };
        Ok(match kid {
            Some(k) => key.with_key_id(k),
            None => key,
        })
    }

    /// The same key with key id `kid`.
    pub fn with_key_id(self, kid: &str) -> SigningKey {
        match self {
            SigningKey::Es256(k) => SigningKey::Es256(k.with_key_id(kid)),
            SigningKey::Es384(k) => SigningKey::Es384(k.with_key_id(kid)),
            SigningKey::EdDsa(k) => SigningKey::EdDsa(k.with_key_id(kid)),
            SigningKey::Rs256(k) => SigningKey::Rs256(k.with_key_id(kid)),
            SigningKey::Rs384(k) => SigningKey::Rs384(k.with_key_id(kid)),
            SigningKey::Rs512(k) => SigningKey::Rs512(k.with_key_id(kid)),
            SigningKey::Ps256(k) => SigningKey::Ps256(k.with_key_id(kid)),
            SigningKey::Ps384(k) => SigningKey::Ps384(k.with_key_id(kid)),
            SigningKey::Ps512(k) => SigningKey::Ps512(k.with_key_id(kid)),
            SigningKey::Hs256(k, s) => SigningKey::Hs256(k.with_key_id(kid), s),
            SigningKey::Hs384(k, s) => SigningKey::Hs384(k.with_key_id(kid), s),
            SigningKey::Hs512(k, s) => SigningKey::Hs512(k.with_key_id(kid), s),
        }
    }

    /// The JWS `alg` name.
    pub fn algorithm(&self) -> &'static str {
        match self {
            SigningKey::Es256(_) => "ES256",
            SigningKey::Es384(_) => "ES384",
            SigningKey::EdDsa(_) => "EdDSA",
            SigningKey::Rs256(_) => "RS256",
            SigningKey::Rs384(_) => "RS384",
            SigningKey::Rs512(_) => "RS512",
            SigningKey::Ps256(_) => "PS256",
            SigningKey::Ps384(_) => "PS384",
            SigningKey::Ps512(_) => "PS512",
            SigningKey::Hs256(..) => "HS256",
            SigningKey::Hs384(..) => "HS384",
            SigningKey::Hs512(..) => "HS512",
        }
    }

    fn key_id(&self) -> Option<String> {
        match self {
            SigningKey::Es256(k) => k.key_id().clone(),
            SigningKey::Es384(k) => k.key_id().clone(),
            SigningKey::EdDsa(k) => k.key_id().clone(),
            SigningKey::Rs256(k) => k.key_id().clone(),
            SigningKey::Rs384(k) => k.key_id().clone(),
            SigningKey::Rs512(k) => k.key_id().clone(),
            SigningKey::Ps256(k) => k.key_id().clone(),
            SigningKey::Ps384(k) => k.key_id().clone(),
            SigningKey::Ps512(k) => k.key_id().clone(),
            SigningKey::Hs256(k, _) => k.key_id().clone(),
            SigningKey::Hs384(k, _) => k.key_id().clone(),
            SigningKey::Hs512(k, _) => k.key_id().clone(),
        }
    }

    /// The private key as a JWK (JSON text), with `alg` set.
    pub fn private_jwk(&self) -> CliResult<String> {
        let text = match self {
            SigningKey::Es256(k) => k.to_jwk(),
            SigningKey::Es384(k) => k.to_jwk(),
            SigningKey::EdDsa(k) => k.to_jwk(),
            SigningKey::Rs256(k) => k.to_jwk(),
            SigningKey::Rs384(k) => k.to_jwk(),
            SigningKey::Rs512(k) => k.to_jwk(),
            SigningKey::Ps256(k) => k.to_jwk(),
            SigningKey::Ps384(k) => k.to_jwk(),
            SigningKey::Ps512(k) => k.to_jwk(),
            SigningKey::Hs256(_, s) | SigningKey::Hs384(_, s) | SigningKey::Hs512(_, s) => {
                let k = Base64UrlSafeNoPadding::encode_to_string(s)
                    .map_err(|_| CliError::new("cannot encode the secret"))?;
                serde_json::json!({"kty": "oct", "k": k}).to_string()
            }
        };
        self.annotate(&text)
    }

    /// The public key as a JWK (JSON object), with `alg`, `use` and `kid`. For HMAC keys
    /// (no public half) this is the secret itself, as `hmac_secret_base64` needs it.
    pub fn public_jwk(&self) -> CliResult<serde_json::Value> {
        let text = match self {
            SigningKey::Es256(k) => k.public_key().to_jwk(),
            SigningKey::Es384(k) => k.public_key().to_jwk(),
            SigningKey::EdDsa(k) => k.public_key().to_jwk(),
            SigningKey::Rs256(k) => k.public_key().to_jwk(),
            SigningKey::Rs384(k) => k.public_key().to_jwk(),
            SigningKey::Rs512(k) => k.public_key().to_jwk(),
            SigningKey::Ps256(k) => k.public_key().to_jwk(),
            SigningKey::Ps384(k) => k.public_key().to_jwk(),
            SigningKey::Ps512(k) => k.public_key().to_jwk(),
            SigningKey::Hs256(..) | SigningKey::Hs384(..) | SigningKey::Hs512(..) => {
                return Err(CliError::new(
                    "an HMAC key has no public half: configure its secret as hmac_secret_base64",
                ))
            }
        };
        let text = self.annotate(&text)?;
        serde_json::from_str(&text).map_err(|e| CliError::new(format!("bad JWK export: {e}")))
    }

    /// Sets `alg`, `use` and `kid` on an exported JWK.
    fn annotate(&self, jwk_text: &str) -> CliResult<String> {
        let mut jwk: serde_json::Map<String, serde_json::Value> = serde_json::from_str(jwk_text)
            .map_err(|e| CliError::new(format!("bad JWK export: {e}")))?;
        jwk.insert("alg".into(), self.algorithm().into());
        jwk.insert("use".into(), "sig".into());
        if let Some(kid) = self.key_id() {
            jwk.insert("kid".into(), kid.into());
        }
        serde_json::to_string_pretty(&jwk)
            .map_err(|e| CliError::new(format!("bad JWK export: {e}")))
    }

    /// The standard base64 encoding of an HMAC secret (for `hmac_secret_base64`), if HMAC.
    pub fn hmac_secret_base64(&self) -> Option<String> {
        use jwt_simple::reexports::ct_codecs::Base64;
        match self {
            SigningKey::Hs256(_, s) | SigningKey::Hs384(_, s) | SigningKey::Hs512(_, s) => {
                Base64::encode_to_string(s).ok()
            }
            _ => None,
        }
    }

    /// Signs `claims` (a JSON object: registered and custom claims as given) into a compact JWS
    /// with header `typ: JWT`.
    pub fn sign(&self, claims: &serde_json::Map<String, serde_json::Value>) -> CliResult<String> {
        self.sign_typed(claims, None)
    }

    /// Signs `claims` with an explicit header `typ` (RFC 8725 section 3.11), e.g.
    /// `secevent+jwt` (RFC 8417 section 2.3) or `logout+jwt`; `None` gives `JWT`.
    pub fn sign_typed(
        &self,
        claims: &serde_json::Map<String, serde_json::Value>,
        typ: Option<&str>,
    ) -> CliResult<String> {
        let claims: JWTClaims<serde_json::Map<String, serde_json::Value>> =
            serde_json::from_value(serde_json::Value::Object(claims.clone())).map_err(|e| {
                CliError::new(format!(
                    "the claims cannot be signed: {e} (iat/exp/nbf must be numbers, aud a string or an array of strings)"
                ))
            })?;
        let options = HeaderOptions {
            signature_type: typ.map(str::to_string),
            ..HeaderOptions::default()
        };
        let o = &options;
        let signed = match self {
            SigningKey::Es256(k) => k.sign_with_options(claims, o),
            SigningKey::Es384(k) => k.sign_with_options(claims, o),
            SigningKey::EdDsa(k) => k.sign_with_options(claims, o),
            SigningKey::Rs256(k) => k.sign_with_options(claims, o),
            SigningKey::Rs384(k) => k.sign_with_options(claims, o),
            SigningKey::Rs512(k) => k.sign_with_options(claims, o),
            SigningKey::Ps256(k) => k.sign_with_options(claims, o),
            SigningKey::Ps384(k) => k.sign_with_options(claims, o),
            SigningKey::Ps512(k) => k.sign_with_options(claims, o),
            SigningKey::Hs256(k, _) => k.authenticate_with_options(claims, o),
            SigningKey::Hs384(k, _) => k.authenticate_with_options(claims, o),
            SigningKey::Hs512(k, _) => k.authenticate_with_options(claims, o),
        };
        signed.map_err(|e| key_error("signing failed", e))
    }
}

/// A JWKS document (`{"keys":[...]}`) with the public halves of `keys`.
pub fn jwks(keys: &[&SigningKey]) -> CliResult<serde_json::Value> {
    let mut out = Vec::new();
    for key in keys {
        out.push(key.public_jwk()?);
    }
    Ok(serde_json::json!({ "keys": out }))
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Adds `iat` (now) and `exp` (now + `exp_in`) when absent, as a test token minter should.
pub fn fill_time_claims(
    claims: &mut serde_json::Map<String, serde_json::Value>,
    now: u64,
    exp_in: Option<u64>,
) {
    claims.entry("iat").or_insert_with(|| now.into());
    match exp_in {
        Some(secs) => {
            claims.insert("exp".into(), (now + secs).into());
        }
        None => {
            claims.entry("exp").or_insert_with(|| (now + 3600).into());
        }
    }
}
