//! What one worker VM keeps for RFC 7662 introspection: the client secret read from the VM
//! environment and the key of the token digests derived from it.

use crate::config::Config;
use crate::introspection::cache::{digest_key, DigestKey};

/// What one VM keeps for introspection.
pub struct IntrospectionState {
    /// The client secret (from the VM environment; never logged).
    pub(super) secret: String,
    /// The key of the token digests (derived from the secret, the same in every VM).
    pub(super) key: DigestKey,
}

impl IntrospectionState {
    /// The state for the issuer that introspects, if one does, with its client secret read
    /// from the VM environment. Fails when the variable is unset or empty.
    pub fn new(config: &Config) -> Result<Option<Self>, String> {
        let found = (config.issuers.iter().enumerate())
            .find_map(|(n, i)| i.introspection.as_ref().map(|s| (n, s)));
        let Some((issuer, settings)) = found else {
            return Ok(None);
        };
        let name = &settings.client_secret_env;
        match std::env::var(name) {
            Ok(secret) if !secret.is_empty() => Ok(Some(IntrospectionState {
                key: digest_key(secret.as_bytes()),
                secret,
            })),
            _ => Err(format!(
                "issuers[{issuer}].introspection.client_secret_env: environment variable {name} is not set (add it to the plugin's vm_config.environment_variables)"
            )),
        }
    }
}
