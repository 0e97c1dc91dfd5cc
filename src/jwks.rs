//! JSON Web Key Sets: parse a JWKS document into verification keys usable by [`crate::verify`].
//!
//! Keys are built once, at parse time, into jwt-simple key objects, so verification does no
//! key parsing. Each JWK is checked with jwt-simple's own `from_jwk` (member names, `alg`,
//! `key_ops`, point and modulus encodings), after mfa-gate's selection rules:
//!
//! * `use` other than `sig` → skipped; private key material in a JWKS → skipped;
//! * unknown `kty`/`crv`/`alg` → skipped (counted, with a reason, not fatal);
//! * `alg` on the key restricts it to that one algorithm (an `RS256` key never verifies `PS256`);
//! * RSA without `alg` verifies RS256/384/512 and PS256/384/512;
//! * RSA moduli below [`MIN_RSA_MODULUS_BITS`] are rejected as weak. jwt-simple itself only
//!   accepts moduli up to 4096 bits with e = 65537; larger keys are skipped with that reason.
//!
//! HMAC secrets never come from a JWKS: only [`KeySet::try_add_hmac_secret`] adds one.

use std::sync::Arc;

use jwt_simple::prelude::*;
use serde_json::{Map, Value};

use crate::verify::{parse_json_unique, Algorithm, VerifyError};

/// Largest JWKS document accepted, in bytes.
pub const MAX_JWKS_BYTES: usize = 1024 * 1024;
/// Most keys accepted in one JWKS document (more is rejected as a whole).
pub const MAX_JWKS_KEYS: usize = 100;
/// Smallest RSA modulus accepted; smaller keys are skipped as weak.
pub const MIN_RSA_MODULUS_BITS: usize = 2048;
/// Largest RSA modulus mfa-gate considers (jwt-simple further limits RSA to 4096 bits).
pub const MAX_RSA_MODULUS_BITS: usize = 8192;
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

/// A ready-to-use jwt-simple verification key for exactly one algorithm.
#[derive(Clone)]
pub(crate) enum PublicKey {
    RS256(RS256PublicKey),
    RS384(RS384PublicKey),
    RS512(RS512PublicKey),
    PS256(PS256PublicKey),
    PS384(PS384PublicKey),
    PS512(PS512PublicKey),
    ES256(ES256PublicKey),
    ES384(ES384PublicKey),
    EdDSA(Ed25519PublicKey),
    HS256(HS256Key),
    HS384(HS384Key),
    HS512(HS512Key),
}

impl PublicKey {
    /// The algorithm this key verifies.
    pub(crate) fn algorithm(&self) -> Algorithm {
        match self {
            PublicKey::RS256(_) => Algorithm::RS256,
            PublicKey::RS384(_) => Algorithm::RS384,
            PublicKey::RS512(_) => Algorithm::RS512,
            PublicKey::PS256(_) => Algorithm::PS256,
            PublicKey::PS384(_) => Algorithm::PS384,
            PublicKey::PS512(_) => Algorithm::PS512,
            PublicKey::ES256(_) => Algorithm::ES256,
            PublicKey::ES384(_) => Algorithm::ES384,
            PublicKey::EdDSA(_) => Algorithm::EdDSA,
            PublicKey::HS256(_) => Algorithm::HS256,
            PublicKey::HS384(_) => Algorithm::HS384,
            PublicKey::HS512(_) => Algorithm::HS512,
        }
    }

