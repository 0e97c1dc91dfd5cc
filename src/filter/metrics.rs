//! Counters by name, defined on first use and cached per VM. A host error is logged once,
//! never a panic.

use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;
use rustc_hash::FxHashMap;

/// Counter ids of this VM, by Envoy stat name (without the `wasmcustom.` prefix).
#[derive(Default)]
pub struct Metrics {
    /// Looked up on every request: a fast hasher (names are ours, never a client's).
    ids: FxHashMap<String, u32>,
    /// Ids of `&'static str` names by (address, length): no string comparison per request.
    static_ids: FxHashMap<(usize, usize), u32>,
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

    /// Adds one to the counter `name`, one of mfa-gate's own (found by its address).
    pub fn increment_static(&mut self, name: &'static str) {
        let key = (name.as_ptr() as usize, name.len());
        let id = match self.static_ids.get(&key) {
            Some(id) => Some(*id),
            None => {
                let id = self.id(name);
                if let Some(id) = id {
                    self.static_ids.insert(key, id);
                }
                id
            }
        };
        if let Some(id) = id {
            if let Err(status) = hostcalls::increment_metric(id, 1) {
                log::warn!("increment_metric({name}) failed: {status:?}");
            }
        }
    }

    /// Sets the gauge `name` to `value` (gauges have their own ids).
    pub fn set_gauge(&mut self, name: &str, value: u64) {
        let key = format!("gauge:{name}");
        let id = match self.ids.get(&key) {
            Some(id) => Some(*id),
            None if self.broken || self.ids.len() >= 512 => None,
            None => match hostcalls::define_metric(MetricType::Gauge, name) {
                Ok(id) => {
                    self.ids.insert(key, id);
                    Some(id)
                }
                Err(status) => {
                    log::warn!("define_metric({name}) failed: {status:?}");
                    None
                }
            },
        };
        if let Some(id) = id {
            if let Err(status) = hostcalls::record_metric(id, value) {
                log::warn!("record_metric({name}) failed: {status:?}");
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
