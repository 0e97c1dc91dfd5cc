//! The wasmtime side: one engine and a compile cache for the process, the linker, and a worker VM.

pub(crate) mod abi;
pub(crate) mod hostcalls;
pub mod profile;
mod stream;
pub(crate) mod vm;
mod wasi;

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, OnceLock};

use wasmtime::{
    Engine, Instance, InstancePre, Linker, Module, Store, TypedFunc, WasmParams, WasmResults,
};

use crate::clusters::CallOutcome;
use crate::shared::{lock, Shared};
use crate::types::LogLine;
use crate::HostError;
use vm::{response_header_map, ScheduledReply, VmState};

/// How often the epoch ticker advances the engine's epoch.
const EPOCH_TICK: std::time::Duration = std::time::Duration::from_millis(10);
/// Longest one callback (with the hostcalls it makes) may run: 500 ticks = 5 s. A module that
/// loops forever traps ("interrupt") and its VM fails, instead of hanging the host.
const CALLBACK_TIME_LIMIT_TICKS: u64 = 500;

/// The epoch deadline set before each callback: the time limit, or the next tick when the
/// sampling profiler is on (its callback then records a sample instead of trapping).
pub(crate) fn callback_deadline_ticks() -> u64 {
    if profile::interval().is_some() {
        1
    } else {
        CALLBACK_TIME_LIMIT_TICKS
    }
}

/// The process-wide wasmtime engine (Cranelift, epoch interruption on, with a ticker thread).
pub fn shared_engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(true);
        if profile::perf_map_wanted() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        match Engine::new(&config) {
            Ok(engine) => {
                let ticker = engine.clone();
                let tick = profile::interval().unwrap_or(EPOCH_TICK);
                let spawned = std::thread::Builder::new()
                    .name("wasm-epoch".to_string())
                    .spawn(move || loop {
                        std::thread::sleep(tick);
                        ticker.increment_epoch();
                    });
                match spawned {
                    Ok(_) => engine,
                    // Without a ticker the deadline would never move: run without interruption.
                    Err(_) => Engine::default(),
                }
            }
            Err(_) => Engine::default(),
        }
    })
}

type ModuleCache = Mutex<HashMap<u64, Vec<(Arc<Vec<u8>>, Module)>>>;

/// Compiles a module (binary or WAT) on the shared engine, once per distinct byte string per
/// process: tests create many hosts from the same `.wasm`.
pub fn compile_module(bytes: &[u8]) -> Result<Module, HostError> {
    static CACHE: OnceLock<ModuleCache> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let mut hasher = DefaultHasher::new();
    bytes.hash(&mut hasher);
    let key = hasher.finish();
    let mut cache = lock(cache);
    if let Some(entries) = cache.get(&key) {
        if let Some((_, module)) = entries
            .iter()
            .find(|(stored, _)| stored.as_slice() == bytes)
        {
            return Ok(module.clone());
        }
    }
    let module = Module::new(shared_engine(), bytes).map_err(|error| {
        let kind = if bytes.starts_with(b"\0asm") {
            "invalid WebAssembly module"
        } else {
            "not a WebAssembly module (no \\0asm magic, and not valid WAT)"
        };
        HostError::NotWasm(format!("{kind}: {}", one_line(&format!("{error:#}"))))
    })?;
    cache
        .entry(key)
        .or_default()
        .push((Arc::new(bytes.to_vec()), module.clone()));
    Ok(module)
}

/// Collapses a multi-line error text into one line.
pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Checks the ABI marker and that every import is one this host provides.
pub(crate) fn check_module(module: &Module) -> Result<(), HostError> {
    if module.get_export("proxy_abi_version_0_2_1").is_none() {
        return Err(HostError::MissingAbiMarker);
    }
    for import in module.imports() {
        let provided = match import.module() {
            "env" => hostcalls::ENV_IMPORTS.contains(&import.name()),
            "wasi_snapshot_preview1" => wasi::WASI_IMPORTS.contains(&import.name()),
            _ => false,
        };
        if !provided {
            return Err(HostError::UnknownImport {
                module: import.module().to_string(),
                name: import.name().to_string(),
            });
        }
    }
    Ok(())
}

