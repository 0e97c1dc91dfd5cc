//! The engine's view of the verified sessions every worker VM shares
//! ([`crate::token::shared_sessions`]), read and written through the host's shared data.
//! The digest key is read from shared data on each lookup (one small read, on a cache miss
//! only), so a VM that lost the race to publish it still agrees with the others.

use super::shared_data::HostStore;
use crate::token::establish::SharedSessionLookup;
use crate::token::shared_sessions::{current_digest_key, SharedSession, SharedSessions};

/// Shared sessions, kept for at most the configured number of tokens.
pub struct HostSessions {
    sessions: SharedSessions,
}

impl HostSessions {
    /// Sharing for `capacity` tokens; `None` when the token cache is off (capacity 0).
    pub fn new(capacity: usize) -> Option<Self> {
        (capacity > 0).then(|| HostSessions {
            sessions: SharedSessions::new(capacity),
        })
    }
}

/// 32 bytes from the host's randomness (WASI `random_get`).
fn fresh_key() -> Option<[u8; 32]> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).ok()?;
    Some(bytes)
}

impl SharedSessionLookup for HostSessions {
    fn find(&self, token: &[u8], now_secs: u64) -> Option<SharedSession> {
        let key = current_digest_key(&mut HostStore, fresh_key)?;
        let digest = key.digest(token);
        self.sessions.lookup(&HostStore, &digest, now_secs).ok()?
    }

    fn share(&self, token: &[u8], session: &SharedSession, until: u64, now_secs: u64) {
        let Some(key) = current_digest_key(&mut HostStore, fresh_key) else {
            return;
        };
        let digest = key.digest(token);
        if let Err(e) = (self.sessions).share(&mut HostStore, &digest, session, until, now_secs) {
            log::debug!("verified session not shared: {e:?}");
        }
    }
}
