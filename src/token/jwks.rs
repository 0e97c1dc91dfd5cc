//! JSON Web Key Sets: parse a JWKS document into verification keys usable by [`crate::token::verify`].
//!
//! Keys are read and checked once, at parse time, into the form ring verifies with (RSA
//! `n` and `e` as big-endian bytes, an EC point `0x04 || x || y`, an Ed25519 `x`, an HMAC
//! key), so verification does no key parsing of its own. mfa-gate's selection rules:
//!
//! * `use` other than `sig` → skipped; private key material in a JWKS → skipped;
//! * unknown `kty`/`crv`/`alg` → skipped (counted, with a reason, not fatal);
//! * `alg` on the key restricts it to that one algorithm (an `RS256` key never verifies `PS256`);
//! * RSA without `alg` verifies RS256/384/512 and PS256/384/512;
//! * RSA moduli outside [`MIN_RSA_MODULUS_BITS`]..=[`MAX_RSA_MODULUS_BITS`] (ring's range),
//!   and moduli with the ROCA fingerprint, are rejected as weak or unsupported.
//!
//! Then the key's own members, each a reason to skip it when wrong:
//!
//! * the members read (`kty`, `crv`, `alg`, `use`, `kid`, `key_ops`, `n`, `e`, `x`, `y`) take
//!   at most [`MAX_JWK_MEMBERS_BYTES`] as JSON;
//! * `key_ops`, when present, is an array naming only `verify`, each once;
//! * only the key members of its `kty` (RSA: `n`, `e`; EC: `crv`, `x`, `y`; OKP: `crv`,
//!   `x`), all of them, as strings;
//! * RSA: `n` without leading zero bytes (one zero before a top bit set is allowed), odd;
//!   `e` exactly `AQAB` (65537);
//! * EC: `x` and `y` exactly the curve's size, a point of the curve (ring's own point parse,
//!   run by a trial key agreement with it);
//! * Ed25519: `x` exactly 32 bytes, canonical, on the curve and not of small order
//!   ([`crate::token::ed25519_point`]).
//!
//! HMAC secrets never come from a JWKS: only [`KeySet::try_add_hmac_secret`] adds one.

use std::sync::Arc;

use ct_codecs::{Base64UrlSafeNoPadding, Decoder, Encoder};
use ring::signature::{
    RsaParameters, RsaPublicKeyComponents, UnparsedPublicKey, VerificationAlgorithm,
};
use ring::{agreement, hmac, rand, signature};
use serde_json::{Map, Value};

use crate::token::ed25519_point;
use crate::token::jose::{parse_json_unique, truncate_for_log, Algorithm};

/// Largest JWKS document accepted, in bytes.
pub const MAX_JWKS_BYTES: usize = 1024 * 1024;
/// Most keys accepted in one JWKS document (more is rejected as a whole).
pub const MAX_JWKS_KEYS: usize = 100;
/// Smallest RSA modulus accepted; smaller keys are skipped as weak.
pub const MIN_RSA_MODULUS_BITS: usize = 2048;
/// Largest RSA modulus accepted (ring verifies RSA keys of 2048 to 8192 bits).
pub const MAX_RSA_MODULUS_BITS: usize = 8192;
/// Largest size, as JSON, of the members of a JWK that mfa-gate reads (a `kid` or `key_ops`
/// of kilobytes is refused; `x5c` chains and other members are not counted).
pub const MAX_JWK_MEMBERS_BYTES: usize = 8192;
/// Smallest HMAC secret accepted (RFC 7518 §3.2: at least the hash size; 32 bytes for HS256).
pub const MIN_HMAC_SECRET_BYTES: usize = 32;
/// When a token has no `kid`, at most this many keys of its algorithm are tried.
pub const MAX_KEYS_TRIED_WITHOUT_KID: usize = 4;

/// Why a JWKS document was rejected as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySetError(pub String);

impl std::fmt::Display for KeySetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// When an EC key's point is checked to be on its curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EcPointCheck {
    /// While the JWKS is read: a key off its curve is skipped.
    AtLoad,
    /// Not at load: ring checks the point again in every verification, and
    /// [`PublicKey::has_usable_point`] says, after a failed one, whether the point was the
    /// cause. For a key used once (a DPoP proof's `jwk`), so a valid proof costs no
    /// trial key agreement.
    Deferred,
}

/// A verification key for exactly one algorithm, in the form ring takes.
#[derive(Clone)]
pub(crate) struct PublicKey {
    algorithm: Algorithm,
    material: KeyMaterial,
}

/// The checked key material, shared by the algorithms of one JWK.
#[derive(Clone)]
enum KeyMaterial {
    /// RSA `n` and `e`, big-endian, no leading zeros; ring parses them in each verification.
    Rsa(Arc<RsaPublicKeyComponents<Vec<u8>>>),
    /// An EC point `0x04 || x || y` (P-256 or P-384, by the algorithm).
    EcPoint(Arc<[u8]>),
    /// An Ed25519 public key.
    Ed25519([u8; 32]),
    /// An HMAC key from the configured secret.
    Hmac(hmac::Key),
}

impl PublicKey {
    /// The algorithm this key verifies.
    pub(crate) fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Whether `signature` is this key's JWS signature over `signing_input` (the ASCII of
    /// `header.payload`): RSASSA-PKCS1-v1_5 or PSS (salt as long as the hash), ECDSA in the
    /// fixed `r || s` form, Ed25519, or an HMAC tag compared in constant time.
    pub(crate) fn verifies(&self, signing_input: &[u8], signature: &[u8]) -> bool {
        match &self.material {
            KeyMaterial::Rsa(key) => rsa_parameters(self.algorithm)
                .is_some_and(|parameters| key.verify(parameters, signing_input, signature).is_ok()),
            KeyMaterial::EcPoint(point) => {
                point_algorithm(self.algorithm).is_some_and(|algorithm| {
                    UnparsedPublicKey::new(algorithm, &point[..])
                        .verify(signing_input, signature)
                        .is_ok()
                })
            }
            KeyMaterial::Ed25519(x) => point_algorithm(self.algorithm).is_some_and(|algorithm| {
                UnparsedPublicKey::new(algorithm, &x[..])
                    .verify(signing_input, signature)
                    .is_ok()
            }),
            KeyMaterial::Hmac(key) => hmac::verify(key, signing_input, signature).is_ok(),
        }
    }

