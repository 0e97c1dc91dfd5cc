//! Configuration errors (each names its field path and quotes the bad value, never a
//! secret) and the field readers the compilers share, which report them.

use crate::assurance::Level;
use crate::policy::Mode;
use std::fmt;

/// One configuration error: where, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Field path, e.g. `routes[2].require.level` (empty for the document itself).
    pub path: String,
    /// What is wrong, quoting the bad value.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every error found in a configuration (at least one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

pub(super) fn one(path: &str, message: String) -> ConfigErrors {
    ConfigErrors(vec![ConfigError {
        path: path.to_string(),
        message,
    }])
}

pub(super) fn push(
    errors: &mut Vec<ConfigError>,
    path: impl Into<String>,
    message: impl Into<String>,
) {
    errors.push(ConfigError {
        path: path.into(),
        message: message.into(),
    });
}

/// Quotes a configuration value for an error message (JSON escaping, length-capped).
pub(super) fn quote(value: &str) -> String {
    let shown: String = value.chars().take(80).collect();
    let mut q = serde_json::Value::String(shown).to_string();
    if value.chars().count() > 80 {
        q.push('…');
    }
    q
}

fn expected_levels() -> String {
    Level::ALL
        .iter()
        .map(|l| l.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn parse_level(value: &str, path: &str, errors: &mut Vec<ConfigError>) -> Option<Level> {
    let level = Level::parse(value);
    if level.is_none() {
        push(
            errors,
            path,
            format!(
                "unknown level {} (expected one of: {})",
                quote(value),
                expected_levels()
            ),
        );
    }
    level
}

pub(super) fn parse_choice<T: Copy>(
    value: Option<&str>,
    default: T,
    choices: &[(&str, T)],
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> T {
    let Some(value) = value else {
        return default;
    };
    match choices.iter().find(|(name, _)| *name == value) {
        Some((_, v)) => *v,
        None => {
            let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
            push(
                errors,
                path,
                format!(
                    "unknown value {} (expected one of: {})",
                    quote(value),
                    names.join(", ")
                ),
            );
            default
        }
    }
}

pub(super) const MODES: [(&str, Mode); 2] = [
    ("enforce", Mode::Enforce),
    ("report_only", Mode::ReportOnly),
];

/// A header name we may set or read: RFC 7230 token characters, lower-case, not a pseudo-header.
pub(super) fn check_header_name(
    name: &str,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    let valid = !lower.is_empty()
        && lower.len() <= 128
        && lower
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !valid {
        push(errors, path, format!("invalid header name {}", quote(name)));
        return None;
    }
    Some(lower)
}

pub(super) fn is_http_url(value: &str) -> bool {
    (value.starts_with("https://") || value.starts_with("http://"))
        && value.len() > "https://".len()
        && !value
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
}

/// An environment variable name (the secret itself is never in the configuration).
pub(super) fn check_env_name(name: &str, field: &str, errors: &mut Vec<ConfigError>) {
    let valid = !name.is_empty()
        && name.len() <= 128
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !name.bytes().next().is_some_and(|b| b.is_ascii_digit());
    if !valid {
        push(
            errors,
            field,
            format!(
                "{} is not an environment variable name (the secret goes in Envoy's vm_config.environment_variables, never here)",
                quote(name)
            ),
        );
    }
}