/// Links the hostcalls and pre-instantiates the module.
pub(crate) fn prepare(module: &Module) -> Result<InstancePre<VmState>, HostError> {
    let mut linker: Linker<VmState> = Linker::new(shared_engine());
    hostcalls::add_to_linker(&mut linker)
        .and_then(|()| wasi::add_to_linker(&mut linker))
        .map_err(|error| HostError::Instantiate(one_line(&format!("{error:#}"))))?;
    linker
        .instantiate_pre(module)
        .map_err(|error| HostError::Instantiate(one_line(&format!("{error:#}"))))
}

/// The text of a trap: its root cause (e.g. "wasm `unreachable` instruction executed").
pub(crate) fn trap_text(error: &wasmtime::Error) -> String {
    one_line(&error.root_cause().to_string())
}

type Callback1 = Option<TypedFunc<i32, ()>>;
type Callback2 = Option<TypedFunc<(i32, i32), ()>>;
type Action2 = Option<TypedFunc<(i32, i32), i32>>;
type Action3 = Option<TypedFunc<(i32, i32, i32), i32>>;
type Callback3 = Option<TypedFunc<(i32, i32, i32), ()>>;
type CallResponse = Option<TypedFunc<(i32, i32, i32, i32, i32), ()>>;

/// The module's proxy_on_* exports (absent ones are simply not called).
pub(crate) struct Exports {
    pub context_create: Callback2,
    pub vm_start: Action2,
    pub configure: Action2,
    pub tick: Callback1,
    pub queue_ready: Callback2,
    pub request_headers: Action3,
    pub request_body: Action3,
    pub request_trailers: Action2,
    pub response_headers: Action3,
    pub response_body: Action3,
    pub response_trailers: Action2,
    pub http_call_response: CallResponse,
    pub grpc_receive: Callback3,
    pub grpc_close: Callback3,
    pub done: Option<TypedFunc<i32, i32>>,
    pub log: Callback1,
    pub delete: Callback1,
}

fn typed<P: WasmParams, R: WasmResults>(
    instance: &Instance,
    store: &mut Store<VmState>,
    name: &str,
) -> Result<Option<TypedFunc<P, R>>, HostError> {
    match instance.get_func(&mut *store, name) {
        None => Ok(None),
        Some(func) => func
            .typed::<P, R>(&*store)
            .map(Some)
            .map_err(|error| HostError::BadExport {
                name: name.to_string(),
                reason: one_line(&format!("{error:#}")),
            }),
    }
}

impl Exports {
    fn lookup(instance: &Instance, store: &mut Store<VmState>) -> Result<Exports, HostError> {
        Ok(Exports {
            context_create: typed(instance, store, "proxy_on_context_create")?,
            vm_start: typed(instance, store, "proxy_on_vm_start")?,
            configure: typed(instance, store, "proxy_on_configure")?,
            tick: typed(instance, store, "proxy_on_tick")?,
            queue_ready: typed(instance, store, "proxy_on_queue_ready")?,
            request_headers: typed(instance, store, "proxy_on_request_headers")?,
            request_body: typed(instance, store, "proxy_on_request_body")?,
            request_trailers: typed(instance, store, "proxy_on_request_trailers")?,
            response_headers: typed(instance, store, "proxy_on_response_headers")?,
            response_body: typed(instance, store, "proxy_on_response_body")?,
            response_trailers: typed(instance, store, "proxy_on_response_trailers")?,
            http_call_response: typed(instance, store, "proxy_on_http_call_response")?,
            grpc_receive: typed(instance, store, "proxy_on_grpc_receive")?,
            grpc_close: typed(instance, store, "proxy_on_grpc_close")?,
            done: typed(instance, store, "proxy_on_done")?,
            log: typed(instance, store, "proxy_on_log")?,
            delete: typed(instance, store, "proxy_on_delete")?,
        })
    }
}

