//! `mfa-gate-host replay` (see host/docs/replay.md).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use mfa_gate_host::envoy_yaml::{self, EnvoyConfig};
use mfa_gate_host::{
    replay, ClockMode, Cluster, Clusters, FailurePolicy, Host, HostError, HostOptions,
};

const USAGE: &str = "\
usage:
  mfa-gate-host replay [--wasm FILE | --config envoy.yaml] [--plugin-config JSON|@FILE]
                       [--cluster NAME=CANNED.json | NAME=http://HOST:PORT]... [--workers N]
                       [--start-unix-ms N] [--plugin-name S] [--root-id S] [--vm-id S]
                       [--failure-policy FAIL_CLOSED|FAIL_OPEN]
      Requests as JSON lines on stdin, one JSON line per request on stdout.
See host/docs/replay.md.";

/// A command-line problem (exit 2) or a run failure (exit 1).
enum Failure {
    Usage(String),
    Run(String),
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("replay") => cmd_replay(&args[1..]),
        Some("-h") | Some("--help") | Some("help") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(Failure::Usage(format!("unknown command {other:?}"))),
        None => Err(Failure::Usage("missing command".to_string())),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("error: {message}\n{USAGE}");
            ExitCode::from(2)
        }
        Err(Failure::Run(message)) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// `--name value` pairs (also `--name=value`), repeated names kept in order.
struct Args {
    pairs: Vec<(String, String)>,
}

impl Args {
    fn parse(args: &[String], known: &[&str]) -> Result<Args, Failure> {
        let mut pairs = Vec::new();
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            let Some(flag) = arg.strip_prefix("--") else {
                return Err(Failure::Usage(format!("unexpected argument {arg:?}")));
            };
            let (name, value) = match flag.split_once('=') {
                Some((name, value)) => (name.to_string(), value.to_string()),
                None => {
                    let value = iter
                        .next()
                        .ok_or_else(|| Failure::Usage(format!("--{flag} needs a value")))?;
                    (flag.to_string(), value.clone())
                }
            };
            if !known.contains(&name.as_str()) {
                return Err(Failure::Usage(format!("unknown option --{name}")));
            }
            pairs.push((name, value));
        }
        Ok(Args { pairs })
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn number(&self, name: &str) -> Result<Option<u64>, Failure> {
        self.get(name)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| Failure::Usage(format!("--{name}: {v:?} is not a number")))
            })
            .transpose()
    }
}

fn load_config(path: &str) -> Result<EnvoyConfig, Failure> {
    let config =
        envoy_yaml::load(Path::new(path)).map_err(|e| Failure::Run(format!("{path}: {e}")))?;
    for warning in &config.warnings {
        eprintln!("warning: {path}: {warning}");
    }
    Ok(config)
}

/// Every YAML cluster as a real HTTP cluster (its first endpoint).
fn yaml_clusters(config: &EnvoyConfig, clusters: &mut Clusters) {
    for cluster in &config.clusters {
        if let Some(address) = cluster.endpoints.first() {
            clusters.add(
                &cluster.name,
                Cluster::Http {
                    address: address.clone(),
                },
            );
        }
    }
}

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// One line naming the module and the cause (the Io error already names the file).
fn load_failure(wasm: &Path, error: &HostError) -> Failure {
    match error {
        HostError::Io { .. } => Failure::Run(error.to_string()),
        _ => Failure::Run(format!("{}: {error}", wasm.display())),
    }
}

fn cmd_replay(raw: &[String]) -> Result<(), Failure> {
    let args = Args::parse(
        raw,
        &[
            "wasm",
            "config",
            "plugin-config",
            "cluster",
            "workers",
            "start-unix-ms",
            "plugin-name",
            "root-id",
            "vm-id",
            "failure-policy",
        ],
    )?;
    let config = args.get("config").map(load_config).transpose()?;
    let mut options = HostOptions {
        workers: 1,
        ..HostOptions::default()
    };
    let mut wasm: Option<PathBuf> = None;
    let mut clusters = Clusters::new();
    if let (Some(config), Some(path)) = (&config, args.get("config")) {
        let filter = config
            .listeners
            .first()
            .and_then(|l| l.wasm.clone())
            .ok_or_else(|| {
                Failure::Run(format!(
                    "{path}: no envoy.filters.http.wasm filter in the first listener"
                ))
            })?;
        options.plugin_name = filter.name;
        options.root_id = filter.root_id;
        options.vm_id = filter.vm_id;
        options.plugin_configuration = filter.configuration;
        options.vm_configuration = filter.vm_configuration;
        options.failure_policy = filter.failure_policy;
        options.allow_on_headers_stop_iteration = filter.allow_on_headers_stop_iteration;
        options.environment = filter.environment;
        wasm = Some(filter.filename);
        yaml_clusters(config, &mut clusters);
    }
    if let Some(path) = args.get("wasm") {
        wasm = Some(PathBuf::from(path));
    }
    let wasm = wasm
        .ok_or_else(|| Failure::Usage("replay needs --wasm FILE or --config envoy.yaml".into()))?;
    if let Some(value) = args.get("plugin-config") {
        options.plugin_configuration = match value.strip_prefix('@') {
            Some(file) => std::fs::read(file)
                .map_err(|e| Failure::Run(format!("--plugin-config {file}: cannot read: {e}")))?,
            None => value.as_bytes().to_vec(),
        };
    }
    if let Some(n) = args.number("workers")? {
        options.workers = usize::try_from(n.max(1)).unwrap_or(1);
    }
    for (flag, field) in [
        ("plugin-name", &mut options.plugin_name),
        ("root-id", &mut options.root_id),
        ("vm-id", &mut options.vm_id),
    ] {
        if let Some(value) = args.get(flag) {
            *field = value.to_string();
        }
    }
    if let Some(policy) = args.get("failure-policy") {
        options.failure_policy = match policy.to_ascii_uppercase().as_str() {
            "FAIL_CLOSED" => FailurePolicy::FailClosed,
            "FAIL_OPEN" => FailurePolicy::FailOpen,
            _ => {
                return Err(Failure::Usage(format!(
                    "--failure-policy: {policy:?} (expected FAIL_CLOSED or FAIL_OPEN)"
                )))
            }
        };
    }
    options.clock = ClockMode::Virtual {
        start_unix_ms: args.number("start-unix-ms")?.unwrap_or_else(now_unix_ms),
    };
    for spec in args.all("cluster") {
        let (name, target) = spec.split_once('=').ok_or_else(|| {
            Failure::Usage(format!(
                "--cluster {spec:?}: expected NAME=FILE.json or NAME=http://HOST:PORT"
            ))
        })?;
        let cluster = match target.strip_prefix("http://") {
            Some(address) => Cluster::Http {
                address: address.trim_end_matches('/').to_string(),
            },
            None => {
                let replies = replay::load_canned(Path::new(target))
                    .map_err(|e| Failure::Run(format!("--cluster {name}: {e}")))?;
                Cluster::Handler(Box::new(replay::sequence_handler(replies)))
            }
        };
        clusters.add(name, cluster);
    }
    let mut host = Host::load(&wasm, options, clusters).map_err(|e| load_failure(&wasm, &e))?;
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    replay::run(&mut host, config.as_ref(), stdin.lock(), stdout.lock())
        .map_err(|e| Failure::Run(format!("replay: {e}")))
}