    /// Verifies `token` with jwt-simple (signature, then jwt-simple's claim checks).
    pub(crate) fn verify_token(
        &self,
        token: &str,
        options: VerificationOptions,
    ) -> Result<(), jwt_simple::Error> {
        let options = Some(options);
        match self {
            PublicKey::RS256(k) => k.verify_token::<NoCustomClaims>(token, options).map(drop),
            PublicKey::RS384(k) => k.verify_token::<NoCustomClaims>(token, options).map(drop),
            PublicKey::RS512(k) => k.verify_token::<NoCustomClaims>(token, options).map(drop),
            PublicKey::PS256(k) => k.verify_token::<NoCustomClaims>(token, options).map(drop),
            PublicKey::PS384(k) => k.verify_token::<NoCustomClaims>(token, options).map(drop),
            PublicKey::PS512(k) => k.verify_token::<NoCustomClaims>(token, options).map(drop),
            PublicKey::ES256(k) => k.verify_token::<NoCustomClaims>(token, options).map(drop),
            PublicKey::ES384(k) => k.verify_token::<NoCustomClaims>(token, options).map(drop),
            PublicKey::EdDSA(k) => k.verify_token::<NoCustomClaims>(token, options).map(drop),
            PublicKey::HS256(k) => k.verify_token::<NoCustomClaims>(token, options).map(drop),
            PublicKey::HS384(k) => k.verify_token::<NoCustomClaims>(token, options).map(drop),
            PublicKey::HS512(k) => k.verify_token::<NoCustomClaims>(token, options).map(drop),
        }
    }
}

/// One usable JWK: its `kid` and one prepared key per algorithm it may verify.
struct JwkEntry {
    kid: Option<String>,
    keys: Vec<PublicKey>,
}

/// A key chosen for one verification attempt.
pub(crate) struct Candidate<'a> {
    pub(crate) key: &'a PublicKey,
    pub(crate) kid: Option<&'a str>,
}

/// Verification keys of one issuer (RSA, EC P-256/P-384, Ed25519; an HMAC secret only
/// when configured explicitly). Keys with unsupported `kty`/`crv`/`use` are skipped, not fatal.
#[derive(Clone, Default)]
pub struct KeySet {
    entries: Arc<Vec<JwkEntry>>,
    hmac: Option<Arc<Vec<PublicKey>>>,
    skipped: Arc<Vec<String>>,
}

