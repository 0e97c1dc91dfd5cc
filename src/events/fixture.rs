//! Test keys and token minting for the event tests: one ES256 key (`ec-1`), one RS256 key
//! (`rsa-1`) in the transmitter's JWKS, an HMAC secret for hand-made headers, and a
//! stranger's key that is in no JWKS. Tokens are minted at test time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jwt_simple::prelude::*;
use once_cell::sync::Lazy;
use serde_json::{json, Map, Value};

use crate::events::Expect;
use crate::token::jose::Algorithm;
use crate::token::jwks::KeySet;

pub const NOW: u64 = 1_750_000_000;
pub const ISSUER: &str = "https://idp.example.com/";
pub const AUDIENCE: &str = "https://gateway.example.com/";
pub const SESSION_REVOKED: &str =
    "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
pub const LOGOUT: &str = "http://schemas.openid.net/event/backchannel-logout";
pub const ALGORITHMS: [Algorithm; 3] = [Algorithm::ES256, Algorithm::RS256, Algorithm::HS256];
/// A secret configured for the transmitter in [`Keys::with_secret`] only.
pub const SECRET: &[u8] = b"a configured transmitter secret, 32+ bytes long";

pub struct Keys {
    pub es256: ES256KeyPair,
    pub rs256: RS256KeyPair,
    pub stranger: ES256KeyPair,
    /// The JWKS text (public keys only).
    pub jwks: String,
    /// The JWKS.
    pub keys: KeySet,
    /// The JWKS plus [`SECRET`].
    pub with_secret: KeySet,
}

pub static KEYS: Lazy<Keys> = Lazy::new(|| {
    let es256 = ES256KeyPair::generate().with_key_id("ec-1");
    let rs256 = RS256KeyPair::generate(2048).unwrap().with_key_id("rsa-1");
    let stranger = ES256KeyPair::generate().with_key_id("stranger");
    let jwk = |text: String, kid: &str| {
        let mut v: Value = serde_json::from_str(&text).unwrap();
        v["kid"] = json!(kid);
        v["use"] = json!("sig");
        v
    };
    let jwks = json!({"keys": [
        jwk(es256.public_key().to_jwk(), "ec-1"),
        jwk(rs256.public_key().to_jwk(), "rsa-1"),
    ]})
    .to_string();
    let keys = KeySet::from_jwks_json(jwks.as_bytes()).unwrap();
    let mut with_secret = KeySet::from_jwks_json(jwks.as_bytes()).unwrap();
    with_secret.try_add_hmac_secret(SECRET).unwrap();
    Keys {
        es256,
        rs256,
        stranger,
        jwks,
        keys,
        with_secret,
    }
});

pub fn expect() -> Expect<'static> {
    Expect {
        issuer: ISSUER,
        audience: AUDIENCE,
        keys: &KEYS.keys,
        algorithms: &ALGORITHMS,
        clock_skew_secs: 60,
        max_token_bytes: 8192,
    }
}

/// `payload` as jwt-simple claims, with nothing added (jwt-simple would add iat, exp, nbf).
fn claims(payload: &Value) -> JWTClaims<Map<String, Value>> {
    let mut claims =
        Claims::with_custom_claims(payload.as_object().unwrap().clone(), Duration::from_secs(0));
    claims.issued_at = None;
    claims.expires_at = None;
    claims.invalid_before = None;
    claims
}

fn typ(typ: &str) -> HeaderOptions {
    HeaderOptions {
        signature_type: Some(typ.to_string()),
        ..Default::default()
    }
}

/// `payload`, exactly as given, signed ES256 by `ec-1` with header `typ`.
pub fn mint(typ_header: &str, payload: &Value) -> String {
    KEYS.es256
        .sign_with_options(claims(payload), &typ(typ_header))
        .unwrap()
}

/// The same, RS256 by `rsa-1`.
pub fn mint_rs256(typ_header: &str, payload: &Value) -> String {
    KEYS.rs256
        .sign_with_options(claims(payload), &typ(typ_header))
        .unwrap()
}

/// The same, by a key in no JWKS (its kid is unknown).
pub fn mint_stranger(typ_header: &str, payload: &Value) -> String {
    KEYS.stranger
        .sign_with_options(claims(payload), &typ(typ_header))
        .unwrap()
}

fn b64(bytes: &[u8]) -> String {
    Base64UrlSafeNoPadding::encode_to_string(bytes).unwrap()
}

/// A token over the exact header given, MACed (HS256) with `secret`.
pub fn mint_hs256_raw(header: &Value, payload: &Value, secret: &[u8]) -> String {
    let signing_input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(payload.to_string().as_bytes())
    );
    let tag = hmac_sha256::HMAC::mac(signing_input.as_bytes(), secret);
    format!("{signing_input}.{}", b64(&tag))
}

/// An unsigned token (`alg: none`, empty signature).
pub fn mint_alg_none(typ_header: &str, payload: &Value) -> String {
    let header = json!({"alg": "none", "typ": typ_header});
    format!(
        "{}.{}.",
        b64(header.to_string().as_bytes()),
        b64(payload.to_string().as_bytes())
    )
}

/// The token with one signature byte changed.
pub fn tampered(token: &str) -> String {
    let dot = token.rfind('.').unwrap();
    let mut signature = Base64UrlSafeNoPadding::decode_to_vec(&token[dot + 1..], None).unwrap();
    signature[10] ^= 0x01;
    format!("{}.{}", &token[..dot], b64(&signature))
}

pub fn with(mut payload: Value, name: &str, value: Value) -> Value {
    payload[name] = value;
    payload
}

pub fn without(mut payload: Value, name: &str) -> Value {
    payload.as_object_mut().unwrap().remove(name);
    payload
}
