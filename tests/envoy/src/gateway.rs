//! [`GatewayBuilder`] and [`Gateway`]: real Envoy on a shipped bootstrap, rewritten for the
//! test, in front of the demo IdP and app (or the test's own upstreams).

use crate::bootstrap::{self, Ports};
use crate::geo::GeoSetup;
use crate::http::{self, Answer};
use crate::process::{start_demo, Running, Scratch};
use crate::tls::{ClientCerts, TlsClient, TlsFailure, TlsMaterial};
use crate::upstreams::EchoUpstream;
use crate::{envoy_binary, free_port, release_wasm, repo_root};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long Envoy may take to become ready with every worker's filter configured.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// The JSON access log [`GatewayBuilder::access_log_fields`] asks for, in the scratch dir.
const ACCESS_LOG: &str = "access.log";
/// Lines of Envoy's log quoted in a failure message.
const LOG_TAIL_LINES: usize = 60;
/// The filter's `on_configure` success line (one per VM), as Envoy logs it.
const CONFIGURED_MARKER: &str = "configured: ";

/// The demo IdP's credentials as envoy/envoy.yaml's `vm_config.environment_variables`
/// give them to the filter (scripts/run-demo.sh passes the same).
const DEMO_CREDENTIALS: [&str; 4] = [
    "--ssf-bearer",
    "demo-ssf-poll-credential",
    "--okta-api-token",
    "demo-okta-api-token",
];

/// Log fragments that mean a wasm VM failed, was refused or was killed.
const WASM_FAILURE_MARKERS: [&str; 9] = [
    "Wasm VM failed",
    "Failed to load Wasm",
    "Unable to create Wasm",
    "Uncaught RuntimeError",
    "Function: proxy_on_",
    "panicked at",
    "failed to load",
    "wasm_fail_stream",
    "][critical][",
];

type Edit = Box<dyn FnOnce(&mut serde_yaml::Value)>;

/// Envoy on a shipped bootstrap, rewritten for the test: the listener and admin on free
/// ports, the `demo_idp` / `demo_app` clusters pointed at the test's IdP and app, every
/// `127.0.0.1:10000/10001/10002` in the configuration moved to the new ports, the wasm
/// `filename` made absolute ([`release_wasm`] unless [`GatewayBuilder::wasm_file`] says
/// otherwise).
pub struct GatewayBuilder {
    bootstrap_file: String,
    edits: Vec<Edit>,
    echo: bool,
    concurrency: u32,
    wasm: Option<PathBuf>,
    idp_cluster_port: Option<u16>,
    configured_marker: Option<String>,
    extra_args: Vec<String>,
    envoy_env: Vec<(String, String)>,
    demo_args: Vec<String>,
    access_log: Vec<(String, String)>,
}

impl GatewayBuilder {
    /// Starts from `bootstrap_file`, relative to the repository root (e.g. "envoy/envoy.yaml").
    pub fn shipped(bootstrap_file: &str) -> GatewayBuilder {
        GatewayBuilder {
            bootstrap_file: bootstrap_file.to_string(),
            edits: Vec::new(),
            echo: false,
            concurrency: 1,
            wasm: None,
            idp_cluster_port: None,
            configured_marker: Some(CONFIGURED_MARKER.to_string()),
            extra_args: Vec::new(),
            envoy_env: Vec::new(),
            demo_args: Vec::new(),
            access_log: Vec::new(),
        }
    }

    /// Edits the mfa-gate filter's JSON configuration (the StringValue) before start.
    pub fn plugin_config(mut self, edit: impl FnOnce(&mut serde_json::Value) + 'static) -> Self {
        let mut edit = Some(edit);
        self.edits.push(Box::new(move |b| {
            bootstrap::edit_plugin_config(b, &mut |json| {
                if let Some(edit) = edit.take() {
                    edit(json);
                }
            })
        }));
        self
    }

    /// Edits the HttpConnectionManager `typed_config` (a YAML mapping) before start.
    pub fn hcm(mut self, edit: impl FnOnce(&mut serde_yaml::Value) + 'static) -> Self {
        self.edits.push(Box::new(move |b| edit(bootstrap::hcm(b))));
        self
    }

    /// Edits the whole bootstrap (after the ports are rewritten).
    pub fn bootstrap(mut self, edit: impl FnOnce(&mut serde_yaml::Value) + 'static) -> Self {
        self.edits.push(Box::new(edit));
        self
    }

