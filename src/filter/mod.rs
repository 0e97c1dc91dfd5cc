//! The proxy-wasm glue: the only module that touches the SDK. It reads the configuration
//! (root context), keeps the per-VM state (keys, token cache, metrics), and maps the pure
//! engine's [`crate::engine::Outcome`] onto hostcalls for each request.

mod clock;
mod header_map;
mod http;
mod introspection;
mod introspection_state;
mod keys;
mod local_reply;
mod log_level;
mod prompts;
mod metrics;
mod revocation;
mod revocation_state;
mod root;
mod sessions;
mod shared_data;
mod sign_in;
mod state;
mod view;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
    proxy_wasm::set_root_context(|context_id| Box::new(root::GateRoot::new(context_id)));
}}
