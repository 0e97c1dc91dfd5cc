//! The `binding` and `risk` sections, and a rule's `risk` thresholds.
//!
//! `binding` tunes how bound tokens are checked (DPoP proof windows, the replay store,
//! the origins a proof's `htu` may name); a token carrying `cnf` is held to its binding
//! whether or not the section is written. `risk` sets the scoring table (points per level
//! and per signal, report-only signals), the default thresholds, and the trusted sources
//! of posture and location.

use super::error::{check_header_name, push, quote};
use super::raw::{RawBinding, RawLocation, RawPosture, RawRisk, RawThresholds};
use super::ConfigError;
use crate::assurance::Level;
use crate::policy::{Thresholds, DEFAULT_THRESHOLDS};
use crate::risk::{Profile, Signal};
use crate::signals::location::LocationHeaders;
use crate::signals::posture::{CertificateRule, Posture};
use crate::signals::sightings::SightingSettings;

/// Default longest age of a DPoP proof's `iat`, seconds.
pub const DEFAULT_DPOP_MAX_AGE_SECS: u64 = 300;
/// Default DPoP clock skew (an `iat` at most this far ahead), seconds.
pub const DEFAULT_DPOP_SKEW_SECS: u64 = 60;
/// Default capacity of the DPoP `jti` replay store (all workers together).
pub const DEFAULT_DPOP_REPLAY_CAPACITY: usize = 65_536;
/// Largest replay capacity accepted.
pub const MAX_DPOP_REPLAY_CAPACITY: usize = 1_000_000;
/// Default speed above which two sightings are impossible travel, km/h (Okta's default
/// for its impossible-travel detection).
pub const DEFAULT_MAX_SPEED_KMH: u64 = 805;
/// Default distance under which two sightings are the same place, km.
pub const DEFAULT_MIN_DISTANCE_KM: u64 = 100;
/// Default seconds between rewrites of an unchanged sighting.
pub const DEFAULT_SIGHTING_REFRESH_SECS: u64 = 300;
/// Default days a country stays known for a subject.
pub const DEFAULT_KNOWN_COUNTRIES_DAYS: u64 = 90;
/// Default number of subjects whose sightings are kept.
pub const DEFAULT_SIGHTING_CAPACITY: usize = 100_000;
/// Largest sighting capacity accepted.
pub const MAX_SIGHTING_CAPACITY: usize = 2_000_000;

/// The compiled `binding` section (defaults when absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingConfig {
    /// DPoP proofs.
    pub dpop: DpopConfig,
}

/// How DPoP proofs are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpopConfig {
    /// Longest age of a proof's `iat`.
    pub max_age_secs: u64,
    /// How far ahead a proof's `iat` may be.
    pub clock_skew_secs: u64,
    /// Capacity of the `jti` replay store.
    pub replay_capacity: usize,
    /// The origins (`https://api.example.com`) a proof's `htu` may name; empty: the
    /// request's own `:scheme` and `:authority`.
    pub origins: Vec<String>,
}

impl Default for BindingConfig {
    fn default() -> Self {
        BindingConfig {
            dpop: DpopConfig {
                max_age_secs: DEFAULT_DPOP_MAX_AGE_SECS,
                clock_skew_secs: DEFAULT_DPOP_SKEW_SECS,
                replay_capacity: DEFAULT_DPOP_REPLAY_CAPACITY,
                origins: Vec::new(),
            },
        }
    }
}

/// The compiled `risk` section.
#[derive(Debug, Clone)]
pub struct RiskConfig {
    /// The scoring table.
    pub profile: Profile,
    /// Thresholds for rules whose `risk` names none of its own.
    pub thresholds: Thresholds,
    /// Trusted posture sources, when configured.
    pub posture: Option<PostureConfig>,
    /// Location and sightings, when configured.
    pub location: Option<LocationConfig>,
}

impl Default for RiskConfig {
    fn default() -> Self {
        RiskConfig {
            profile: Profile::default(),
            thresholds: DEFAULT_THRESHOLDS,
            posture: None,
            location: None,
        }
    }
}

/// Where posture comes from, tried in order (the first that answers wins).
#[derive(Debug, Clone)]
pub struct PostureConfig {
    /// The sources.
    pub sources: Vec<PostureSourceConfig>,
    /// Source values (lower-case) mapped to postures, before the built-in spellings.
    pub values: Vec<(String, Posture)>,
}

/// One trusted posture source.
#[derive(Debug, Clone)]
pub enum PostureSourceConfig {
    /// A claim of the verified token.
    Claim(String),
    /// A header set by a trusted hop (lower-case name); its client-sent copy must be
    /// removed before that hop (see the README).
    Header(String),
    /// The mTLS client certificate, issued by the device CA the listener trusts.
    Certificate(CertificateRule),
}

/// Where location comes from and how sightings are judged.
#[derive(Debug, Clone)]
pub struct LocationConfig {
    /// The headers read (set by Envoy's geoip filter or a trusted edge).
    pub headers: LocationHeaders,
    /// Sightings store and travel settings.
    pub sightings: SightingSettings,
}