impl KeySet {
    /// Parses a JWKS JSON document (`{"keys":[...]}`).
    pub fn from_jwks_json(bytes: &[u8]) -> Result<KeySet, KeySetError> {
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
            match parse_jwk(key) {
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
        let mut keys = vec![PublicKey::HS256(HS256Key::from_bytes(secret))];
        if secret.len() >= 48 {
            keys.push(PublicKey::HS384(HS384Key::from_bytes(secret)));
        }
        if secret.len() >= 64 {
            keys.push(PublicKey::HS512(HS512Key::from_bytes(secret)));
        }
        self.hmac = Some(Arc::new(keys));
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

    /// The keys to try for a token with this algorithm and `kid`.
    ///
    /// HMAC: the configured secret (the token's `kid` does not select among secrets).
    /// With a `kid`: only keys with that `kid` (none → `UnknownKid`). Without: up to
    /// [`MAX_KEYS_TRIED_WITHOUT_KID`] keys of that algorithm.
    pub(crate) fn candidates(
        &self,
        algorithm: Algorithm,
        kid: Option<&str>,
    ) -> Result<Vec<Candidate<'_>>, VerifyError> {
        if algorithm.is_hmac() {
            let found: Vec<Candidate<'_>> = self
                .hmac
                .iter()
                .flat_map(|keys| keys.iter())
                .filter(|k| k.algorithm() == algorithm)
                .map(|key| Candidate { key, kid: None })
                .collect();
            return if found.is_empty() {
                Err(VerifyError::NoMatchingKey)
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
                        });
                    }
                }
                if !kid_known {
                    return Err(VerifyError::UnknownKid(truncate_for_log(kid)));
                }
                found.truncate(MAX_KEYS_TRIED_WITHOUT_KID);
            }
            None => {
                'entries: for entry in self.entries.iter() {
                    for key in entry.keys.iter().filter(|k| k.algorithm() == algorithm) {
                        found.push(Candidate {
                            key,
                            kid: entry.kid.as_deref(),
                        });
                        if found.len() == MAX_KEYS_TRIED_WITHOUT_KID {
                            break 'entries;
                        }
                    }
                }
            }
        }
        if found.is_empty() {
            Err(VerifyError::NoMatchingKey)
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

/// A `kid` (attacker-controlled) shortened for errors and logs.
pub(crate) fn truncate_for_log(s: &str) -> String {
    const MAX: usize = 64;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Members that carry private or symmetric key material; a JWKS must not publish them.
const SECRET_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
/// Members passed on to jwt-simple's `from_jwk` (everything else, e.g. `x5c`, is dropped).
const FORWARDED_MEMBERS: [&str; 10] = [
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
fn parse_jwk(value: &Value) -> Result<JwkEntry, String> {
    let jwk = value.as_object().ok_or("not a JSON object")?;
    let kty = optional_str(jwk, "kty")?.ok_or("no \"kty\"")?;
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
            vec![
                Algorithm::RS256,
                Algorithm::RS384,
                Algorithm::RS512,
                Algorithm::PS256,
                Algorithm::PS384,
                Algorithm::PS512,
            ]
        }
        ("EC", Some("P-256")) => vec![Algorithm::ES256],
        ("EC", Some("P-384")) => vec![Algorithm::ES384],
        ("EC", other) => return Err(format!("unsupported EC curve {other:?}")),
        ("OKP", Some("Ed25519")) => vec![Algorithm::EdDSA],
        ("OKP", other) => return Err(format!("unsupported OKP curve {other:?}")),
        ("oct", _) => {
            return Err(
                "symmetric (oct) keys are not taken from a JWKS; configure an HMAC secret".into(),
            )
        }
        (other, _) => return Err(format!("unsupported kty {:?}", truncate_for_log(other))),
    };
    let algorithms = match alg {
        Some(alg) if allowed.contains(&alg) => vec![alg],
        Some(alg) => return Err(format!("alg {} does not match kty {kty:?}", alg.as_str())),
        None => allowed,
    };
    // Only the members jwt-simple needs: extra members (x5c chains…) can exceed its JWK size cap.
    let mut forwarded = Map::new();
    for name in FORWARDED_MEMBERS {
        if let Some(v) = jwk.get(name) {
            forwarded.insert(name.to_string(), v.clone());
        }
    }
    let json = Value::Object(forwarded).to_string();
    let mut keys = Vec::with_capacity(algorithms.len());
    for algorithm in algorithms {
        let key = build_key(algorithm, &json)
            .map_err(|e| format!("{} key rejected: {e}", algorithm.as_str()))?;
        keys.push(key);
    }
    Ok(JwkEntry { kid, keys })
}

/// Rejects RSA moduli outside [`MIN_RSA_MODULUS_BITS`]..=[`MAX_RSA_MODULUS_BITS`] before
/// handing the key to jwt-simple.
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

fn build_key(algorithm: Algorithm, jwk: &str) -> Result<PublicKey, jwt_simple::Error> {
    Ok(match algorithm {
        Algorithm::RS256 => PublicKey::RS256(RS256PublicKey::from_jwk(jwk)?),
        Algorithm::RS384 => PublicKey::RS384(RS384PublicKey::from_jwk(jwk)?),
        Algorithm::RS512 => PublicKey::RS512(RS512PublicKey::from_jwk(jwk)?),
        Algorithm::PS256 => PublicKey::PS256(PS256PublicKey::from_jwk(jwk)?),
        Algorithm::PS384 => PublicKey::PS384(PS384PublicKey::from_jwk(jwk)?),
        Algorithm::PS512 => PublicKey::PS512(PS512PublicKey::from_jwk(jwk)?),
        Algorithm::ES256 => PublicKey::ES256(ES256PublicKey::from_jwk(jwk)?),
        Algorithm::ES384 => PublicKey::ES384(ES384PublicKey::from_jwk(jwk)?),
        Algorithm::EdDSA => PublicKey::EdDSA(Ed25519PublicKey::from_jwk(jwk)?),
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
            return Err(jwt_simple::Error::msg("HMAC keys are not read from a JWKS"))
        }
    })
}
