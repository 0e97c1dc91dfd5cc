//! mfa-gate-host: a proxy-wasm ABI 0.2.1 host on wasmtime, faithful to Envoy's semantics.
//!
//! See `host/README.md` and `../shared/docs/proxy-wasm-abi.md`.

pub mod envoy_yaml;
pub mod replay;
pub mod types;
pub mod upstream_http;

pub use types::*;
