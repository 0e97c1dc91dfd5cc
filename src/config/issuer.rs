//! Compiles `issuers[]` into [`IssuerConfig`]s: verification settings, keys (inline JWKS,
//! a cluster to fetch them from, an HMAC secret), the amr/acr classifier, the step-up
//! endpoint.

use super::error::{is_http_url, parse_level, push, quote, ConfigError};
use super::raw::{RawCustomClaim, RawIssuer, RawRemoteJwks, RawStepUp};
use super::{
    DEFAULT_ALGORITHMS, DEFAULT_CLOCK_SKEW_SECS, DEFAULT_JWKS_REFRESH_SECS,
    DEFAULT_JWKS_TIMEOUT_MS, MIN_JWKS_REFRESH_SECS,
};
use crate::assurance::{ClassifierSettings, CustomClaimRule, Level, Profile};
use crate::response::StepUpEndpoint;
use crate::token::issuer::{IssuerConfig, RemoteJwks};
use crate::token::jose::Algorithm;
use crate::token::jwks::KeySet;
use crate::token::verify::VerifyOptions;
use std::collections::BTreeMap;

/// One issuer, or `None` (with its errors pushed) when it does not compile.
pub(super) fn compile_issuer(
    raw: RawIssuer,
    path: &str,
    max_token_bytes: usize,
    claims_from_metadata: bool,
    errors: &mut Vec<ConfigError>,
) -> Option<IssuerConfig> {
    let before = errors.len();
    if raw.issuer.is_empty() {
        push(errors, format!("{path}.issuer"), "must not be empty");
    }
    if raw.audiences.is_empty() && !raw.allow_any_audience && !claims_from_metadata {
        push(
            errors,
            format!("{path}.audiences"),
            "list at least one audience (or set allow_any_audience: true to accept any)",
        );
    }
    if !raw.audiences.is_empty() && raw.allow_any_audience {
        push(
            errors,
            format!("{path}.allow_any_audience"),
            "cannot be true when audiences are listed",
        );
    }

    let hmac_secret = compile_hmac_secret(raw.hmac_secret_base64.as_deref(), path, errors);
    let algorithms = compile_algorithms(raw.algorithms, hmac_secret.is_some(), path, errors);
    let inline_keys = compile_inline_keys(raw.jwks.as_ref(), path, errors);
    let remote_jwks = compile_remote_jwks(raw.remote_jwks, path, errors);

    let introspection = (raw.introspection)
        .and_then(|r| super::introspection::compile_introspection(r, path, errors));
    // An issuer that introspects may have no keys (all its tokens opaque).
    let needs_keys = !claims_from_metadata && introspection.is_none();
    if needs_keys && inline_keys.is_none() && remote_jwks.is_none() && hmac_secret.is_none() {
        let jwks_failed = raw.jwks.is_some();
        if !jwks_failed {
            push(
                errors,
                path,
                "needs keys: set jwks (inline), remote_jwks (a cluster) or hmac_secret_base64",
            );
        }
    }
    if raw.jwks.is_some() && remote_jwks.is_some() {
        push(
            errors,
            format!("{path}.remote_jwks"),
            "set either jwks or remote_jwks, not both",
        );
    }

    let clock_skew_secs = raw.clock_skew_secs.unwrap_or(DEFAULT_CLOCK_SKEW_SECS);
    if clock_skew_secs > 600 {
        push(
            errors,
            format!("{path}.clock_skew_secs"),
            format!("{clock_skew_secs} is out of range (0 to 600)"),
        );
    }

    let classifier = compile_classifier(
        raw.profile.as_deref(),
        (raw.amr_levels, raw.acr_levels),
        raw.phishing_resistant_acrs,
        raw.custom_claims,
        path,
        errors,
    );
    let step_up = compile_step_up(raw.step_up, path, errors);

    if errors.len() > before {
        return None;
    }
    Some(IssuerConfig {
        verify: VerifyOptions {
            issuer: raw.issuer,
            audiences: raw.audiences,
            algorithms,
            clock_skew_secs,
            max_token_bytes,
        },
        inline_keys,
        remote_jwks,
        hmac_secret,
        classifier,
        step_up,
        introspection,
    })
}

