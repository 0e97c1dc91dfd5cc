//! Plugin configuration, in two stages: plain serde types that mirror the JSON
//! (`deny_unknown_fields` everywhere: a typo in a security policy must not pass silently),
//! then [`parse`] compiles them into a checked [`Config`]. Every error names the field
//! path and quotes the bad value, e.g.
//! `routes[2].require.level: unknown level "phishing_resistent" (expected one of: ...)`.

use crate::assurance::{ClassifierSettings, CustomClaimRule, Level, Profile};
use crate::policy::{
    BrowserMode, Mode, OnInsufficient, Requirement, RouteMatch, RouteRule, Unmatched,
};
use crate::request::{AmbiguousPaths, PathReading};
pub use crate::response::StepUpEndpoint;
use crate::token::extract::TokenSource;
pub use crate::token::issuer::{IssuerConfig, RemoteJwks};
use crate::token::jose::Algorithm;
use crate::token::jwks::KeySet;
pub use crate::token::session::{UpstreamHeaders, DEFAULT_UPSTREAM_HEADERS};
use crate::token::verify::VerifyOptions;
mod shape;

use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;

/// Default clock skew for exp/nbf/iat, seconds.
pub const DEFAULT_CLOCK_SKEW_SECS: u64 = 60;
/// Default maximum token length, bytes.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 8192;
/// Default verified-token cache size, entries.
pub const DEFAULT_TOKEN_CACHE_ENTRIES: usize = 10_000;
/// Default JWKS refresh interval, seconds.
pub const DEFAULT_JWKS_REFRESH_SECS: u64 = 600;
/// Shortest JWKS refresh interval accepted, seconds.
pub const MIN_JWKS_REFRESH_SECS: u64 = 10;
/// Default JWKS fetch timeout, milliseconds.
pub const DEFAULT_JWKS_TIMEOUT_MS: u64 = 5000;
/// Algorithms allowed when an issuer lists none.
pub const DEFAULT_ALGORITHMS: [Algorithm; 4] = [
    Algorithm::RS256,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::EdDSA,
];
/// Largest configuration accepted, bytes.
pub const MAX_CONFIG_BYTES: usize = 1 << 20;

