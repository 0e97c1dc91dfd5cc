//! Plugin configuration, in two stages: plain serde types that mirror the JSON (`raw`,
//! `deny_unknown_fields` everywhere: a typo in a security policy must not pass silently),
//! then [`parse`] compiles them into a checked [`Config`] (`issuer`, `route`; `error` holds
//! the errors and the field readers that report them). Every error names the field
//! path and quotes the bad value, e.g.
//! `routes[2].require.level: unknown level "phishing_resistent" (expected one of: ...)`.

mod error;
mod introspection;
mod issuer;
mod push_prompts;
mod sign_in;
mod raw;
mod revocation;
mod risk;
mod route;
mod shape;
#[cfg(test)]
mod tests;

use crate::policy::{Mode, OnInsufficient, RouteRule, Unmatched};
use crate::request::{AmbiguousPaths, PathReading};
use crate::token::extract::TokenSource;
use crate::token::jose::Algorithm;
use error::{check_header_name, one, parse_choice, push, quote, MODES};
use issuer::compile_issuer;
use push_prompts::compile_push_prompts;
use raw::{RawConfig, RawIssuer, RawPaths, RawTokenSource, RawUpstreamHeaders};
use revocation::compile_revocation;
use risk::{compile_binding, compile_risk};
use route::compile_route;
use sign_in::compile_sign_in;

pub use crate::prompts::PromptSettings;
pub use crate::response::StepUpEndpoint;
pub use crate::token::issuer::{IssuerConfig, RemoteJwks};
pub use crate::token::session::{UpstreamHeaders, DEFAULT_UPSTREAM_HEADERS};
pub use error::{ConfigError, ConfigErrors};
pub use revocation::{
    BackchannelLogout, IdpApi, IdpSessions, Poll, PushEndpoint, RevocationConfig, StoreUnavailable,
    Transmitter,
};
pub use risk::{
    BindingConfig, DpopConfig, LocationConfig, PostureConfig, PostureSourceConfig, RiskConfig,
};
pub use route::default_acr_values;

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
    /// Revocation (the shared set, transmitters, back-channel logout), when configured.
    pub revocation: Option<RevocationConfig>,
    /// How bound tokens are checked (always: a token with `cnf` is held to it).
    pub binding: BindingConfig,
    /// The risk score's table, thresholds and signal sources, when configured.
    pub risk: Option<RiskConfig>,
    /// The push endpoints guarded (prompt limits, fatigue signature), when configured.
    pub push_prompts: Option<PromptSettings>,
    /// The step-up sign-in the gateway finishes itself, when configured.
    pub sign_in: Option<crate::sign_in::SignInConfig>,
}

/// Reading Envoy jwt_authn's verified payload (`payload_in_metadata`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtAuthnSource {
    /// The `payload_in_metadata` name configured on the jwt_authn provider.
    pub payload_in_metadata: String,
}

impl Config {
    /// The remote refresh interval of every key source, in the order the glue keeps their
    /// keys: the issuers, then the revocation transmitters (`None`: keys not fetched).
    pub fn key_refresh_intervals(&self) -> Vec<Option<u64>> {
        let issuers = self.issuers.iter().map(|i| i.remote_jwks.as_ref());
        let transmitters = (self.revocation.iter())
            .flat_map(|r| r.transmitters.iter().map(|t| t.remote_jwks.as_ref()));
        issuers
            .chain(transmitters)
            .map(|r| r.map(|r| r.refresh_interval_secs))
            .collect()
    }

