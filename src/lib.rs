//! mfa-gate: an Envoy proxy-wasm filter that makes risk decisions inline on every request.
//!
//! The pipeline is pure Rust with no `proxy_wasm` import. For each request the engine reads
//! what the upstream may make of it ([`request`]: every method, path and host it may be
//! served as), matches the route rules ([`policy`]), establishes who is calling
//! ([`token`]: where the credential is, its signature and registered claims, or Envoy
//! jwt_authn's verified payload, cached per session), works out how they authenticated
//! ([`assurance`]), decides ([`policy`]) and chooses the answer once ([`engine`]: pass with
//! identity headers, a [`response`], or a [`engine::Need`] such as keys to fetch first),
//! with a decision [`record`] and [`metrics`]. Revocation signals ([`events`]: Security
//! Event Tokens, logout tokens, RFC 8936 poll bodies) are verified and read into typed
//! actions. Only [`filter`] touches the SDK.
//!
//! Modules are declared in pipeline order: each imports only modules above it in this
//! list (leaves first), so there is no import cycle (`tests/layers.rs` checks it).

// Leaves: they import nothing from the crate.
pub mod json;
pub mod metrics;
pub mod store;
pub mod digest;
pub mod wire;
pub mod signals;
pub mod schedule;
pub mod claims;
pub mod response;
pub mod request;
// The stages.
pub mod pairs;
pub mod prompts;
pub mod introspection;
pub mod push_endpoint;
pub mod assurance;
pub mod reason;
pub mod token;
pub mod events;
pub mod policy;
pub mod risk;
pub mod sign_in;
pub mod record;
pub mod config;
pub mod observe;
pub mod engine;
pub mod receive;
pub mod idp_sessions;

#[cfg(target_arch = "wasm32")]
pub mod filter;

// The flat layout's public paths, kept for the CLI, tests and benches that use them.
pub use token::cache as token_cache;
pub use token::{extract, jwks, verify};

/// Crate version, logged at start.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
