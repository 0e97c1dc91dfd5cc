//! The rate-limit service beside Envoy: [`Redis`] (`redis-server` on a free loopback port,
//! no persistence), [`RateLimitService`] (`target/debug/mfa-gate-rls` on it, with limits
//! the test gives in limitador's YAML format) and [`rls_cluster`], the Envoy cluster that
//! reaches the service over HTTP/2. Both processes are killed when dropped, also when the
//! test panics. Nothing here skips: a missing `redis-server` fails with how to install it.
//!
//! ```no_run
//! use mfa_gate_envoy::{rls_cluster, GatewayBuilder, RateLimitService, Redis};
//! let redis = Redis::start();
//! let rls = RateLimitService::start(&redis.url(), "- {namespace: mfa-gate, ...}");
//! let cluster = rls_cluster("mfa_gate_rls", rls.address());
//! let gateway = GatewayBuilder::shipped("envoy/envoy.yaml")
//!     .bootstrap(move |b| {
//!         b["static_resources"]["clusters"].as_sequence_mut().unwrap().push(cluster)
//!     })
//!     .start();
//! ```

use crate::process::{Running, Scratch};
use crate::{built, free_port};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long Redis may take to answer PING after it is started.
const REDIS_START_TIMEOUT: Duration = Duration::from_secs(10);

/// `redis-server` on a free loopback port, without persistence (`--save ''`,
/// `--appendonly no`, its directory a scratch one). Stopped on drop; [`Redis::stop`] and
/// [`Redis::restart`] (same port, empty again) are for fault tests.
pub struct Redis {
    port: u16,
    running: Option<Running>,
    scratch: Scratch,
}

impl Redis {
    /// Starts it and waits until it answers PING.
    pub fn start() -> Redis {
        let mut redis = Redis {
            port: free_port(),
            running: None,
            scratch: Scratch::new("redis"),
        };
        redis.restart();
        redis
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The loopback port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills it (its counts are gone: nothing is persisted).
    pub fn stop(&mut self) {
        self.running = None;
    }

    /// Starts it again on the same port (stopping it first if it runs) and waits for PING.
    pub fn restart(&mut self) {
        self.stop();
        let log = std::fs::File::create(self.scratch.path().join("redis.log")).expect("redis log");
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.scratch.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("redis log"))
            .stderr(log);
        if let Err(e) = Command::new("redis-server").arg("--version").output() {
            panic!("cannot run redis-server ({e}): install redis-server (make setup)");
        }
        self.running = Some(Running::spawn(&mut command, "redis-server"));
        let deadline = Instant::now() + REDIS_START_TIMEOUT;
        while !ping(self.port) {
            if let Some(status) = self.running.as_mut().and_then(Running::exited) {
                let log = std::fs::read_to_string(self.scratch.path().join("redis.log"))
                    .unwrap_or_default();
                panic!("redis-server exited ({status}): {log}");
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} did not answer PING within {REDIS_START_TIMEOUT:?}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// True when a Redis on `port` answers PING.
fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut answer = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut answer).is_ok()
        && &answer == b"+PONG\r\n"
}

/// `target/debug/mfa-gate-rls`, the RLS v3 service built on limitador, on a free loopback
/// port, counting in a [`Redis`]. Killed on drop.
pub struct RateLimitService {
    address: SocketAddr,
    running: Option<Running>,
    scratch: Scratch,
}

impl RateLimitService {
    /// Starts it with `limits` (limitador's YAML format) on the Redis at `redis_url`;
    /// returns once it has printed the address it listens on.
    pub fn start(redis_url: &str, limits: &str) -> RateLimitService {
        RateLimitService::start_on(0, redis_url, limits)
    }

    /// [`RateLimitService::start`] on this loopback port (0: a free one), e.g. the service
    /// coming back on the port its cluster names.
    pub fn start_on(port: u16, redis_url: &str, limits: &str) -> RateLimitService {
        let listen = format!("127.0.0.1:{port}");
        let scratch = Scratch::new("rls");
        let limits_path = scratch.write("limits.yaml", limits);
        let log_path = scratch.path().join("rls.log");
        let log = std::fs::File::create(&log_path).expect("rls log");
        let mut running = Running::spawn(
            Command::new(rls_binary())
                .args(["--listen", listen.as_str(), "--redis", redis_url])
                .arg("--limits")
                .arg(&limits_path)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(log),
            "mfa-gate-rls",
        );
        let stdout = running.take_stdout().expect("rls stdout");
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let address = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                panic!("mfa-gate-rls printed {line:?} instead of `listening ADDR`; its log: {log}")
            });
        RateLimitService {
            address,
            running: Some(running),
            scratch,
        }
    }

    /// The address it serves gRPC (HTTP/2, plaintext) on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Its log (stderr) so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.scratch.path().join("rls.log")).unwrap_or_default()
    }

    /// Kills it.
    pub fn stop(&mut self) {
        self.running = None;
    }
}

/// `target/debug/mfa-gate-rls`.
pub fn rls_binary() -> PathBuf {
    built(
        "target/debug/mfa-gate-rls",
        "build it first (cargo build -p mfa-gate-rls, or make native)",
    )
}

/// A STATIC Envoy cluster named `name` to the service at `address`, speaking HTTP/2 (gRPC),
/// for `static_resources.clusters`.
pub fn rls_cluster(name: &str, address: SocketAddr) -> serde_yaml::Value {
    serde_yaml::from_str(&format!(
        r#"
name: {name}
type: STATIC
connect_timeout: 1s
typed_extension_protocol_options:
  envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
    "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
    explicit_http_config:
      http2_protocol_options: {{}}
load_assignment:
  cluster_name: {name}
  endpoints:
  - lb_endpoints:
    - endpoint:
        address:
          socket_address: {{ address: "{ip}", port_value: {port} }}
"#,
        ip = address.ip(),
        port = address.port()
    ))
    .expect("RLS cluster YAML")
}
