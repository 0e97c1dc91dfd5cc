//! DPoP proofs (RFC 9449): the signed statement a client sends in the `DPoP` header of each
//! request to show it holds the private key its access token is bound to (`cnf.jkt`).
//! [`verify_proof`] runs the checks of RFC 9449 §4.3 for a proof presented with an access
//! token at a resource server and returns what the later stages need: the key's RFC 7638
//! thumbprint (compared with the token's `cnf.jkt`, see [`crate::token::binding`]) and a
//! digest of the proof's `jti` (for the replay store, `crate::signals::replay`).
//!
//! What it must never do: take a proof's key for anything but its own signature (a verified
//! proof authorizes nothing until its thumbprint matches the token's `cnf.jkt`); accept a
//! symmetric algorithm, `none`, or a `jwk` carrying private key material; echo proof content
//! in an error (codes and descriptions are fixed text); or panic on any input (the proof is
//! bounded to [`MAX_PROOF_BYTES`] before anything is decoded).
//!
//! Order of checks: size; compact form and strict JSON (no duplicate members); header
//! (`typ`, `alg`, `crit`, `jwk` present and public only); claims (`jti`, `htm`, `htu`, `iat`,
//! `ath`); then the key and its signature. The checks that cost nothing come first, so a
//! proof wrong in its claims costs no key parsing and no signature check. `nonce` (RFC 9449
//! §9, server-provided nonces) is not asked for.
//!
//! The key is read by the crate's own JWKS rules (a one-key set: Ed25519 points checked,
//! RSA moduli of 2048 to 8192 bits without the ROCA fingerprint) and its signature checked
//! with ring, as a token's is ([`crate::token::jwks`]). An EC point is checked by ring in
//! the verification itself; only when a signature fails is the point tested on its own, to
//! tell a key off its curve (`bad_jwk`) from a wrong signature, so a valid proof costs one
//! verification and no trial key agreement.

use ct_codecs::{Base64UrlSafeNoPadding, Encoder};
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

use crate::token::jose::{decode_object, decode_segment, Algorithm, Compact};
use crate::token::jwks::{EcPointCheck, KeySet};
use crate::token::verify::numeric_date;

/// Largest proof accepted, in bytes (checked before anything is decoded).
pub const MAX_PROOF_BYTES: usize = 8192;
/// Longest `jti` accepted, in bytes.
pub const MAX_JTI_BYTES: usize = 256;
/// Longest URI [`normalize_htu`] reads, in bytes.
pub const MAX_HTU_BYTES: usize = 4096;
/// How old a proof's `iat` may be by default, in seconds.
pub const DEFAULT_MAX_AGE_SECS: u64 = 300;
/// How far in the future a proof's `iat` may be by default (clock skew), in seconds.
pub const DEFAULT_CLOCK_SKEW_SECS: u64 = 60;
/// The algorithms a proof may be signed with (all asymmetric), in the order a
/// `WWW-Authenticate: DPoP algs="..."` parameter lists them (RFC 9449 §7.1).
pub const ALGORITHMS: [Algorithm; 5] = [
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
    Algorithm::RS256,
    Algorithm::PS256,
];
/// [`ALGORITHMS`] as the space-separated `algs` value of a DPoP challenge.
pub const ALGORITHMS_PARAM: &str = "ES256 ES384 EdDSA RS256 PS256";

/// JWK members that carry private or symmetric key material (RFC 7518 §6).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// The request a proof is checked against.
#[derive(Debug, Clone, Copy)]
pub struct ProofCheck<'a> {
    /// The request's `:method`.
    pub method: &'a [u8],
    /// The URI the request was sent to, `https://host[:port]/path` (a query is ignored).
    pub target_uri: &'a str,
    /// The access token presented with the proof (its hash is the proof's `ath`).
    pub access_token: &'a [u8],
    /// Now, seconds since the epoch.
    pub now_secs: u64,
    /// How old the proof's `iat` may be ([`DEFAULT_MAX_AGE_SECS`]).
    pub max_age_secs: u64,
    /// How far in the future its `iat` may be ([`DEFAULT_CLOCK_SKEW_SECS`]); the same
    /// tolerance is added to the maximum age.
    pub clock_skew_secs: u64,
}

impl ProofCheck<'_> {
    /// Until when a proof issued at `issued_at` is acceptable (`iat + max_age + skew`):
    /// its `jti` must be remembered that long.
    pub fn acceptable_until(&self, issued_at: u64) -> u64 {
        issued_at
            .saturating_add(self.max_age_secs)
            .saturating_add(self.clock_skew_secs)
    }
}

/// A proof that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedProof {
    /// The RFC 7638 SHA-256 thumbprint of its `jwk`, base64url (compare with `cnf.jkt`).
    pub thumbprint: String,
    /// The first 16 bytes of SHA-256 over the thumbprint and the `jti`: the proof's name in
    /// the replay store. Scoped by key, so one client cannot use up another's `jti` values;
    /// a replayed proof carries the same key, so it has the same digest.
    pub jti_digest: [u8; 16],
    /// Its `iat`, seconds since the epoch.
    pub issued_at: u64,
    /// The algorithm it was signed with.
    pub algorithm: Algorithm,
}

/// A claim of a proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// `jti`: the proof's unique identifier.
    Jti,
    /// `htm`: the request's method.
    Htm,
    /// `htu`: the request's URI.
    Htu,
    /// `iat`: when the proof was made.
    Iat,
    /// `ath`: the hash of the access token.
    Ath,
}

impl Claim {
    /// The claim's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Claim::Jti => "jti",
            Claim::Htm => "htm",
            Claim::Htu => "htu",
            Claim::Iat => "iat",
            Claim::Ath => "ath",
        }
    }
}