    /// Adds a plain HTTP/1 cluster `name` to 127.0.0.1:`port` (a test's own upstream).
    pub fn loopback_cluster(self, name: &str, port: u16) -> Self {
        let name = name.to_string();
        self.bootstrap(move |b| {
            let cluster = serde_yaml::from_str::<serde_yaml::Value>(&format!(
                "name: {name}
type: STATIC
connect_timeout: 0.5s
load_assignment:
  cluster_name: {name}
  endpoints:
  - lb_endpoints:
    - endpoint:
        address:
          socket_address: {{address: 127.0.0.1, port_value: {port}}}"
            ))
            .expect("cluster YAML");
            b["static_resources"]["clusters"]
                .as_sequence_mut()
                .expect("static clusters")
                .push(cluster);
        })
    }

    /// Points `demo_app` at an [`EchoUpstream`] instead of the demo app.
    pub fn echo_upstream(mut self) -> Self {
        self.echo = true;
        self
    }

    /// Envoy worker threads (`--concurrency`, default 1).
    pub fn concurrency(mut self, n: u32) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Runs this module instead of the release build. The start then waits for the
    /// "configured" line only if the file is named `mfa_gate.wasm` (see
    /// [`GatewayBuilder::configured_marker`]).
    pub fn wasm_file(mut self, path: PathBuf) -> Self {
        if path.file_name().and_then(|n| n.to_str()) != Some("mfa_gate.wasm") {
            self.configured_marker = None;
        }
        self.wasm = Some(path);
        self
    }

    /// Points the `demo_idp` cluster (the JWKS the filter or jwt_authn fetches) at this
    /// port, e.g. a [`crate::KeyServer`]'s, or a port nothing listens on. The demo IdP still
    /// runs (tokens, `/authorize`).
    pub fn idp_cluster_port(mut self, port: u16) -> Self {
        self.idp_cluster_port = Some(port);
        self
    }

    /// The log fragment each worker's VM prints once configured (None: wait for `/ready`
    /// only). Default: mfa-gate's "configured: " line.
    pub fn configured_marker(mut self, marker: Option<&str>) -> Self {
        self.configured_marker = marker.map(str::to_string);
        self
    }

    /// More Envoy command-line arguments.
    pub fn envoy_args(mut self, args: &[&str]) -> Self {
        self.extra_args
            .extend(args.iter().map(|a| (*a).to_string()));
        self
    }

    /// Sets a field of the mfa-gate wasm filter's `PluginConfig` (the filter's
    /// `typed_config.config`), e.g. `allow_on_headers_stop_iteration: true`.
    pub fn plugin_option(mut self, name: &str, value: serde_yaml::Value) -> Self {
        let name = name.to_string();
        self.edits.push(Box::new(move |b| {
            for filter in bootstrap::wasm_filters(b) {
                filter["typed_config"]["config"][name.as_str()] = value.clone();
            }
        }));
        self
    }

    /// Sets an environment variable of the Envoy process (e.g. a secret the plugin reads
    /// through [`GatewayBuilder::host_env_keys`]).
    pub fn envoy_env(mut self, name: &str, value: &str) -> Self {
        self.envoy_env.push((name.to_string(), value.to_string()));
        self
    }

    /// Passes these Envoy process variables on to the mfa-gate wasm VMs
    /// (`vm_config.environment_variables.host_env_keys`).
    pub fn host_env_keys(mut self, names: &[&str]) -> Self {
        let names: Vec<String> = names.iter().map(|n| (*n).to_string()).collect();
        self.edits
            .push(Box::new(move |b| bootstrap::set_host_env_keys(b, &names)));
        self
    }

    /// More `mfa-gate demo` arguments; `{listener}` in them becomes the gateway's listener
    /// port, `{idp}` the demo IdP's (e.g. `--ssf-push-url
    /// http://127.0.0.1:{listener}/.mfa-gate/ssf/push`).
    pub fn demo_args(mut self, args: &[&str]) -> Self {
        self.demo_args.extend(args.iter().map(|a| (*a).to_string()));
        self
    }

    /// Makes the listener terminate TLS with `tls`'s server certificate and check client
    /// certificates against its device CA, required or optional
    /// ([`TlsMaterial::downstream_transport_socket`]). Talk to it with
    /// [`Gateway::tls_request`]; the plain [`Gateway::request`] no longer works.
    pub fn tls_listener(mut self, tls: &TlsMaterial, mode: ClientCerts) -> Self {
        let socket = tls.downstream_transport_socket(mode);
        self.edits.push(Box::new(move |b| {
            bootstrap::set_listener_transport_socket(b, &socket)
        }));
        self
    }