/// The `binding` section.
pub(super) fn compile_binding(
    raw: Option<RawBinding>,
    errors: &mut Vec<ConfigError>,
) -> BindingConfig {
    let mut config = BindingConfig::default();
    let Some(dpop) = raw.and_then(|b| b.dpop) else {
        return config;
    };
    let d = &mut config.dpop;
    d.max_age_secs = dpop.max_age_secs.unwrap_or(d.max_age_secs);
    if !(1..=3600).contains(&d.max_age_secs) {
        push(
            errors,
            "binding.dpop.max_age_secs",
            format!("{} is out of range (1 to 3600)", d.max_age_secs),
        );
    }
    d.clock_skew_secs = dpop.clock_skew_secs.unwrap_or(d.clock_skew_secs);
    if d.clock_skew_secs > 600 {
        push(
            errors,
            "binding.dpop.clock_skew_secs",
            format!("{} is out of range (0 to 600)", d.clock_skew_secs),
        );
    }
    d.replay_capacity = dpop.replay_capacity.unwrap_or(d.replay_capacity);
    if !(1_000..=MAX_DPOP_REPLAY_CAPACITY).contains(&d.replay_capacity) {
        push(
            errors,
            "binding.dpop.replay_capacity",
            format!(
                "{} is out of range (1000 to {MAX_DPOP_REPLAY_CAPACITY})",
                d.replay_capacity
            ),
        );
    }
    for (i, origin) in dpop.origins.into_iter().enumerate() {
        match crate::token::dpop::normalize_htu(&origin) {
            Some(normal) if normal.ends_with('/') && origin_only(&origin) => {
                d.origins.push(normal.trim_end_matches('/').to_string())
            }
            _ => push(
                errors,
                format!("binding.dpop.origins[{i}]"),
                format!(
                    "{} is not an origin (expected scheme://host[:port], e.g. https://api.example.com)",
                    quote(&origin)
                ),
            ),
        }
    }
    config
}

/// Whether `url` is `scheme://authority` with nothing (or only `/`) after it.
fn origin_only(url: &str) -> bool {
    url.split_once("://").is_some_and(|(_, rest)| {
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        !rest.is_empty() && !rest.contains(['/', '?', '#'])
    })
}

/// The `risk` section (`None` when absent).
pub(super) fn compile_risk(
    raw: Option<RawRisk>,
    errors: &mut Vec<ConfigError>,
) -> Option<RiskConfig> {
    let raw = raw?;
    let mut config = RiskConfig::default();
    if let Some(points) = raw.points {
        for (name, value) in points.level {
            match Level::parse(&name) {
                Some(level) => {
                    if let Some(slot) = config.profile.level_points.get_mut(level as usize) {
                        *slot = value;
                    }
                }
                None => push(
                    errors,
                    format!("risk.points.level.{name}"),
                    format!("unknown level {}", quote(&name)),
                ),
            }
        }
        for (name, value) in points.signals {
            match Signal::parse(&name).filter(|s| *s != Signal::Assurance) {
                Some(signal) => {
                    if let Some(weight) = config.profile.weights.get_mut(signal as usize) {
                        weight.points = value;
                    }
                }
                None => push(
                    errors,
                    format!("risk.points.{name}"),
                    format!("unknown signal {}", quote(&name)),
                ),
            }
        }
    }
    for (i, name) in raw.report_only.iter().enumerate() {
        match Signal::parse(name) {
            Some(signal) => {
                if let Some(weight) = config.profile.weights.get_mut(signal as usize) {
                    weight.report_only = true;
                }
            }
            None => push(
                errors,
                format!("risk.report_only[{i}]"),
                format!(
                    "unknown signal {} (expected one of: {})",
                    quote(name),
                    Signal::ALL.map(Signal::as_str).join(", ")
                ),
            ),
        }
    }
    if let Some(secs) = raw.stale_authentication_secs {
        config.profile.stale_after_secs = secs;
    }
    config.thresholds = compile_thresholds(raw.thresholds, DEFAULT_THRESHOLDS);
    config.posture = raw.posture.map(|p| compile_posture(p, errors));
    config.location = raw.location.map(|l| compile_location(l, errors));
    Some(config)
}

/// Thresholds: each one written replaces the one in `base`.
pub(super) fn compile_thresholds(raw: Option<RawThresholds>, base: Thresholds) -> Thresholds {
    let Some(raw) = raw else {
        return base;
    };
    Thresholds {
        step_up_at: raw.step_up_at.or(base.step_up_at),
        deny_at: raw.deny_at.or(base.deny_at),
        revoke_at: raw.revoke_at.or(base.revoke_at),
    }
}

