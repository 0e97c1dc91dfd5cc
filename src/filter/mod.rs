//! The proxy-wasm glue: the only module that touches the SDK. It reads the configuration
//! (root context), keeps the per-VM state (keys, token cache, metrics), and maps the pure
//! engine's [`crate::engine::Outcome`] onto hostcalls for each request.

mod header_map;
mod http;
mod keys;
mod local_reply;
mod metrics;
mod root;
mod state;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
    proxy_wasm::set_root_context(|context_id| Box::new(root::GateRoot::new(context_id)));
}}

/// Seconds since the Unix epoch from the host's clock (0 if the clock is before 1970).
fn now_secs(time: std::time::SystemTime) -> u64 {
    time.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