    /// Puts Envoy's geoip filter (and, unless [`GeoSetup::without_strip`], the
    /// header_mutation filter that removes client-sent `x-geo-*` headers before it) in
    /// front of the mfa-gate filter: strip, geoip, wasm, router.
    pub fn geoip(mut self, setup: &GeoSetup) -> Self {
        let filters = setup.http_filters();
        self.edits.push(Box::new(move |b| {
            // The test's setup replaces the bootstrap's own (envoy/envoy.yaml ships one).
            bootstrap::remove_geo_filters(b);
            bootstrap::insert_http_filters_before_wasm(b, filters)
        }));
        self
    }

    /// Puts these HTTP filters (YAML, e.g. [`crate::strip_geo_headers_filter`]) in front of
    /// the mfa-gate filter, in order, after any put there before.
    pub fn http_filters_before_wasm(mut self, filters: Vec<serde_yaml::Value>) -> Self {
        self.edits.push(Box::new(move |b| {
            bootstrap::insert_http_filters_before_wasm(b, filters)
        }));
        self
    }

    /// Adds a JSON access log with these fields (name, command operator such as
    /// `%DOWNSTREAM_PEER_URI_SAN%` or `%CEL(connection.mtls)%`); read it with
    /// [`Gateway::access_log`].
    pub fn access_log_fields(mut self, fields: &[(&str, &str)]) -> Self {
        self.access_log.extend(
            fields
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string())),
        );
        self
    }

    /// Starts the demo IdP and app (`mfa-gate demo` on free ports) and Envoy; waits for
    /// Envoy's `/ready` and for the filter to be configured on every worker. On failure,
    /// panics with the tail of Envoy's log.
    pub fn start(self) -> Gateway {
        let scratch = Scratch::new(
            &self
                .bootstrap_file
                .rsplit('/')
                .next()
                .unwrap_or("envoy")
                .replace(".yaml", ""),
        );
        let (listener, admin, idp, demo_app) = (free_port(), free_port(), free_port(), free_port());
        // The demo IdP takes the credentials envoy/envoy.yaml gives the filter (its poll and
        // the Okta-shaped session API); a test's own arguments come after and win.
        let defaults = DEMO_CREDENTIALS.iter().map(|a| (*a).to_string());
        let demo_args: Vec<String> = defaults
            .chain(self.demo_args.iter().cloned())
            .map(|a| {
                a.replace("{listener}", &listener.to_string())
                    .replace("{idp}", &idp.to_string())
            })
            .collect();
        let (demo, demo_printed) = start_demo(listener, idp, demo_app, &demo_args, &scratch);
        let echo = self.echo.then(EchoUpstream::start);
        let app_cluster = echo.as_ref().map_or(demo_app, EchoUpstream::port);
        let ports = Ports {
            listener,
            admin,
            idp,
            app: demo_app,
            idp_cluster: self.idp_cluster_port.unwrap_or(idp),
            app_cluster,
        };

        let mut yaml = bootstrap::load(&repo_root().join(&self.bootstrap_file));
        let wasm = self.wasm.clone().unwrap_or_else(release_wasm);
        bootstrap::rewrite(&mut yaml, &ports, &wasm);
        for edit in self.edits {
            edit(&mut yaml);
        }
        let access_log_path = scratch.path().join(ACCESS_LOG);
        if !self.access_log.is_empty() {
            bootstrap::add_json_access_log(&mut yaml, &access_log_path, &self.access_log);
        }
        // A listener moved out to a file (LDS) is taken to run the filter.
        let static_listener =
            (yaml["static_resources"]["listeners"].as_sequence()).is_some_and(|l| !l.is_empty());
        let has_wasm = !static_listener || bootstrap::wasm_filters(&mut yaml).next().is_some();
        let config_path = scratch.write(
            "envoy.yaml",
            serde_yaml::to_string(&yaml).expect("bootstrap YAML"),
        );

        let log_path = scratch.path().join("envoy.log");
        let log = std::fs::File::create(&log_path).expect("envoy log file");
        let envoy = Running::spawn(
            Command::new(envoy_binary())
                .arg("-c")
                .arg(&config_path)
                .args(["--concurrency", &self.concurrency.to_string()])
                // Tests run side by side: no shared memory for hot restart.
                .arg("--disable-hot-restart")
                .args(["--log-level", "info", "--component-log-level", "wasm:info"])
                .args(&self.extra_args)
                .envs(self.envoy_env.iter().map(|(k, v)| (k, v)))
                .current_dir(scratch.path())
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log file"))
                .stderr(log),
            "Envoy",
        );
        let mut gateway = Gateway {
            port: listener,
            admin_port: admin,
            idp_port: idp,
            app_port: app_cluster,
            concurrency: self.concurrency,
            demo_printed,
            log_path,
            access_log_path,
            config_path,
            envoy,
            demo: Some(demo),
            echo,
            scratch,
        };
        gateway.wait_until_ready(self.configured_marker.filter(|_| has_wasm).as_deref());
        gateway
    }
}