fn compile_posture(raw: RawPosture, errors: &mut Vec<ConfigError>) -> PostureConfig {
    let mut values = Vec::new();
    for (value, posture) in raw.values {
        match Posture::parse(&posture) {
            Some(p) => values.push((value.to_ascii_lowercase(), p)),
            None => push(
                errors,
                format!("risk.posture.values.{value}"),
                format!(
                    "unknown posture {} (expected managed, compliant, unmanaged or unknown)",
                    quote(&posture)
                ),
            ),
        }
    }
    let mut sources = Vec::new();
    if raw.sources.is_empty() {
        push(
            errors,
            "risk.posture.sources",
            "name at least one source (claim, header or certificate)",
        );
    }
    for (i, source) in raw.sources.into_iter().enumerate() {
        let path = format!("risk.posture.sources[{i}]");
        match (source.claim, source.header, source.certificate) {
            (Some(claim), None, None) if !claim.is_empty() => {
                if sources
                    .iter()
                    .any(|s| matches!(s, PostureSourceConfig::Claim(_)))
                {
                    push(
                        errors,
                        format!("{path}.claim"),
                        "only one claim source is read (map the values of one claim with values)",
                    );
                    continue;
                }
                sources.push(PostureSourceConfig::Claim(claim))
            }
            (None, Some(header), None) => {
                let header = header.to_ascii_lowercase();
                check_header_name(&header, &format!("{path}.header"), errors);
                sources.push(PostureSourceConfig::Header(header));
            }
            (None, None, Some(cert)) => {
                let Some(posture) = Posture::parse(&cert.posture) else {
                    push(
                        errors,
                        format!("{path}.certificate.posture"),
                        format!("unknown posture {}", quote(&cert.posture)),
                    );
                    continue;
                };
                if cert.uri_san_prefixes.is_empty()
                    && cert.dns_san_suffixes.is_empty()
                    && cert.subject_contains.is_empty()
                {
                    push(
                        errors,
                        format!("{path}.certificate"),
                        "name what a device certificate carries (uri_san_prefixes, dns_san_suffixes or subject_contains)",
                    );
                    continue;
                }
                sources.push(PostureSourceConfig::Certificate(CertificateRule {
                    uri_san_prefixes: cert.uri_san_prefixes,
                    dns_san_suffixes: cert.dns_san_suffixes,
                    subject_contains: cert.subject_contains,
                    posture,
                }));
            }
            _ => push(
                errors,
                path,
                "set exactly one of claim, header or certificate",
            ),
        }
    }
    PostureConfig { sources, values }
}

fn compile_location(raw: RawLocation, errors: &mut Vec<ConfigError>) -> LocationConfig {
    let headers = match &raw.headers {
        None => LocationHeaders::geoip(),
        Some(serde_json::Value::String(preset)) => match preset.as_str() {
            "geoip" => LocationHeaders::geoip(),
            "cloudfront" => LocationHeaders::cloudfront(),
            "cloudflare" => LocationHeaders::cloudflare(),
            other => {
                push(
                    errors,
                    "risk.location.headers",
                    format!(
                        "unknown preset {} (expected geoip, cloudfront or cloudflare)",
                        quote(other)
                    ),
                );
                LocationHeaders::geoip()
            }
        },
        Some(_) => {
            push(
                errors,
                "risk.location.headers",
                "expected a preset name: geoip, cloudfront or cloudflare",
            );
            LocationHeaders::geoip()
        }
    };
    let max_speed_kmh = raw.max_speed_kmh.unwrap_or(DEFAULT_MAX_SPEED_KMH);
    if !(100..=100_000).contains(&max_speed_kmh) {
        push(
            errors,
            "risk.location.max_speed_kmh",
            format!("{max_speed_kmh} is out of range (100 to 100000)"),
        );
    }
    let min_distance_km = raw.min_distance_km.unwrap_or(DEFAULT_MIN_DISTANCE_KM);
    if min_distance_km > 5_000 {
        push(
            errors,
            "risk.location.min_distance_km",
            format!("{min_distance_km} is out of range (0 to 5000)"),
        );
    }
    let capacity = raw.capacity.unwrap_or(DEFAULT_SIGHTING_CAPACITY);
    if !(100..=MAX_SIGHTING_CAPACITY).contains(&capacity) {
        push(
            errors,
            "risk.location.capacity",
            format!("{capacity} is out of range (100 to {MAX_SIGHTING_CAPACITY})"),
        );
    }
    let days = raw
        .known_countries_days
        .unwrap_or(DEFAULT_KNOWN_COUNTRIES_DAYS);
    if !(1..=3650).contains(&days) {
        push(
            errors,
            "risk.location.known_countries_days",
            format!("{days} is out of range (1 to 3650)"),
        );
    }
    let sightings = SightingSettings {
        capacity,
        refresh_secs: raw.refresh_secs.unwrap_or(DEFAULT_SIGHTING_REFRESH_SECS),
        known_countries_secs: days.saturating_mul(86_400),
        max_speed_kmh: max_speed_kmh as f64,
        min_distance_km: min_distance_km as f64,
    };
    LocationConfig { headers, sightings }
}