/// Most async events delivered in one pump (guards against a filter that re-arms forever).
const MAX_EVENTS_PER_PUMP: usize = 10_000;

/// One worker thread's VM: its own `Store`, sharing shared data, queues and metrics with the others.
pub struct Worker {
    pub(crate) store: Store<VmState>,
    pub(crate) exports: Exports,
    pub(crate) index: usize,
    pub(crate) failed: Option<String>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) connections: u64,
}

impl Worker {
    /// Instantiates the VM and runs Envoy's start sequence: `_initialize` (+ `main`),
    /// root context create, `on_vm_start`, `on_configure` (§2).
    pub(crate) fn start(
        index: usize,
        pre: &InstancePre<VmState>,
        shared: Arc<Shared>,
    ) -> Result<Worker, HostError> {
        let mut store = Store::new(shared_engine(), VmState::new(shared.clone(), index));
        store.limiter(|state| &mut state.limits);
        if profile::interval().is_some() {
            store.epoch_deadline_callback(profile::sample);
        }
        store.set_epoch_deadline(callback_deadline_ticks());
        store.data_mut().initializing = true;
        let instance = pre
            .instantiate(&mut store)
            .map_err(|error| HostError::StartTrap(trap_text(&error)))?;
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or(HostError::MissingExport("memory"))?;
        store.data_mut().memory = Some(memory);
        let alloc = match typed::<i32, i32>(&instance, &mut store, "malloc")? {
            Some(func) => func,
            None => typed::<i32, i32>(&instance, &mut store, "proxy_on_memory_allocate")?.ok_or(
                HostError::MissingExport("malloc or proxy_on_memory_allocate"),
            )?,
        };
        store.data_mut().alloc = Some(alloc);
        let exports = Exports::lookup(&instance, &mut store)?;
        let initialize = typed::<(), ()>(&instance, &mut store, "_initialize")?;
        let run_init = |store: &mut Store<VmState>| -> wasmtime::Result<()> {
            if let Some(initialize) = initialize {
                initialize.call(&mut *store, ())?;
                if let Some(main) = typed::<(i32, i32), i32>(&instance, store, "main")
                    .ok()
                    .flatten()
                {
                    main.call(&mut *store, (0, 0))?;
                } else if let Some(main) = typed::<(), i32>(&instance, store, "__main_void")
                    .ok()
                    .flatten()
                {
                    main.call(&mut *store, ())?;
                }
            } else if let Some(start) = typed::<(), ()>(&instance, store, "_start").ok().flatten() {
                start.call(&mut *store, ())?;
            }
            Ok(())
        };
        store.set_epoch_deadline(callback_deadline_ticks());
        run_init(&mut store).map_err(|error| HostError::StartTrap(trap_text(&error)))?;
        store.data_mut().initializing = false;

        let mut worker = Worker {
            store,
            exports,
            index,
            failed: None,
            shared,
            connections: 0,
        };
        let root = worker.store.data_mut().allocate_context_id();
        worker.store.data_mut().root_context = root;
        let vm_config_len = worker.shared.options.vm_configuration.len() as i32;
        let plugin_config_len = worker.shared.options.plugin_configuration.len() as i32;
        worker.invoke(
            "proxy_on_context_create",
            worker.exports.context_create.clone(),
            root,
            (root as i32, 0),
        );
        let started = worker.invoke(
            "proxy_on_vm_start",
            worker.exports.vm_start.clone(),
            root,
            (root as i32, vm_config_len),
        );
        if worker.failed.is_some() || started == Some(0) {
            return Err(HostError::VmStartFailed {
                logs: worker.own_logs(),
            });
        }
        worker.store.data_mut().in_configure = true;
        let configured = worker.invoke(
            "proxy_on_configure",
            worker.exports.configure.clone(),
            root,
            (root as i32, plugin_config_len),
        );
        worker.store.data_mut().in_configure = false;
        if worker.failed.is_some() || configured == Some(0) {
            return Err(HostError::ConfigureFailed {
                logs: worker.own_logs(),
            });
        }
        Ok(worker)
    }