// ---------------------------------------------------------------------------------------
// Stage 1: the JSON shape.
// ---------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    realm: Option<String>,
    #[serde(default)]
    issuers: Vec<RawIssuer>,
    #[serde(default)]
    token_sources: Option<Vec<RawTokenSource>>,
    #[serde(default)]
    jwt_authn: Option<RawJwtAuthn>,
    #[serde(default)]
    max_token_bytes: Option<usize>,
    #[serde(default)]
    token_cache_entries: Option<usize>,
    #[serde(default)]
    routes: Vec<RawRoute>,
    #[serde(default)]
    unmatched: Option<String>,
    #[serde(default)]
    upstream_headers: Option<RawUpstreamHeaders>,
    #[serde(default)]
    paths: Option<RawPaths>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPaths {
    #[serde(default)]
    ambiguous: Option<String>,
    #[serde(default)]
    case_insensitive: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIssuer {
    issuer: String,
    #[serde(default)]
    audiences: Vec<String>,
    #[serde(default)]
    allow_any_audience: bool,
    #[serde(default)]
    algorithms: Option<Vec<String>>,
    #[serde(default)]
    jwks: Option<serde_json::Value>,
    #[serde(default)]
    remote_jwks: Option<RawRemoteJwks>,
    #[serde(default)]
    hmac_secret_base64: Option<String>,
    #[serde(default)]
    clock_skew_secs: Option<u64>,
    #[serde(default)]
    profile: Option<String>,
    #[serde(default)]
    amr_levels: BTreeMap<String, String>,
    #[serde(default)]
    acr_levels: BTreeMap<String, String>,
    #[serde(default)]
    phishing_resistant_acrs: Vec<String>,
    #[serde(default)]
    custom_claims: Vec<RawCustomClaim>,
    #[serde(default)]
    step_up: Option<RawStepUp>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRemoteJwks {
    cluster: String,
    path: String,
    #[serde(default)]
    authority: Option<String>,
    #[serde(default)]
    refresh_interval_secs: Option<u64>,
    #[serde(default)]
    timeout_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCustomClaim {
    claim: String,
    values: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStepUp {
    authorization_endpoint: String,
    client_id: String,
    redirect_uri: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTokenSource {
    #[serde(default)]
    authorization_bearer: Option<bool>,
    #[serde(default)]
    header: Option<String>,
    #[serde(default)]
    cookie: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJwtAuthn {
    payload_in_metadata: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    #[serde(default)]
    name: Option<String>,
    #[serde(rename = "match")]
    matcher: RawMatch,
    #[serde(default)]
    require: Option<RawRequire>,
    #[serde(default)]
    on_insufficient: Option<String>,
    #[serde(default)]
    browser: Option<String>,
    #[serde(default)]
    mode: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatch {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    path_prefix: Option<String>,
    #[serde(default)]
    methods: Vec<String>,
    #[serde(default)]
    hosts: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequire {
    level: String,
    #[serde(default)]
    max_auth_age_secs: Option<u64>,
    #[serde(default)]
    acr_values: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstreamHeaders {
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    level: Option<String>,
    #[serde(default)]
    methods: Option<String>,
}

// ---------------------------------------------------------------------------------------
// Stage 2: the checked form.
// ---------------------------------------------------------------------------------------

/// The compiled, checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Global mode (a rule may override it).
    pub mode: Mode,
    /// `WWW-Authenticate` realm.
    pub realm: String,
    /// Trusted issuers.
    pub issuers: Vec<IssuerConfig>,
    /// Where to look for the token, in order.
    pub token_sources: Vec<TokenSource>,
    /// When set, claims come from Envoy jwt_authn's verified payload in dynamic metadata.
    pub jwt_authn: Option<JwtAuthnSource>,
    /// Token length cap, bytes.
    pub max_token_bytes: usize,
    /// Verified-token cache size per worker VM.
    pub token_cache_entries: usize,
    /// Route rules, first match wins.
    pub routes: Vec<RouteRule>,
    /// What to do with requests no rule matches.
    pub unmatched: Unmatched,
    /// Headers set for the upstream on allowed requests.
    pub upstream_headers: UpstreamHeaders,
    /// How request paths are read (ambiguous paths, case).
    pub paths: PathReading,
    /// Whether some rule matches on hosts (then forwarded hosts are read too).
    pub host_rules: bool,
}

/// Reading Envoy jwt_authn's verified payload (`payload_in_metadata`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtAuthnSource {
    /// The `payload_in_metadata` name configured on the jwt_authn provider.
    pub payload_in_metadata: String,
}

impl Config {
    /// The issuer whose `iss` is exactly `iss`.
    pub fn issuer_index(&self, iss: &str) -> Option<usize> {
        crate::token::issuer::issuer_index(&self.issuers, iss)
    }
}

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

/// Parses and checks a configuration document.
pub fn parse(bytes: &[u8]) -> Result<Config, ConfigErrors> {
    if bytes.len() > MAX_CONFIG_BYTES {
        return Err(one(
            "",
            format!(
                "configuration is {} bytes; the limit is {MAX_CONFIG_BYTES}",
                bytes.len()
            ),
        ));
    }
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(one(
            "",
            "configuration is empty (expected a JSON object)".into(),
        ));
    }
    let value: serde_json::Value = match serde_json::from_slice(bytes) {
        Ok(value) => value,
        Err(err) => return Err(one("", format!("not valid JSON: {err}"))),
    };
    let mut shape_errors = Vec::new();
    shape::check(&value, &shape::ROOT, "", &mut shape_errors);
    if !shape_errors.is_empty() {
        return Err(ConfigErrors(shape_errors));
    }
    let raw: RawConfig = match serde_json::from_value(value) {
        Ok(raw) => raw,
        Err(err) => return Err(one("", err.to_string())),
    };
    let mut errors = Vec::new();
    let config = compile(raw, &mut errors);
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors(errors))
    }
}

fn one(path: &str, message: String) -> ConfigErrors {
    ConfigErrors(vec![ConfigError {
        path: path.to_string(),
        message,
    }])
}

fn push(errors: &mut Vec<ConfigError>, path: impl Into<String>, message: impl Into<String>) {
    errors.push(ConfigError {
        path: path.into(),
        message: message.into(),
    });
}

/// Quotes a configuration value for an error message (JSON escaping, length-capped).
fn quote(value: &str) -> String {
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

fn parse_level(value: &str, path: &str, errors: &mut Vec<ConfigError>) -> Option<Level> {
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

fn parse_choice<T: Copy>(
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

const MODES: [(&str, Mode); 2] = [
    ("enforce", Mode::Enforce),
    ("report_only", Mode::ReportOnly),
];

/// A header name we may set or read: RFC 7230 token characters, lower-case, not a pseudo-header.
fn check_header_name(name: &str, path: &str, errors: &mut Vec<ConfigError>) -> Option<String> {
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

fn is_http_url(value: &str) -> bool {
    (value.starts_with("https://") || value.starts_with("http://"))
        && value.len() > "https://".len()
        && !value
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
}

fn compile(raw: RawConfig, errors: &mut Vec<ConfigError>) -> Config {
    let mode = parse_choice(raw.mode.as_deref(), Mode::Enforce, &MODES, "mode", errors);
    let realm = raw.realm.unwrap_or_else(|| "mfa-gate".to_string());
    if realm.is_empty()
        || realm.len() > 128
        || !realm
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        push(
            errors,
            "realm",
            format!(
                "invalid realm {} (printable ASCII without quotes or backslashes, 1-128 characters)",
                quote(&realm)
            ),
        );
    }

    let max_token_bytes = raw.max_token_bytes.unwrap_or(DEFAULT_MAX_TOKEN_BYTES);
    if !(256..=65_536).contains(&max_token_bytes) {
        push(
            errors,
            "max_token_bytes",
            format!("{max_token_bytes} is out of range (256 to 65536)"),
        );
    }
    let token_cache_entries = raw
        .token_cache_entries
        .unwrap_or(DEFAULT_TOKEN_CACHE_ENTRIES);
    if token_cache_entries > 1_000_000 {
        push(
            errors,
            "token_cache_entries",
            format!("{token_cache_entries} is out of range (0 to 1000000)"),
        );
    }

    let jwt_authn = raw.jwt_authn.map(|j| {
        if j.payload_in_metadata.is_empty() {
            push(
                errors,
                "jwt_authn.payload_in_metadata",
                "must name the jwt_authn provider's payload_in_metadata key",
            );
        }
        JwtAuthnSource {
            payload_in_metadata: j.payload_in_metadata,
        }
    });

    if raw.issuers.is_empty() {
        push(errors, "issuers", "at least one issuer is required");
    }
    let mut issuers = Vec::with_capacity(raw.issuers.len());
    for (i, issuer) in raw.issuers.into_iter().enumerate() {
        let path = format!("issuers[{i}]");
        if let Some(c) = compile_issuer(issuer, &path, max_token_bytes, jwt_authn.is_some(), errors)
        {
            if issuers
                .iter()
                .any(|o: &IssuerConfig| o.verify.issuer == c.verify.issuer)
            {
                push(
                    errors,
                    format!("{path}.issuer"),
                    format!("duplicate issuer {}", quote(&c.verify.issuer)),
                );
            }
            issuers.push(c);
        }
    }

    let token_sources = match raw.token_sources {
        None => vec![TokenSource::AuthorizationBearer],
        Some(sources) => {
            if sources.is_empty() {
                push(errors, "token_sources", "must list at least one source");
            }
            sources
                .into_iter()
                .enumerate()
                .filter_map(|(i, s)| {
                    compile_token_source(s, &format!("token_sources[{i}]"), errors)
                })
                .collect()
        }
    };

    let mut routes = Vec::with_capacity(raw.routes.len());
    for (i, route) in raw.routes.into_iter().enumerate() {
        let path = format!("routes[{i}]");
        if let Some(r) = compile_route(route, i, &path, mode, errors) {
            routes.push(r);
        }
    }

    let unmatched = parse_choice(
        raw.unmatched.as_deref(),
        Unmatched::RequireToken,
        &[
            ("allow", Unmatched::Allow),
            ("require_token", Unmatched::RequireToken),
            ("deny", Unmatched::Deny),
        ],
        "unmatched",
        errors,
    );

    let headers = raw.upstream_headers.unwrap_or(RawUpstreamHeaders {
        subject: None,
        level: None,
        methods: None,
    });
    let mut header = |value: Option<String>, default: &str, field: &str| -> Option<String> {
        let name = value.unwrap_or_else(|| default.to_string());
        if name.is_empty() {
            return None;
        }
        check_header_name(&name, &format!("upstream_headers.{field}"), errors)
    };
    let [default_subject, default_level, default_methods] = DEFAULT_UPSTREAM_HEADERS;
    let upstream_headers = UpstreamHeaders {
        subject: header(headers.subject, default_subject, "subject"),
        level: header(headers.level, default_level, "level"),
        methods: header(headers.methods, default_methods, "methods"),
    };
    let paths = compile_paths(raw.paths, errors);
    let host_rules = routes.iter().any(|r| !r.matcher.hosts.is_empty());

    Config {
        mode,
        realm,
        issuers,
        token_sources,
        jwt_authn,
        max_token_bytes,
        token_cache_entries,
        routes,
        unmatched,
        upstream_headers,
        paths,
        host_rules,
    }
}

fn compile_paths(raw: Option<RawPaths>, errors: &mut Vec<ConfigError>) -> PathReading {
    let Some(raw) = raw else {
        return PathReading::default();
    };
    PathReading {
        ambiguous: parse_choice(
            raw.ambiguous.as_deref(),
            AmbiguousPaths::Reject,
            &[
                ("reject", AmbiguousPaths::Reject),
                ("normalize", AmbiguousPaths::Normalize),
            ],
            "paths.ambiguous",
            errors,
        ),
        case_insensitive: raw.case_insensitive,
    }
}

fn compile_issuer(
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

    let hmac_secret = raw.hmac_secret_base64.as_deref().and_then(|b64| {
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
    });

    let algorithms = match raw.algorithms {
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
                    Some(a) if a.is_hmac() && hmac_secret.is_none() => push(
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
    };

    let inline_keys = raw.jwks.as_ref().and_then(|jwks| {
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
    });

    let remote_jwks = raw.remote_jwks.map(|r| {
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
    });

    let needs_keys = !claims_from_metadata;
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

    let profile = match raw.profile.as_deref() {
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
    let amr_levels = level_map(raw.amr_levels, "amr_levels");
    let acr_levels = level_map(raw.acr_levels, "acr_levels");
    let custom_claims = raw
        .custom_claims
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

    let step_up = raw.step_up.map(|s| {
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
    });

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
        classifier: ClassifierSettings {
            profile,
            amr_levels,
            acr_levels,
            phishing_resistant_acrs: raw.phishing_resistant_acrs,
            custom_claims,
        },
        step_up,
    })
}

fn compile_token_source(
    raw: RawTokenSource,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<TokenSource> {
    match (raw.authorization_bearer, raw.header, raw.cookie) {
        (Some(true), None, None) => Some(TokenSource::AuthorizationBearer),
        (None, Some(h), None) => {
            check_header_name(&h, &format!("{path}.header"), errors).map(TokenSource::Header)
        }
        (None, None, Some(c)) => {
            let valid = !c.is_empty()
                && c.len() <= 256
                && c.bytes()
                    .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
            if valid {
                Some(TokenSource::Cookie(c))
            } else {
                push(
                    errors,
                    format!("{path}.cookie"),
                    format!("invalid cookie name {}", quote(&c)),
                );
                None
            }
        }
        _ => {
            push(
                errors,
                path,
                "each source sets exactly one of: authorization_bearer (true), header, cookie",
            );
            None
        }
    }
}

fn compile_route(
    raw: RawRoute,
    index: usize,
    path: &str,
    global_mode: Mode,
    errors: &mut Vec<ConfigError>,
) -> Option<RouteRule> {
    let before = errors.len();
    let name = raw.name.unwrap_or_else(|| format!("route_{index}"));
    let m = raw.matcher;
    match (&m.path, &m.path_prefix) {
        (Some(_), Some(_)) => push(
            errors,
            format!("{path}.match"),
            "set either path or path_prefix, not both",
        ),
        (None, None) => push(
            errors,
            format!("{path}.match"),
            "set path (exact) or path_prefix",
        ),
        _ => {}
    }
    for (field, value) in [("path", &m.path), ("path_prefix", &m.path_prefix)] {
        if let Some(v) = value {
            if !v.starts_with('/') || v.contains('?') || v.contains('#') {
                push(
                    errors,
                    format!("{path}.match.{field}"),
                    format!(
                        "{} must start with \"/\" and contain no query or fragment",
                        quote(v)
                    ),
                );
            }
        }
    }
    let mut methods = Vec::new();
    for (j, method) in m.methods.iter().enumerate() {
        let upper = method.to_ascii_uppercase();
        if upper.is_empty() || !upper.bytes().all(|b| b.is_ascii_uppercase()) {
            push(
                errors,
                format!("{path}.match.methods[{j}]"),
                format!("invalid method {}", quote(method)),
            );
        } else {
            methods.push(upper);
        }
    }
    let mut hosts = Vec::new();
    for (j, host) in m.hosts.iter().enumerate() {
        let lower = host.to_ascii_lowercase();
        let bare = lower.strip_prefix("*.").unwrap_or(&lower);
        if bare.is_empty()
            || bare.contains(':')
            || !bare
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            push(
                errors,
                format!("{path}.match.hosts[{j}]"),
                format!(
                    "invalid host {} (a DNS name without port, optionally \"*.\" for subdomains)",
                    quote(host)
                ),
            );
        } else {
            hosts.push(lower);
        }
    }

    let require = raw.require.and_then(|r| {
        let level = parse_level(&r.level, &format!("{path}.require.level"), errors)?;
        if let Some(age) = r.max_auth_age_secs {
            if age == 0 {
                push(
                    errors,
                    format!("{path}.require.max_auth_age_secs"),
                    "must be greater than 0",
                );
            }
        }
        let acr_values = r
            .acr_values
            .unwrap_or_else(|| default_acr_values(level).to_string());
        if !acr_values
            .bytes()
            .all(|b| (0x21..0x7f).contains(&b) && b != b'"' && b != b'\\' || b == b' ')
        {
            push(
                errors,
                format!("{path}.require.acr_values"),
                format!("invalid acr_values {}", quote(&acr_values)),
            );
        }
        Some(Requirement {
            level,
            max_auth_age_secs: r.max_auth_age_secs,
            acr_values,
        })
    });

    let on_insufficient = parse_choice(
        raw.on_insufficient.as_deref(),
        OnInsufficient::StepUp,
        &[
            ("step_up", OnInsufficient::StepUp),
            ("deny", OnInsufficient::Deny),
        ],
        &format!("{path}.on_insufficient"),
        errors,
    );
    let browser = parse_choice(
        raw.browser.as_deref(),
        BrowserMode::Auto,
        &[
            ("auto", BrowserMode::Auto),
            ("redirect", BrowserMode::Redirect),
            ("api", BrowserMode::Api),
        ],
        &format!("{path}.browser"),
        errors,
    );
    let mode = parse_choice(
        raw.mode.as_deref(),
        global_mode,
        &MODES,
        &format!("{path}.mode"),
        errors,
    );
    if errors.len() > before {
        return None;
    }
    Some(RouteRule {
        name_json: crate::json::json_string(&name).into(),
        name: name.into(),
        matcher: RouteMatch {
            path_exact: m.path,
            path_prefix: m.path_prefix,
            methods,
            hosts,
        },
        require,
        mode,
        on_insufficient,
        browser,
    })
}

/// The `acr_values` asked for on step-up when a rule names none: the OpenID EAP values
/// `phr` / `phrh` for the phishing-resistant levels, otherwise nothing specific.
pub fn default_acr_values(level: Level) -> &'static str {
    match level {
        Level::HardwareBoundPhishingResistant => "phrh",
        Level::PhishingResistant => "phr",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HMAC_B64: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

    fn minimal(extra_issuer: &str, extra_root: &str) -> String {
        format!(
            r#"{{"issuers":[{{"issuer":"https://idp.example","audiences":["api"],
                "remote_jwks":{{"cluster":"idp","path":"/jwks"}}{extra_issuer}}}],
                "routes":[{{"name":"admin","match":{{"path_prefix":"/admin"}},
                "require":{{"level":"phishing_resistant","max_auth_age_secs":900}}}}]{extra_root}}}"#
        )
    }

    fn errors_of(doc: &str) -> Vec<String> {
        match parse(doc.as_bytes()) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn minimal_config_gets_documented_defaults() {
        let c = parse(minimal("", "").as_bytes()).unwrap();
        assert_eq!(c.mode, Mode::Enforce);
        assert_eq!(c.realm, "mfa-gate");
        assert_eq!(c.max_token_bytes, 8192);
        assert_eq!(c.token_cache_entries, 10_000);
        assert_eq!(c.unmatched, Unmatched::RequireToken);
        assert_eq!(c.token_sources, vec![TokenSource::AuthorizationBearer]);
        let issuer = &c.issuers[0];
        assert_eq!(issuer.verify.clock_skew_secs, 60);
        assert_eq!(issuer.verify.algorithms, DEFAULT_ALGORITHMS.to_vec());
        let remote = issuer.remote_jwks.as_ref().unwrap();
        assert_eq!(remote.authority, "idp");
        assert_eq!(remote.refresh_interval_secs, 600);
        let rule = &c.routes[0];
        assert_eq!(rule.require.as_ref().unwrap().acr_values, "phr");
        assert_eq!(rule.on_insufficient, OnInsufficient::StepUp);
        assert_eq!(
            c.upstream_headers.names().collect::<Vec<_>>(),
            vec![
                "x-mfa-gate-subject",
                "x-mfa-gate-level",
                "x-mfa-gate-methods"
            ]
        );
    }

    #[test]
    fn misspelt_level_names_the_path_and_quotes_the_value() {
        let doc = minimal("", "").replace("\"phishing_resistant\"", "\"phishing_resistent\"");
        let errs = errors_of(&doc);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].starts_with(
            "routes[0].require.level: unknown level \"phishing_resistent\" (expected one of: none, password,"
        ), "{}", errs[0]);
    }

    #[test]
    fn unknown_field_is_an_error_with_its_path() {
        let doc = minimal("", r#","routes_typo":[]"#);
        let errs = errors_of(&doc);
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].contains("unknown field `routes_typo`"),
            "{}",
            errs[0]
        );
        let doc = minimal(r#","audience":"x""#, "");
        let errs = errors_of(&doc);
        assert!(errs[0].starts_with("issuers[0]"), "{}", errs[0]);
        assert!(errs[0].contains("unknown field `audience`"), "{}", errs[0]);
    }

    #[test]
    fn nested_unknown_fields_and_types_name_their_paths() {
        let doc = minimal("", "").replace(
            r#""match":{"path_prefix":"/admin"}"#,
            r#""match":{"pathprefix":"/admin","methods":"GET"}"#,
        );
        let errs = errors_of(&doc);
        assert!(errs.contains(&"routes[0].match: unknown field `pathprefix` (expected one of: path, path_prefix, methods, hosts)".to_string()), "{errs:?}");
        assert!(
            errs.contains(
                &"routes[0].match.methods: expected an array, found a string".to_string()
            ),
            "{errs:?}"
        );
        let doc = minimal(
            r#","remote_jwks":{"cluster":"idp"},"clock_skew_secs":-5"#,
            "",
        )
        .replacen(r#","remote_jwks":{"cluster":"idp","path":"/jwks"}"#, "", 1);
        let errs = errors_of(&doc);
        assert!(
            errs.contains(&"issuers[0].remote_jwks.path: is required".to_string()),
            "{errs:?}"
        );
        assert!(
            errs.contains(
                &"issuers[0].clock_skew_secs: expected a non-negative integer, found a number"
                    .to_string()
            ),
            "{errs:?}"
        );
    }

    #[test]
    fn wrong_type_names_the_path() {
        let doc = minimal("", r#","max_token_bytes":"big""#);
        let errs = errors_of(&doc);
        assert!(errs[0].starts_with("max_token_bytes:"), "{}", errs[0]);
    }

    #[test]
    fn several_errors_are_all_reported() {
        let doc = r#"{"mode":"enforcing","issuers":[{"issuer":"","remote_jwks":{"cluster":"c","path":"jwks","refresh_interval_secs":1}}],
            "routes":[{"match":{"path_prefix":"/a","path":"/b","methods":["G3T"]},"require":{"level":"gold"},"browser":"maybe"}]}"#;
        let errs = errors_of(doc);
        let joined = errs.join("\n");
        for expected in [
            "mode: unknown value \"enforcing\" (expected one of: enforce, report_only)",
            "issuers[0].issuer: must not be empty",
            "issuers[0].audiences: list at least one audience",
            "issuers[0].remote_jwks.path: \"jwks\" must start with \"/\"",
            "issuers[0].remote_jwks.refresh_interval_secs: 1 is below the minimum of 10",
            "routes[0].match: set either path or path_prefix, not both",
            "routes[0].match.methods[0]: invalid method \"G3T\"",
            "routes[0].require.level: unknown level \"gold\"",
            "routes[0].browser: unknown value \"maybe\"",
        ] {
            assert!(
                joined.contains(expected),
                "missing {expected:?} in:\n{joined}"
            );
        }
    }

    #[test]
    fn alg_none_and_unconfigured_hmac_are_refused() {
        let errs = errors_of(&minimal(r#","algorithms":["none","HS256","RS1"]"#, ""));
        let joined = errs.join("\n");
        assert!(joined.contains("issuers[0].algorithms[0]: \"none\" is never allowed"));
        assert!(joined.contains("issuers[0].algorithms[1]: \"HS256\" needs hmac_secret_base64"));
        assert!(joined.contains("issuers[0].algorithms[2]: unknown algorithm \"RS1\""));
    }

    #[test]
    fn hmac_with_secret_is_accepted_and_secret_never_quoted() {
        let ok = minimal(
            &format!(r#","algorithms":["HS256"],"hmac_secret_base64":"{HMAC_B64}""#),
            "",
        );
        let c = parse(ok.as_bytes()).unwrap();
        assert_eq!(c.issuers[0].verify.algorithms, vec![Algorithm::HS256]);
        assert_eq!(
            c.issuers[0].hmac_secret.as_deref().map(<[u8]>::len),
            Some(32)
        );
        let bad = minimal(r#","hmac_secret_base64":"s3cr3t-value!!""#, "");
        let joined = errors_of(&bad).join("\n");
        assert!(joined.contains("hmac_secret_base64: not valid standard base64"));
        assert!(!joined.contains("s3cr3t"));
    }

    #[test]
    fn token_sources_each_set_exactly_one_kind() {
        let doc = minimal(
            "",
            r#","token_sources":[{"cookie":"session"},{"header":"X-Session-Token"},{"authorization_bearer":true}]"#,
        );
        let c = parse(doc.as_bytes()).unwrap();
        assert_eq!(
            c.token_sources,
            vec![
                TokenSource::Cookie("session".into()),
                TokenSource::Header("x-session-token".into()),
                TokenSource::AuthorizationBearer
            ]
        );
        let errs = errors_of(&minimal(
            "",
            r#","token_sources":[{"cookie":"a","header":"b"}]"#,
        ));
        assert!(errs[0].starts_with("token_sources[0]: each source sets exactly one"));
        let errs = errors_of(&minimal(
            "",
            r#","token_sources":[{"header":"bad header"}]"#,
        ));
        assert!(errs[0].starts_with("token_sources[0].header: invalid header name \"bad header\""));
    }

    #[test]
    fn metadata_mode_needs_no_keys_or_audiences() {
        let doc = r#"{"jwt_authn":{"payload_in_metadata":"jwt_payload"},
            "issuers":[{"issuer":"https://idp.example","profile":"okta"}],"routes":[]}"#;
        let c = parse(doc.as_bytes()).unwrap();
        assert_eq!(c.jwt_authn.unwrap().payload_in_metadata, "jwt_payload");
        assert_eq!(c.issuers[0].classifier.profile, Profile::Okta);
    }

    #[test]
    fn issuer_without_keys_is_an_error() {
        let doc = r#"{"issuers":[{"issuer":"https://idp.example","audiences":["a"]}]}"#;
        let errs = errors_of(doc);
        assert!(errs[0].starts_with("issuers[0]: needs keys"), "{}", errs[0]);
    }

    #[test]
    fn empty_garbage_and_non_object_documents_are_clear_errors() {
        assert_eq!(
            errors_of("  "),
            vec!["configuration is empty (expected a JSON object)"]
        );
        assert!(!errors_of("{not json").is_empty());
        assert!(!errors_of("[]").is_empty());
        assert!(errors_of(&format!("{} trailing", minimal("", "")))[0].contains("trailing"));
        let invalid_utf8 = [b'{', 0xff, b'}'];
        assert!(parse(&invalid_utf8).is_err());
    }

    #[test]
    fn profile_custom_claims_and_overrides_compile() {
        let doc = minimal(
            r#","profile":"entra_id","phishing_resistant_acrs":["c1"],"amr_levels":{"x":"otp"},
               "custom_claims":[{"claim":"strength","values":{"nm":"push_number_match","bad":"platinum"}}]"#,
            "",
        );
        let errs = errors_of(&doc);
        assert_eq!(
            errs,
            vec!["issuers[0].custom_claims[0].values.bad: unknown level \"platinum\" (expected one of: none, password, push, push_number_match, otp, phishing_resistant, hardware_bound_phishing_resistant)"]
        );
        let c = parse(doc.replace(",\"bad\":\"platinum\"", "").as_bytes()).unwrap();
        let cl = &c.issuers[0].classifier;
        assert_eq!(cl.profile, Profile::EntraId);
        assert_eq!(cl.amr_levels, vec![("x".to_string(), Level::Otp)]);
        assert_eq!(
            cl.custom_claims[0].values,
            vec![("nm".to_string(), Level::PushNumberMatch)]
        );
    }

    #[test]
    fn step_up_endpoint_must_be_http_urls() {
        let doc = minimal(
            r#","step_up":{"authorization_endpoint":"javascript:alert(1)","client_id":"app","redirect_uri":"https://app/cb"}"#,
            "",
        );
        let errs = errors_of(&doc);
        assert_eq!(
            errs,
            vec!["issuers[0].step_up.authorization_endpoint: \"javascript:alert(1)\" is not an http(s) URL"]
        );
    }

    #[test]
    fn upstream_header_can_be_disabled_or_renamed() {
        let doc = minimal(
            "",
            r#","upstream_headers":{"subject":"","level":"X-Auth-Level"}"#,
        );
        let c = parse(doc.as_bytes()).unwrap();
        assert_eq!(c.upstream_headers.subject, None);
        assert_eq!(c.upstream_headers.level.as_deref(), Some("x-auth-level"));
        assert_eq!(
            c.upstream_headers.methods.as_deref(),
            Some("x-mfa-gate-methods")
        );
    }
}
