//! What one worker VM keeps for revocation: its copy of the shared set, the endpoint and
//! poll credentials read from the VM environment, the poll schedules and what each poll
//! acknowledges next, and the calls to IdPs waiting to be made.

use super::shared_data::HostStore;
use crate::config::RevocationConfig;
use crate::events::SetErr;
use crate::idp_sessions::EndSessionCall;
use crate::schedule::{PollSchedule, RetryQueue};
use crate::signals::revocation::{self, LocalCopy};
use std::cell::RefCell;

/// What one VM keeps for revocation.
pub struct RevocationState {
    /// The VM's copy of the shared set.
    pub copy: RefCell<LocalCopy>,
    /// Per transmitter: the bearer credential pushers must present (from the VM
    /// environment).
    pub(super) push_bearers: Vec<Option<String>>,
    /// Per transmitter: the bearer credential for polling.
    pub(super) poll_bearers: Vec<Option<String>>,
    /// Per transmitter: when it is polled.
    pub polls: Vec<Option<PollSchedule>>,
    /// Per transmitter: event ids to acknowledge, and errors to report, on the next poll.
    pub(super) acks: Vec<Vec<String>>,
    pub(super) set_errs: Vec<Vec<SetErr>>,
    /// This VM's lease-holder id.
    pub(super) holder: u64,
    /// Per `idp_sessions` entry: its API credential (from the VM environment).
    pub(super) idp_credentials: Vec<String>,
    /// Calls that end revoked sessions at their IdP, tried until they succeed.
    pub idp_calls: RetryQueue<EndSessionCall>,
}

/// Calls to IdPs waiting at most (the oldest is dropped, and counted, beyond).
const MAX_QUEUED_IDP_CALLS: usize = 1000;

impl RevocationState {
    /// The state for `config`, with every secret read from the VM environment. Fails when
    /// a named environment variable is unset or empty.
    pub fn new(config: &RevocationConfig) -> Result<Self, String> {
        let secret = |name: &str, field: &str| -> Result<String, String> {
            match std::env::var(name) {
                Ok(value) if !value.is_empty() => Ok(value),
                _ => Err(format!(
                    "{field}: environment variable {name} is not set (add it to the plugin's vm_config.environment_variables)"
                )),
            }
        };
        let mut push_bearers = Vec::new();
        let mut poll_bearers = Vec::new();
        let mut polls = Vec::new();
        for t in &config.transmitters {
            push_bearers.push(match &t.push {
                Some(p) => Some(secret(
                    &p.bearer_env,
                    &format!("transmitter {}: push", t.name),
                )?),
                None => None,
            });
            poll_bearers.push(match &t.poll {
                Some(p) => Some(secret(
                    &p.bearer_env,
                    &format!("transmitter {}: poll", t.name),
                )?),
                None => None,
            });
            polls.push(t.poll.as_ref().map(|p| PollSchedule::new(p.interval_secs)));
        }
        let mut idp_credentials = Vec::new();
        for api in &config.idp_sessions {
            idp_credentials.push(secret(
                &api.credential_env,
                &format!("idp_sessions for {}", api.issuer),
            )?);
        }
        let holder = revocation::unique_id(&mut HostStore)
            .map_err(|e| format!("shared data: cannot take a VM id: {e:?}"))?;
        let n = config.transmitters.len();
        Ok(RevocationState {
            copy: RefCell::new(LocalCopy::default()),
            push_bearers,
            poll_bearers,
            polls,
            acks: vec![Vec::new(); n],
            set_errs: vec![Vec::new(); n],
            holder,
            idp_credentials,
            idp_calls: RetryQueue::new(MAX_QUEUED_IDP_CALLS),
        })
    }
}