/// The HMAC secret, decoded from standard base64 (never quoted in an error).
fn compile_hmac_secret(
    raw: Option<&str>,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<Vec<u8>> {
    raw.and_then(|b64| {
        match <ct_codecs::Base64 as ct_codecs::Decoder>::decode_to_vec(b64.trim(), None) {
            Ok(secret) if secret.len() >= 32 => {
                match KeySet::default().try_add_hmac_secret(&secret) {
                    Ok(()) => Some(secret),
                    Err(e) => {
                        push(errors, format!("{path}.hmac_secret_base64"), e.to_string());
                        None
                    }
                }
            }
            Ok(secret) => {
                push(
                    errors,
                    format!("{path}.hmac_secret_base64"),
                    format!("secret is {} bytes; at least 32 are required", secret.len()),
                );
                None
            }
            Err(_) => {
                // Never quote a secret, even a malformed one.
                push(
                    errors,
                    format!("{path}.hmac_secret_base64"),
                    "not valid standard base64",
                );
                None
            }
        }
    })
}

/// The allowed algorithms: never `none`, HMAC only with a secret.
pub(super) fn compile_algorithms(
    raw: Option<Vec<String>>,
    has_secret: bool,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Vec<Algorithm> {
    match raw {
        None => DEFAULT_ALGORITHMS.to_vec(),
        Some(names) => {
            if names.is_empty() {
                push(
                    errors,
                    format!("{path}.algorithms"),
                    "must list at least one algorithm",
                );
            }
            let mut algs = Vec::new();
            for (j, name) in names.iter().enumerate() {
                let apath = format!("{path}.algorithms[{j}]");
                if name.eq_ignore_ascii_case("none") {
                    push(errors, apath, "\"none\" is never allowed");
                    continue;
                }
                match Algorithm::parse(name) {
                    Some(a) if a.is_hmac() && !has_secret => push(
                        errors,
                        apath,
                        format!(
                            "{} needs hmac_secret_base64 (HMAC is only allowed with an explicitly configured secret)",
                            quote(name)
                        ),
                    ),
                    Some(a) => {
                        if !algs.contains(&a) {
                            algs.push(a)
                        }
                    }
                    None => push(
                        errors,
                        apath,
                        format!(
                            "unknown algorithm {} (expected one of: {})",
                            quote(name),
                            Algorithm::ALL
                                .iter()
                                .map(|a| a.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ),
                }
            }
            algs
        }
    }
}

/// Keys given inline as a JWKS document.
pub(super) fn compile_inline_keys(
    raw: Option<&serde_json::Value>,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<KeySet> {
    raw.and_then(|jwks| {
        match serde_json::to_vec(jwks)
            .map_err(|e| e.to_string())
            .and_then(|bytes| KeySet::from_jwks_json(&bytes).map_err(|e| e.to_string()))
        {
            Ok(keys) => Some(keys),
            Err(e) => {
                push(errors, format!("{path}.jwks"), format!("invalid JWKS: {e}"));
                None
            }
        }
    })
}

/// Where the keys are fetched from, how often, with what timeout.
pub(super) fn compile_remote_jwks(
    raw: Option<RawRemoteJwks>,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<RemoteJwks> {
    raw.map(|r| {
        let rpath = format!("{path}.remote_jwks");
        if r.cluster.is_empty() {
            push(
                errors,
                format!("{rpath}.cluster"),
                "must name an Envoy cluster",
            );
        }
        if !r.path.starts_with('/') {
            push(
                errors,
                format!("{rpath}.path"),
                format!("{} must start with \"/\"", quote(&r.path)),
            );
        }
        let refresh = r.refresh_interval_secs.unwrap_or(DEFAULT_JWKS_REFRESH_SECS);
        if refresh < MIN_JWKS_REFRESH_SECS {
            push(
                errors,
                format!("{rpath}.refresh_interval_secs"),
                format!("{refresh} is below the minimum of {MIN_JWKS_REFRESH_SECS}"),
            );
        }
        let timeout_ms = r.timeout_ms.unwrap_or(DEFAULT_JWKS_TIMEOUT_MS);
        if !(100..=60_000).contains(&timeout_ms) {
            push(
                errors,
                format!("{rpath}.timeout_ms"),
                format!("{timeout_ms} is out of range (100 to 60000)"),
            );
        }
        RemoteJwks {
            authority: r.authority.unwrap_or_else(|| r.cluster.clone()),
            cluster: r.cluster,
            path: r.path,
            refresh_interval_secs: refresh,
            timeout_ms,
        }
    })
}

/// How the issuer's amr/acr are read: its profile, level overrides, custom claims.
fn compile_classifier(
    profile: Option<&str>,
    (amr_levels, acr_levels): (BTreeMap<String, String>, BTreeMap<String, String>),
    phishing_resistant_acrs: Vec<String>,
    custom_claims: Vec<RawCustomClaim>,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> ClassifierSettings {
    let profile = match profile {
        None => Profile::Generic,
        Some(name) => Profile::parse(name).unwrap_or_else(|| {
            push(
                errors,
                format!("{path}.profile"),
                format!(
                    "unknown profile {} (expected one of: {})",
                    quote(name),
                    Profile::ALL
                        .iter()
                        .map(|p| p.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
            Profile::Generic
        }),
    };
    let mut level_map = |map: BTreeMap<String, String>, field: &str| -> Vec<(String, Level)> {
        map.into_iter()
            .filter_map(|(k, v)| {
                parse_level(&v, &format!("{path}.{field}.{k}"), errors).map(|l| (k, l))
            })
            .collect()
    };
    let amr_levels = level_map(amr_levels, "amr_levels");
    let acr_levels = level_map(acr_levels, "acr_levels");
    let custom_claims = custom_claims
        .into_iter()
        .enumerate()
        .map(|(j, c)| {
            let cpath = format!("{path}.custom_claims[{j}]");
            if c.claim.is_empty() {
                push(errors, format!("{cpath}.claim"), "must name a claim");
            }
            let values = c
                .values
                .into_iter()
                .filter_map(|(k, v)| {
                    parse_level(&v, &format!("{cpath}.values.{k}"), errors).map(|l| (k, l))
                })
                .collect();
            CustomClaimRule {
                claim: c.claim,
                values,
            }
        })
        .collect();
    ClassifierSettings {
        profile,
        amr_levels,
        acr_levels,
        phishing_resistant_acrs,
        custom_claims,
    }
}

/// Where browsers are sent to step up.
fn compile_step_up(
    raw: Option<RawStepUp>,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<StepUpEndpoint> {
    raw.map(|s| {
        let spath = format!("{path}.step_up");
        for (field, value) in [
            ("authorization_endpoint", &s.authorization_endpoint),
            ("redirect_uri", &s.redirect_uri),
        ] {
            if !is_http_url(value) {
                push(
                    errors,
                    format!("{spath}.{field}"),
                    format!("{} is not an http(s) URL", quote(value)),
                );
            }
        }
        if s.client_id.is_empty() {
            push(errors, format!("{spath}.client_id"), "must not be empty");
        }
        StepUpEndpoint {
            authorization_endpoint: s.authorization_endpoint,
            client_id: s.client_id,
            redirect_uri: s.redirect_uri,
        }
    })
}
