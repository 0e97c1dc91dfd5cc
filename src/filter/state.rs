//! Per-VM state shared by the root context and the HTTP contexts of one worker VM
//! (single-threaded, so `Rc<RefCell<_>>`).

use super::introspection_state::IntrospectionState;
use super::metrics::Metrics;
use super::revocation_state::RevocationState;
use super::sessions::HostSessions;
use super::shared_data::HostStore;
use crate::config::Config;
use crate::engine::SessionCache;
use crate::observe::SharedSignals;
use crate::schedule::KeySchedule;
use crate::token::jwks::KeySet;
use std::cell::RefCell;
use std::rc::Rc;

/// Everything one worker VM keeps between requests.
pub struct VmState {
    /// The checked configuration (shared, so tick and event work can hold it while
    /// changing the rest of the state).
    pub config: Rc<Config>,
    /// Current key set per issuer, then per transmitter (inline, or the last good fetch).
    pub keys: Vec<Option<KeySet>>,
    /// Revocation (shared set copy, receivers, polls), when configured.
    pub revocation: Option<RevocationState>,
    /// Introspection (the client secret and digest key), when an issuer introspects.
    pub introspection: Option<IntrospectionState>,
    /// When each issuer's keys are fetched.
    pub schedule: KeySchedule,
    /// Verified sessions by token digest.
    pub cache: SessionCache,
    /// The verified sessions every worker VM shares (off with the token cache).
    pub shared_sessions: Option<HostSessions>,
    /// Counter ids.
    pub metrics: Metrics,
    /// The decision-record line, reused so logging a record does not allocate.
    pub log_line: String,
    /// The request signals' shared stores (DPoP proofs seen, sightings), with this VM's
    /// decoded copy of the sightings.
    pub signals: SharedSignals<HostStore>,
}

/// Shared handle.
pub type Shared = Rc<RefCell<VmState>>;

impl VmState {
    /// Builds the state for a freshly parsed configuration.
    pub fn new(config: Config) -> Self {
        // Key sources: the issuers, then the revocation transmitters.
        let transmitter_keys = (config.revocation.iter())
            .flat_map(|r| r.transmitters.iter().map(|t| t.inline_keys.clone()));
        let keys = (config.issuers.iter())
            .map(|i| i.initial_keys(None))
            .chain(transmitter_keys)
            .collect();
        let schedule = KeySchedule::new(config.key_refresh_intervals());
        let cache = SessionCache::new(config.token_cache_entries);
        let shared_sessions = HostSessions::new(config.token_cache_entries);
        VmState {
            config: Rc::new(config),
            keys,
            schedule,
            cache,
            shared_sessions,
            revocation: None,
            introspection: None,
            metrics: Metrics::default(),
            log_line: String::with_capacity(512),
            signals: SharedSignals::new(HostStore),
        }
    }
}
