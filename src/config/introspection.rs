//! Compiles `issuers[i].introspection` into [`crate::introspection::Settings`]: the cluster
//! and endpoint the gate introspects opaque tokens at (RFC 7662), its client credentials
//! (the secret by environment variable name, never inline) and how long answers are kept.
//! Errors name the field path and quote the value, as the other sections do.

use super::error::check_env_name;
use super::error::{is_http_url, parse_choice, push, quote, ConfigError};
use super::raw::RawIntrospection;
use crate::introspection::{ClientAuth, Fields, Settings};

/// Default call timeout, milliseconds.
pub const DEFAULT_TIMEOUT_MS: u64 = 1000;
/// Default lifetime of a cached active answer (never past its `exp`), seconds.
pub const DEFAULT_CACHE_TTL_SECS: u64 = 300;
/// Default lifetime of a cached inactive answer, seconds.
pub const DEFAULT_INACTIVE_TTL_SECS: u64 = 10;

/// The settings, or `None` (with errors pushed) when they do not compile. `path` is the
/// issuer's path (`issuers[0]`).
pub(super) fn compile_introspection(
    raw: RawIntrospection,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<Settings> {
    let before = errors.len();
    let ipath = format!("{path}.introspection");
    if raw.cluster.is_empty() {
        push(
            errors,
            format!("{ipath}.cluster"),
            "must name an Envoy cluster",
        );
    }
    let (authority, target) = match split_endpoint(&raw.endpoint) {
        Some(parts) => parts,
        None => {
            push(
                errors,
                format!("{ipath}.endpoint"),
                format!(
                    "{} must be an absolute http(s) URL with a host and no userinfo or fragment",
                    quote(&raw.endpoint)
                ),
            );
            (String::new(), String::new())
        }
    };
    if raw.client_id.is_empty() {
        push(errors, format!("{ipath}.client_id"), "must not be empty");
    }
    check_env_name(
        &raw.client_secret_env,
        &format!("{ipath}.client_secret_env"),
        errors,
    );
    let auth = parse_choice(
        raw.auth.as_deref(),
        ClientAuth::Basic,
        &[
            ("client_secret_basic", ClientAuth::Basic),
            ("client_secret_post", ClientAuth::Post),
        ],
        &format!("{ipath}.auth"),
        errors,
    );
    let timeout_ms = raw.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
    in_range(
        timeout_ms,
        (50, 60_000),
        &format!("{ipath}.timeout_ms"),
        errors,
    );
    let cache_ttl_secs = raw.cache_ttl_secs.unwrap_or(DEFAULT_CACHE_TTL_SECS);
    in_range(
        cache_ttl_secs,
        (1, 86_400),
        &format!("{ipath}.cache_ttl_secs"),
        errors,
    );
    let inactive_ttl_secs = raw.inactive_ttl_secs.unwrap_or(DEFAULT_INACTIVE_TTL_SECS);
    in_range(
        inactive_ttl_secs,
        (0, 3_600),
        &format!("{ipath}.inactive_ttl_secs"),
        errors,
    );
    let mut fields = Fields::default();
    if let Some(raw_fields) = raw.fields {
        for (name, value) in [("amr", raw_fields.amr), ("acr", raw_fields.acr)] {
            let Some(value) = value else { continue };
            if value.is_empty() || value == "active" {
                push(
                    errors,
                    format!("{ipath}.fields.{name}"),
                    format!("{} cannot name an answer member", quote(&value)),
                );
            }
            if name == "amr" {
                fields.amr = value;
            } else {
                fields.acr = value;
            }
        }
    }
    if errors.len() > before {
        return None;
    }
    Some(Settings {
        cluster: raw.cluster,
        authority,
        path: target,
        client_id: raw.client_id,
        client_secret_env: raw.client_secret_env,
        auth,
        timeout_ms,
        cache_ttl_secs,
        inactive_ttl_secs,
        fields,
    })
}

/// At most one issuer introspects (opaque tokens name no issuer).
pub(super) fn check_one_introspecting(
    issuers: &[crate::token::issuer::IssuerConfig],
    errors: &mut Vec<ConfigError>,
) {
    let introspecting: Vec<usize> = (issuers.iter().enumerate())
        .filter(|(_, i)| i.introspection.is_some())
        .map(|(n, _)| n)
        .collect();
    if let [first, second, ..] = introspecting[..] {
        push(
            errors,
            format!("issuers[{second}].introspection"),
            format!("issuers[{first}] introspects already: at most one issuer may introspect (an opaque token names no issuer)"),
        );
    }
}

fn in_range(value: u64, (low, high): (u64, u64), field: &str, errors: &mut Vec<ConfigError>) {
    if !(low..=high).contains(&value) {
        push(
            errors,
            field,
            format!("{value} is out of range ({low} to {high})"),
        );
    }
}

/// An endpoint URL's authority and path (with query), if it is a plain absolute
/// http(s) URL: a host, no userinfo, no fragment.
fn split_endpoint(url: &str) -> Option<(String, String)> {
    if !is_http_url(url) || url.contains('#') {
        return None;
    }
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let (authority, target) = match rest.find(['/', '?']) {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let target = if target.starts_with('?') {
        format!("/{target}")
    } else {
        target.to_string()
    };
    Some((authority.to_string(), target))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_split_into_authority_and_path() {
        assert_eq!(
            split_endpoint("http://127.0.0.1:10001/oauth/introspect"),
            Some(("127.0.0.1:10001".into(), "/oauth/introspect".into()))
        );
        assert_eq!(
            split_endpoint("https://idp.example"),
            Some(("idp.example".into(), "/".into()))
        );
        assert_eq!(
            split_endpoint("https://idp.example?x=1"),
            Some(("idp.example".into(), "/?x=1".into()))
        );
        for bad in [
            "idp.example/introspect",
            "ftp://idp/x",
            "https://user:pw@idp/x",
            "https:///x",
            "https://idp/x#frag",
            "https://idp/a b",
        ] {
            assert_eq!(split_endpoint(bad), None, "{bad}");
        }
    }
}