    fn own_logs(&self) -> Vec<LogLine> {
        lock(&self.shared.logs)
            .all()
            .into_iter()
            .filter(|line| line.worker == self.index)
            .collect()
    }

    /// Calls an export with `context` as the current context; a trap marks the VM failed (§3.9).
    pub(crate) fn invoke<P: WasmParams, R: WasmResults>(
        &mut self,
        name: &str,
        func: Option<TypedFunc<P, R>>,
        context: u32,
        params: P,
    ) -> Option<R> {
        if self.failed.is_some() {
            return None;
        }
        let func = func?;
        self.store.data_mut().effective_context = context;
        self.store.set_epoch_deadline(callback_deadline_ticks());
        let result = func.call(&mut self.store, params);
        match result {
            Ok(value) => {
                self.store.data_mut().effective_context = 0;
                Some(value)
            }
            Err(error) => {
                let message = format!("Function: {name} failed: {}", trap_text(&error));
                let state = self.store.data_mut();
                state.effective_context = context;
                // Envoy's line (wasm_vm.cc): error level, "Function: <name> failed: <trap>".
                state.log("error", message.clone());
                state.effective_context = 0;
                state.scheduled.clear();
                state.next_tick_ms = None;
                self.failed = Some(message);
                None
            }
        }
    }

    /// Delivers one due async event (queue notification, cluster reply, tick). False if none.
    pub(crate) fn deliver_one_due(&mut self) -> bool {
        if self.deliver_one_posted() {
            return true;
        }
        if self.failed.is_some() {
            return false;
        }
        let now = self.shared.clock.now_unix_ms();
        if let Some(index) = self.store.data().due_reply(now) {
            let reply = self.store.data_mut().scheduled.remove(index);
            self.deliver_reply(reply);
            return true;
        }
        let state = self.store.data_mut();
        if let Some(due) = state.next_tick_ms.filter(|due| *due <= now) {
            let _ = due;
            state.next_tick_ms = Some(now.saturating_add(state.tick_period_ms));
            let root = state.root_context;
            self.invoke(
                "proxy_on_tick",
                self.exports.tick.clone(),
                root,
                root as i32,
            );
            return true;
        }
        false
    }

    /// Delivers every queue notification already posted to this worker (no clock move).
    pub(crate) fn deliver_posted(&mut self) {
        while self.deliver_one_posted() {}
    }

    /// One posted `proxy_on_queue_ready`; false if none (a failed VM's inbox is dropped).
    fn deliver_one_posted(&mut self) -> bool {
        let Some(inbox) = self.shared.inboxes.get(self.index) else {
            return false;
        };
        if self.failed.is_some() {
            lock(inbox).clear();
            return false;
        }
        let notification = lock(inbox).pop_front();
        let Some((root, token)) = notification else {
            return false;
        };
        self.invoke(
            "proxy_on_queue_ready",
            self.exports.queue_ready.clone(),
            root,
            (root as i32, token as i32),
        );
        true
    }

    /// `proxy_on_http_call_response(root, token, …)`, never re-entrant (§3.3); gRPC replies
    /// go to `deliver_grpc`.
    fn deliver_reply(&mut self, reply: ScheduledReply) {
        let root = self.store.data().root_context;
        let token = reply.token as i32;
        let counts = match reply.outcome {
            CallOutcome::GrpcMessage(_) | CallOutcome::GrpcClose { .. } => {
                self.deliver_grpc(root, token, reply.outcome);
                return;
            }
            CallOutcome::Response(response) => {
                let headers = response_header_map(&response);
                let counts = (
                    headers.len() as i32,
                    response.body.len() as i32,
                    response.trailers.len() as i32,
                );
                let state = self.store.data_mut();
                state.call_response = Some((headers, response.body, response.trailers));
                state.status_code = 0;
                state.status_message.clear();
                counts
            }
            CallOutcome::Reset => {
                let state = self.store.data_mut();
                state.status_code = abi::status::BROKEN_CONNECTION;
                state.status_message = b"reset".to_vec();
                (0, 0, 0)
            }
        };
        self.invoke(
            "proxy_on_http_call_response",
            self.exports.http_call_response.clone(),
            root,
            (root as i32, token, counts.0, counts.1, counts.2),
        );
        let state = self.store.data_mut();
        state.call_response = None;
        state.status_message.clear();
    }

