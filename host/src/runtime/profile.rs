//! Opt-in sampling profiler for guest code, for finding where a filter spends its time.
//!
//! Set `MFA_GATE_HOST_PROFILE=<microseconds>`: the epoch ticker then advances every that
//! many microseconds, and at each tick the running callback records its wasm stack (function
//! names come from the module's name section, so profile an unstripped build). The callback
//! time limit is off in this mode. [`folded_stacks`] returns the samples in the "folded"
//! format flame-graph tools read (`outer;inner count`). Off by default: zero cost then.
//!
//! Set `MFA_GATE_HOST_PERFMAP=1` to have wasmtime write `/tmp/perf-<pid>.map` (address,
//! size and name of each compiled function), so a profiler that records raw addresses
//! (`perf`, or `valgrind --tool=callgrind --dump-instr=yes`) can name guest code.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use wasmtime::{StoreContextMut, UpdateDeadline, WasmBacktrace};

use super::vm::VmState;
use crate::shared::lock;

/// The sampling interval, when profiling is on.
pub(crate) fn interval() -> Option<Duration> {
    static INTERVAL: OnceLock<Option<Duration>> = OnceLock::new();
    *INTERVAL.get_or_init(|| {
        std::env::var("MFA_GATE_HOST_PROFILE")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|&us| us > 0)
            .map(Duration::from_micros)
    })
}

/// Whether `MFA_GATE_HOST_PERFMAP` asks for a perf map of compiled guest code.
pub(crate) fn perf_map_wanted() -> bool {
    std::env::var_os("MFA_GATE_HOST_PERFMAP").is_some_and(|v| !v.is_empty() && v != "0")
}

fn samples() -> &'static Mutex<HashMap<String, u64>> {
    static SAMPLES: OnceLock<Mutex<HashMap<String, u64>>> = OnceLock::new();
    SAMPLES.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The epoch-deadline callback of profiling mode: record the stack, run on.
pub(crate) fn sample(context: StoreContextMut<'_, VmState>) -> wasmtime::Result<UpdateDeadline> {
    let trace = WasmBacktrace::capture(&context);
    let mut frames: Vec<&str> = trace
        .frames()
        .iter()
        .map(|f| f.func_name().unwrap_or("?"))
        .collect();
    frames.reverse();
    if !frames.is_empty() {
        *lock(samples()).entry(frames.join(";")).or_insert(0) += 1;
    }
    Ok(UpdateDeadline::Continue(1))
}

/// Every sample so far, one folded stack per line, most frequent first.
pub fn folded_stacks() -> String {
    let samples = lock(samples());
    let mut rows: Vec<(&String, &u64)> = samples.iter().collect();
    rows.sort_by(|a, b| b.1.cmp(a.1));
    rows.iter()
        .map(|(stack, n)| format!("{stack} {n}\n"))
        .collect()
}
