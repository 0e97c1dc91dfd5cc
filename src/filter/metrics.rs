//! Counters by name, defined on first use and cached per VM. A host error is logged once,
//! never a panic.

use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;
use std::collections::HashMap;

/// Counter ids of this VM, by Envoy stat name (without the `wasmcustom.` prefix).
#[derive(Default)]
pub struct Metrics {
    ids: HashMap<String, u32>,
    broken: bool,
}

impl Metrics {
    /// Defines every name now, so they show at 0 before the first event.
    pub fn define_all(&mut self, names: &[&str]) {
        for name in names {
            self.id(name);
        }
    }

    fn id(&mut self, name: &str) -> Option<u32> {
        if let Some(id) = self.ids.get(name) {
            return Some(*id);
        }
        if self.broken || self.ids.len() >= 512 {
            return None;
        }
        match hostcalls::define_metric(MetricType::Counter, name) {
            Ok(id) => {
                self.ids.insert(name.to_string(), id);
                Some(id)
            }
            Err(status) => {
                self.broken = true;
                log::warn!("metrics disabled: define_metric({name}) failed: {status:?}");
                None
            }
        }
    }

    /// Adds one to the counter `name`.
    pub fn increment(&mut self, name: &str) {
        if let Some(id) = self.id(name) {
            if let Err(status) = hostcalls::increment_metric(id, 1) {
                log::warn!("increment_metric({name}) failed: {status:?}");
            }
        }
    }
}
