//! mfa-gate: an Envoy proxy-wasm filter that makes risk decisions inline on every request.
//!
//! The policy pipeline is pure Rust with no `proxy_wasm` import:
//! extract (where the token is) → verify (signature and registered claims) or read
//! Envoy jwt_authn's verified payload → assurance (methods and level) → policy (route
//! rule and decision) → response (the HTTP answer). Only [`filter`] touches the SDK.

pub mod assurance;
pub mod claims;
pub mod config;
pub mod engine;
pub mod json;
pub mod metrics;
pub mod pairs;
pub mod policy;
pub mod reason;
pub mod record;
pub mod request;
pub mod response;
pub mod schedule;
pub mod store;
pub mod token;

// The flat layout's public paths, kept for the CLI, tests and benches that use them.
pub use token::cache as token_cache;
pub use token::{extract, jwks, verify};

#[cfg(target_arch = "wasm32")]
pub mod filter;

/// Crate version, logged at start.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
