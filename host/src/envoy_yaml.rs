//! Reads the subset of an Envoy bootstrap `envoy.yaml` that `replay` uses.
//!
//! Supported: `static_resources.listeners[]` (socket address, one HTTP connection manager with a
//! static `route_config`, the `envoy.filters.http.wasm` and `envoy.filters.http.router` HTTP
//! filters) and `static_resources.clusters[]` (STATIC / STRICT_DNS / LOGICAL_DNS endpoints).
//! Everything else in the file is named in [`EnvoyConfig::warnings`], keyed by its YAML path —
//! never silently ignored. Relative `code.local.filename` paths resolve against the current
//! directory (as Envoy does).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde_yaml::{Mapping, Value};

use crate::types::FailurePolicy;

const WASM_FILTER: &str = "envoy.filters.http.wasm";
const ROUTER_FILTER: &str = "envoy.filters.http.router";
const HCM_FILTER: &str = "envoy.filters.network.http_connection_manager";
const WASM_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
const TYPED_STRUCT_TYPES: &[&str] = &[
    "type.googleapis.com/udpa.type.v1.TypedStruct",
    "type.googleapis.com/xds.type.v3.TypedStruct",
];
const STRING_VALUE: &str = "type.googleapis.com/google.protobuf.StringValue";
const BYTES_VALUE: &str = "type.googleapis.com/google.protobuf.BytesValue";

/// A parse error: the YAML path and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    /// e.g. `static_resources.listeners[0].address.socket_address.port_value`.
    pub path: String,
    /// What is wrong there.
    pub message: String,
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for YamlError {}

/// Something in the file that is not supported and has no effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// YAML path of the unsupported item.
    pub path: String,
    /// What happens to it.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// The parts of the bootstrap that are used.
#[derive(Debug, Clone, Default)]
pub struct EnvoyConfig {
    /// `static_resources.listeners`, in order.
    pub listeners: Vec<ListenerConfig>,
    /// `static_resources.clusters`, in order.
    pub clusters: Vec<ClusterConfig>,
    /// Unsupported content, by YAML path.
    pub warnings: Vec<Warning>,
}

/// One listener with its HTTP connection manager.
#[derive(Debug, Clone, Default)]
pub struct ListenerConfig {
    /// Listener `name`.
    pub name: String,
    /// `ip:port` (IPv6 in brackets).
    pub address: String,
    /// The static `route_config.virtual_hosts`.
    pub virtual_hosts: Vec<VirtualHost>,
    /// The wasm HTTP filter, if the chain has one before the router.
    pub wasm: Option<WasmFilterConfig>,
}

/// A virtual host of the route configuration.
#[derive(Debug, Clone, Default)]
pub struct VirtualHost {
    /// Virtual host `name`.
    pub name: String,
    /// Host names it serves (`*`, `*.suffix`, `prefix.*` or exact).
    pub domains: Vec<String>,
    /// Routes, first match wins.
    pub routes: Vec<RouteRule>,
}

/// How a route matches the request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathMatch {
    /// `match.prefix`: the `:path` starts with it.
    Prefix(String),
    /// `match.path`: the `:path` without its query string equals it.
    Exact(String),
}

/// One route: a match and the cluster it forwards to.
#[derive(Debug, Clone)]
pub struct RouteRule {
    /// `name` of the route (`xds.route_name`), or empty.
    pub name: String,
    /// `match.prefix` or `match.path`.
    pub matcher: PathMatch,
    /// `route.cluster`.
    pub cluster: String,
    /// `route.timeout` (Envoy default 15 s; `0s` disables it → `None`).
    pub timeout: Option<Duration>,
}

/// The `envoy.filters.http.wasm` filter's `config` (a PluginConfig).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WasmFilterConfig {
    /// `config.name` (property `plugin_name`).
    pub name: String,
    /// `config.root_id`.
    pub root_id: String,
    /// `vm_config.vm_id` (shared-data namespace).
    pub vm_id: String,
    /// `vm_config.code.local.filename`, as written (relative = to the current directory).
    pub filename: PathBuf,
    /// `config.configuration` bytes (StringValue / BytesValue value).
    pub configuration: Vec<u8>,
    /// `vm_config.configuration` bytes.
    pub vm_configuration: Vec<u8>,
    /// `failure_policy` (FAIL_RELOAD is treated as FAIL_CLOSED).
    pub failure_policy: FailurePolicy,
    /// `allow_on_headers_stop_iteration`.
    pub allow_on_headers_stop_iteration: bool,
    /// `vm_config.environment_variables`: `key_values`, then `host_env_keys` read from this process.
    pub environment: Vec<(String, String)>,
}

/// A static cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// Cluster `name`.
    pub name: String,
    /// `host:port` of each endpoint, in order.
    pub endpoints: Vec<String>,
}

