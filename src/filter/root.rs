//! The root context: parses the configuration once per worker VM, loads keys, and runs the
//! JWKS refresh schedule on ticks (only when some issuer fetches keys remotely).

use super::clock;
use super::http::{GateHttp, Unconfigured};
use super::keys;
use super::state::{Shared, VmState};
use crate::config;
use crate::metrics;
use crate::schedule::{FetchKind, TICK_SECS};
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
    /// Scheduled fetches in flight: call token → issuer index.
    pending: HashMap<u32, usize>,
}

impl GateRoot {
    /// A root context before configuration.
    pub fn new(context_id: u32) -> Self {
        GateRoot {
            context_id,
            state: None,
            pending: HashMap::new(),
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
                    self.pending.insert(token, index);
                    state.schedule.scheduled_started(index);
                }
                Err(why) => {
                    log::warn!("[ctx {}] {why}", self.context_id);
                    state.metrics.increment(metrics::JWKS_FETCH_FAILURE);
                    state.schedule.scheduled_not_dispatched(index, now);
                }
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
        let Some(index) = self.pending.remove(&token_id) else {
            return;
        };
        let Some(shared) = self.state.clone() else {
            return;
        };
        let now = self.now();
        let mut state = shared.borrow_mut();
        keys::complete(
            &mut state,
            index,
            FetchKind::Scheduled,
            num_headers,
            body_size,
            now,
        );
    }
}

impl RootContext for GateRoot {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        true
    }

    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        let config = match config::parse(&bytes) {
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
        let mut state = VmState::new(config);
        state.metrics.define_all(&metrics::FIXED_COUNTERS);
        let remote = state.schedule.has_periodic_work();
        self.state = Some(Rc::new(RefCell::new(state)));
        self.pending.clear();
        if remote {
            self.fetch_due();
            self.set_tick_period(Duration::from_secs(TICK_SECS));
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