    /// For a key read with [`EcPointCheck::Deferred`]: whether its EC point is on its curve
    /// (a trial key agreement). Keys of other types were fully checked when read: true.
    pub(crate) fn has_usable_point(&self) -> bool {
        match &self.material {
            KeyMaterial::EcPoint(point) => ecdh_curve(self.algorithm)
                .is_some_and(|curve| ec_point_is_on_curve(curve, point).unwrap_or(false)),
            _ => true,
        }
    }
}

/// ring's RSA verification for an RS*/PS* algorithm (moduli of 2048 to 8192 bits).
fn rsa_parameters(algorithm: Algorithm) -> Option<&'static RsaParameters> {
    Some(match algorithm {
        Algorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
        _ => return None,
    })
}

/// ring's verification for a key given as a point: ECDSA (JWS's fixed `r || s` signatures)
/// or Ed25519.
fn point_algorithm(algorithm: Algorithm) -> Option<&'static dyn VerificationAlgorithm> {
    Some(match algorithm {
        Algorithm::ES256 => &signature::ECDSA_P256_SHA256_FIXED,
        Algorithm::ES384 => &signature::ECDSA_P384_SHA384_FIXED,
        Algorithm::EdDSA => &signature::ED25519,
        _ => return None,
    })
}

/// The key agreement of an ECDSA algorithm's curve, whose peer-key parse checks a point.
fn ecdh_curve(algorithm: Algorithm) -> Option<&'static agreement::Algorithm> {
    match algorithm {
        Algorithm::ES256 => Some(&agreement::ECDH_P256),
        Algorithm::ES384 => Some(&agreement::ECDH_P384),
        _ => None,
    }
}

/// Whether `point` is a point of `curve`, by ring's own check: ring parses a peer's public
/// key (coordinates below the field prime, on the curve) before any key agreement, with
/// the same code as before an ECDSA verification. Err when no fresh key can be made (no
/// randomness).
fn ec_point_is_on_curve(curve: &'static agreement::Algorithm, point: &[u8]) -> Result<bool, ()> {
    let rng = rand::SystemRandom::new();
    let own = agreement::EphemeralPrivateKey::generate(curve, &rng).map_err(drop)?;
    let peer = agreement::UnparsedPublicKey::new(curve, point);
    Ok(agreement::agree_ephemeral(own, &peer, |_shared: &[u8]| ()).is_ok())
}

/// Why no key of a set can verify a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoKey {
    /// The token names a `kid` the set lacks (shortened for logs).
    UnknownKid(String),
    /// No key in the set fits the token's algorithm.
    NoMatchingKey,
}

/// One usable JWK: its `kid`, its fingerprint and one prepared key per algorithm it may
/// verify.
struct JwkEntry {
    kid: Option<String>,
    fingerprint: KeyFingerprint,
    keys: Vec<PublicKey>,
}

/// A digest of one key (a JWK's `kid`, `alg` and key members, or an HMAC secret), so a
/// session verified by a key can be matched to a later key set: the same fingerprint means
/// the same key. Never reveals an HMAC secret (it is a MAC under the secret).
pub type KeyFingerprint = [u8; 16];

/// A key chosen for one verification attempt.
pub(crate) struct Candidate<'a> {
    pub(crate) key: &'a PublicKey,
    pub(crate) kid: Option<&'a str>,
    pub(crate) fingerprint: KeyFingerprint,
}

/// Verification keys of one issuer (RSA, EC P-256/P-384, Ed25519; an HMAC secret only
/// when configured explicitly). Keys with unsupported `kty`/`crv`/`use` are skipped, not fatal.
#[derive(Clone, Default)]
pub struct KeySet {
    entries: Arc<Vec<JwkEntry>>,
    hmac: Option<Arc<Vec<PublicKey>>>,
    hmac_fingerprint: KeyFingerprint,
    skipped: Arc<Vec<String>>,
}

impl KeySet {
    /// Parses a JWKS JSON document (`{"keys":[...]}`).
    pub fn from_jwks_json(bytes: &[u8]) -> Result<KeySet, KeySetError> {
        KeySet::from_jwks_json_checking(bytes, EcPointCheck::AtLoad)
    }

    /// Parses a JWKS JSON document, checking EC points when `points` says.
    pub(crate) fn from_jwks_json_checking(
        bytes: &[u8],
        points: EcPointCheck,
    ) -> Result<KeySet, KeySetError> {
        if bytes.len() > MAX_JWKS_BYTES {
            return Err(KeySetError(format!(
                "JWKS document is {} bytes, over the {MAX_JWKS_BYTES}-byte limit",
                bytes.len()
            )));
        }
        let document = parse_json_unique(bytes).map_err(|e| {
            KeySetError(format!(
                "JWKS document is not valid JSON (or has duplicate members): {e}"
            ))
        })?;
        let keys = match document.get("keys") {
            Some(Value::Array(keys)) => keys,
            Some(_) => return Err(KeySetError("JWKS member \"keys\" is not an array".into())),
            None => {
                return Err(KeySetError(
                    "JWKS document is not an object with a \"keys\" array".into(),
                ))
            }
        };
        if keys.len() > MAX_JWKS_KEYS {
            return Err(KeySetError(format!(
                "JWKS has {} keys, over the limit of {MAX_JWKS_KEYS}",
                keys.len()
            )));
        }
        let mut entries = Vec::with_capacity(keys.len());
        let mut skipped = Vec::new();
        for (index, key) in keys.iter().enumerate() {
            match parse_jwk(key, points) {
                Ok(entry) => entries.push(entry),
                Err(reason) => skipped.push(format!("keys[{index}]: {reason}")),
            }
        }
        if entries.is_empty() {
            let detail = if skipped.is_empty() {
                "the \"keys\" array is empty".to_string()
            } else {
                skipped.join("; ")
            };
            return Err(KeySetError(format!("JWKS has no usable keys ({detail})")));
        }
        Ok(KeySet {
            entries: Arc::new(entries),
            hmac: None,
            hmac_fingerprint: [0; 16],
            skipped: Arc::new(skipped),
        })
    }