impl EnvoyConfig {
    /// The cluster with this name.
    pub fn cluster(&self, name: &str) -> Option<&ClusterConfig> {
        self.clusters.iter().find(|c| c.name == name)
    }
}

impl ListenerConfig {
    /// Envoy's route selection: the virtual host for `authority` (exact, then `*.suffix`,
    /// `prefix.*`, `*`), then its first route that matches `path`.
    pub fn route(&self, authority: &str, path: &str) -> Option<&RouteRule> {
        let host = strip_port(authority).to_ascii_lowercase();
        let vhost = self
            .virtual_hosts
            .iter()
            .find(|v| v.domains.iter().any(|d| d.eq_ignore_ascii_case(&host)))
            .or_else(|| {
                self.virtual_hosts.iter().find(|v| {
                    v.domains.iter().any(|d| {
                        d.len() > 1
                            && d.starts_with('*')
                            && host.ends_with(&d[1..].to_ascii_lowercase())
                    })
                })
            })
            .or_else(|| {
                self.virtual_hosts.iter().find(|v| {
                    v.domains.iter().any(|d| {
                        d.len() > 1
                            && d.ends_with('*')
                            && host.starts_with(&d[..d.len() - 1].to_ascii_lowercase())
                    })
                })
            })
            .or_else(|| {
                self.virtual_hosts
                    .iter()
                    .find(|v| v.domains.iter().any(|d| d == "*"))
            })?;
        let without_query = path.split('?').next().unwrap_or(path);
        vhost.routes.iter().find(|r| match &r.matcher {
            PathMatch::Prefix(p) => path.starts_with(p.as_str()),
            PathMatch::Exact(p) => without_query == p,
        })
    }
}

