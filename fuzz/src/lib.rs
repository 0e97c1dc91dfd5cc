//! What the fuzz targets share: the fixed key set they verify against and a way to re-sign
//! a fuzzed JWS with its HMAC secret, so that mutated headers and claims reach the checks
//! after the signature instead of stopping at it.

use ct_codecs::{Base64UrlSafeNoPadding, Encoder};
use mfa_gate::jwks::KeySet;

/// The HMAC secret in [`key_set`] (HS256).
pub const HMAC_SECRET: &[u8] = b"fuzzing secret, 32 bytes long!!!";

/// Envoy jwt_authn's test JWKS (two RSA keys, fuzz/fixtures/envoy_jwks.json) and
/// [`HMAC_SECRET`]. `None` only if the fixture stopped parsing, which the first input shows.
pub fn key_set() -> Option<KeySet> {
    let mut keys = KeySet::from_jwks_json(include_bytes!("../fixtures/envoy_jwks.json")).ok()?;
    keys.add_hmac_secret(HMAC_SECRET);
    Some(keys)
}

/// `header.payload` of a compact JWS (everything before its second `.`) with a fresh HS256
/// signature under [`HMAC_SECRET`]; `None` when `data` has no two segments.
pub fn resign_hs256(data: &[u8]) -> Option<Vec<u8>> {
    let first = data.iter().position(|&b| b == b'.')?;
    let end = data[first + 1..]
        .iter()
        .position(|&b| b == b'.')
        .map_or(data.len(), |i| first + 1 + i);
    let signing_input = &data[..end];
    let tag = hmac_sha256::HMAC::mac(signing_input, HMAC_SECRET);
    let sig = Base64UrlSafeNoPadding::encode_to_string(tag).ok()?;
    let mut out = signing_input.to_vec();
    out.push(b'.');
    out.extend_from_slice(sig.as_bytes());
    Some(out)
}