    /// Adds an HMAC secret (raw bytes) for HS256/384/512. Secrets shorter than
    /// [`MIN_HMAC_SECRET_BYTES`] are ignored with a warning; use [`KeySet::try_add_hmac_secret`]
    /// to get the error instead.
    pub fn add_hmac_secret(&mut self, secret: &[u8]) {
        if let Err(e) = self.try_add_hmac_secret(secret) {
            log::warn!("HMAC secret ignored: {e}");
        }
    }

    /// Adds an HMAC secret, replacing any previous one. HS256 needs ≥ 32 bytes, HS384 ≥ 48,
    /// HS512 ≥ 64 (RFC 7518 §3.2); the secret is registered for each algorithm it is long
    /// enough for, and rejected when shorter than 32 bytes.
    pub fn try_add_hmac_secret(&mut self, secret: &[u8]) -> Result<(), KeySetError> {
        if secret.len() < MIN_HMAC_SECRET_BYTES {
            return Err(KeySetError(format!(
                "HMAC secret is {} bytes; at least {MIN_HMAC_SECRET_BYTES} are required",
                secret.len()
            )));
        }
        let hmac_key = |algorithm: Algorithm, ring_algorithm: hmac::Algorithm| PublicKey {
            algorithm,
            material: KeyMaterial::Hmac(hmac::Key::new(ring_algorithm, secret)),
        };
        let mut keys = vec![hmac_key(Algorithm::HS256, hmac::HMAC_SHA256)];
        if secret.len() >= 48 {
            keys.push(hmac_key(Algorithm::HS384, hmac::HMAC_SHA384));
        }
        if secret.len() >= 64 {
            keys.push(hmac_key(Algorithm::HS512, hmac::HMAC_SHA512));
        }
        self.hmac = Some(Arc::new(keys));
        self.hmac_fingerprint = truncated(&hmac_sha256::HMAC::mac(
            b"mfa-gate key fingerprint v1",
            secret,
        ));
        Ok(())
    }

    /// Number of usable keys (JWKs, plus one for a configured HMAC secret).
    pub fn len(&self) -> usize {
        self.entries.len() + usize::from(self.hmac.is_some())
    }

    /// True when there are no usable keys.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True if a key with this `kid` is present.
    pub fn contains_kid(&self, kid: &str) -> bool {
        self.entries.iter().any(|e| e.kid.as_deref() == Some(kid))
    }

    /// Number of JWKs skipped while parsing (unsupported, weak or not for signatures).
    pub fn skipped(&self) -> usize {
        self.skipped.len()
    }

    /// Why each skipped JWK was skipped, e.g. `keys[2]: use "enc" is not "sig"`.
    pub fn skipped_reasons(&self) -> &[String] {
        &self.skipped
    }

    /// True when an HMAC secret is configured for `algorithm`.
    pub fn has_hmac_for(&self, algorithm: Algorithm) -> bool {
        self.hmac
            .as_ref()
            .is_some_and(|keys| keys.iter().any(|k| k.algorithm() == algorithm))
    }

    /// True when the key with `fingerprint` is here and may verify `algorithm`.
    pub fn has_key(&self, fingerprint: &KeyFingerprint, algorithm: Algorithm) -> bool {
        if algorithm.is_hmac() {
            return self.has_hmac_for(algorithm) && self.hmac_fingerprint == *fingerprint;
        }
        (self.entries.iter())
            .filter(|e| e.fingerprint == *fingerprint)
            .any(|e| e.keys.iter().any(|k| k.algorithm() == algorithm))
    }

    /// Whether a token of `algorithm` can have a key here at all, checked with the rest of
    /// its header: an HMAC algorithm needs a configured secret, so an HS256 token "signed"
    /// with an RSA public key never reaches a MAC check. [`KeySet::candidates`] then picks
    /// the keys; together they are the key selection rules.
    pub(crate) fn admits(&self, algorithm: Algorithm) -> Result<(), NoKey> {
        if algorithm.is_hmac() && !self.has_hmac_for(algorithm) {
            return Err(NoKey::NoMatchingKey);
        }
        Ok(())
    }

    /// The keys to try for a token with this algorithm and `kid`.
    ///
    /// HMAC: the configured secret (the token's `kid` does not select among secrets).
    /// With a `kid`: only keys with that `kid` (none → `UnknownKid`). Without: up to
    /// [`MAX_KEYS_TRIED_WITHOUT_KID`] keys of that algorithm.
    pub(crate) fn candidates(
        &self,
        algorithm: Algorithm,
        kid: Option<&str>,
    ) -> Result<Vec<Candidate<'_>>, NoKey> {
        if algorithm.is_hmac() {
            let found: Vec<Candidate<'_>> = self
                .hmac
                .iter()
                .flat_map(|keys| keys.iter())
                .filter(|k| k.algorithm() == algorithm)
                .map(|key| Candidate {
                    key,
                    kid: None,
                    fingerprint: self.hmac_fingerprint,
                })
                .collect();
            return if found.is_empty() {
                Err(NoKey::NoMatchingKey)
            } else {
                Ok(found)
            };
        }
        let mut found = Vec::new();
        match kid {
            Some(kid) => {
                let mut kid_known = false;
                for entry in self
                    .entries
                    .iter()
                    .filter(|e| e.kid.as_deref() == Some(kid))
                {
                    kid_known = true;
                    for key in entry.keys.iter().filter(|k| k.algorithm() == algorithm) {
                        found.push(Candidate {
                            key,
                            kid: entry.kid.as_deref(),
                            fingerprint: entry.fingerprint,
                        });
                    }
                }
                if !kid_known {
                    return Err(NoKey::UnknownKid(truncate_for_log(kid)));
                }
                found.truncate(MAX_KEYS_TRIED_WITHOUT_KID);
            }
            None => {
                'entries: for entry in self.entries.iter() {
                    for key in entry.keys.iter().filter(|k| k.algorithm() == algorithm) {
                        found.push(Candidate {
                            key,
                            kid: entry.kid.as_deref(),
                            fingerprint: entry.fingerprint,
                        });
                        if found.len() == MAX_KEYS_TRIED_WITHOUT_KID {
                            break 'entries;
                        }
                    }
                }
            }
        }
        if found.is_empty() {
            Err(NoKey::NoMatchingKey)
        } else {
            Ok(found)
        }
    }
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeySet({} keys)", self.len())
    }
}