fn strip_port(authority: &str) -> &str {
    if authority.starts_with('[') {
        return match authority.find(']') {
            Some(end) => &authority[..=end],
            None => authority,
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => authority,
    }
}

/// Parses the text of an `envoy.yaml`.
pub fn parse(text: &str) -> Result<EnvoyConfig, YamlError> {
    let root: Value = serde_yaml::from_str(text).map_err(|e| YamlError {
        path: "(file)".to_string(),
        message: format!("not valid YAML: {e}"),
    })?;
    let mut parser = Parser::default();
    let root_map = parser.mapping(&root, "(root)")?;
    parser.known_keys(root_map, "", &["static_resources"]);
    let resources = match root_map.get("static_resources") {
        Some(v) => parser.mapping(v, "static_resources")?,
        None => {
            return Err(err(
                "static_resources",
                "missing (only static config is supported)",
            ))
        }
    };
    parser.known_keys(resources, "static_resources", &["listeners", "clusters"]);
    let mut config = EnvoyConfig::default();
    if let Some(clusters) = resources.get("clusters") {
        for (i, cluster) in parser
            .sequence(clusters, "static_resources.clusters")?
            .iter()
            .enumerate()
        {
            let path = format!("static_resources.clusters[{i}]");
            let cluster = parser.cluster(cluster, &path)?;
            parser.cluster_names.push(cluster.name.clone());
            config.clusters.push(cluster);
        }
    }
    if let Some(listeners) = resources.get("listeners") {
        for (i, listener) in parser
            .sequence(listeners, "static_resources.listeners")?
            .iter()
            .enumerate()
        {
            let path = format!("static_resources.listeners[{i}]");
            config.listeners.push(parser.listener(listener, &path)?);
        }
    }
    if config.listeners.is_empty() {
        return Err(err("static_resources.listeners", "no listener"));
    }
    for i in 1..config.listeners.len() {
        parser.warn(
            &format!("static_resources.listeners[{i}]"),
            "only the first listener is served; ignored",
        );
    }
    config.warnings = parser.warnings;
    Ok(config)
}

/// Reads and parses an `envoy.yaml` file.
pub fn load(path: &std::path::Path) -> Result<EnvoyConfig, YamlError> {
    let text = std::fs::read_to_string(path).map_err(|e| YamlError {
        path: path.display().to_string(),
        message: format!("cannot read: {e}"),
    })?;
    parse(&text)
}

fn err(path: &str, message: &str) -> YamlError {
    YamlError {
        path: path.to_string(),
        message: message.to_string(),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

#[derive(Default)]
struct Parser {
    warnings: Vec<Warning>,
    cluster_names: Vec<String>,
}

impl Parser {
    fn warn(&mut self, path: &str, message: impl Into<String>) {
        self.warnings.push(Warning {
            path: path.to_string(),
            message: message.into(),
        });
    }

    /// Warns about every key of `map` not in `known`.
    fn known_keys(&mut self, map: &Mapping, path: &str, known: &[&str]) {
        for key in map.keys() {
            let name = match key.as_str() {
                Some(name) => name.to_string(),
                None => format!("{key:?}"),
            };
            if !known.contains(&name.as_str()) {
                self.warn(&join(path, &name), "not supported; ignored");
            }
        }
    }

    fn mapping<'a>(&self, value: &'a Value, path: &str) -> Result<&'a Mapping, YamlError> {
        value
            .as_mapping()
            .ok_or_else(|| err(path, "expected a mapping"))
    }

    fn sequence<'a>(&self, value: &'a Value, path: &str) -> Result<&'a Vec<Value>, YamlError> {
        value
            .as_sequence()
            .ok_or_else(|| err(path, "expected a list"))
    }

    fn string(&self, map: &Mapping, key: &str, path: &str) -> Result<Option<String>, YamlError> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(_) => Err(err(&join(path, key), "expected a string")),
        }
    }

    fn required_string(&self, map: &Mapping, key: &str, path: &str) -> Result<String, YamlError> {
        self.string(map, key, path)?
            .ok_or_else(|| err(&join(path, key), "missing"))
    }

    fn socket_address(&mut self, value: &Value, path: &str) -> Result<String, YamlError> {
        let address = self.mapping(value, path)?;
        self.known_keys(address, path, &["socket_address"]);
        let sa_path = join(path, "socket_address");
        let sa = match address.get("socket_address") {
            Some(v) => self.mapping(v, &sa_path)?,
            None => return Err(err(&sa_path, "missing (only socket_address is supported)")),
        };
        self.known_keys(sa, &sa_path, &["address", "port_value", "protocol"]);
        if let Some(protocol) = self.string(sa, "protocol", &sa_path)? {
            if protocol != "TCP" {
                return Err(err(
                    &join(&sa_path, "protocol"),
                    &format!("{protocol:?} is not supported (TCP only)"),
                ));
            }
        }
        let host = self.required_string(sa, "address", &sa_path)?;
        let port_path = join(&sa_path, "port_value");
        let port = match sa.get("port_value") {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.parse::<u64>().ok(),
            None => return Err(err(&port_path, "missing")),
            Some(_) => None,
        }
        .filter(|p| *p <= u64::from(u16::MAX))
        .ok_or_else(|| err(&port_path, "expected a port number 0..65535"))?;
        if host.contains(':') && !host.starts_with('[') {
            Ok(format!("[{host}]:{port}"))
        } else {
            Ok(format!("{host}:{port}"))
        }
    }

    fn listener(&mut self, value: &Value, path: &str) -> Result<ListenerConfig, YamlError> {
        let map = self.mapping(value, path)?;
        self.known_keys(map, path, &["name", "address", "filter_chains"]);
        let mut listener = ListenerConfig {
            name: self.string(map, "name", path)?.unwrap_or_default(),
            ..Default::default()
        };
        listener.address = match map.get("address") {
            Some(v) => self.socket_address(v, &join(path, "address"))?,
            None => return Err(err(&join(path, "address"), "missing")),
        };
        let chains_path = join(path, "filter_chains");
        let chains = match map.get("filter_chains") {
            Some(v) => self.sequence(v, &chains_path)?,
            None => return Err(err(&chains_path, "missing")),
        };
        let Some(chain) = chains.first() else {
            return Err(err(&chains_path, "empty"));
        };
        for i in 1..chains.len() {
            self.warn(
                &format!("{chains_path}[{i}]"),
                "only the first filter chain is used; ignored",
            );
        }
        let chain_path = format!("{chains_path}[0]");
        let chain = self.mapping(chain, &chain_path)?;
        self.known_keys(chain, &chain_path, &["filters"]);
        let filters_path = join(&chain_path, "filters");
        let filters = match chain.get("filters") {
            Some(v) => self.sequence(v, &filters_path)?,
            None => return Err(err(&filters_path, "missing")),
        };
        let mut found_hcm = false;
        for (i, filter) in filters.iter().enumerate() {
            let fpath = format!("{filters_path}[{i}]");
            let fmap = self.mapping(filter, &fpath)?;
            let name = self.string(fmap, "name", &fpath)?.unwrap_or_default();
            if name != HCM_FILTER || found_hcm {
                self.warn(
                    &fpath,
                    format!("network filter {name:?} is not supported; not run"),
                );
                continue;
            }
            found_hcm = true;
            self.known_keys(fmap, &fpath, &["name", "typed_config"]);
            let tc_path = join(&fpath, "typed_config");
            let tc = match fmap.get("typed_config") {
                Some(v) => self.mapping(v, &tc_path)?,
                None => return Err(err(&tc_path, "missing")),
            };
            self.hcm(tc, &tc_path, &mut listener)?;
        }
        if !found_hcm {
            return Err(err(
                &filters_path,
                &format!("no {HCM_FILTER} (only HTTP listeners are supported)"),
            ));
        }
        Ok(listener)
    }

    fn hcm(
        &mut self,
        tc: &Mapping,
        path: &str,
        listener: &mut ListenerConfig,
    ) -> Result<(), YamlError> {
        self.known_keys(
            tc,
            path,
            &[
                "@type",
                "stat_prefix",
                "codec_type",
                "route_config",
                "http_filters",
            ],
        );
        if let Some(codec) = self.string(tc, "codec_type", path)? {
            if codec != "AUTO" && codec != "HTTP1" {
                self.warn(
                    &join(path, "codec_type"),
                    format!("{codec:?} not supported; HTTP/1.1 is served"),
                );
            }
        }
        let rc_path = join(path, "route_config");
        let rc = match tc.get("route_config") {
            Some(v) => self.mapping(v, &rc_path)?,
            None => return Err(err(&rc_path, "missing (rds is not supported)")),
        };
        self.known_keys(rc, &rc_path, &["name", "virtual_hosts"]);
        let vh_path = join(&rc_path, "virtual_hosts");
        if let Some(vhosts) = rc.get("virtual_hosts") {
            for (i, vh) in self.sequence(vhosts, &vh_path)?.iter().enumerate() {
                let vpath = format!("{vh_path}[{i}]");
                listener.virtual_hosts.push(self.virtual_host(vh, &vpath)?);
            }
        }
        let hf_path = join(path, "http_filters");
        let filters = match tc.get("http_filters") {
            Some(v) => self.sequence(v, &hf_path)?,
            None => return Err(err(&hf_path, "missing")),
        };
        let mut router_seen = false;
        for (i, filter) in filters.iter().enumerate() {
            let fpath = format!("{hf_path}[{i}]");
            let fmap = self.mapping(filter, &fpath)?;
            let name = self.string(fmap, "name", &fpath)?.unwrap_or_default();
            if router_seen {
                self.warn(
                    &fpath,
                    format!("filter {name:?} after the router never runs"),
                );
                continue;
            }
            match name.as_str() {
                ROUTER_FILTER => {
                    self.known_keys(fmap, &fpath, &["name", "typed_config"]);
                    router_seen = true;
                }
                WASM_FILTER if listener.wasm.is_none() => {
                    self.known_keys(fmap, &fpath, &["name", "typed_config"]);
                    let tc_path = join(&fpath, "typed_config");
                    let tc = match fmap.get("typed_config") {
                        Some(v) => self.mapping(v, &tc_path)?,
                        None => return Err(err(&tc_path, "missing")),
                    };
                    listener.wasm = Some(self.wasm_filter(tc, &tc_path)?);
                }
                WASM_FILTER => {
                    self.warn(&fpath, "only one wasm filter is supported; not run");
                }
                other => {
                    self.warn(
                        &fpath,
                        format!("HTTP filter {other:?} is not supported; not run"),
                    );
                }
            }
        }
        if !router_seen {
            return Err(err(&hf_path, &format!("no {ROUTER_FILTER}")));
        }
        Ok(())
    }

    fn virtual_host(&mut self, value: &Value, path: &str) -> Result<VirtualHost, YamlError> {
        let map = self.mapping(value, path)?;
        self.known_keys(map, path, &["name", "domains", "routes"]);
        let mut vhost = VirtualHost {
            name: self.string(map, "name", path)?.unwrap_or_default(),
            ..Default::default()
        };
        let dpath = join(path, "domains");
        match map.get("domains") {
            Some(v) => {
                for (i, d) in self.sequence(v, &dpath)?.iter().enumerate() {
                    let d = d
                        .as_str()
                        .ok_or_else(|| err(&format!("{dpath}[{i}]"), "expected a string"))?;
                    vhost.domains.push(d.to_string());
                }
            }
            None => return Err(err(&dpath, "missing")),
        }
        let rpath = join(path, "routes");
        if let Some(routes) = map.get("routes") {
            for (i, route) in self.sequence(routes, &rpath)?.iter().enumerate() {
                let p = format!("{rpath}[{i}]");
                if let Some(rule) = self.route(route, &p)? {
                    vhost.routes.push(rule);
                }
            }
        }
        Ok(vhost)
    }

    fn route(&mut self, value: &Value, path: &str) -> Result<Option<RouteRule>, YamlError> {
        let map = self.mapping(value, path)?;
        self.known_keys(map, path, &["name", "match", "route"]);
        let name = self.string(map, "name", path)?.unwrap_or_default();
        let mpath = join(path, "match");
        let m = match map.get("match") {
            Some(v) => self.mapping(v, &mpath)?,
            None => return Err(err(&mpath, "missing")),
        };
        self.known_keys(m, &mpath, &["prefix", "path"]);
        let matcher = if let Some(prefix) = self.string(m, "prefix", &mpath)? {
            PathMatch::Prefix(prefix)
        } else if let Some(exact) = self.string(m, "path", &mpath)? {
            PathMatch::Exact(exact)
        } else {
            self.warn(&mpath, "no prefix/path match; route skipped");
            return Ok(None);
        };
        let route_path = join(path, "route");
        let Some(route_value) = map.get("route") else {
            self.warn(
                path,
                "no route action (only route.cluster is supported); route skipped",
            );
            return Ok(None);
        };
        let route = self.mapping(route_value, &route_path)?;
        self.known_keys(route, &route_path, &["cluster", "timeout"]);
        let cluster = self.required_string(route, "cluster", &route_path)?;
        if !self.cluster_names.contains(&cluster) {
            return Err(err(
                &join(&route_path, "cluster"),
                &format!("unknown cluster {cluster:?}"),
            ));
        }
        let timeout = match self.string(route, "timeout", &route_path)? {
            None => Some(Duration::from_secs(15)),
            Some(text) => {
                let d = parse_duration(&text)
                    .ok_or_else(|| err(&join(&route_path, "timeout"), "expected e.g. \"15s\""))?;
                (!d.is_zero()).then_some(d)
            }
        };
        Ok(Some(RouteRule {
            name,
            matcher,
            cluster,
            timeout,
        }))
    }

    /// Unwraps `google.protobuf.Any`-style values: TypedStruct → its `value`.
    fn unwrap_typed_struct<'a>(
        &self,
        tc: &'a Mapping,
        path: &str,
    ) -> Result<(&'a Mapping, String), YamlError> {
        let type_url = self.string(tc, "@type", path)?.unwrap_or_default();
        if TYPED_STRUCT_TYPES.contains(&type_url.as_str()) {
            let inner_type = self.string(tc, "type_url", path)?.unwrap_or_default();
            if inner_type != WASM_TYPE {
                return Err(err(
                    &join(path, "type_url"),
                    &format!("expected {WASM_TYPE:?}, got {inner_type:?}"),
                ));
            }
            let vpath = join(path, "value");
            let value = match tc.get("value") {
                Some(v) => self.mapping(v, &vpath)?,
                None => return Err(err(&vpath, "missing")),
            };
            return Ok((value, vpath));
        }
        if type_url != WASM_TYPE {
            return Err(err(
                &join(path, "@type"),
                &format!("expected {WASM_TYPE:?} or a TypedStruct, got {type_url:?}"),
            ));
        }
        Ok((tc, path.to_string()))
    }

    fn wasm_filter(&mut self, tc: &Mapping, path: &str) -> Result<WasmFilterConfig, YamlError> {
        let (body, body_path) = self.unwrap_typed_struct(tc, path)?;
        let known: &[&str] = if body_path == path {
            &["@type", "config"]
        } else {
            &["config"]
        };
        self.known_keys(body, &body_path, known);
        if body_path != path {
            self.known_keys(tc, path, &["@type", "type_url", "value"]);
        }
        let cpath = join(&body_path, "config");
        let config = match body.get("config") {
            Some(v) => self.mapping(v, &cpath)?,
            None => return Err(err(&cpath, "missing")),
        };
        self.known_keys(
            config,
            &cpath,
            &[
                "name",
                "root_id",
                "configuration",
                "failure_policy",
                "fail_open",
                "vm_config",
                "allow_on_headers_stop_iteration",
            ],
        );
        let failure_policy = match self.string(config, "failure_policy", &cpath)?.as_deref() {
            None | Some("UNSPECIFIED") | Some("FAIL_CLOSED") => {
                match config.get("fail_open").and_then(Value::as_bool) {
                    Some(true) => FailurePolicy::FailOpen,
                    _ => FailurePolicy::FailClosed,
                }
            }
            Some("FAIL_OPEN") => FailurePolicy::FailOpen,
            Some("FAIL_RELOAD") => {
                self.warn(
                    &join(&cpath, "failure_policy"),
                    "FAIL_RELOAD is not supported; treated as FAIL_CLOSED",
                );
                FailurePolicy::FailClosed
            }
            Some(other) => {
                return Err(err(
                    &join(&cpath, "failure_policy"),
                    &format!(
                        "unknown value {other:?} (expected FAIL_CLOSED, FAIL_OPEN or FAIL_RELOAD)"
                    ),
                ))
            }
        };
        let configuration =
            self.any_bytes(config.get("configuration"), &join(&cpath, "configuration"))?;
        let vpath = join(&cpath, "vm_config");
        let vm = match config.get("vm_config") {
            Some(v) => self.mapping(v, &vpath)?,
            None => return Err(err(&vpath, "missing")),
        };
        self.known_keys(
            vm,
            &vpath,
            &[
                "vm_id",
                "runtime",
                "code",
                "configuration",
                "environment_variables",
                "allow_precompiled",
            ],
        );
        let vm_configuration =
            self.any_bytes(vm.get("configuration"), &join(&vpath, "configuration"))?;
        let code_path = join(&vpath, "code");
        let code = match vm.get("code") {
            Some(v) => self.mapping(v, &code_path)?,
            None => return Err(err(&code_path, "missing")),
        };
        let local_path = join(&code_path, "local");
        let local = match code.get("local") {
            Some(v) => self.mapping(v, &local_path)?,
            None => {
                return Err(err(
                    &local_path,
                    "missing (only code.local.filename is supported)",
                ))
            }
        };
        self.known_keys(code, &code_path, &["local"]);
        self.known_keys(local, &local_path, &["filename"]);
        let filename = self.required_string(local, "filename", &local_path)?;
        let mut environment = Vec::new();
        let env_path = join(&vpath, "environment_variables");
        if let Some(env) = vm.get("environment_variables") {
            let env = self.mapping(env, &env_path)?;
            self.known_keys(env, &env_path, &["key_values", "host_env_keys"]);
            if let Some(kv) = env.get("key_values") {
                let kv_path = join(&env_path, "key_values");
                for (k, v) in self.mapping(kv, &kv_path)? {
                    let (Some(k), Some(v)) = (k.as_str(), v.as_str()) else {
                        return Err(err(&kv_path, "expected string keys and values"));
                    };
                    environment.push((k.to_string(), v.to_string()));
                }
            }
            if let Some(keys) = env.get("host_env_keys") {
                let keys_path = join(&env_path, "host_env_keys");
                for key in self.sequence(keys, &keys_path)? {
                    let key = key
                        .as_str()
                        .ok_or_else(|| err(&keys_path, "expected strings"))?;
                    if let Ok(value) = std::env::var(key) {
                        environment.push((key.to_string(), value));
                    }
                }
            }
        }
        Ok(WasmFilterConfig {
            name: self.string(config, "name", &cpath)?.unwrap_or_default(),
            root_id: self.string(config, "root_id", &cpath)?.unwrap_or_default(),
            vm_id: self.string(vm, "vm_id", &vpath)?.unwrap_or_default(),
            filename: PathBuf::from(filename),
            configuration,
            vm_configuration,
            failure_policy,
            environment,
            allow_on_headers_stop_iteration: config
                .get("allow_on_headers_stop_iteration")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }

    /// A `google.protobuf.Any` holding a StringValue or BytesValue → its raw bytes.
    fn any_bytes(&mut self, value: Option<&Value>, path: &str) -> Result<Vec<u8>, YamlError> {
        let Some(value) = value else {
            return Ok(Vec::new());
        };
        let map = self.mapping(value, path)?;
        self.known_keys(map, path, &["@type", "value"]);
        let type_url = self.string(map, "@type", path)?.unwrap_or_default();
        let text = self.string(map, "value", path)?.unwrap_or_default();
        match type_url.as_str() {
            STRING_VALUE => Ok(text.into_bytes()),
            BYTES_VALUE => decode_base64(&text)
                .ok_or_else(|| err(&join(path, "value"), "BytesValue is not valid base64")),
            other => Err(err(
                &join(path, "@type"),
                &format!(
                    "{other:?} is not supported: Envoy passes other types as protobuf bytes; use {STRING_VALUE}"
                ),
            )),
        }
    }

    fn cluster(&mut self, value: &Value, path: &str) -> Result<ClusterConfig, YamlError> {
        let map = self.mapping(value, path)?;
        self.known_keys(
            map,
            path,
            &[
                "name",
                "type",
                "connect_timeout",
                "lb_policy",
                "load_assignment",
            ],
        );
        let name = self.required_string(map, "name", path)?;
        let kind = self
            .string(map, "type", path)?
            .unwrap_or_else(|| "STATIC".to_string());
        if !matches!(kind.as_str(), "STATIC" | "STRICT_DNS" | "LOGICAL_DNS") {
            return Err(err(
                &join(path, "type"),
                &format!("{kind:?} is not supported (STATIC, STRICT_DNS, LOGICAL_DNS)"),
            ));
        }
        if let Some(lb) = self.string(map, "lb_policy", path)? {
            if lb != "ROUND_ROBIN" {
                self.warn(
                    &join(path, "lb_policy"),
                    format!("{lb:?} not supported; the first endpoint is used"),
                );
            }
        }
        let la_path = join(path, "load_assignment");
        let la = match map.get("load_assignment") {
            Some(v) => self.mapping(v, &la_path)?,
            None => return Err(err(&la_path, "missing")),
        };
        self.known_keys(la, &la_path, &["cluster_name", "endpoints"]);
        let mut endpoints = Vec::new();
        let eps_path = join(&la_path, "endpoints");
        if let Some(eps) = la.get("endpoints") {
            for (i, locality) in self.sequence(eps, &eps_path)?.iter().enumerate() {
                let lpath = format!("{eps_path}[{i}]");
                let locality = self.mapping(locality, &lpath)?;
                self.known_keys(locality, &lpath, &["lb_endpoints"]);
                let lbe_path = join(&lpath, "lb_endpoints");
                let Some(lbes) = locality.get("lb_endpoints") else {
                    continue;
                };
                for (j, lbe) in self.sequence(lbes, &lbe_path)?.iter().enumerate() {
                    let epath = format!("{lbe_path}[{j}]");
                    let lbe = self.mapping(lbe, &epath)?;
                    self.known_keys(lbe, &epath, &["endpoint"]);
                    let endpoint_path = join(&epath, "endpoint");
                    let endpoint = match lbe.get("endpoint") {
                        Some(v) => self.mapping(v, &endpoint_path)?,
                        None => return Err(err(&endpoint_path, "missing")),
                    };
                    self.known_keys(endpoint, &endpoint_path, &["address"]);
                    let address_path = join(&endpoint_path, "address");
                    match endpoint.get("address") {
                        Some(v) => endpoints.push(self.socket_address(v, &address_path)?),
                        None => return Err(err(&address_path, "missing")),
                    }
                }
            }
        }
        if endpoints.is_empty() {
            return Err(err(&eps_path, "no endpoint"));
        }
        if endpoints.len() > 1 {
            self.warn(&eps_path, "several endpoints: only the first is used");
        }
        Ok(ClusterConfig { name, endpoints })
    }
}

/// `"15s"`, `"0.25s"`, `"250ms"`.
fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Some(ms) = text.strip_suffix("ms") {
        return ms.trim().parse::<u64>().ok().map(Duration::from_millis);
    }
    let secs = text.strip_suffix('s')?.trim().parse::<f64>().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
    {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const BASE: &str = r#"
static_resources:
  listeners:
  - name: main
    address:
      socket_address: { address: 127.0.0.1, port_value: 10000 }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress
          route_config:
            name: local
            virtual_hosts:
            - name: app
              domains: ["*"]
              routes:
              - name: admin
                match: { prefix: "/admin" }
                route: { cluster: app, timeout: 2s }
              - match: { path: "/exact" }
                route: { cluster: idp }
              - match: { prefix: "/" }
                route: { cluster: app }
          http_filters:
          - name: envoy.filters.http.wasm
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: mfa_gate
                root_id: mfa_gate_root
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: '{"k":"v"}'
                failure_policy: FAIL_OPEN
                vm_config:
                  vm_id: vm1
                  runtime: envoy.wasm.runtime.v8
                  code: { local: { filename: target/x.wasm } }
                  environment_variables: { key_values: { A: "1" } }
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: app
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: app
      endpoints:
      - lb_endpoints:
        - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: 8080 } } }
  - name: idp
    type: STRICT_DNS
    load_assignment:
      cluster_name: idp
      endpoints:
      - lb_endpoints:
        - endpoint: { address: { socket_address: { address: localhost, port_value: 9090 } } }
