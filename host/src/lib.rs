//! mfa-gate-host: a proxy-wasm ABI 0.2.1 host on wasmtime, faithful to Envoy's semantics.
//!
//! See `host/README.md` and `../shared/docs/proxy-wasm-abi.md`.
//!
//! ```no_run
//! use mfa_gate_host::{Host, HostOptions, Clusters, DownstreamRequest, HttpResponse, UpstreamRequest};
//! let mut host = Host::load("filter.wasm".as_ref(), HostOptions::default(), Clusters::new()).unwrap();
//! let request = DownstreamRequest {
//!     headers: vec![(b":method".to_vec(), b"GET".to_vec()), (b":path".to_vec(), b"/".to_vec()),
//!                   (b":authority".to_vec(), b"app".to_vec()), (b":scheme".to_vec(), b"http".to_vec())],
//!     ..DownstreamRequest::default()
//! };
//! let mut upstream = |_: &UpstreamRequest| Ok::<_, String>(HttpResponse { status: 200, ..HttpResponse::default() });
//! let exchange = host.handle(request, &mut upstream);
//! assert_eq!(exchange.response.status, 200);
//! ```

mod clusters;
mod grpc_service;
pub mod envoy_yaml;
pub mod metadata;
pub mod properties;
pub mod replay;
mod runtime;
mod shared;
pub mod types;
mod upstream_call;
pub mod upstream_http;

use std::fmt;
use std::path::Path;
use std::sync::Arc;

pub use clusters::{Cluster, Clusters};
pub use runtime::profile::folded_stacks;
pub use runtime::{compile_module, shared_engine, Worker};
pub use types::*;

use shared::{lock, Shared};

/// How the host runs the plugin (Envoy's PluginConfig + vm_config, and the clock).
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// Worker VMs (one per Envoy worker thread).
    pub workers: usize,
    pub failure_policy: FailurePolicy,
    /// Property `plugin_name`; log prefix.
    pub plugin_name: String,
    pub root_id: String,
    /// Namespace of shared data and queues.
    pub vm_id: String,
    /// The `proxy_on_configure` buffer.
    pub plugin_configuration: Vec<u8>,
    /// The `proxy_on_vm_start` buffer.
    pub vm_configuration: Vec<u8>,
    /// Virtual for tests and replay; Real for a host driven by wall-clock time.
    pub clock: ClockMode,
    /// Served to WASI `environ_get`.
    pub environment: Vec<(String, String)>,
    /// Envoy's `allow_on_headers_stop_iteration`: headers paused with a body to come let
    /// the body callbacks run (the body in one call), instead of holding the whole stream.
    pub allow_on_headers_stop_iteration: bool,
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            workers: 2,
            failure_policy: FailurePolicy::FailClosed,
            plugin_name: "mfa-gate".to_string(),
            root_id: "mfa-gate".to_string(),
            vm_id: "mfa-gate".to_string(),
            plugin_configuration: Vec::new(),
            vm_configuration: Vec::new(),
            clock: ClockMode::Virtual {
                start_unix_ms: 1_700_000_000_000,
            },
            environment: Vec::new(),
            allow_on_headers_stop_iteration: false,
        }
    }
}

/// Why a module could not be loaded or started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostError {
    /// The file could not be read.
    Io { path: String, message: String },
    /// Not a (valid) WebAssembly module.
    NotWasm(String),
    /// No `proxy_abi_version_0_2_1` export.
    MissingAbiMarker,
    /// An import this host (like Envoy) does not provide.
    UnknownImport { module: String, name: String },
    /// A required export (memory, allocator) is missing.
    MissingExport(&'static str),
    /// A proxy_on_* export has the wrong signature.
    BadExport { name: String, reason: String },
    /// Linking failed (e.g. an import with the wrong signature).
    Instantiate(String),
    /// A trap during instantiation or `_initialize`/`main`.
    StartTrap(String),
    /// `proxy_on_vm_start` returned false or trapped.
    VmStartFailed { logs: Vec<LogLine> },
    /// `proxy_on_configure` returned false or trapped.
    ConfigureFailed { logs: Vec<LogLine> },
}

fn last_log(logs: &[LogLine]) -> String {
    logs.last()
        .map(|line| format!(" (last log: {} {})", line.level, line.message))
        .unwrap_or_default()
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::Io { path, message } => write!(f, "cannot read {path}: {message}"),
            HostError::NotWasm(detail) => write!(f, "{detail}"),
            HostError::MissingAbiMarker => write!(
                f,
                "missing or unknown Proxy-Wasm ABI version: the module does not export proxy_abi_version_0_2_1"
            ),
            HostError::UnknownImport { module, name } => write!(
                f,
                "the module imports {module}.{name}, which this host (like Envoy) does not provide"
            ),
            HostError::MissingExport(name) => write!(f, "the module does not export {name}"),
            HostError::BadExport { name, reason } => write!(f, "export {name} has the wrong signature: {reason}"),
            HostError::Instantiate(reason) => write!(f, "cannot instantiate the module: {reason}"),
            HostError::StartTrap(reason) => write!(f, "the module trapped while starting (_initialize): {reason}"),
            HostError::VmStartFailed { logs } => {
                write!(f, "proxy_on_vm_start failed (returned false or trapped){}", last_log(logs))
            }
            HostError::ConfigureFailed { logs } => {
                write!(f, "proxy_on_configure failed (returned false or trapped){}", last_log(logs))
            }
        }
    }
}