/// Members that carry private or symmetric key material; a JWKS must not publish them.
const SECRET_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
/// The members mfa-gate reads from a JWK (everything else, e.g. `x5c`, is ignored).
const READ_MEMBERS: [&str; 10] = [
    "kty", "crv", "alg", "use", "kid", "key_ops", "n", "e", "x", "y",
];

fn optional_str<'a>(jwk: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, String> {
    match jwk.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("member \"{name}\" is not a string")),
    }
}

/// Parses one JWK into a [`JwkEntry`], or says why it is skipped.
fn parse_jwk(value: &Value, points: EcPointCheck) -> Result<JwkEntry, String> {
    let jwk = value.as_object().ok_or("not a JSON object")?;
    let kty = optional_str(jwk, "kty")?.ok_or("no \"kty\"")?;
    if kty == "oct" {
        return Err(
            "symmetric (oct) keys are not taken from a JWKS; configure an HMAC secret".into(),
        );
    }
    let kid = optional_str(jwk, "kid")?.map(str::to_string);
    if let Some(key_use) = optional_str(jwk, "use")? {
        if key_use != "sig" {
            return Err(format!("use {key_use:?} is not \"sig\""));
        }
    }
    if let Some(secret) = SECRET_MEMBERS.iter().find(|m| jwk.contains_key(**m)) {
        return Err(format!(
            "contains private or symmetric key material (\"{secret}\"); not used"
        ));
    }
    let alg = match optional_str(jwk, "alg")? {
        None => None,
        Some(name) => Some(
            Algorithm::parse(name)
                .or(if name == "Ed25519" {
                    Some(Algorithm::EdDSA)
                } else {
                    None
                })
                .ok_or_else(|| format!("unsupported alg {:?}", truncate_for_log(name)))?,
        ),
    };
    let crv = optional_str(jwk, "crv")?;
    let allowed: Vec<Algorithm> = match (kty, crv) {
        ("RSA", _) => {
            check_rsa_modulus(optional_str(jwk, "n")?.ok_or("RSA key without \"n\"")?)?;
            Algorithm::RSA.to_vec()
        }
        ("EC", Some("P-256")) => vec![Algorithm::ES256],
        ("EC", Some("P-384")) => vec![Algorithm::ES384],
        ("EC", other) => return Err(format!("unsupported EC curve {other:?}")),
        ("OKP", Some("Ed25519")) => vec![Algorithm::EdDSA],
        ("OKP", other) => return Err(format!("unsupported OKP curve {other:?}")),
        (other, _) => return Err(format!("unsupported kty {:?}", truncate_for_log(other))),
    };
    let algorithms = match alg {
        Some(alg) if allowed.contains(&alg) => vec![alg],
        Some(alg) => return Err(format!("alg {} does not match kty {kty:?}", alg.as_str())),
        None => allowed,
    };
    let first = algorithms
        .first()
        .copied()
        .ok_or("no algorithm for the key")?;
    let material = read_key_material(jwk, kty, points)
        .map_err(|e| format!("{} key rejected: {e}", first.as_str()))?;
    let keys = algorithms
        .into_iter()
        .map(|algorithm| PublicKey {
            algorithm,
            material: material.clone(),
        })
        .collect();
    let fingerprint = jwk_fingerprint(jwk);
    Ok(JwkEntry {
        kid,
        fingerprint,
        keys,
    })
}

/// The members that make a JWK the key it is, in a fixed order.
const IDENTITY_MEMBERS: [&str; 8] = ["kty", "crv", "alg", "kid", "n", "e", "x", "y"];

/// A JWK's fingerprint: SHA-256 over its identity members (name, value; absent ones
/// marked), truncated to 16 bytes.
fn jwk_fingerprint(jwk: &Map<String, Value>) -> KeyFingerprint {
    let mut hash = hmac_sha256::Hash::new();
    hash.update(b"mfa-gate jwk fingerprint v1");
    for name in IDENTITY_MEMBERS {
        hash.update([0u8]);
        hash.update(name.as_bytes());
        match jwk.get(name).and_then(Value::as_str) {
            Some(value) => {
                hash.update([1u8]);
                hash.update((value.len() as u64).to_be_bytes());
                hash.update(value.as_bytes());
            }
            None => hash.update([2u8]),
        }
    }
    truncated(&hash.finalize())
}

fn truncated(digest: &[u8; 32]) -> KeyFingerprint {
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

/// The key members of each `kty`: the ones it needs, and the ones it must not have (another
/// type's; `crv` is RSA's only through its absence).
fn key_members(kty: &str) -> (&'static [&'static str], &'static [&'static str]) {
    match kty {
        "RSA" => (&["n", "e"], &["crv", "x", "y"]),
        "EC" => (&["crv", "x", "y"], &["n", "e"]),
        _ => (&["crv", "x"], &["y", "n", "e"]),
    }
}