    /// The issuer whose `iss` is exactly `iss`.
    pub fn issuer_index(&self, iss: &str) -> Option<usize> {
        crate::token::issuer::issuer_index(&self.issuers, iss)
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

fn compile(raw: RawConfig, errors: &mut Vec<ConfigError>) -> Config {
    let mode = parse_choice(raw.mode.as_deref(), Mode::Enforce, &MODES, "mode", errors);
    let realm = compile_realm(raw.realm, errors);
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

    let claims_from_metadata = jwt_authn.is_some();
    let issuers = compile_issuers(raw.issuers, max_token_bytes, claims_from_metadata, errors);
    let token_sources = compile_token_sources(raw.token_sources, errors);

    let binding = compile_binding(raw.binding, errors);
    let risk = compile_risk(raw.risk, errors);
    let thresholds = risk
        .as_ref()
        .map_or(crate::policy::DEFAULT_THRESHOLDS, |r| r.thresholds);
    let mut routes = Vec::with_capacity(raw.routes.len());
    for (i, route) in raw.routes.into_iter().enumerate() {
        let path = format!("routes[{i}]");
        if let Some(r) = compile_route(route, i, &path, mode, thresholds, errors) {
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

    let upstream_headers = compile_upstream_headers(raw.upstream_headers, errors);
    let paths = compile_paths(raw.paths, errors);
    let host_rules = routes.iter().any(|r| !r.matcher.hosts.is_empty());
    let revocation = compile_revocation(raw.revocation, &issuers, errors);
    if revocation.is_none() {
        let revoking = routes
            .iter()
            .position(|r| r.on_insufficient == OnInsufficient::Revoke);
        if let Some(i) = revoking {
            push(
                errors,
                format!("routes[{i}].on_insufficient"),
                "\"revoke\" needs a revocation section (where the revocation is kept)",
            );
        }
        let scored = routes.iter().position(|r| {
            r.risk
                .as_ref()
                .is_some_and(|k| k.thresholds.revoke_at.is_some())
        });
        if let Some(i) = scored {
            push(
                errors,
                format!("routes[{i}].risk.revoke_at"),
                "a revoke threshold needs a revocation section (where the revocation is kept)",
            );
        }
    }

    let push_prompts = compile_push_prompts(raw.push_prompts, revocation.is_some(), errors);
    let sign_in = compile_sign_in(raw.sign_in, &issuers, &token_sources, errors);

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
        revocation,
        binding,
        risk,
        push_prompts,
        sign_in,
    }
}

/// The `WWW-Authenticate` realm: printable ASCII without quotes or backslashes.
fn compile_realm(raw: Option<String>, errors: &mut Vec<ConfigError>) -> String {
    let realm = raw.unwrap_or_else(|| "mfa-gate".to_string());
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
    realm
}

/// Every issuer, each `iss` once.
fn compile_issuers(
    raw: Vec<RawIssuer>,
    max_token_bytes: usize,
    claims_from_metadata: bool,
    errors: &mut Vec<ConfigError>,
) -> Vec<IssuerConfig> {
    if raw.is_empty() {
        push(errors, "issuers", "at least one issuer is required");
    }
    let mut issuers = Vec::with_capacity(raw.len());
    for (i, issuer) in raw.into_iter().enumerate() {
        let path = format!("issuers[{i}]");
        if let Some(c) =
            compile_issuer(issuer, &path, max_token_bytes, claims_from_metadata, errors)
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
    introspection::check_one_introspecting(&issuers, errors);
    issuers
}

/// Where the token is looked for, in order (default: the bearer header).
fn compile_token_sources(
    raw: Option<Vec<RawTokenSource>>,
    errors: &mut Vec<ConfigError>,
) -> Vec<TokenSource> {
    match raw {
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
    }
}

/// The identity headers' names (default names; an empty name disables one).
fn compile_upstream_headers(
    raw: Option<RawUpstreamHeaders>,
    errors: &mut Vec<ConfigError>,
) -> UpstreamHeaders {
    let headers = raw.unwrap_or(RawUpstreamHeaders {
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
    UpstreamHeaders {
        subject: header(headers.subject, default_subject, "subject"),
        level: header(headers.level, default_level, "level"),
        methods: header(headers.methods, default_methods, "methods"),
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
