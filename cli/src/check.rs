//! `mfa-gate check CONFIG...`: the filter's own configuration validation, every error with
//! its field path.

use crate::config_source;
use crate::error::{CliError, CliResult};
use crate::usage;
use lexopt::ValueExt;
use std::process::ExitCode;

/// Counts shown on success, read from the checked configuration.
fn summary(config: &mfa_gate::config::Config) -> String {
    let issuers = config.issuers.len();
    let routes = config.routes.len();
    format!(
        "{issuers} issuer{}, {routes} route{}",
        if issuers == 1 { "" } else { "s" },
        if routes == 1 { "" } else { "s" }
    )
}

/// Warnings for the HTTP connection managers of an Envoy bootstrap (none for JSON files,
/// Kubernetes manifests or unreadable YAML: `load` reports those).
fn bootstrap_warnings(path: &str) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    if text.trim_start().starts_with('{') {
        return Vec::new();
    }
    serde_yaml::Deserializer::from_str(&text)
        .filter_map(|document| {
            <serde_json::Value as serde::Deserialize>::deserialize(document).ok()
        })
        .flat_map(|document| crate::hcm_lint::warnings(&document))
        .collect()
}

/// Runs `check`.
pub fn run(parser: &mut lexopt::Parser) -> CliResult<ExitCode> {
    let mut paths = Vec::new();
    while let Some(arg) = parser.next()? {
        match arg {
            lexopt::Arg::Value(v) => paths.push(v.string()?),
            arg if usage::is_help(&arg) => return Ok(usage::CHECK.print()),
            other => return Err(other.unexpected().into()),
        }
    }
    if paths.is_empty() {
        return Err(CliError::new("check needs a CONFIG file"));
    }
    let mut failed = false;
    for path in &paths {
        let found = match config_source::load(path) {
            Ok(found) => found,
            Err(e) => {
                eprintln!("mfa-gate: error: {e}");
                failed = true;
                continue;
            }
        };
        for warning in bootstrap_warnings(path) {
            eprintln!("warning: {path}: {warning}");
        }
        let several = found.len() > 1 || found.iter().any(|f| f.location != "configuration");
        for item in found {
            let label = if several {
                format!("{path} [{}]", item.location)
            } else {
                path.to_string()
            };
            let bytes = match item.json {
                Ok(bytes) => bytes,
                Err(message) => {
                    eprintln!("{label}: {message}");
                    failed = true;
                    continue;
                }
            };
            match mfa_gate::config::parse(&bytes) {
                Ok(config) => println!("ok: {label}: {}", summary(&config)),
                Err(errors) => {
                    failed = true;
                    for error in &errors.0 {
                        eprintln!("{label}: {error}");
                    }
                }
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