/// A running Envoy with the demo beside it. Dropping it stops Envoy, the demo and the echo
/// upstream (also when the test panics; the scratch directory with the logs is then kept).
pub struct Gateway {
    /// The listener.
    pub port: u16,
    /// Envoy's admin interface (`/ready`, `/stats`).
    pub admin_port: u16,
    /// The demo IdP (`/token/<user>`, `/.well-known/jwks.json`, `/authorize`).
    pub idp_port: u16,
    /// The upstream the `demo_app` cluster points at (the demo app, or the echo upstream).
    pub app_port: u16,
    /// Envoy's worker threads.
    pub concurrency: u32,
    demo_printed: serde_json::Value,
    log_path: PathBuf,
    access_log_path: PathBuf,
    config_path: PathBuf,
    // Declaration order is drop order: Envoy first, then its upstreams, then the files.
    envoy: Running,
    demo: Option<Running>,
    echo: Option<EchoUpstream>,
    scratch: Scratch,
}

impl Gateway {
    fn wait_until_ready(&mut self, configured_marker: Option<&str>) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.envoy.exited() {
                panic!(
                    "Envoy exited ({status}) before it was ready; config {}\n{}",
                    self.config_path.display(),
                    self.log_tail()
                );
            }
            let ready = std::net::TcpStream::connect(("127.0.0.1", self.admin_port)).is_ok()
                && http::get(self.admin_port, "/ready").status == 200;
            let configured = configured_marker
                .is_none_or(|marker| self.configured_workers(marker) >= self.concurrency as usize);
            if ready && configured {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "Envoy not ready after {START_TIMEOUT:?} (/ready {}, workers configured {}/{}); config {}\n{}",
                if ready { "LIVE" } else { "not LIVE" },
                configured_marker.map_or(0, |m| self.configured_workers(m)),
                self.concurrency,
                self.config_path.display(),
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Worker threads (not the main thread) whose wasm VM logged `marker`.
    fn configured_workers(&self, marker: &str) -> usize {
        let log = self.envoy_log();
        let main_thread = log.lines().next().and_then(thread_id);
        let workers: BTreeSet<&str> = log
            .lines()
            .filter(|l| l.contains("wasm log") && l.contains(marker))
            .filter_map(thread_id)
            .filter(|t| Some(*t) != main_thread)
            .collect();
        workers.len()
    }

    /// The JSON `mfa-gate demo --print-json` printed: `cases` (method, path, headers with a
    /// concrete token, curl line, expect), `ports`, `issuer`, `audience`.
    pub fn demo_printed(&self) -> &serde_json::Value {
        &self.demo_printed
    }

    /// Stops the demo IdP and app (e.g. the transmitter going away); Envoy keeps running.
    pub fn stop_demo(&mut self) {
        self.demo = None;
    }

    /// The echo upstream, when the builder asked for one.
    pub fn echo(&self) -> Option<&EchoUpstream> {
        self.echo.as_ref()
    }

    /// The bootstrap Envoy runs (rewritten).
    pub fn config_path(&self) -> &std::path::Path {
        &self.config_path
    }

    /// The test's scratch directory (bootstrap, logs).
    pub fn scratch(&self) -> &Scratch {
        &self.scratch
    }

    /// A fresh token for a demo user ("push", "number-match", "otp", "passkey").
    pub fn token(&self, user: &str) -> String {
        let answer = http::get(self.idp_port, &format!("/token/{user}"));
        assert_eq!(
            answer.status,
            200,
            "demo IdP /token/{user}: {}",
            answer.text()
        );
        answer.text().trim().to_string()
    }

    /// A GET through the gateway.
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        self.request("GET", path, headers, &[])
    }

