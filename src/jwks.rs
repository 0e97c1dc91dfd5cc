//! JSON Web Key Sets: parse a JWKS document into verification keys usable by [`crate::verify`].
//!
//! OWNER: tokens helper. Interface fixed below; implementation to be completed.

/// Why a JWKS document was rejected as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySetError(pub String);

impl std::fmt::Display for KeySetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Verification keys of one issuer (RSA, EC P-256/P-384, Ed25519; an HMAC secret only
/// when configured explicitly). Keys with unsupported `kty`/`crv`/`use` are skipped, not fatal.
#[derive(Clone, Default)]
pub struct KeySet {}

impl KeySet {
    /// Parses a JWKS JSON document (`{"keys":[...]}`).
    pub fn from_jwks_json(bytes: &[u8]) -> Result<KeySet, KeySetError> {
        let _ = bytes;
        Err(KeySetError("not implemented".into()))
    }

    /// Adds an HMAC secret (raw bytes) for HS256/384/512.
    pub fn add_hmac_secret(&mut self, secret: &[u8]) {
        let _ = secret;
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        0
    }

    /// True when there are no usable keys.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True if a key with this `kid` is present.
    pub fn contains_kid(&self, kid: &str) -> bool {
        let _ = kid;
        false
    }
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeySet({} keys)", self.len())
    }
}