/// Checks a JWK's members and reads its key (its `kty` and `crv` already chosen).
fn read_key_material(
    jwk: &Map<String, Value>,
    kty: &str,
    points: EcPointCheck,
) -> Result<KeyMaterial, String> {
    let mut read = Map::new();
    for name in READ_MEMBERS {
        if let Some(v) = jwk.get(name) {
            read.insert(name.to_string(), v.clone());
        }
    }
    let size = Value::Object(read).to_string().len();
    if size > MAX_JWK_MEMBERS_BYTES {
        return Err(format!(
            "its members take {size} bytes, over {MAX_JWK_MEMBERS_BYTES}"
        ));
    }
    check_key_ops(jwk)?;
    let (needed, foreign) = key_members(kty);
    if let Some(name) = foreign.iter().find(|m| jwk.contains_key(**m)) {
        return Err(format!("member \"{name}\" does not belong to a {kty} key"));
    }
    for name in needed {
        match jwk.get(*name) {
            Some(Value::String(_)) => {}
            Some(_) => return Err(format!("member \"{name}\" is not a string")),
            None => return Err(format!("{kty} key without \"{name}\"")),
        }
    }
    let member = |name: &str| jwk.get(name).and_then(Value::as_str).unwrap_or_default();
    match kty {
        "RSA" => rsa_components(member("n"), member("e")),
        "EC" => {
            let (size, curve) = match member("crv") {
                "P-256" => (32, &agreement::ECDH_P256),
                _ => (48, &agreement::ECDH_P384),
            };
            let (Some(x), Some(y)) = (
                decode_fixed(member("x"), size),
                decode_fixed(member("y"), size),
            ) else {
                return Err(format!(
                    "EC coordinates are not {size}-byte base64url values"
                ));
            };
            let mut point = Vec::with_capacity(1 + 2 * size);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            if points == EcPointCheck::AtLoad {
                match ec_point_is_on_curve(curve, &point) {
                    Ok(true) => {}
                    Ok(false) => return Err("EC point is not on the curve".into()),
                    Err(()) => return Err("EC point could not be checked (no randomness)".into()),
                }
            }
            Ok(KeyMaterial::EcPoint(point.into()))
        }
        _ => {
            let x = decode_fixed(member("x"), 32)
                .ok_or("Ed25519 \"x\" is not a 32-byte base64url value")?;
            let mut key = [0u8; 32];
            key.copy_from_slice(&x);
            ed25519_point::check_public_key(&key).map_err(|bad| bad.describe().to_string())?;
            Ok(KeyMaterial::Ed25519(key))
        }
    }
}

/// `key_ops`, when present: an array of strings naming `verify` only, each once (a key in
/// a JWKS is a public verification key, RFC 7517 §4.3).
fn check_key_ops(jwk: &Map<String, Value>) -> Result<(), String> {
    let Some(ops) = jwk.get("key_ops") else {
        return Ok(());
    };
    let Value::Array(ops) = ops else {
        return Err("key_ops is not an array".into());
    };
    let mut seen_verify = false;
    for op in ops {
        match op {
            Value::String(op) if op == "verify" => {
                if seen_verify {
                    return Err("key_ops lists \"verify\" twice".into());
                }
                seen_verify = true;
            }
            Value::String(op) => {
                return Err(format!(
                    "key_ops allows {:?}, not only \"verify\"",
                    truncate_for_log(op)
                ))
            }
            _ => return Err("key_ops has a member that is not a string".into()),
        }
    }
    Ok(())
}

/// Decodes a base64url value that must be exactly `size` bytes (and exactly as long as
/// their unpadded encoding).
fn decode_fixed(b64: &str, size: usize) -> Option<Vec<u8>> {
    if Base64UrlSafeNoPadding::encoded_len(size).ok()? != b64.len() {
        return None;
    }
    let mut out = vec![0u8; size];
    let len = Base64UrlSafeNoPadding::decode(&mut out, b64, None)
        .ok()?
        .len();
    (len == size).then_some(out)
}

/// The RSA key as ring takes it, after [`check_rsa_modulus`]: `n` without leading zeros
/// (one zero byte before a top bit set is a sign byte, and dropped), odd; `e` = 65537.
fn rsa_components(n_b64: &str, e_b64: &str) -> Result<KeyMaterial, String> {
    let n = Base64UrlSafeNoPadding::decode_to_vec(n_b64, None)
        .map_err(|_| "RSA modulus \"n\" is not base64url".to_string())?;
    let n = match n.as_slice() {
        [0, top, ..] if top & 0x80 != 0 => &n[1..],
        n => n,
    };
    if n.first().is_none_or(|&top| top == 0) {
        return Err("RSA modulus \"n\" has leading zero bytes".into());
    }
    if n.last().is_none_or(|&low| low & 1 == 0) {
        return Err("RSA modulus \"n\" is even".into());
    }
    if e_b64 != "AQAB" {
        return Err("RSA exponent \"e\" is not AQAB (65537)".into());
    }
    Ok(KeyMaterial::Rsa(Arc::new(RsaPublicKeyComponents {
        n: n.to_vec(),
        e: vec![1, 0, 1],
    })))
}