impl std::error::Error for HostError {}

/// A proxy-wasm host: N worker VMs running one plugin, as one Envoy process would.
pub struct Host {
    workers: Vec<Worker>,
    shared: Arc<Shared>,
    next_worker: usize,
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Host")
            .field("workers", &self.workers.len())
            .finish()
    }
}

impl Host {
    /// Loads a `.wasm` file and starts every worker VM.
    pub fn load(
        wasm_path: &Path,
        options: HostOptions,
        clusters: Clusters,
    ) -> Result<Host, HostError> {
        let bytes = std::fs::read(wasm_path).map_err(|error| HostError::Io {
            path: wasm_path.display().to_string(),
            message: error.to_string(),
        })?;
        Host::load_bytes(&bytes, options, clusters)
    }

    /// Loads a module from bytes (binary, or WAT text) and starts every worker VM.
    pub fn load_bytes(
        wasm: &[u8],
        options: HostOptions,
        clusters: Clusters,
    ) -> Result<Host, HostError> {
        let module = compile_module(wasm)?;
        runtime::check_module(&module)?;
        let pre = runtime::prepare(&module)?;
        let workers = options.workers.max(1);
        let shared = Arc::new(Shared::new(options, clusters));
        let mut started = Vec::with_capacity(workers);
        for index in 0..workers {
            started.push(Worker::start(index, &pre, shared.clone())?);
        }
        for worker in &mut started {
            worker.pump();
        }
        Ok(Host {
            workers: started,
            shared,
            next_worker: 0,
        })
    }

    /// Handles one request on the next worker (round robin).
    pub fn handle(&mut self, request: DownstreamRequest, upstream: &mut dyn Upstream) -> Exchange {
        let worker = self.next_worker % self.workers.len();
        self.next_worker = self.next_worker.wrapping_add(1);
        self.handle_on(worker, request, upstream)
    }

    /// Handles one request on a given worker (index taken modulo the worker count).
    pub fn handle_on(
        &mut self,
        worker: usize,
        request: DownstreamRequest,
        upstream: &mut dyn Upstream,
    ) -> Exchange {
        let index = worker % self.workers.len();
        let exchange = self.workers[index].handle(request, upstream);
        // Other workers catch up with queue notifications and anything now due.
        for (other, worker) in self.workers.iter_mut().enumerate() {
            if other != index {
                worker.pump();
            }
        }
        exchange
    }

    /// Virtual clock: moves time forward by `ms`, firing due ticks, cluster replies and timeouts
    /// on every worker in time order. No effect on a real clock except running due timers.
    pub fn advance(&mut self, ms: u64) {
        let target = self.now_unix_ms().saturating_add(ms);
        for _ in 0..1_000_000 {
            let next = self
                .workers
                .iter()
                .filter_map(Worker::next_deadline_ms)
                .min();
            match next {
                Some(due) if due <= target => {
                    self.shared.clock.advance_to_ms(due);
                    for worker in &mut self.workers {
                        if worker
                            .next_deadline_ms()
                            .is_some_and(|deadline| deadline <= due)
                        {
                            worker.pump();
                        }
                    }
                    if !self.shared.clock.is_virtual() {
                        break;
                    }
                }
                _ => break,
            }
        }
        self.shared.clock.advance_to_ms(target);
        for worker in &mut self.workers {
            worker.pump();
        }
    }

    /// Current time (virtual or real) in Unix ms.
    pub fn now_unix_ms(&self) -> u64 {
        self.shared.clock.now_unix_ms()
    }

    /// A metric by name without the `wasmcustom.` prefix (histograms: the sample count).
    pub fn metric(&self, name: &str) -> Option<i64> {
        lock(&self.shared.metrics).by_name(name)
    }

    /// The recorded samples of a histogram.
    pub fn histogram(&self, name: &str) -> Option<Vec<u64>> {
        lock(&self.shared.metrics).histogram(name)
    }

    /// Every metric by name.
    pub fn metrics(&self) -> MetricSnapshot {
        lock(&self.shared.metrics).snapshot()
    }

    /// Every log line so far (all workers, emission order; the oldest beyond 100 000 are dropped).
    pub fn logs(&self) -> Vec<LogLine> {
        lock(&self.shared.logs).all()
    }

    /// Like [`Host::logs`], and forgets them.
    pub fn take_logs(&mut self) -> Vec<LogLine> {
        lock(&self.shared.logs).take()
    }

    /// Each worker VM's linear memory size in bytes.
    pub fn memory_sizes(&self) -> Vec<usize> {
        self.workers.iter().map(Worker::memory_size).collect()
    }

    /// The trap message if that worker's VM failed.
    pub fn worker_failed(&self, worker: usize) -> Option<String> {
        self.workers
            .get(worker)
            .and_then(|w| w.failed().map(str::to_string))
    }

    /// Number of worker VMs.
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// How many calls the named cluster received.
    pub fn cluster_calls(&self, name: &str) -> usize {
        lock(&self.shared.clusters).call_count(name)
    }

    /// Splits the host into its workers (each `Send`), for running them on threads.
    pub fn into_workers(self) -> Vec<Worker> {
        self.workers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>() {}

    #[test]
    fn worker_is_send() {
        assert_send::<Worker>();
    }
}