/// Why a proof was refused. [`ProofError::code`] is a stable snake_case code for records
/// and metrics; [`ProofError::description`] a short text for `error_description`. Neither
/// ever contains proof content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofError {
    /// Over [`MAX_PROOF_BYTES`].
    TooLarge,
    /// Not a compact JWS of three canonical base64url segments whose header and claims are
    /// JSON objects without duplicate members, or with `crit`.
    Malformed(&'static str),
    /// `typ` is not `dpop+jwt`.
    BadType,
    /// `alg` is missing, `none`, symmetric, or not one of [`ALGORITHMS`].
    BadAlgorithm,
    /// `jwk` is missing, not an object, not a usable public key, or of a type its `alg`
    /// cannot use.
    BadJwk(&'static str),
    /// `jwk` carries private or symmetric key material.
    PrivateJwk,
    /// The signature does not verify with the proof's own `jwk`.
    BadSignature,
    /// A required claim is absent.
    MissingClaim(Claim),
    /// A claim has the wrong type or size (e.g. an empty `jti`, an `htu` that is no URI).
    InvalidClaim(Claim),
    /// `htm` differs from the request's method.
    HtmMismatch,
    /// `htu` differs from the request's URI (after normalisation).
    HtuMismatch,
    /// `iat` is older than the maximum age (plus the skew).
    TooOld,
    /// `iat` is further in the future than the skew.
    IssuedInFuture,
    /// `ath` is not the hash of the access token presented with the proof.
    AthMismatch,
}

impl ProofError {
    /// Stable snake_case code, e.g. `dpop_bad_signature`, `dpop_htu_mismatch`.
    pub fn code(&self) -> &'static str {
        match self {
            ProofError::TooLarge => "dpop_too_large",
            ProofError::Malformed(_) => "dpop_malformed",
            ProofError::BadType => "dpop_bad_typ",
            ProofError::BadAlgorithm => "dpop_bad_alg",
            ProofError::BadJwk(_) => "dpop_bad_jwk",
            ProofError::PrivateJwk => "dpop_private_jwk",
            ProofError::BadSignature => "dpop_bad_signature",
            ProofError::MissingClaim(_) => "dpop_missing_claim",
            ProofError::InvalidClaim(_) => "dpop_invalid_claim",
            ProofError::HtmMismatch => "dpop_htm_mismatch",
            ProofError::HtuMismatch => "dpop_htu_mismatch",
            ProofError::TooOld => "dpop_too_old",
            ProofError::IssuedInFuture => "dpop_issued_in_future",
            ProofError::AthMismatch => "dpop_ath_mismatch",
        }
    }

    /// A short human text for `error_description` (fixed text, never proof content).
    pub fn description(&self) -> &'static str {
        match self {
            ProofError::TooLarge => "the DPoP proof is too large",
            ProofError::Malformed(why) => why,
            ProofError::BadType => "the DPoP proof's typ is not dpop+jwt",
            ProofError::BadAlgorithm => {
                "the DPoP proof's alg is not a supported asymmetric algorithm"
            }
            ProofError::BadJwk(why) => why,
            ProofError::PrivateJwk => "the DPoP proof's jwk contains private key material",
            ProofError::BadSignature => "the DPoP proof's signature does not verify",
            ProofError::MissingClaim(Claim::Jti) => "the DPoP proof has no jti claim",
            ProofError::MissingClaim(Claim::Htm) => "the DPoP proof has no htm claim",
            ProofError::MissingClaim(Claim::Htu) => "the DPoP proof has no htu claim",
            ProofError::MissingClaim(Claim::Iat) => "the DPoP proof has no iat claim",
            ProofError::MissingClaim(Claim::Ath) => {
                "the DPoP proof has no ath claim (the access token's hash)"
            }
            ProofError::InvalidClaim(Claim::Jti) => "the DPoP proof's jti is invalid",
            ProofError::InvalidClaim(Claim::Htm) => "the DPoP proof's htm is invalid",
            ProofError::InvalidClaim(Claim::Htu) => "the DPoP proof's htu is not an http(s) URI",
            ProofError::InvalidClaim(Claim::Iat) => "the DPoP proof's iat is not a NumericDate",
            ProofError::InvalidClaim(Claim::Ath) => "the DPoP proof's ath is invalid",
            ProofError::HtmMismatch => "the DPoP proof's htm does not match the request method",
            ProofError::HtuMismatch => "the DPoP proof's htu does not match the request URI",
            ProofError::TooOld => "the DPoP proof is too old",
            ProofError::IssuedInFuture => "the DPoP proof is issued in the future",
            ProofError::AthMismatch => {
                "the DPoP proof's ath does not match the access token presented"
            }
        }
    }
}

impl std::fmt::Display for ProofError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.description())
    }
}

/// Verifies a DPoP proof (the bytes of the `DPoP` header) presented with an access token
/// at a resource server, against the request it came with.
pub fn verify_proof(proof: &[u8], check: &ProofCheck<'_>) -> Result<VerifiedProof, ProofError> {
    if proof.len() > MAX_PROOF_BYTES {
        return Err(ProofError::TooLarge);
    }
    let compact = Compact::split(proof, MAX_PROOF_BYTES).map_err(|_| {
        ProofError::Malformed("the DPoP proof is not a compact JWS of three base64url segments")
    })?;
    if compact.payload.is_empty() || compact.signature.is_empty() {
        return Err(ProofError::Malformed(
            "the DPoP proof has an empty claims or signature segment",
        ));
    }
    let header = decode_object(compact.header, "header").map_err(|_| {
        ProofError::Malformed(
            "the DPoP proof's header is not a JSON object without duplicate members",
        )
    })?;
    let claims = decode_object(compact.payload, "payload").map_err(|_| {
        ProofError::Malformed(
            "the DPoP proof's claims are not a JSON object without duplicate members",
        )
    })?;
    let signature = decode_segment(compact.signature, "signature").map_err(|_| {
        ProofError::Malformed("the DPoP proof's signature is not canonical base64url")
    })?;

    let algorithm = check_header(&header)?;
    let jwk = match header.get("jwk") {
        Some(Value::Object(jwk)) => jwk,
        Some(_) => {
            return Err(ProofError::BadJwk(
                "the DPoP proof's jwk is not a JSON object",
            ))
        }
        None => return Err(ProofError::BadJwk("the DPoP proof has no jwk")),
    };
    if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
        return Err(ProofError::PrivateJwk);
    }

    let jti = string_claim(&claims, Claim::Jti)?;
    if jti.is_empty() || jti.len() > MAX_JTI_BYTES {
        return Err(ProofError::InvalidClaim(Claim::Jti));
    }
    if string_claim(&claims, Claim::Htm)?.as_bytes() != check.method {
        return Err(ProofError::HtmMismatch);
    }
    let claimed = normalize_htu(string_claim(&claims, Claim::Htu)?)
        .ok_or(ProofError::InvalidClaim(Claim::Htu))?;
    let target = normalize_htu(check.target_uri).ok_or(ProofError::HtuMismatch)?;
    if claimed != target {
        return Err(ProofError::HtuMismatch);
    }
    let issued_at = numeric_date(&claims, "iat")
        .map_err(|_| ProofError::InvalidClaim(Claim::Iat))?
        .ok_or(ProofError::MissingClaim(Claim::Iat))?;
    if issued_at > check.now_secs.saturating_add(check.clock_skew_secs) {
        return Err(ProofError::IssuedInFuture);
    }
    if check.acceptable_until(issued_at) < check.now_secs {
        return Err(ProofError::TooOld);
    }
    if !ath_matches(string_claim(&claims, Claim::Ath)?, check.access_token) {
        return Err(ProofError::AthMismatch);
    }

    let thumbprint = jwk_thumbprint(jwk)?;
    let signing_input = compact
        .text
        .get(..compact.header.len() + 1 + compact.payload.len())
        .ok_or(ProofError::Malformed("the DPoP proof is not a compact JWS"))?;
    verify_signature(jwk, algorithm, signing_input.as_bytes(), &signature)?;
    Ok(VerifiedProof {
        jti_digest: jti_digest(&thumbprint, jti),
        thumbprint,
        issued_at,
        algorithm,
    })
}

/// Checks `typ`, `alg` and `crit`; returns the algorithm.
fn check_header(header: &Map<String, Value>) -> Result<Algorithm, ProofError> {
    // Media types are case-insensitive, and "application/" may be left out (RFC 7515 §4.1.9).
    let typ = match header.get("typ") {
        Some(Value::String(typ)) => typ.to_ascii_lowercase(),
        _ => return Err(ProofError::BadType),
    };
    if typ.strip_prefix("application/").unwrap_or(&typ) != "dpop+jwt" {
        return Err(ProofError::BadType);
    }
    let algorithm = match header.get("alg") {
        Some(Value::String(alg)) => Algorithm::parse(alg),
        _ => None,
    };
    let algorithm = algorithm
        .filter(|a| ALGORITHMS.contains(a))
        .ok_or(ProofError::BadAlgorithm)?;
    if header.contains_key("crit") {
        return Err(ProofError::Malformed(
            "the DPoP proof has critical header parameters (crit), which are not supported",
        ));
    }
    Ok(algorithm)
}

