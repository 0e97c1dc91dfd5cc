//! Keyed digests of tokens (HMAC-SHA256, the first 16 bytes): how shared data names a
//! token without holding it. The key is the same in every VM of an Envoy and unknown
//! outside it, so nobody can test a guessed token against shared data.

/// The key of the token digests.
#[derive(Clone, PartialEq, Eq)]
pub struct DigestKey([u8; 32]);

impl std::fmt::Debug for DigestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DigestKey(..)")
    }
}

/// A token's keyed digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenDigest(pub [u8; 16]);

impl DigestKey {
    /// The key made of these 32 bytes.
    pub fn new(bytes: [u8; 32]) -> Self {
        DigestKey(bytes)
    }

    /// The key derived from `secret` for the purpose `label` names.
    pub fn derive(label: &[u8], secret: &[u8]) -> Self {
        DigestKey(hmac_sha256::HMAC::mac(label, secret))
    }

    /// The digest of `token`.
    pub fn digest(&self, token: &[u8]) -> TokenDigest {
        let mac = hmac_sha256::HMAC::mac(token, self.0);
        let mut out = [0u8; 16];
        out.copy_from_slice(&mac[..16]);
        TokenDigest(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn digests_depend_on_the_key_and_never_show_it() {
        let key = DigestKey::new([1; 32]);
        assert_eq!(key.digest(b"t"), DigestKey::new([1; 32]).digest(b"t"));
        assert_ne!(key.digest(b"t"), DigestKey::new([2; 32]).digest(b"t"));
        assert_ne!(key.digest(b"t"), key.digest(b"u"));
        assert_ne!(DigestKey::derive(b"a", b"s"), DigestKey::derive(b"b", b"s"));
        assert_eq!(format!("{key:?}"), "DigestKey(..)");
    }
}
