//! Per-VM state shared by the root context and the HTTP contexts of one worker VM
//! (single-threaded, so `Rc<RefCell<_>>`).

use super::metrics::Metrics;
use crate::config::Config;
use crate::engine::SessionCache;
use crate::schedule::KeySchedule;
use crate::token::jwks::KeySet;
use std::cell::RefCell;
use std::rc::Rc;

/// Everything one worker VM keeps between requests.
pub struct VmState {
    /// The checked configuration.
    pub config: Config,
    /// Current key set per issuer (inline, or the last good fetch).
    pub keys: Vec<Option<KeySet>>,
    /// When each issuer's keys are fetched.
    pub schedule: KeySchedule,
    /// Verified sessions by token digest.
    pub cache: SessionCache,
    /// Counter ids.
    pub metrics: Metrics,
    /// The decision-record line, reused so logging a record does not allocate.
    pub log_line: String,
}

/// Shared handle.
pub type Shared = Rc<RefCell<VmState>>;

impl VmState {
    /// Builds the state for a freshly parsed configuration.
    pub fn new(config: Config) -> Self {
        let keys = config
            .issuers
            .iter()
            .map(|i| i.initial_keys(None))
            .collect();
        let schedule = KeySchedule::new(
            (config.issuers.iter())
                .map(|i| i.remote_jwks.as_ref().map(|r| r.refresh_interval_secs)),
        );
        let cache = SessionCache::new(config.token_cache_entries);
        VmState {
            config,
            keys,
            schedule,
            cache,
            metrics: Metrics::default(),
            log_line: String::with_capacity(512),
        }
    }
}
