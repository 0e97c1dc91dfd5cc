//! JSON Web Key Sets: parse a JWKS document into verification keys usable by [`crate::token::verify`].
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

use crate::token::jose::{parse_json_unique, truncate_for_log, Algorithm};

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

/// Why no key of a set can verify a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoKey {
    /// The token names a `kid` the set lacks (shortened for logs).
    UnknownKid(String),
    /// No key in the set fits the token's algorithm.
    NoMatchingKey,
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
                .map(|key| Candidate { key, kid: None })
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

    #[test]
    fn rsa_over_4096_bits_is_skipped_because_jwt_simple_refuses_it() {
        let fake = |bytes: usize| {
            let mut n = vec![0xc5u8; bytes];
            n[bytes - 1] = 0x01;
            json!({"kty": "RSA", "n": Base64UrlSafeNoPadding::encode_to_string(&n).unwrap(), "e": "AQAB"})
        };
        let err = parse(json!([fake(768)])).unwrap_err();
        assert!(err.0.contains("Unsupported RSA modulus"), "{err}");
        let err = parse(json!([fake(1025)])).unwrap_err();
        assert!(err.0.contains("over 8192"), "{err}");
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