"#;

    #[test]
    fn reads_listener_routes_wasm_filter_and_clusters() {
        let config = parse(BASE).unwrap();
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
        let listener = &config.listeners[0];
        assert_eq!(listener.address, "127.0.0.1:10000");
        let wasm = listener.wasm.as_ref().unwrap();
        assert_eq!(wasm.name, "mfa_gate");
        assert_eq!(wasm.root_id, "mfa_gate_root");
        assert_eq!(wasm.vm_id, "vm1");
        assert_eq!(wasm.filename, PathBuf::from("target/x.wasm"));
        assert_eq!(wasm.configuration, br#"{"k":"v"}"#);
        assert_eq!(wasm.failure_policy, FailurePolicy::FailOpen);
        assert_eq!(wasm.environment, vec![("A".to_string(), "1".to_string())]);
        assert_eq!(
            config.cluster("app").unwrap().endpoints,
            vec!["127.0.0.1:8080"]
        );
        assert_eq!(
            config.cluster("idp").unwrap().endpoints,
            vec!["localhost:9090"]
        );
    }

    #[test]
    fn routes_by_prefix_and_exact_path_in_order() {
        let config = parse(BASE).unwrap();
        let listener = &config.listeners[0];
        let admin = listener.route("example.com:10000", "/admin/users").unwrap();
        assert_eq!(
            (admin.name.as_str(), admin.cluster.as_str()),
            ("admin", "app")
        );
        assert_eq!(admin.timeout, Some(Duration::from_secs(2)));
        assert_eq!(listener.route("x", "/exact?q=1").unwrap().cluster, "idp");
        assert_eq!(listener.route("x", "/exactly").unwrap().cluster, "app");
    }

    #[test]
    fn typed_struct_wrapper_is_accepted() {
        let start = BASE
            .find("          - name: envoy.filters.http.wasm\n")
            .unwrap();
        let end = BASE
            .find("          - name: envoy.filters.http.router\n")
            .unwrap();
        let wrapped = r#"          - name: envoy.filters.http.wasm
            typed_config:
              "@type": type.googleapis.com/udpa.type.v1.TypedStruct
              type_url: type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              value:
                config:
                  root_id: wrapped_root
                  configuration:
                    "@type": type.googleapis.com/google.protobuf.StringValue
                    value: '{"w":1}'
                  vm_config:
                    code: { local: { filename: w.wasm } }
"#;
        let yaml = format!("{}{}{}", &BASE[..start], wrapped, &BASE[end..]);
        let config = parse(&yaml).unwrap();
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
        let wasm = config.listeners[0].wasm.as_ref().unwrap();
        assert_eq!(wasm.root_id, "wrapped_root");
        assert_eq!(wasm.configuration, br#"{"w":1}"#);
        assert_eq!(wasm.failure_policy, FailurePolicy::FailClosed);
    }

    #[test]
    fn unsupported_content_is_named_in_warnings() {
        let yaml = BASE
            .replace(
                "    filter_chains:\n",
                "    listener_filters: [{name: envoy.filters.listener.tls_inspector}]\n    filter_chains:\n",
            )
            .replace(
                "          - name: envoy.filters.http.router\n",
                "          - name: envoy.filters.http.cors\n          - name: envoy.filters.http.router\n",
            )
            .replace("failure_policy: FAIL_OPEN", "failure_policy: FAIL_RELOAD")
            .replace("static_resources:\n", "admin: {}\nstatic_resources:\n");
        let config = parse(&yaml).unwrap();
        let paths: Vec<String> = config.warnings.iter().map(|w| w.to_string()).collect();
        let has = |p: &str| paths.iter().any(|w| w.starts_with(p));
        assert!(has("admin: not supported"), "{paths:?}");
        assert!(
            has("static_resources.listeners[0].listener_filters:"),
            "{paths:?}"
        );
        assert!(
            has("static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[1]: HTTP filter \"envoy.filters.http.cors\""),
            "{paths:?}"
        );
        assert!(paths.iter().any(|w| w.contains("FAIL_RELOAD")), "{paths:?}");
        assert_eq!(
            config.listeners[0].wasm.as_ref().unwrap().failure_policy,
            FailurePolicy::FailClosed
        );
    }

    #[test]
    fn tls_transport_socket_is_a_warning() {
        let yaml = BASE.replace(
            "    - filters:\n",
            "    - transport_socket: {name: envoy.transport_sockets.tls}\n      filters:\n",
        );
        let config = parse(&yaml).unwrap();
        assert!(config
            .warnings
            .iter()
            .any(|w| w.path == "static_resources.listeners[0].filter_chains[0].transport_socket"));
    }

    #[test]
    fn errors_name_the_yaml_path() {
        let bad_port = BASE.replace("port_value: 10000", "port_value: 99999");
        let e = parse(&bad_port).unwrap_err();
        assert_eq!(
            e.path,
            "static_resources.listeners[0].address.socket_address.port_value"
        );

        let bad_cluster = BASE.replace("route: { cluster: idp }", "route: { cluster: nope }");
        let e = parse(&bad_cluster).unwrap_err();
        assert!(e.to_string().contains("unknown cluster \"nope\""), "{e}");

        let struct_config = BASE.replace("google.protobuf.StringValue", "google.protobuf.Struct");
        let e = parse(&struct_config).unwrap_err();
        assert!(e.path.ends_with("config.configuration.@type"), "{e}");

        let bad_policy = BASE.replace("FAIL_OPEN", "FAIL_SOMETIMES");
        let e = parse(&bad_policy).unwrap_err();
        assert!(e.path.ends_with("config.failure_policy"), "{e}");

        let e = parse("static_resources: [").unwrap_err();
        assert!(e.message.starts_with("not valid YAML"), "{e}");
    }

    #[test]
    fn config_without_wasm_filter_is_a_plain_proxy() {
        let yaml = BASE.replace(
            "name: envoy.filters.http.wasm",
            "name: envoy.filters.http.wasm_x",
        );
        let config = parse(&yaml).unwrap();
        assert!(config.listeners[0].wasm.is_none());
        assert!(!config.warnings.is_empty());
    }

    #[test]
    fn durations_and_base64() {
        assert_eq!(parse_duration("0.25s"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(decode_base64("aGk=").unwrap(), b"hi");
    }
}