fn string_claim(claims: &Map<String, Value>, claim: Claim) -> Result<&str, ProofError> {
    match claims.get(claim.as_str()) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(ProofError::InvalidClaim(claim)),
        None => Err(ProofError::MissingClaim(claim)),
    }
}

/// Whether `ath` is base64url(SHA-256(access token)), compared in constant time.
fn ath_matches(ath: &str, access_token: &[u8]) -> bool {
    let expected = hmac_sha256::Hash::hash(access_token);
    let Ok(given) = decode_segment(ath, "ath") else {
        return false;
    };
    given.len() == expected.len() && bool::from(given.ct_eq(&expected))
}

fn jti_digest(thumbprint: &str, jti: &str) -> [u8; 16] {
    let mut hash = hmac_sha256::Hash::new();
    hash.update(b"mfa-gate dpop jti\0");
    hash.update(thumbprint.as_bytes());
    hash.update(b"\0");
    hash.update(jti.as_bytes());
    let full = hash.finalize();
    let mut digest = [0u8; 16];
    digest.copy_from_slice(&full[..16]);
    digest
}

/// The RFC 7638 JWK thumbprint: base64url(SHA-256) of the key's required members (EC:
/// `crv`, `kty`, `x`, `y`; RSA: `e`, `kty`, `n`; OKP (RFC 8037): `crv`, `kty`, `x`), in
/// that order, as JSON without whitespace. Other members do not count.
pub fn jwk_thumbprint(jwk: &Map<String, Value>) -> Result<String, ProofError> {
    let members: &[&str] = match jwk.get("kty") {
        Some(Value::String(kty)) if kty == "EC" => &["crv", "kty", "x", "y"],
        Some(Value::String(kty)) if kty == "RSA" => &["e", "kty", "n"],
        Some(Value::String(kty)) if kty == "OKP" => &["crv", "kty", "x"],
        _ => {
            return Err(ProofError::BadJwk(
                "the DPoP proof's jwk has no supported kty",
            ))
        }
    };
    let mut canonical = String::from("{");
    for (i, name) in members.iter().enumerate() {
        let Some(Value::String(value)) = jwk.get(*name) else {
            return Err(ProofError::BadJwk(
                "the DPoP proof's jwk lacks a member its kty requires",
            ));
        };
        if i > 0 {
            canonical.push(',');
        }
        canonical.push('"');
        canonical.push_str(name);
        canonical.push_str("\":");
        canonical.push_str(&Value::String(value.clone()).to_string());
    }
    canonical.push('}');
    let digest = hmac_sha256::Hash::hash(canonical.as_bytes());
    Base64UrlSafeNoPadding::encode_to_string(digest)
        .map_err(|_| ProofError::BadJwk("the DPoP proof's jwk cannot be hashed"))
}

/// Reads `jwk` by the crate's JWKS rules as a key for `algorithm` only, and checks the
/// signature over `signing_input` with it.
fn verify_signature(
    jwk: &Map<String, Value>,
    algorithm: Algorithm,
    signing_input: &[u8],
    signature: &[u8],
) -> Result<(), ProofError> {
    let unusable = || ProofError::BadJwk("the DPoP proof's jwk is not a usable public signing key");
    let mut jwk = jwk.clone();
    // A key without alg would be prepared for every algorithm of its type (six, for RSA).
    jwk.entry("alg")
        .or_insert_with(|| Value::String(algorithm.as_str().to_string()));
    let document = serde_json::json!({ "keys": [Value::Object(jwk)] }).to_string();
    let keys = KeySet::from_jwks_json_checking(document.as_bytes(), EcPointCheck::Deferred)
        .map_err(|_| unusable())?;
    let candidates = keys
        .candidates(algorithm, None)
        .map_err(|_| ProofError::BadJwk("the DPoP proof's jwk is not a key for its alg"))?;
    if candidates
        .iter()
        .any(|c| c.key.verifies(signing_input, signature))
    {
        Ok(())
    } else if candidates.iter().all(|c| c.key.has_usable_point()) {
        Err(ProofError::BadSignature)
    } else {
        Err(unusable())
    }
}

/// An `htu` or request URI in the form they are compared in (RFC 9449 §4.3, with the
/// syntax- and scheme-based normalisation of RFC 3986 §6.2.2 and §6.2.3): scheme and host
/// lower-case, the scheme's default port and an empty port dropped, percent-encodings in
/// upper case and decoded where they name an unreserved character, dot-segments removed,
/// an empty path as `/`, query and fragment dropped. `None` for anything but an absolute
/// `http`/`https` URI of visible ASCII, with userinfo, or over [`MAX_HTU_BYTES`].
pub fn normalize_htu(uri: &str) -> Option<String> {
    if uri.len() > MAX_HTU_BYTES || !uri.bytes().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    let (scheme, rest) = uri.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    let (host, port) = split_authority(authority)?;
    let mut out = String::with_capacity(uri.len() + 1);
    out.push_str(&scheme);
    out.push_str("://");
    out.push_str(&host);
    if let Some(port) = port.filter(|p| *p != default_port) {
        out.push(':');
        out.push_str(&port.to_string());
    }
    let path = normalize_percent_encoding(path)?;
    if path.is_empty() {
        out.push('/');
    } else {
        out.push_str(&remove_dot_segments(&path));
    }
    Some(out)
}

/// The host (lower-case) and port of an authority; `None` when malformed or with userinfo.
fn split_authority(authority: &str) -> Option<(String, Option<u32>)> {
    if authority.contains('@') {
        return None;
    }
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']')?;
        let (host, after) = authority.split_at(end + 1);
        let inner = host.get(1..host.len() - 1)?;
        if inner.is_empty()
            || !inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return None;
        }
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    if !host.starts_with('[') {
        // reg-name: unreserved, sub-delims and percent-encodings (RFC 3986 §3.2.2).
        let allowed = |b: u8| is_unreserved(b) || b"!$&'()*+,;=%".contains(&b);
        if !host.bytes().all(allowed) {
            return None;
        }
    }
    let port = match port {
        None | Some("") => None,
        Some(digits) => {
            if digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let port: u32 = digits.parse().ok()?;
            if port > 65535 {
                return None;
            }
            Some(port)
        }
    };
    Some((host.to_ascii_lowercase(), port))
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Percent-encodings in upper case, decoded where they name an unreserved character
/// (RFC 3986 §6.2.2.1, §6.2.2.2); `None` for a `%` not followed by two hex digits.
fn normalize_percent_encoding(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b != b'%' {
            out.push(char::from(b));
            i += 1;
            continue;
        }
        let hex = bytes.get(i + 1..i + 3)?;
        let text = std::str::from_utf8(hex).ok()?;
        if !hex.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        let value = u8::from_str_radix(text, 16).ok()?;
        if is_unreserved(value) {
            out.push(char::from(value));
        } else {
            out.push('%');
            out.push_str(&text.to_ascii_uppercase());
        }
        i += 3;
    }
    Some(out)
}

