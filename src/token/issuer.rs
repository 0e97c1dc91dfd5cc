//! A trusted issuer as the token stage uses it (compiled from `issuers[]`): how its tokens
//! are verified, where its keys come from, how its amr/acr are read, and where browsers
//! step up.

use crate::assurance::ClassifierSettings;
use crate::response::StepUpEndpoint;
use crate::token::jwks::KeySet;
use crate::token::verify::VerifyOptions;

/// One trusted issuer.
#[derive(Debug, Clone)]
pub struct IssuerConfig {
    /// Verification settings (iss, audiences, algorithms, skew, size cap).
    pub verify: VerifyOptions,
    /// Keys given inline in the configuration.
    pub inline_keys: Option<KeySet>,
    /// Keys fetched from a cluster.
    pub remote_jwks: Option<RemoteJwks>,
    /// HMAC secret (raw bytes), when configured.
    pub hmac_secret: Option<Vec<u8>>,
    /// How this issuer's amr/acr are read.
    pub classifier: ClassifierSettings,
    /// Where browsers are sent to step up.
    pub step_up: Option<StepUpEndpoint>,
    /// Where opaque tokens are introspected (RFC 7662), when this issuer does.
    pub introspection: Option<crate::introspection::Settings>,
}

/// A JWKS fetched with `dispatch_http_call`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteJwks {
    /// Envoy cluster name.
    pub cluster: String,
    /// Request path.
    pub path: String,
    /// `:authority` of the request.
    pub authority: String,
    /// Seconds between refreshes.
    pub refresh_interval_secs: u64,
    /// Fetch timeout, milliseconds.
    pub timeout_ms: u64,
}

impl IssuerConfig {
    /// Adds this issuer's HMAC secret, if it has one, to `keys`.
    pub fn add_secret(&self, keys: &mut KeySet) {
        if let Some(secret) = &self.hmac_secret {
            keys.add_hmac_secret(secret);
        }
    }

    /// The keys this issuer has before any fetch: its inline JWKS (else `given`, e.g.
    /// `explain --jwks`), plus its HMAC secret.
    pub fn initial_keys(&self, given: Option<&KeySet>) -> Option<KeySet> {
        let mut keys = self.inline_keys.clone().or_else(|| given.cloned());
        if self.hmac_secret.is_some() {
            self.add_secret(keys.get_or_insert_with(KeySet::default));
        }
        keys
    }
}

/// The index of the issuer whose `iss` is exactly `iss`.
pub fn issuer_index(issuers: &[IssuerConfig], iss: &str) -> Option<usize> {
    issuers.iter().position(|i| i.verify.issuer == iss)
}