    /// A request through the gateway (`host: 127.0.0.1:<port>` unless given, `connection:
    /// close`, `content-length` when there is a body).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Answer {
        http::exchange(
            self.port,
            &http::request_bytes(self.port, method, path, headers, body),
        )
    }

    /// Sends these bytes as-is on a new connection and reads one answer (status 0 when
    /// Envoy closes without one).
    pub fn raw(&self, bytes: &[u8]) -> Answer {
        http::exchange(self.port, bytes)
    }

    /// A request through the gateway's TLS listener ([`GatewayBuilder::tls_listener`]) with
    /// `client` (which presents its client certificate or none); `Err` when the handshake
    /// fails or Envoy closes the connection without an answer.
    pub fn tls_request(
        &self,
        client: &TlsClient,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Answer, TlsFailure> {
        client.request(self.port, method, path, headers, body)
    }

    /// A GET through the TLS listener.
    pub fn tls_get(
        &self,
        client: &TlsClient,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Answer, TlsFailure> {
        self.tls_request(client, "GET", path, headers, &[])
    }

    /// The JSON access log's entries so far ([`GatewayBuilder::access_log_fields`]), one per
    /// finished request or refused connection. Envoy writes it asynchronously: wait with
    /// [`Gateway::wait_until`] for the count you expect.
    pub fn access_log(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(&self.access_log_path).unwrap_or_default();
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("access log line is not JSON ({e}): {l}"))
            })
            .collect()
    }

    /// Counters and gauges from `/stats?format=json`.
    pub fn stats(&self) -> BTreeMap<String, u64> {
        let answer = http::get(self.admin_port, "/stats?format=json");
        assert_eq!(answer.status, 200, "admin /stats: {}", answer.text());
        let doc = answer.json();
        doc["stats"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| {
                let name = s["name"].as_str()?;
                let value = s["value"]
                    .as_u64()
                    .or_else(|| s["value"].as_i64().map(|_| 0))?;
                Some((name.to_string(), value))
            })
            .collect()
    }

    /// A GET on Envoy's admin interface (e.g. `/stats/prometheus`).
    pub fn admin_get(&self, path: &str) -> Answer {
        http::get(self.admin_port, path)
    }

    /// One counter or gauge (0 when absent).
    pub fn counter(&self, name: &str) -> u64 {
        self.stats().get(name).copied().unwrap_or(0)
    }

    /// Polls until `condition` holds (10 s), else panics with `what` and the log tail.
    pub fn wait_until(&self, what: &str, mut condition: impl FnMut(&Gateway) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !condition(self) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Envoy's log so far (wasm at info at least).
    pub fn envoy_log(&self) -> String {
        std::fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Every decision record the filter logged so far (`... decision {json}`), in order.
    pub fn decision_records(&self) -> Vec<serde_json::Value> {
        self.envoy_log()
            .lines()
            .filter_map(|l| l.split_once("] decision ").map(|(_, json)| json))
            .filter_map(|json| serde_json::from_str(json).ok())
            .collect()
    }

    /// The last lines of Envoy's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = self.envoy_log();
        let lines: Vec<&str> = log.lines().collect();
        let start = lines.len().saturating_sub(LOG_TAIL_LINES);
        format!(
            "--- last {} lines of {} ---\n{}",
            lines.len() - start,
            self.log_path.display(),
            lines[start..].join("\n")
        )
    }

    /// Panics (with the log tail) if any wasm VM failed, was refused or was killed, by
    /// Envoy's log and its wasm stats.
    pub fn assert_no_wasm_failure(&self) {
        let log = self.envoy_log();
        let failures: Vec<&str> = log
            .lines()
            .filter(|l| WASM_FAILURE_MARKERS.iter().any(|m| l.contains(m)))
            .collect();
        assert!(
            failures.is_empty(),
            "wasm VM failure in Envoy's log:\n{}\n{}",
            failures.join("\n"),
            self.log_tail()
        );
        let failed_stats: Vec<(String, u64)> = self
            .stats()
            .into_iter()
            .filter(|(name, value)| {
                *value > 0
                    && name.starts_with("wasm.")
                    && (name.ends_with(".vm_reload")
                        || name.ends_with("_failure")
                        || name.ends_with(".failed"))
            })
            .collect();
        assert!(
            failed_stats.is_empty(),
            "wasm VM failure in Envoy's stats: {failed_stats:?}\n{}",
            self.log_tail()
        );
    }
}

/// The thread id in an Envoy log line `[date time][thread][level][logger] ...`.
fn thread_id(line: &str) -> Option<&str> {
    let rest = line.strip_prefix('[')?;
    let (_, rest) = rest.split_once("][")?;
    rest.split_once(']').map(|(thread, _)| thread)
}