/// Rejects RSA moduli outside [`MIN_RSA_MODULUS_BITS`]..=[`MAX_RSA_MODULUS_BITS`], and
/// moduli with the ROCA fingerprint.
fn check_rsa_modulus(n_b64: &str) -> Result<(), String> {
    // 8192 bits = 1024 bytes ≈ 1366 base64url chars; anything longer is rejected unread.
    if n_b64.len() > 1400 {
        return Err(format!(
            "RSA modulus over {MAX_RSA_MODULUS_BITS} bits is not accepted"
        ));
    }
    let n = Base64UrlSafeNoPadding::decode_to_vec(n_b64, None)
        .map_err(|_| "RSA modulus \"n\" is not base64url".to_string())?;
    let first = n.iter().position(|&b| b != 0).unwrap_or(n.len());
    let n = &n[first..];
    let bits = match n.first() {
        None => 0,
        Some(&top) => (n.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
    };
    if bits < MIN_RSA_MODULUS_BITS {
        return Err(format!(
            "RSA modulus of {bits} bits is weak (minimum {MIN_RSA_MODULUS_BITS})"
        ));
    }
    if bits > MAX_RSA_MODULUS_BITS {
        return Err(format!(
            "RSA modulus of {bits} bits is over {MAX_RSA_MODULUS_BITS}"
        ));
    }
    if has_roca_fingerprint(n) {
        return Err("RSA modulus has the ROCA fingerprint (CVE-2017-15361): factorable".into());
    }
    Ok(())
}

/// Small primes of the ROCA fingerprint test (Nemec et al., CCS 2017, "The Return of
/// Coppersmith's Attack"): keys from the affected Infineon library have primes
/// `k·M + (65537^a mod M)`, so their modulus is a power of 65537 modulo each of these primes.
const ROCA_PRIMES: [u32; 38] = [
    3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97,
    101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167,
];

/// True when `n mod p` lies in the subgroup generated by 65537 for every prime of
/// [`ROCA_PRIMES`] (a random modulus passes all 38 with negligible probability).
pub(crate) fn has_roca_fingerprint(n: &[u8]) -> bool {
    ROCA_PRIMES.iter().all(|&p| {
        let residue = n
            .iter()
            .fold(0u32, |acc, &b| (acc * 256 + u32::from(b)) % p);
        let generator = 65537 % p;
        let mut power = 1;
        loop {
            if power == residue {
                return true;
            }
            power = power * generator % p;
            if power == 1 {
                return false;
            }
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    /// RFC 7520 §3.4 RSA public key (2048 bits).
    const RFC7520_N: &str = "n4EPtAOCc9AlkeQHPzHStgAbgs7bTZLwUBZdR8_KuKPEHLd4rHVTeT-O-XV2jRojdNhxJWTDvNd7nqQ0VEiZQHz_AJmSCpMaJMRBSFKrKb2wqVwGU_NsYOYL-QtiWN2lbzcEe6XC0dApr5ydQLrHqkHHig3RBordaZ6Aj-oBHqFEHYpPe7Tpe-OfVfHd1E6cS6M1FZcD1NNLYD5lFHpPI9bTwJlsde3uhGqC0ZCuEHg8lhzwOHrtIQbS0FVbb9k3-tVTU4fg_3L_vniUFAKwuCLqKnS2BYwdq_mzSnbLY7h_qixoR7jig3__kRhuaxwUkRz5iaiQkqgc5gHdrNP5zw";
    /// Wycheproof's ES256 test key (P-256).
    fn ec_key() -> Value {
        json!({"kty": "EC", "crv": "P-256", "kid": "ec",
            "x": "04N0xi21hshyvBp7I167sbE_bXqyqkAPfefdklMO7wY",
            "y": "UI8exy-C06a7DUnjIdENkxeFtHM4-l_41LqEw9nVgmw"})
    }
    fn rsa_key() -> Value {
        json!({"kty": "RSA", "kid": "rsa", "n": RFC7520_N, "e": "AQAB"})
    }
    fn parse(keys: Value) -> Result<KeySet, KeySetError> {
        KeySet::from_jwks_json(json!({ "keys": keys }).to_string().as_bytes())
    }

    #[test]
    fn parses_rsa_and_ec_keys() {
        let set = parse(json!([rsa_key(), ec_key()])).unwrap();
        assert_eq!(set.len(), 2);
        assert_eq!(set.skipped(), 0);
        assert!(set.contains_kid("rsa") && set.contains_kid("ec"));
        assert!(!set.contains_kid("other"));
        assert_eq!(format!("{set:?}"), "KeySet(2 keys)");
    }

    #[test]
    fn rsa_without_alg_serves_rs_and_ps_and_with_alg_only_that_one() {
        let set = parse(json!([rsa_key()])).unwrap();
        for alg in [Algorithm::RS256, Algorithm::PS512] {
            assert_eq!(set.candidates(alg, Some("rsa")).unwrap().len(), 1);
        }
        let mut only_rs256 = rsa_key();
        only_rs256["alg"] = json!("RS256");
        let set = parse(json!([only_rs256])).unwrap();
        assert_eq!(
            set.candidates(Algorithm::RS256, Some("rsa")).unwrap().len(),
            1
        );
        assert!(matches!(
            set.candidates(Algorithm::PS256, Some("rsa")),
            Err(NoKey::NoMatchingKey)
        ));
    }

    #[test]
    fn unusable_keys_are_skipped_and_counted() {
        let mut enc = ec_key();
        enc["use"] = json!("enc");
        let mut private = ec_key();
        private["d"] = json!("yy49oPcINGK2ps0LmtxpB6UTEOiITghHBif6wDqmJ3c");
        let mut wrong_alg = ec_key();
        wrong_alg["alg"] = json!("RS256");
        let mut p521 = ec_key();
        p521["crv"] = json!("P-521");
        let mut bad_point = ec_key();
        bad_point["y"] = json!("UI8exy-C06a7DUnjIdENkxeFtHM4-l_41LqEw9nVgnw");
        let set = parse(json!([
            ec_key(),
            enc,
            private,
            wrong_alg,
            p521,
            bad_point,
            {"kty": "oct", "k": "AAAA"},
            {"kty": "XYZ"},
            {"kid": "no kty"},
            "not an object",
            {"kty": "OKP", "crv": "X25519", "x": "AAAA"},
        ]))
        .unwrap();
        assert_eq!(set.len(), 1);
        assert_eq!(set.skipped(), 10);
        let reasons = set.skipped_reasons().join("\n");
        for expected in [
            "keys[1]: use \"enc\"",
            "keys[2]: contains private",
            "keys[3]: alg RS256 does not match",
            "keys[4]: unsupported EC curve",
            "keys[5]: ES256 key rejected",
            "keys[6]: symmetric (oct)",
            "keys[7]: unsupported kty",
            "keys[8]: no \"kty\"",
            "keys[9]: not a JSON object",
            "keys[10]: unsupported OKP curve",
        ] {
            assert!(reasons.contains(expected), "{expected} not in {reasons}");
        }
    }

    #[test]
    fn weak_and_roca_rsa_keys_are_rejected() {
        // 1024-bit modulus (odd, top bit set).
        let mut n = vec![0xc5u8; 128];
        n[127] = 0x01;
        let weak = json!({"kty": "RSA", "n": Base64UrlSafeNoPadding::encode_to_string(&n).unwrap(), "e": "AQAB"});
        let err = parse(json!([weak])).unwrap_err();
        assert!(err.0.contains("1024 bits is weak"), "{err}");

        let vectors = format!(
            "{}/../shared/vectors/wycheproof/json_web_key_test.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(vectors).unwrap()).unwrap();
        let roca = doc["testGroups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["comment"] == "jws_rsa_roca_key")
            .unwrap();
        let roca_n = roca["private"]["keys"][0]["n"].as_str().unwrap();
        let err = parse(json!([{"kty": "RSA", "n": roca_n, "e": "AQAB"}])).unwrap_err();
        assert!(err.0.contains("ROCA"), "{err}");
        let rfc_n = Base64UrlSafeNoPadding::decode_to_vec(RFC7520_N, None).unwrap();
        assert!(!has_roca_fingerprint(&rfc_n));
    }

    fn b64(bytes: &[u8]) -> String {
        Base64UrlSafeNoPadding::encode_to_string(bytes).unwrap()
    }

    /// An RSA JWK whose modulus is `bytes` long (odd, top byte 0xc5: not ROCA's form).
    fn rsa_of_size(bytes: usize) -> Value {
        let mut n = vec![0xc5u8; bytes];
        n[bytes - 1] = 0x01;
        json!({"kty": "RSA", "n": b64(&n), "e": "AQAB"})
    }

    fn skip_reason(key: Value) -> String {
        parse(json!([key])).unwrap_err().0
    }

    #[test]
    fn rsa_moduli_of_2048_to_8192_bits_are_taken_as_ring_verifies_them() {
        for bytes in [256, 384, 512, 768, 1024] {
            let set = parse(json!([rsa_of_size(bytes)])).unwrap();
            assert_eq!(
                set.candidates(Algorithm::PS512, None).unwrap().len(),
                1,
                "{bytes}"
            );
        }
        assert!(skip_reason(rsa_of_size(1025)).contains("over 8192"));
        assert!(skip_reason(rsa_of_size(255)).contains("2040 bits is weak"));
    }

    #[test]
    fn rsa_components_are_read_strictly() {
        let n = Base64UrlSafeNoPadding::decode_to_vec(RFC7520_N, None).unwrap();
        let with_n = |n: &[u8]| json!({"kty": "RSA", "n": b64(n), "e": "AQAB"});
        // One zero byte before a top bit set is a sign byte: the same key.
        assert!(parse(json!([with_n(&[&[0], &n[..]].concat())])).is_ok());
        assert!(parse(json!([with_n(&[&[1], &n[..]].concat())])).is_ok());
        for (bad, expected) in [
            (with_n(&[&[0, 0], &n[..]].concat()), "leading zero bytes"),
            (with_n(&[&[0, 1], &n[..]].concat()), "leading zero bytes"),
            (
                with_n(&[&n[..n.len() - 1], &[n[n.len() - 1] & 0xfe]].concat()),
                "is even",
            ),
            (
                json!({"kty": "RSA", "n": RFC7520_N, "e": "AAEAAQ"}),
                "not AQAB",
            ),
            (json!({"kty": "RSA", "n": RFC7520_N, "e": "Aw"}), "not AQAB"),
            (
                json!({"kty": "RSA", "n": RFC7520_N}),
                "RSA key without \"e\"",
            ),
            (
                json!({"kty": "RSA", "n": RFC7520_N, "e": 65537}),
                "\"e\" is not a string",
            ),
        ] {
            let reason = skip_reason(bad);
            assert!(reason.contains(expected), "{expected} not in {reason}");
            assert!(reason.contains("RS256 key rejected"), "{reason}");
        }
    }

    #[test]
    fn key_members_are_those_of_its_type_only() {
        let with = |mut key: Value, name: &str, value: Value| {
            key[name] = value;
            key
        };
        for ops in [json!(["verify"]), json!([])] {
            assert!(
                parse(json!([with(ec_key(), "key_ops", ops.clone())])).is_ok(),
                "{ops}"
            );
        }
        for (bad, expected) in [
            (
                with(ec_key(), "key_ops", json!(["sign"])),
                "not only \"verify\"",
            ),
            (
                with(ec_key(), "key_ops", json!(["verify", "verify"])),
                "twice",
            ),
            (with(ec_key(), "key_ops", json!("verify")), "not an array"),
            (with(ec_key(), "key_ops", json!([1])), "not a string"),
            (
                with(rsa_key(), "crv", json!("P-256")),
                "\"crv\" does not belong",
            ),
            (with(rsa_key(), "x", json!("AAAA")), "\"x\" does not belong"),
            (
                with(ec_key(), "n", json!(RFC7520_N)),
                "\"n\" does not belong",
            ),
            (
                with(ed25519_key(), "y", json!("AAAA")),
                "\"y\" does not belong",
            ),
            (with(ec_key(), "y", json!(null)), "\"y\" is not a string"),
            (with(ec_key(), "kid", json!("k".repeat(9000))), "over 8192"),
        ] {
            let reason = skip_reason(bad);
            assert!(reason.contains(expected), "{expected} not in {reason}");
        }
        let mut no_y = ec_key();
        no_y.as_object_mut().unwrap().remove("y");
        assert!(skip_reason(no_y).contains("EC key without \"y\""));
        // Members mfa-gate does not read are not counted, however large.
        assert!(parse(json!([with(ec_key(), "x5c", json!(["A".repeat(20_000)]))])).is_ok());
    }

    #[test]
    fn ec_coordinates_have_the_curves_size_and_make_a_point_of_it() {
        let x =
            Base64UrlSafeNoPadding::decode_to_vec(ec_key()["x"].as_str().unwrap(), None).unwrap();
        let mut short = ec_key();
        short["x"] = json!(b64(&x[1..]));
        assert!(skip_reason(short).contains("not 32-byte"));
        let mut padded = ec_key();
        padded["x"] = json!(b64(&[&[0], &x[..]].concat()));
        assert!(skip_reason(padded).contains("not 32-byte"));
        // Off the curve: skipped at load; deferred, found when asked.
        let mut off = ec_key();
        off["y"] = off["x"].clone();
        assert!(
            skip_reason(off.clone()).contains("ES256 key rejected: EC point is not on the curve")
        );
        let document = json!({ "keys": [off] }).to_string();
        let deferred =
            KeySet::from_jwks_json_checking(document.as_bytes(), EcPointCheck::Deferred).unwrap();
        let candidates = deferred.candidates(Algorithm::ES256, Some("ec")).unwrap();
        assert!(!candidates[0].key.has_usable_point());
        assert!(!candidates[0].key.verifies(b"a.b", &[1; 64]));
        let good = parse(json!([ec_key()])).unwrap();
        assert!(good.candidates(Algorithm::ES256, None).unwrap()[0]
            .key
            .has_usable_point());
    }

    /// RFC 8037 §A.2's Ed25519 public key.
    fn ed25519_key() -> Value {
        json!({"kty": "OKP", "crv": "Ed25519", "kid": "ed",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})
    }

    #[test]
    fn ed25519_keys_of_small_order_are_skipped_because_they_verify_forgeries() {
        assert!(parse(json!([ed25519_key()])).is_ok());
        // The identity point: ring takes [s]B - [h]A = R for s = 0 and R the identity,
        // whatever the message. The JWKS rules never let such a key in.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let forgery = [&identity[..], &[0u8; 32]].concat();
        let unchecked = PublicKey {
            algorithm: Algorithm::EdDSA,
            material: KeyMaterial::Ed25519(identity),
        };
        assert!(unchecked.verifies(b"any.message", &forgery));
        let mut weak = ed25519_key();
        weak["x"] = json!(b64(&identity));
        assert!(
            skip_reason(weak).contains("EdDSA key rejected: Ed25519 key is a point of small order")
        );
        let mut short = ed25519_key();
        short["x"] = json!(b64(&identity[1..]));
        assert!(skip_reason(short).contains("not a 32-byte"));
    }

    #[test]
    fn whole_document_errors_are_clear() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"not json".to_vec(), "not valid JSON"),
            (b"{\"keys\":[],\"keys\":[]}".to_vec(), "duplicate"),
            (b"[]".to_vec(), "\"keys\" array"),
            (b"{\"keys\":{}}".to_vec(), "is not an array"),
            (
                b"{\"keys\":[]}".to_vec(),
                "no usable keys (the \"keys\" array is empty)",
            ),
            (
                json!({"keys": [{"kty": "oct", "k": "AA"}]})
                    .to_string()
                    .into_bytes(),
                "no usable keys (keys[0]: symmetric",
            ),
            (
                json!({ "keys": vec![ec_key(); 101] })
                    .to_string()
                    .into_bytes(),
                "101 keys, over the limit of 100",
            ),
            (
                vec![b' '; MAX_JWKS_BYTES + 1],
                "over the 1048576-byte limit",
            ),
        ];
        for (doc, expected) in cases {
            let err = KeySet::from_jwks_json(&doc).unwrap_err();
            assert!(
                err.to_string().contains(expected),
                "{err} (expected {expected})"
            );
        }
    }

    #[test]
    fn hmac_secrets_follow_rfc7518_sizes() {
        let mut set = KeySet::default();
        assert!(set.try_add_hmac_secret(&[7; 31]).is_err());
        set.add_hmac_secret(&[7; 16]);
        assert!(set.is_empty(), "short secret ignored");
        set.try_add_hmac_secret(&[7; 32]).unwrap();
        assert!(set.has_hmac_for(Algorithm::HS256));
        assert!(!set.has_hmac_for(Algorithm::HS384));
        set.try_add_hmac_secret(&[7; 64]).unwrap();
        assert!(set.has_hmac_for(Algorithm::HS384) && set.has_hmac_for(Algorithm::HS512));
        assert_eq!(set.len(), 1);
        // The secret is used whatever kid an HS token names.
        assert_eq!(
            set.candidates(Algorithm::HS256, Some("any")).unwrap().len(),
            1
        );
    }

    #[test]
    fn key_selection_by_kid_and_bounded_without() {
        let keys: Vec<Value> = (0..10)
            .map(|i| {
                let mut k = ec_key();
                k["kid"] = json!(format!("k{i}"));
                k
            })
            .collect();
        let set = parse(Value::Array(keys)).unwrap();
        assert_eq!(
            set.candidates(Algorithm::ES256, Some("k7")).unwrap().len(),
            1
        );
        assert_eq!(
            set.candidates(Algorithm::ES256, None).unwrap().len(),
            MAX_KEYS_TRIED_WITHOUT_KID
        );
        assert!(matches!(
            set.candidates(Algorithm::ES256, Some("missing")),
            Err(NoKey::UnknownKid(k)) if k == "missing"
        ));
        assert!(matches!(
            set.candidates(Algorithm::EdDSA, None),
            Err(NoKey::NoMatchingKey)
        ));
        let long_kid = "x".repeat(500);
        let Err(NoKey::UnknownKid(shown)) = set.candidates(Algorithm::ES256, Some(&long_kid))
        else {
            panic!("expected UnknownKid");
        };
        assert!(shown.len() < 80, "attacker-sized kid is truncated");
    }
}