/// RFC 3986 §5.2.4 `remove_dot_segments`.
fn remove_dot_segments(path: &str) -> String {
    let mut input = path;
    let mut output = String::with_capacity(path.len());
    let pop = |output: &mut String| {
        let at = output.rfind('/').unwrap_or(0);
        output.truncate(at);
    };
    while !input.is_empty() {
        if let Some(rest) = input.strip_prefix("../") {
            input = rest;
        } else if let Some(rest) = input.strip_prefix("./") {
            input = rest;
        } else if input.starts_with("/./") {
            input = input.get(2..).unwrap_or_default();
        } else if input == "/." {
            input = "/";
        } else if input.starts_with("/../") {
            input = input.get(3..).unwrap_or_default();
            pop(&mut output);
        } else if input == "/.." {
            input = "/";
            pop(&mut output);
        } else if input == "." || input == ".." {
            input = "";
        } else {
            let from = usize::from(input.starts_with('/'));
            let end = input
                .get(from..)
                .and_then(|s| s.find('/'))
                .map_or(input.len(), |at| at + from);
            let (segment, rest) = input.split_at(end);
            output.push_str(segment);
            input = rest;
        }
    }
    output
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use ct_codecs::Decoder;
    use jwt_simple::prelude::{
        ES256KeyPair, ES384KeyPair, Ed25519KeyPair, PS256KeyPair, RS256KeyPair,
    };
    use once_cell::sync::Lazy;
    use serde_json::json;

    const NOW: u64 = 1_750_000_000;
    const TOKEN: &[u8] = b"an access token, sent with the proof";
    const URI: &str = "https://api.example.com/v1/things";

    struct Keys {
        es256: ES256KeyPair,
        es384: ES384KeyPair,
        ed25519: Ed25519KeyPair,
        rs256: RS256KeyPair,
        ps256: PS256KeyPair,
        other_es256: ES256KeyPair,
    }

    static KEYS: Lazy<Keys> = Lazy::new(|| {
        let rs256 = RS256KeyPair::generate(2048).unwrap();
        let ps256 = PS256KeyPair::from_der(&rs256.to_der().unwrap()).unwrap();
        Keys {
            es256: ES256KeyPair::generate(),
            es384: ES384KeyPair::generate(),
            ed25519: Ed25519KeyPair::generate(),
            rs256,
            ps256,
            other_es256: ES256KeyPair::generate(),
        }
    });

    fn b64(bytes: impl AsRef<[u8]>) -> String {
        Base64UrlSafeNoPadding::encode_to_string(bytes).unwrap()
    }

    /// The test key of `alg` as a ring signer (the same key as jwt-simple's, whose JWK
    /// export and thumbprints the tests compare with).
    enum Signer {
        Ecdsa(ring::signature::EcdsaKeyPair),
        Ed25519(ring::signature::Ed25519KeyPair),
        Rsa(
            ring::signature::RsaKeyPair,
            &'static dyn ring::signature::RsaEncoding,
        ),
    }

    fn signer(alg: Algorithm) -> Signer {
        use ring::signature as sig;
        let rng = ring::rand::SystemRandom::new();
        let point = || {
            let jwk = public_jwk(alg);
            let coordinate = |name: &str| {
                Base64UrlSafeNoPadding::decode_to_vec(jwk[name].as_str().unwrap(), None).unwrap()
            };
            [vec![4], coordinate("x"), coordinate("y")].concat()
        };
        let rsa = |der: Vec<u8>| {
            sig::RsaKeyPair::from_der(&der)
                .or_else(|_| sig::RsaKeyPair::from_pkcs8(&der))
                .unwrap()
        };
        match alg {
            Algorithm::ES256 => Signer::Ecdsa(
                sig::EcdsaKeyPair::from_private_key_and_public_key(
                    &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
                    &KEYS.es256.to_bytes(),
                    &point(),
                    &rng,
                )
                .unwrap(),
            ),
            Algorithm::ES384 => Signer::Ecdsa(
                sig::EcdsaKeyPair::from_private_key_and_public_key(
                    &sig::ECDSA_P384_SHA384_FIXED_SIGNING,
                    &KEYS.es384.to_bytes(),
                    &point(),
                    &rng,
                )
                .unwrap(),
            ),
            Algorithm::EdDSA => {
                let pair = KEYS.ed25519.to_bytes();
                Signer::Ed25519(
                    sig::Ed25519KeyPair::from_seed_and_public_key(&pair[..32], &pair[32..])
                        .unwrap(),
                )
            }
            Algorithm::RS256 => {
                Signer::Rsa(rsa(KEYS.rs256.to_der().unwrap()), &sig::RSA_PKCS1_SHA256)
            }
            Algorithm::PS256 => {
                Signer::Rsa(rsa(KEYS.ps256.to_der().unwrap()), &sig::RSA_PSS_SHA256)
            }
            other => panic!("no test key for {other:?}"),
        }
    }

    /// A raw JWS signature over `input` with the test key of `alg`.
    fn sign(alg: Algorithm, input: &[u8]) -> Vec<u8> {
        let rng = ring::rand::SystemRandom::new();
        match signer(alg) {
            Signer::Ecdsa(key) => key.sign(&rng, input).unwrap().as_ref().to_vec(),
            Signer::Ed25519(key) => key.sign(input).as_ref().to_vec(),
            Signer::Rsa(key, encoding) => {
                let mut signature = vec![0; key.public().modulus_len()];
                key.sign(encoding, &rng, input, &mut signature).unwrap();
                signature
            }
        }
    }

    fn jwk_of(text: String) -> Value {
        serde_json::from_str(&text).unwrap()
    }

    /// The public JWK of the test key of `alg`.
    fn public_jwk(alg: Algorithm) -> Value {
        match alg {
            Algorithm::ES256 => jwk_of(KEYS.es256.public_key().to_jwk()),
            Algorithm::ES384 => jwk_of(KEYS.es384.public_key().to_jwk()),
            Algorithm::EdDSA => jwk_of(KEYS.ed25519.public_key().to_jwk()),
            Algorithm::RS256 => jwk_of(KEYS.rs256.public_key().to_jwk()),
            Algorithm::PS256 => jwk_of(KEYS.ps256.public_key().to_jwk()),
            other => panic!("no test key for {other:?}"),
        }
    }

    /// jwt-simple's own thumbprint of the test key of `alg`, to check ours against.
    fn jwt_simple_thumbprint(alg: Algorithm) -> String {
        match alg {
            Algorithm::ES256 => KEYS.es256.public_key().jwk_thumbprint(),
            Algorithm::ES384 => KEYS.es384.public_key().jwk_thumbprint(),
            Algorithm::EdDSA => KEYS.ed25519.public_key().jwk_thumbprint(),
            Algorithm::RS256 => KEYS.rs256.public_key().jwk_thumbprint(),
            Algorithm::PS256 => KEYS.ps256.public_key().jwk_thumbprint(),
            other => panic!("no test key for {other:?}"),
        }
    }

    fn header(alg: Algorithm) -> Value {
        json!({"typ": "dpop+jwt", "alg": alg.as_str(), "jwk": public_jwk(alg)})
    }

    fn ath(token: &[u8]) -> String {
        b64(hmac_sha256::Hash::hash(token))
    }

    fn claims() -> Value {
        json!({"jti": "proof-1", "htm": "GET", "htu": URI, "iat": NOW, "ath": ath(TOKEN)})
    }

    /// A proof of raw header and claims text, signed by the test key of `alg`.
    fn mint_raw(header: &str, claims: &str, alg: Algorithm) -> String {
        let input = format!("{}.{}", b64(header), b64(claims));
        let signature = sign(alg, input.as_bytes());
        format!("{input}.{}", b64(signature))
    }

    fn mint(header: &Value, claims: &Value, alg: Algorithm) -> String {
        mint_raw(&header.to_string(), &claims.to_string(), alg)
    }

    fn check() -> ProofCheck<'static> {
        ProofCheck {
            method: b"GET",
            target_uri: URI,
            access_token: TOKEN,
            now_secs: NOW,
            max_age_secs: DEFAULT_MAX_AGE_SECS,
            clock_skew_secs: DEFAULT_CLOCK_SKEW_SECS,
        }
    }

    fn verify(proof: &str) -> Result<VerifiedProof, ProofError> {
        verify_proof(proof.as_bytes(), &check())
    }

    /// RFC 9449 §4.1 (Figure 4 of the RFC's token request): header and claims of the
    /// example proof, and the proof itself.
    const RFC_HEADER: &str = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19";
    const RFC_TOKEN_PROOF: &str = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg";
    /// RFC 9449 §7.1 (Figure 13): the proof sent with the access token of Figure 12 to a
    /// protected resource.
    const RFC_RESOURCE_PROOF: &str = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIjoiR0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlLm9yZy9wcm90ZWN0ZWRyZXNvdXJjZSIsImlhdCI6MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNFc05yV0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9.2oW9RP35yRqzhrtNP86L-Ey71EOptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjA";
    const RFC_ACCESS_TOKEN: &[u8] = b"Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU";
    const RFC_JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";

    #[test]
    fn the_rfc_9449_resource_proof_verifies() {
        let check = ProofCheck {
            method: b"GET",
            target_uri: "https://resource.example.org/protectedresource",
            access_token: RFC_ACCESS_TOKEN,
            now_secs: 1_562_262_618 + 5,
            max_age_secs: DEFAULT_MAX_AGE_SECS,
            clock_skew_secs: DEFAULT_CLOCK_SKEW_SECS,
        };
        let proof = verify_proof(RFC_RESOURCE_PROOF.as_bytes(), &check).unwrap();
        assert_eq!(proof.thumbprint, RFC_JKT);
        assert_eq!(proof.issued_at, 1_562_262_618);
        assert_eq!(proof.algorithm, Algorithm::ES256);
        assert_eq!(proof.jti_digest, jti_digest(RFC_JKT, "e1j3V_bKic8-LAEB"));
        // RFC 9449 §7.1: the ath of that access token.
        assert_eq!(
            ath(RFC_ACCESS_TOKEN),
            "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
        );
        // Presented with another token, for another method, or later: refused.
        let other_token = ProofCheck {
            access_token: b"another token",
            ..check
        };
        assert_eq!(
            verify_proof(RFC_RESOURCE_PROOF.as_bytes(), &other_token),
            Err(ProofError::AthMismatch)
        );
        let post = ProofCheck {
            method: b"POST",
            ..check
        };
        assert_eq!(
            verify_proof(RFC_RESOURCE_PROOF.as_bytes(), &post),
            Err(ProofError::HtmMismatch)
        );
        let later = ProofCheck {
            now_secs: 1_562_262_618 + 361,
            ..check
        };
        assert_eq!(
            verify_proof(RFC_RESOURCE_PROOF.as_bytes(), &later),
            Err(ProofError::TooOld)
        );
    }

    #[test]
    fn the_rfc_9449_token_request_proof_has_the_documented_shape_and_no_ath() {
        let compact = Compact::split(RFC_TOKEN_PROOF.as_bytes(), MAX_PROOF_BYTES).unwrap();
        assert_eq!(compact.header, RFC_HEADER);
        let header = decode_object(compact.header, "header").unwrap();
        assert_eq!(
            Value::Object(header.clone()),
            json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": {"kty": "EC",
                "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
                "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA", "crv": "P-256"}})
        );
        let claims = decode_object(compact.payload, "payload").unwrap();
        assert_eq!(
            Value::Object(claims),
            json!({"jti": "-BwC3ESc6acc2lTc", "htm": "POST",
                "htu": "https://server.example.com/token", "iat": 1_562_262_616})
        );
        let jwk = header["jwk"].as_object().unwrap();
        assert_eq!(jwk_thumbprint(jwk).unwrap(), RFC_JKT);
        // Its signature verifies...
        let input = RFC_TOKEN_PROOF.rsplit_once('.').unwrap().0;
        let signature = decode_segment(compact.signature, "signature").unwrap();
        assert_eq!(
            verify_signature(jwk, Algorithm::ES256, input.as_bytes(), &signature),
            Ok(())
        );
        // ...but at a resource server a proof must carry the access token's hash.
        let check = ProofCheck {
            method: b"POST",
            target_uri: "https://server.example.com/token",
            access_token: RFC_ACCESS_TOKEN,
            now_secs: 1_562_262_616,
            max_age_secs: DEFAULT_MAX_AGE_SECS,
            clock_skew_secs: DEFAULT_CLOCK_SKEW_SECS,
        };
        assert_eq!(
            verify_proof(RFC_TOKEN_PROOF.as_bytes(), &check),
            Err(ProofError::MissingClaim(Claim::Ath))
        );
    }

    #[test]
    fn proofs_of_every_algorithm_verify_and_name_their_key() {
        for alg in ALGORITHMS {
            let proof = mint(&header(alg), &claims(), alg);
            let verified = verify(&proof).unwrap_or_else(|e| panic!("{alg:?}: {e:?}"));
            assert_eq!(verified.algorithm, alg);
            assert_eq!(verified.issued_at, NOW);
            assert_eq!(verified.thumbprint, jwt_simple_thumbprint(alg), "{alg:?}");
            assert_eq!(
                verified.jti_digest,
                jti_digest(&verified.thumbprint, "proof-1")
            );
            // Another algorithm's key in the header: a key that cannot verify this alg.
            let other = if alg == Algorithm::EdDSA {
                Algorithm::ES256
            } else {
                Algorithm::EdDSA
            };
            let mut wrong = header(alg);
            wrong["jwk"] = public_jwk(other);
            assert!(
                matches!(
                    verify(&mint(&wrong, &claims(), alg)),
                    Err(ProofError::BadJwk(_))
                ),
                "{alg:?}"
            );
        }
        assert_eq!(
            ALGORITHMS.map(Algorithm::as_str).join(" "),
            ALGORITHMS_PARAM
        );
    }

    #[test]
    fn the_jti_digest_is_per_key_and_per_jti() {
        let a = verify(&mint(
            &header(Algorithm::ES256),
            &claims(),
            Algorithm::ES256,
        ))
        .unwrap();
        let b = verify(&mint(
            &header(Algorithm::EdDSA),
            &claims(),
            Algorithm::EdDSA,
        ))
        .unwrap();
        assert_ne!(a.jti_digest, b.jti_digest, "same jti, another key");
        let mut other = claims();
        other["jti"] = json!("proof-2");
        let c = verify(&mint(&header(Algorithm::ES256), &other, Algorithm::ES256)).unwrap();
        assert_ne!(a.jti_digest, c.jti_digest);
        // The same proof again (a replay) has the same digest.
        let again = verify(&mint(
            &header(Algorithm::ES256),
            &claims(),
            Algorithm::ES256,
        ))
        .unwrap();
        assert_eq!(a.jti_digest, again.jti_digest);
    }

    /// A proof with the header and claims changed by `header` and `claims`.
    fn changed(
        header_change: impl FnOnce(&mut Map<String, Value>),
        claims_change: impl FnOnce(&mut Map<String, Value>),
    ) -> Result<VerifiedProof, ProofError> {
        let mut h = header(Algorithm::ES256);
        let mut c = claims();
        header_change(h.as_object_mut().unwrap());
        claims_change(c.as_object_mut().unwrap());
        verify(&mint(&h, &c, Algorithm::ES256))
    }

    fn in_header(name: &'static str, value: Value) -> impl FnOnce(&mut Map<String, Value>) {
        move |m| {
            m.insert(name.to_string(), value);
        }
    }

    fn without(name: &'static str) -> impl FnOnce(&mut Map<String, Value>) {
        move |m| {
            m.remove(name);
        }
    }

    fn same(_: &mut Map<String, Value>) {}

    #[test]
    fn each_header_check_fails_with_its_own_error() {
        let cases: Vec<(Result<VerifiedProof, ProofError>, ProofError)> =
            vec![
            (changed(in_header("typ", json!("JWT")), same), ProofError::BadType),
            (changed(in_header("typ", json!(7)), same), ProofError::BadType),
            (changed(without("typ"), same), ProofError::BadType),
            (changed(in_header("alg", json!("none")), same), ProofError::BadAlgorithm),
            (changed(in_header("alg", json!("HS256")), same), ProofError::BadAlgorithm),
            (changed(in_header("alg", json!("RS512")), same), ProofError::BadAlgorithm),
            (changed(in_header("alg", json!("es256")), same), ProofError::BadAlgorithm),
            (changed(without("alg"), same), ProofError::BadAlgorithm),
            (
                changed(in_header("crit", json!(["exp"])), same),
                ProofError::Malformed(
                    "the DPoP proof has critical header parameters (crit), which are not supported",
                ),
            ),
            (
                changed(without("jwk"), same),
                ProofError::BadJwk("the DPoP proof has no jwk"),
            ),
            (
                changed(in_header("jwk", json!("a string")), same),
                ProofError::BadJwk("the DPoP proof's jwk is not a JSON object"),
            ),
            (
                changed(
                    |h| {
                        h["jwk"]["d"] = json!("yy49oPcINGK2ps0LmtxpB6UTEOiITghHBif6wDqmJ3c");
                    },
                    same,
                ),
                ProofError::PrivateJwk,
            ),
            (
                changed(in_header("jwk", json!({"kty": "oct", "k": "c2VjcmV0"})), same),
                ProofError::PrivateJwk,
            ),
            (
                changed(in_header("jwk", public_jwk_of_other()), same),
                ProofError::BadSignature,
            ),
            (
                changed(|h| h["jwk"]["use"] = json!("enc"), same),
                ProofError::BadJwk("the DPoP proof's jwk is not a usable public signing key"),
            ),
            (
                changed(|h| h["jwk"]["alg"] = json!("ES384"), same),
                ProofError::BadJwk("the DPoP proof's jwk is not a usable public signing key"),
            ),
            (
                changed(
                    |h| {
                        let x = h["jwk"]["x"].clone();
                        h["jwk"]["y"] = x;
                    },
                    same,
                ),
                ProofError::BadJwk("the DPoP proof's jwk is not a usable public signing key"),
            ),
            (
                changed(|h| h["jwk"]["kty"] = json!("XYZ"), same),
                ProofError::BadJwk("the DPoP proof's jwk has no supported kty"),
            ),
        ];
        for (i, (got, expected)) in cases.into_iter().enumerate() {
            assert_eq!(got, Err(expected), "case {i}");
        }
        // Media types are case-insensitive and "application/" may be spelt out.
        for typ in ["DPoP+JWT", "application/dpop+jwt"] {
            assert!(changed(in_header("typ", json!(typ)), same).is_ok(), "{typ}");
        }
        // A jwk naming its own (right) alg, kid and use is fine.
        assert!(changed(
            |h| {
                h["jwk"]["alg"] = json!("ES256");
                h["jwk"]["kid"] = json!("k1");
                h["jwk"]["use"] = json!("sig");
            },
            same
        )
        .is_ok());
    }

    fn public_jwk_of_other() -> Value {
        jwk_of(KEYS.other_es256.public_key().to_jwk())
    }

    #[test]
    fn a_weak_rsa_key_is_refused_by_the_jwks_rules() {
        // A 1024-bit modulus (odd, top bit set): jwks.rs skips it as weak.
        let mut n = vec![0xc5u8; 128];
        n[127] = 0x01;
        let jwk = json!({"kty": "RSA", "n": b64(&n), "e": "AQAB"});
        let mut h = header(Algorithm::RS256);
        h["jwk"] = jwk;
        assert_eq!(
            verify(&mint(&h, &claims(), Algorithm::RS256)),
            Err(ProofError::BadJwk(
                "the DPoP proof's jwk is not a usable public signing key"
            ))
        );
    }

    fn in_claims(name: &'static str, value: Value) -> impl FnOnce(&mut Map<String, Value>) {
        in_header(name, value)
    }

    #[test]
    fn each_claim_check_fails_with_its_own_error() {
        let long_jti = "j".repeat(MAX_JTI_BYTES + 1);
        let cases: Vec<(Result<VerifiedProof, ProofError>, ProofError)> = vec![
            (
                changed(same, without("jti")),
                ProofError::MissingClaim(Claim::Jti),
            ),
            (
                changed(same, in_claims("jti", json!(7))),
                ProofError::InvalidClaim(Claim::Jti),
            ),
            (
                changed(same, in_claims("jti", json!(""))),
                ProofError::InvalidClaim(Claim::Jti),
            ),
            (
                changed(same, in_claims("jti", json!(long_jti))),
                ProofError::InvalidClaim(Claim::Jti),
            ),
            (
                changed(same, without("htm")),
                ProofError::MissingClaim(Claim::Htm),
            ),
            (
                changed(same, in_claims("htm", json!(["GET"]))),
                ProofError::InvalidClaim(Claim::Htm),
            ),
            (
                changed(same, in_claims("htm", json!("POST"))),
                ProofError::HtmMismatch,
            ),
            (
                changed(same, in_claims("htm", json!("get"))),
                ProofError::HtmMismatch,
            ),
            (
                changed(same, without("htu")),
                ProofError::MissingClaim(Claim::Htu),
            ),
            (
                changed(
                    same,
                    in_claims("htu", json!("https://api.example.com/v1/other")),
                ),
                ProofError::HtuMismatch,
            ),
            (
                changed(
                    same,
                    in_claims("htu", json!("https://evil.example.com/v1/things")),
                ),
                ProofError::HtuMismatch,
            ),
            (
                changed(
                    same,
                    in_claims("htu", json!("http://api.example.com/v1/things")),
                ),
                ProofError::HtuMismatch,
            ),
            (
                changed(
                    same,
                    in_claims("htu", json!("ftp://api.example.com/v1/things")),
                ),
                ProofError::InvalidClaim(Claim::Htu),
            ),
            (
                changed(same, without("iat")),
                ProofError::MissingClaim(Claim::Iat),
            ),
            (
                changed(same, in_claims("iat", json!("1750000000"))),
                ProofError::InvalidClaim(Claim::Iat),
            ),
            (
                changed(same, in_claims("iat", json!(-1))),
                ProofError::InvalidClaim(Claim::Iat),
            ),
            (
                changed(same, in_claims("iat", json!(NOW - 361))),
                ProofError::TooOld,
            ),
            (
                changed(same, in_claims("iat", json!(NOW + 61))),
                ProofError::IssuedInFuture,
            ),
            (
                changed(same, without("ath")),
                ProofError::MissingClaim(Claim::Ath),
            ),
            (
                changed(same, in_claims("ath", json!(1))),
                ProofError::InvalidClaim(Claim::Ath),
            ),
            (
                changed(same, in_claims("ath", json!(ath(b"another token")))),
                ProofError::AthMismatch,
            ),
            (
                changed(same, in_claims("ath", json!("not base64!"))),
                ProofError::AthMismatch,
            ),
            (
                changed(same, in_claims("ath", json!(b64(b"short")))),
                ProofError::AthMismatch,
            ),
            (
                changed(same, in_claims("ath", json!(format!("{}=", ath(TOKEN))))),
                ProofError::AthMismatch,
            ),
        ];
        for (i, (got, expected)) in cases.into_iter().enumerate() {
            assert_eq!(got, Err(expected), "case {i}");
        }
        // The edges of the window are inside it: max age + skew back, skew ahead.
        for iat in [NOW - 360, NOW + 60, NOW] {
            assert!(changed(same, in_claims("iat", json!(iat))).is_ok(), "{iat}");
        }
        // Fractional NumericDates are read as their whole seconds.
        assert_eq!(
            changed(same, in_claims("iat", json!(NOW as f64 + 0.5))).map(|p| p.issued_at),
            Ok(NOW)
        );
        // htu is compared after normalisation, without query and fragment.
        let htu = "HTTPS://API.Example.com:443/v1/./x/../things?page=2#top";
        assert!(changed(same, in_claims("htu", json!(htu))).is_ok());
        // An unreadable request URI never matches.
        let broken = ProofCheck {
            target_uri: "not a uri",
            ..check()
        };
        let proof = mint(&header(Algorithm::ES256), &claims(), Algorithm::ES256);
        assert_eq!(
            verify_proof(proof.as_bytes(), &broken),
            Err(ProofError::HtuMismatch)
        );
    }

    #[test]
    fn the_signature_must_be_the_keys_over_these_exact_bytes() {
        let proof = mint(&header(Algorithm::ES256), &claims(), Algorithm::ES256);
        let (input, signature) = proof.rsplit_once('.').unwrap();
        let mut bytes = Base64UrlSafeNoPadding::decode_to_vec(signature, None).unwrap();
        bytes[10] ^= 1;
        assert_eq!(
            verify(&format!("{input}.{}", b64(&bytes))),
            Err(ProofError::BadSignature)
        );
        // A signature of the wrong length, or over other bytes.
        assert_eq!(
            verify(&format!("{input}.{}", b64(&bytes[..63]))),
            Err(ProofError::BadSignature)
        );
        let other = mint(
            &header(Algorithm::ES256),
            &json!({"jti": "x"}),
            Algorithm::ES256,
        );
        let other_signature = other.rsplit_once('.').unwrap().1;
        assert_eq!(
            verify(&format!("{input}.{other_signature}")),
            Err(ProofError::BadSignature)
        );
        // An RS256 signature presented as PS256 (same RSA key).
        let mut h = header(Algorithm::PS256);
        h["jwk"] = public_jwk(Algorithm::RS256);
        h["jwk"].as_object_mut().unwrap().remove("alg");
        let input = format!("{}.{}", b64(h.to_string()), b64(claims().to_string()));
        let rs256 = sign(Algorithm::RS256, input.as_bytes());
        assert_eq!(
            verify(&format!("{input}.{}", b64(rs256))),
            Err(ProofError::BadSignature)
        );
    }

    #[test]
    fn malformed_and_oversized_proofs_are_refused_before_any_key_work() {
        let proof = mint(&header(Algorithm::ES256), &claims(), Algorithm::ES256);
        let malformed = |p: &str| matches!(verify(p), Err(ProofError::Malformed(_)));
        let (h, rest) = proof.split_once('.').unwrap();
        let (c, s) = rest.split_once('.').unwrap();
        for bad in [
            String::new(),
            h.to_string(),
            format!("{h}.{c}"),
            format!("{h}.{c}."),
            format!("{h}..{s}"),
            format!("{proof}.{s}"),
            format!("{h}.{c}.{s}="),
            format!("{proof} "),
            format!("{h}.{}.{s}", b64("[1,2]")),
            format!("{}.{c}.{s}", b64("not json")),
        ] {
            assert!(malformed(&bad), "{bad}");
        }
        // Duplicate members, in the header or the claims (or the jwk).
        let dup_header = format!(
            r#"{{"typ":"dpop+jwt","alg":"ES256","alg":"ES256","jwk":{}}}"#,
            public_jwk(Algorithm::ES256)
        );
        let dup_jwk = r#"{"typ":"dpop+jwt","alg":"ES256","jwk":{"kty":"EC","kty":"EC"}}"#;
        let dup_claims = r#"{"jti":"a","jti":"b","htm":"GET"}"#;
        for (header_text, claims_text) in [
            (dup_header.as_str(), claims().to_string()),
            (dup_jwk, claims().to_string()),
            (
                &header(Algorithm::ES256).to_string(),
                dup_claims.to_string(),
            ),
        ] {
            let proof = mint_raw(header_text, &claims_text, Algorithm::ES256);
            assert!(malformed(&proof), "{header_text} {claims_text}");
        }
        let oversized = "a".repeat(MAX_PROOF_BYTES + 1);
        assert_eq!(verify(&oversized), Err(ProofError::TooLarge));
        // A large but allowed proof is read.
        let mut c = claims();
        c["pad"] = json!("p".repeat(MAX_PROOF_BYTES / 2));
        assert!(verify(&mint(&header(Algorithm::ES256), &c, Algorithm::ES256)).is_ok());
    }

    /// xorshift64*: deterministic bytes for the garbage tests.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    #[test]
    fn garbage_is_refused_and_never_panics() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let alphabet = b"ABCxyz019-_.=+/ {}\"\\\x00\xff";
        for len in 0..400 {
            let raw: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            assert!(verify_proof(&raw, &check()).is_err());
            let text: Vec<u8> = (0..len)
                .map(|_| alphabet[(rng.next() % alphabet.len() as u64) as usize])
                .collect();
            assert!(verify_proof(&text, &check()).is_err());
        }
        // Every one-character change and every prefix of a good proof is refused.
        let proof = mint(&header(Algorithm::EdDSA), &claims(), Algorithm::EdDSA);
        assert!(verify(&proof).is_ok());
        let bytes = proof.as_bytes();
        for at in 0..bytes.len() {
            for replacement in [b'A', b'-', b'.', b'_'] {
                if bytes[at] == replacement {
                    continue;
                }
                let mut changed = bytes.to_vec();
                changed[at] = replacement;
                assert!(verify_proof(&changed, &check()).is_err(), "at {at}");
            }
            assert!(verify_proof(&bytes[..at], &check()).is_err(), "prefix {at}");
        }
        // Well-formed JSON of the wrong shapes.
        for (header_text, claims_text) in [
            ("{}", "{}"),
            (r#"{"typ":"dpop+jwt","alg":"ES256","jwk":{}}"#, "{}"),
            (
                r#"{"typ":"dpop+jwt","alg":"ES256","jwk":{"kty":"EC"}}"#,
                "{}",
            ),
            (
                r#"{"typ":"dpop+jwt","alg":"ES256","jwk":{"kty":"EC","crv":"P-256","x":1,"y":[]}}"#,
                "{}",
            ),
            (
                r#"{"typ":"dpop+jwt","alg":"ES256","jwk":{"kty":"RSA","n":"","e":""}}"#,
                "{}",
            ),
            (r#"{"typ":"dpop+jwt","alg":"ES256","jwk":[]}"#, "null"),
        ] {
            let proof = mint_raw(header_text, claims_text, Algorithm::ES256);
            assert!(verify(&proof).is_err(), "{header_text}");
        }
    }

    #[test]
    fn codes_are_distinct_and_descriptions_fixed_text() {
        let all = [
            ProofError::TooLarge,
            ProofError::Malformed("m"),
            ProofError::BadType,
            ProofError::BadAlgorithm,
            ProofError::BadJwk("j"),
            ProofError::PrivateJwk,
            ProofError::BadSignature,
            ProofError::MissingClaim(Claim::Ath),
            ProofError::InvalidClaim(Claim::Jti),
            ProofError::HtmMismatch,
            ProofError::HtuMismatch,
            ProofError::TooOld,
            ProofError::IssuedInFuture,
            ProofError::AthMismatch,
        ];
        let mut codes: Vec<&str> = all.iter().map(ProofError::code).collect();
        for code in &codes {
            assert!(code.starts_with("dpop_"), "{code}");
            assert!(
                code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{code}"
            );
        }
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
        assert_eq!(
            ProofError::MissingClaim(Claim::Ath).to_string(),
            "the DPoP proof has no ath claim (the access token's hash)"
        );
        // What the client sent never shows in the error.
        let mut c = claims();
        c["htm"] = json!("SECRET-METHOD");
        let err = verify(&mint(&header(Algorithm::ES256), &c, Algorithm::ES256)).unwrap_err();
        assert!(!err.description().contains("SECRET"));
    }

    #[test]
    fn thumbprints_follow_rfc_7638() {
        // RFC 7638 §3.1.
        let rfc = json!({"kty": "RSA", "e": "AQAB", "alg": "RS256", "kid": "2011-04-29",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"});
        let map = |v: &Value| v.as_object().unwrap().clone();
        assert_eq!(
            jwk_thumbprint(&map(&rfc)).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        // Optional members do not count.
        let mut bare = map(&rfc);
        bare.remove("alg");
        bare.remove("kid");
        assert_eq!(
            jwk_thumbprint(&bare).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        for alg in ALGORITHMS {
            assert_eq!(
                jwk_thumbprint(&map(&public_jwk(alg))).unwrap(),
                jwt_simple_thumbprint(alg),
                "{alg:?}"
            );
        }
        for bad in [
            json!({}),
            json!({"kty": "oct", "k": "AAAA"}),
            json!({"kty": "EC", "crv": "P-256", "x": "AAAA"}),
            json!({"kty": "OKP", "crv": "Ed25519", "x": 5}),
            json!({"kty": ["RSA"], "n": "AQAB", "e": "AQAB"}),
        ] {
            assert!(
                matches!(jwk_thumbprint(&map(&bad)), Err(ProofError::BadJwk(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn htu_normalisation() {
        let same = [
            "https://server.example.com/token",
            "https://a.example/~user/x",
            "https://a.example:8443/x",
            "http://a.example/",
            "https://[2001:db8::1]/p",
            "https://a.example/a%2Fb",
        ];
        for uri in same {
            assert_eq!(normalize_htu(uri).as_deref(), Some(uri), "{uri}");
        }
        for (uri, expected) in [
            (
                "HTTPS://Server.Example.COM/token",
                "https://server.example.com/token",
            ),
            (
                "https://server.example.com:443/token",
                "https://server.example.com/token",
            ),
            ("http://a.example:80/x", "http://a.example/x"),
            ("http://a.example:443/x", "http://a.example:443/x"),
            ("https://a.example:08443/x", "https://a.example:8443/x"),
            ("https://a.example:/x", "https://a.example/x"),
            ("https://a.example", "https://a.example/"),
            ("https://a.example?q", "https://a.example/"),
            ("https://a.example/a/./b/../c", "https://a.example/a/c"),
            ("https://a.example/../../x", "https://a.example/x"),
            ("https://a.example/a/b/..", "https://a.example/a/"),
            ("https://a.example/%7euser/%2e%2e/x", "https://a.example/x"),
            ("https://a.example/a%2fb%41", "https://a.example/a%2FbA"),
            ("https://a.example/p?q=1#f", "https://a.example/p"),
            ("https://a.example/p#f?x", "https://a.example/p"),
            ("https://[2001:DB8::1]:443/p", "https://[2001:db8::1]/p"),
            ("https://[::1]:8443", "https://[::1]:8443/"),
        ] {
            assert_eq!(normalize_htu(uri).as_deref(), Some(expected), "{uri}");
        }
        let too_long = format!("https://a.example/{}", "x".repeat(MAX_HTU_BYTES));
        for bad in [
            "",
            "ftp://a.example/",
            "https:/a.example/",
            "//a.example/",
            "a.example/p",
            "https://",
            "https:///path",
            "https://user@a.example/",
            "https://a.example:99999/",
            "https://a.example:123456/",
            "https://a.example:12ab/",
            "https://a b/",
            "https://a.example/p q",
            "https://a.example/%zz",
            "https://a.example/%4",
            "https://exämple.com/",
            "https://[zz]/",
            "https://[]/",
            "https://[::1]x/",
            "https://[::1/",
            "https://a.example/\u{0}",
            "https://a\"b/",
            too_long.as_str(),
        ] {
            assert_eq!(normalize_htu(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn dot_segments_are_removed_as_rfc_3986_says() {
        // RFC 3986 §5.2.4's own examples.
        assert_eq!(remove_dot_segments("/a/b/c/./../../g"), "/a/g");
        assert_eq!(remove_dot_segments("mid/content=5/../6"), "mid/6");
        for (path, expected) in [
            ("/", "/"),
            ("/.", "/"),
            ("/..", "/"),
            ("/a/.", "/a/"),
            ("/a/..", "/"),
            ("/a/../../b", "/b"),
            ("/a//b/../c", "/a//c"),
            ("/a/.b/..c/", "/a/.b/..c/"),
            (".", ""),
            ("..", ""),
            ("./a", "a"),
            ("../a", "a"),
        ] {
            assert_eq!(remove_dot_segments(path), expected, "{path}");
        }
    }

    #[test]
    fn the_replay_window_ends_max_age_plus_skew_after_iat() {
        assert_eq!(check().acceptable_until(NOW), NOW + 360);
        assert_eq!(check().acceptable_until(u64::MAX - 1), u64::MAX);
    }
}