    /// A unary gRPC call's end, to the root context that made it (cpp-host `grpc_call` runs
    /// on `root_context()`), after the current callback (§3.3), as Envoy 1.40 does it
    /// (source/extensions/common/wasm/context.cc):
    /// - onGrpcReceiveWrapper: the message in the GrpcReceiveBuffer, then
    ///   `proxy_on_grpc_receive(root, token, size)`; the buffer is dropped after the callback.
    ///   Nothing else: no initial or trailing metadata callbacks for a unary call
    ///   (AsyncRequestImpl keeps them), and get_status is left as it was.
    /// - onGrpcCloseWrapper: status code and message set, then
    ///   `proxy_on_grpc_close(root, token, code)`; the message is cleared after the callback.
    ///
    /// A module without the export gets nothing (the call is just forgotten).
    fn deliver_grpc(&mut self, root: u32, token: i32, outcome: CallOutcome) {
        self.store.data_mut().grpc_delivering = Some(token as u32);
        match outcome {
            CallOutcome::GrpcMessage(bytes) => {
                let size = bytes.len() as i32;
                self.store.data_mut().grpc_receive = Some(bytes);
                self.invoke(
                    "proxy_on_grpc_receive",
                    self.exports.grpc_receive.clone(),
                    root,
                    (root as i32, token, size),
                );
                self.store.data_mut().grpc_receive = None;
            }
            CallOutcome::GrpcClose { code, message } => {
                let state = self.store.data_mut();
                state.status_code = code;
                state.status_message = message.into_bytes();
                self.invoke(
                    "proxy_on_grpc_close",
                    self.exports.grpc_close.clone(),
                    root,
                    (root as i32, token, code as i32),
                );
                self.store.data_mut().status_message.clear();
            }
            CallOutcome::Response(_) | CallOutcome::Reset => {}
        }
        self.store.data_mut().grpc_delivering = None;
    }

    /// Delivers every due async event.
    pub(crate) fn pump(&mut self) {
        for _ in 0..MAX_EVENTS_PER_PUMP {
            if !self.deliver_one_due() {
                break;
            }
        }
    }

    /// Fires due ticks, due cluster replies/timeouts and queue notifications (Real clock: call this
    /// when [`Worker::next_deadline_ms`] passes).
    pub fn run_due_timers(&mut self) {
        self.pump();
    }

    /// Unix ms of the next tick, cluster reply or timeout (now, if a queue notification waits).
    pub fn next_deadline_ms(&self) -> Option<u64> {
        if self.failed.is_some() {
            return None;
        }
        let inbox_waiting = self
            .shared
            .inboxes
            .get(self.index)
            .is_some_and(|inbox| !lock(inbox).is_empty());
        let state = self.store.data();
        let now = inbox_waiting.then(|| self.shared.clock.now_unix_ms());
        [now, state.next_reply_due(), state.next_tick_ms]
            .into_iter()
            .flatten()
            .min()
    }

    /// This worker's index.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The trap message if this worker's VM failed.
    pub fn failed(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    /// This VM's linear memory size in bytes.
    pub fn memory_size(&self) -> usize {
        self.store
            .data()
            .memory
            .map(|memory| memory.data_size(&self.store))
            .unwrap_or(0)
    }

    /// Removes and returns every log line the host holds (all workers share one log store).
    pub fn take_logs(&mut self) -> Vec<LogLine> {
        lock(&self.shared.logs).take()
    }
}
