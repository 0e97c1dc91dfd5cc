//! The root context: parses the configuration once per worker VM, loads keys, and runs the
//! JWKS refresh schedule on ticks (only when some issuer fetches keys remotely).

use super::clock;
use super::http::{GateHttp, Unconfigured};
use super::keys;
use super::revocation;
use super::revocation_state::RevocationState;
use super::state::{Shared, VmState};
use crate::config;
use crate::idp_sessions::EndSessionCall;
use crate::metrics;
use crate::schedule::{FetchKind, TICK_SECS};
use crate::sign_in::SignInSecrets;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

/// Root context state machine: `Unconfigured` until on_configure succeeds, then `Ready`.
pub struct GateRoot {
    context_id: u32,
    state: Option<Shared>,
    /// Calls in flight: call token → what it is for.
    pending: HashMap<u32, Pending>,
    /// When the revocation size gauges are next updated.
    gauges_due: u64,
}

/// What a root-context call is for.
#[derive(Debug, Clone)]
enum Pending {
    /// A scheduled fetch of key source `index`.
    Keys(usize),
    /// A poll of transmitter `index`.
    Poll(usize),
    /// A call ending a session at its IdP, with the attempts made before it.
    IdpCall(EndSessionCall, u32),
}

impl GateRoot {
    /// A root context before configuration.
    pub fn new(context_id: u32) -> Self {
        GateRoot {
            context_id,
            state: None,
            pending: HashMap::new(),
            gauges_due: 0,
        }
    }

    fn now(&self) -> u64 {
        clock::now_secs()
    }

    /// Starts every scheduled fetch that is due.
    fn fetch_due(&mut self) {
        let Some(shared) = self.state.clone() else {
            return;
        };
        let now = self.now();
        let mut state = shared.borrow_mut();
        for index in state.schedule.due(now) {
            match keys::dispatch(&state, index) {
                Ok(token) => {
                    self.pending.insert(token, Pending::Keys(index));
                    state.schedule.scheduled_started(index);
                }
                Err(why) => {
                    log::warn!("[ctx {}] {why}", self.context_id);
                    state.metrics.increment(metrics::JWKS_FETCH_FAILURE);
                    state.schedule.scheduled_not_dispatched(index, now);
                }
            }
        }
        if state.revocation.is_some() {
            for (token, transmitter) in revocation::start_due_polls(&mut state, now) {
                self.pending.insert(token, Pending::Poll(transmitter));
            }
            for (token, call, attempts) in revocation::start_due_idp_calls(&mut state, now) {
                self.pending.insert(token, Pending::IdpCall(call, attempts));
            }
            if now >= self.gauges_due {
                self.gauges_due = now + revocation::GAUGE_EVERY_SECS;
                revocation::update_gauges(&mut state);
            }
        }
    }
}

impl Context for GateRoot {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        num_headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        // Ignore answers to calls this context did not make.
        let Some(pending) = self.pending.remove(&token_id) else {
            return;
        };
        let Some(shared) = self.state.clone() else {
            return;
        };
        let now = self.now();
        let mut state = shared.borrow_mut();
        match pending {
            Pending::Keys(index) => {
                keys::complete(
                    &mut state,
                    index,
                    FetchKind::Scheduled,
                    num_headers,
                    body_size,
                    now,
                );
            }
            Pending::Poll(index) => {
                revocation::complete_poll(&mut state, index, num_headers, body_size, now);
            }
            Pending::IdpCall(call, attempts) => {
                revocation::complete_idp_call(&mut state, call, attempts, num_headers, now);
            }
        }
    }
}

/// The tick period while some transmitter is polled: the shortest poll interval, at most
/// [`TICK_SECS`]. `None` when nothing is polled.
fn poll_tick_secs(config: &config::Config) -> Option<u64> {
    let polls = (config.revocation.iter())
        .flat_map(|r| r.transmitters.iter().filter_map(|t| t.poll.as_ref()))
        .map(|p| p.interval_secs);
    // Sessions to end at an IdP go out within a second.
    let idp_calls = (config.revocation.iter())
        .filter(|r| !r.idp_sessions.is_empty())
        .map(|_| 1);
    polls.chain(idp_calls).min().map(|s| s.clamp(1, TICK_SECS))
}

impl RootContext for GateRoot {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        true
    }

    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        let mut config = match config::parse(&bytes) {
            Ok(config) => config,
            Err(errors) => {
                for error in &errors.0 {
                    log::error!("[ctx {}] invalid configuration: {error}", self.context_id);
                }
                return false;
            }
        };
        log::info!(
            "[ctx {}] mfa-gate {} configured: {} issuers, {} routes, mode {:?}",
            self.context_id,
            crate::VERSION,
            config.issuers.len(),
            config.routes.len(),
            config.mode
        );
        if let Some(sign_in) = config.sign_in.as_mut() {
            match SignInSecrets::read(sign_in, |name| std::env::var(name).ok()) {
                Ok(secrets) => sign_in.secrets = Some(secrets),
                Err(why) => {
                    log::error!("[ctx {}] invalid configuration: {why}", self.context_id);
                    return false;
                }
            }
        }
        let poll_tick = poll_tick_secs(&config);
        let mut state = VmState::new(config);
        if let Some(settings) = &state.config.revocation {
            revocation::initialise_store();
            match RevocationState::new(settings) {
                Ok(r) => state.revocation = Some(r),
                Err(why) => {
                    log::error!("[ctx {}] invalid configuration: {why}", self.context_id);
                    return false;
                }
            }
        }
        match super::introspection_state::IntrospectionState::new(&state.config) {
            Ok(introspection) => state.introspection = introspection,
            Err(why) => {
                log::error!("[ctx {}] invalid configuration: {why}", self.context_id);
                return false;
            }
        }
        state.metrics.define_all(&metrics::FIXED_COUNTERS);
        state.metrics.define_all(&metrics::RISK_SIGNAL_COUNTERS);
        state.metrics.define_all(&metrics::PUSH_COUNTERS);
        state.metrics.define_all(&metrics::SIGN_IN_COUNTERS);
        let periodic =
            state.schedule.has_periodic_work() || poll_tick.is_some() || state.revocation.is_some();
        let tick_secs = poll_tick.unwrap_or(TICK_SECS);
        self.state = Some(Rc::new(RefCell::new(state)));
        self.pending.clear();
        if periodic {
            self.fetch_due();
            self.set_tick_period(Duration::from_secs(tick_secs));
        }
        true
    }

    fn on_tick(&mut self) {
        self.fetch_due();
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        match self.state.clone() {
            Some(state) => Some(Box::new(GateHttp::new(context_id, state))),
            // Only reachable if a host sends traffic after a failed on_configure: fail closed.
            None => Some(Box::new(Unconfigured { context_id })),
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
