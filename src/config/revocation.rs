//! The `revocation` section: the shared revocation set's bounds, the claims email and
//! opaque subjects are matched through, the Shared Signals transmitters (keys, poll, push)
//! and back-channel logout. Secrets are never written here: a field names the Envoy VM
//! environment variable that holds each one (`vm_config.environment_variables`).

use super::error::{parse_choice, push, quote};
use super::issuer::{compile_algorithms, compile_inline_keys, compile_remote_jwks};
use super::raw::{RawIdpSessions, RawPoll, RawPush, RawRevocation, RawTransmitter};
use super::{ConfigError, IssuerConfig, RemoteJwks};
use crate::token::jose::Algorithm;
use crate::token::jwks::KeySet;

/// Default cap on revocation entries (all shards together).
pub const DEFAULT_MAX_ENTRIES: usize = 100_000;
/// Largest cap accepted.
pub const MAX_MAX_ENTRIES: usize = 4_000_000;
/// Default maximum token lifetime (`exp - iat`) of every issuer, seconds.
pub const DEFAULT_MAX_TOKEN_LIFETIME_SECS: u64 = 86_400;
/// Default seconds between polls.
pub const DEFAULT_POLL_INTERVAL_SECS: u64 = 5;
/// Default `maxEvents` per poll.
pub const DEFAULT_POLL_MAX_EVENTS: u32 = 100;
/// Default poll timeout, milliseconds.
pub const DEFAULT_POLL_TIMEOUT_MS: u64 = 5000;

/// What a gated request gets when the revocation set cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreUnavailable {
    /// Refuse (401 `invalid_token`, reason `revocation_unavailable`): fail closed.
    Deny,
    /// Go on as if nothing were revoked (counted).
    Allow,
}

/// The compiled `revocation` section.
#[derive(Debug, Clone)]
pub struct RevocationConfig {
    /// Cap on entries, all shards together.
    pub max_entries: usize,
    /// Longest `exp - iat` a token may have; an entry is kept this long (plus skew).
    pub max_token_lifetime_secs: u64,
    /// The claim email subjects are matched through (default `email`).
    pub email_claim: Option<String>,
    /// The claim opaque subjects are matched through (none by default).
    pub opaque_claim: Option<String>,
    /// Unreadable store: deny or allow.
    pub on_store_unavailable: StoreUnavailable,
    /// Shared Signals transmitters.
    pub transmitters: Vec<Transmitter>,
    /// Back-channel logout, when enabled.
    pub backchannel_logout: Option<BackchannelLogout>,
    /// Per issuer: the IdP API that ends a session the gate revokes.
    pub idp_sessions: Vec<IdpSessions>,
    /// By issuer index: the claim naming the user at the IdP, when its sessions are ended
    /// there.
    pub idp_user_claims: Vec<Option<String>>,
}

/// Which IdP API ends a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdpApi {
    /// `DELETE /api/v1/users/{user}/sessions`, `Authorization: SSWS <token>`.
    Okta,
    /// `DELETE /admin/realms/{realm}/sessions/{sid}` (or `POST .../users/{user}/logout`).
    Keycloak,
    /// Microsoft Graph `POST /v1.0/users/{user}/revokeSignInSessions`.
    Entra,
    /// `POST /api/v2/sessions/{sid}/revoke` (or `DELETE /api/v2/users/{user}/sessions`).
    Auth0,
    /// RFC 7009 token revocation: `POST <path>` `token=...`, client authentication Basic.
    Rfc7009,
}

/// Ending sessions at one issuer's IdP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpSessions {
    /// The token issuer (`iss`) whose sessions this API ends.
    pub issuer: String,
    /// Which API.
    pub api: IdpApi,
    /// Envoy cluster of the API.
    pub cluster: String,
    /// `:authority` of the calls.
    pub authority: String,
    /// Prefix of every path (the API's base path; the full path for RFC 7009).
    pub path_prefix: String,
    /// The VM environment variable holding the API credential (for RFC 7009: the client
    /// secret).
    pub credential_env: String,
    /// Keycloak's realm.
    pub realm: Option<String>,
    /// RFC 7009's client id.
    pub client_id: Option<String>,
    /// The claim naming the user at the IdP (default `sub`; Okta `uid`, Entra `oid`).
    pub user_claim: String,
    /// Call timeout, milliseconds.
    pub timeout_ms: u64,
}

/// A Shared Signals transmitter whose events are trusted.
#[derive(Debug, Clone)]
pub struct Transmitter {
    /// Short name (counters, lease, logs).
    pub name: String,
    /// The SETs' `iss`.
    pub issuer: String,
    /// The `aud` the SETs must name.
    pub audience: String,
    /// Algorithms accepted on SETs.
    pub algorithms: Vec<Algorithm>,
    /// Keys given inline.
    pub inline_keys: Option<KeySet>,
    /// Keys fetched from a cluster.
    pub remote_jwks: Option<RemoteJwks>,
    /// The token issuers (`iss`) its email and opaque subjects belong to.
    pub subject_issuers: Vec<String>,
    /// Poll delivery (RFC 8936).
    pub poll: Option<Poll>,
    /// Push delivery (RFC 8935).
    pub push: Option<PushEndpoint>,
}

/// Poll delivery settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Poll {
    /// Envoy cluster of the transmitter.
    pub cluster: String,
    /// The poll endpoint's path.
    pub path: String,
    /// `:authority` of the poll request.
    pub authority: String,
    /// Seconds between polls.
    pub interval_secs: u64,
    /// `maxEvents` asked for.
    pub max_events: u32,
    /// Poll timeout, milliseconds.
    pub timeout_ms: u64,
    /// The VM environment variable holding the bearer credential.
    pub bearer_env: String,
}

/// Push delivery settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushEndpoint {
    /// Listener path SETs are POSTed to.
    pub path: String,
    /// The VM environment variable holding the bearer credential pushers must present.
    pub bearer_env: String,
}

/// Back-channel logout settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackchannelLogout {
    /// Listener path logout tokens are POSTed to.
    pub path: String,
    /// The `aud` values accepted (the relying party's client ids).
    pub audiences: Vec<String>,
}

impl RevocationConfig {
    /// The listener paths the gate answers itself (push and logout endpoints).
    pub fn endpoint_paths(&self) -> impl Iterator<Item = &str> {
        let push = self
            .transmitters
            .iter()
            .filter_map(|t| t.push.as_ref().map(|p| p.path.as_str()));
        push.chain(self.backchannel_logout.iter().map(|b| b.path.as_str()))
    }
}

pub(super) fn compile_revocation(
    raw: Option<RawRevocation>,
    issuers: &[IssuerConfig],
    errors: &mut Vec<ConfigError>,
) -> Option<RevocationConfig> {
    let raw = raw?;
    let max_entries = raw.max_entries.unwrap_or(DEFAULT_MAX_ENTRIES);
    if !(crate::signals::revocation::SHARDS..=MAX_MAX_ENTRIES).contains(&max_entries) {
        push(
            errors,
            "revocation.max_entries",
            format!(
                "{max_entries} is out of range ({} to {MAX_MAX_ENTRIES})",
                crate::signals::revocation::SHARDS
            ),
        );
    }
    let lifetime = raw
        .max_token_lifetime_secs
        .unwrap_or(DEFAULT_MAX_TOKEN_LIFETIME_SECS);
    if !(60..=31_536_000).contains(&lifetime) {
        push(
            errors,
            "revocation.max_token_lifetime_secs",
            format!("{lifetime} is out of range (60 to 31536000)"),
        );
    }
    let (email_claim, opaque_claim) = match raw.subject_claims {
        None => (Some("email".to_string()), None),
        Some(c) => (
            c.email
                .or(Some("email".to_string()))
                .filter(|s| !s.is_empty()),
            c.opaque.filter(|s| !s.is_empty()),
        ),
    };
    let on_store_unavailable = parse_choice(
        raw.on_store_unavailable.as_deref(),
        StoreUnavailable::Deny,
        &[
            ("deny", StoreUnavailable::Deny),
            ("allow", StoreUnavailable::Allow),
        ],
        "revocation.on_store_unavailable",
        errors,
    );
    let mut transmitters: Vec<Transmitter> = Vec::new();
    for (i, t) in raw.transmitters.into_iter().enumerate() {
        let path = format!("revocation.transmitters[{i}]");
        if let Some(t) = compile_transmitter(t, &path, issuers, errors) {
            if transmitters.iter().any(|o| o.name == t.name) {
                push(
                    errors,
                    format!("{path}.name"),
                    format!("duplicate transmitter {}", quote(&t.name)),
                );
            }
            transmitters.push(t);
        }
    }
    let backchannel_logout = raw.backchannel_logout.map(|b| {
        check_endpoint_path(&b.path, "revocation.backchannel_logout.path", errors);
        if b.audiences.is_empty() || b.audiences.iter().any(String::is_empty) {
            push(
                errors,
                "revocation.backchannel_logout.audiences",
                "list the relying party's client ids (non-empty)",
            );
        }
        BackchannelLogout {
            path: b.path,
            audiences: b.audiences,
        }
    });
    let mut idp_sessions: Vec<IdpSessions> = Vec::new();
    for (i, raw) in raw.idp_sessions.into_iter().enumerate() {
        let path = format!("revocation.idp_sessions[{i}]");
        if let Some(api) = compile_idp_sessions(raw, &path, issuers, errors) {
            if idp_sessions.iter().any(|o| o.issuer == api.issuer) {
                push(
                    errors,
                    format!("{path}.issuer"),
                    format!("a second API for issuer {}", quote(&api.issuer)),
                );
            }
            idp_sessions.push(api);
        }
    }
    let idp_user_claims = (issuers.iter())
        .map(|i| {
            let api = idp_sessions.iter().find(|a| a.issuer == i.verify.issuer);
            api.map(|a| a.user_claim.clone())
        })
        .collect();
    let config = RevocationConfig {
        idp_user_claims,
        idp_sessions,
        max_entries,
        max_token_lifetime_secs: lifetime,
        email_claim,
        opaque_claim,
        on_store_unavailable,
        transmitters,
        backchannel_logout,
    };
    let paths: Vec<&str> = config.endpoint_paths().collect();
    for (i, p) in paths.iter().enumerate() {
        if paths[..i].contains(p) {
            push(
                errors,
                "revocation",
                format!("two endpoints share the path {}", quote(p)),
            );
        }
    }
    Some(config)
}

fn compile_transmitter(
    raw: RawTransmitter,
    path: &str,
    issuers: &[IssuerConfig],
    errors: &mut Vec<ConfigError>,
) -> Option<Transmitter> {
    let before = errors.len();
    let name_ok = !raw.name.is_empty()
        && raw.name.len() <= 64
        && raw
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !name_ok {
        push(
            errors,
            format!("{path}.name"),
            format!(
                "invalid name {} (1-64 letters, digits, '_' or '-')",
                quote(&raw.name)
            ),
        );
    }
    for (field, value) in [("issuer", &raw.issuer), ("audience", &raw.audience)] {
        if value.is_empty() {
            push(errors, format!("{path}.{field}"), "must not be empty");
        }
    }
    let algorithms = compile_algorithms(raw.algorithms, false, path, errors);
    let inline_keys = compile_inline_keys(raw.jwks.as_ref(), path, errors);
    let remote_jwks = compile_remote_jwks(raw.remote_jwks, path, errors);
    match (raw.jwks.is_some(), remote_jwks.is_some()) {
        (true, true) => push(
            errors,
            format!("{path}.remote_jwks"),
            "set either jwks or remote_jwks, not both",
        ),
        (false, false) => push(
            errors,
            path,
            "needs the transmitter's keys: set jwks (inline) or remote_jwks (a cluster)",
        ),
        _ => {}
    }
    let subject_issuers = match raw.subject_issuers {
        None => issuers.iter().map(|i| i.verify.issuer.clone()).collect(),
        Some(list) => {
            for (j, iss) in list.iter().enumerate() {
                if !issuers.iter().any(|i| &i.verify.issuer == iss) {
                    push(
                        errors,
                        format!("{path}.subject_issuers[{j}]"),
                        format!("{} is not a configured issuer", quote(iss)),
                    );
                }
            }
            list
        }
    };
    let poll = raw.poll.map(|p| compile_poll(p, path, errors));
    let push_endpoint = raw.push.map(|p| compile_push(p, path, errors));
    if poll.is_none() && push_endpoint.is_none() {
        push(
            errors,
            path,
            "set poll, push or both: how the transmitter's events arrive",
        );
    }
    if errors.len() > before {
        return None;
    }
    Some(Transmitter {
        name: raw.name,
        issuer: raw.issuer,
        audience: raw.audience,
        algorithms,
        inline_keys,
        remote_jwks,
        subject_issuers,
        poll,
        push: push_endpoint,
    })
}

fn compile_idp_sessions(
    raw: RawIdpSessions,
    path: &str,
    issuers: &[IssuerConfig],
    errors: &mut Vec<ConfigError>,
) -> Option<IdpSessions> {
    let before = errors.len();
    if !issuers.iter().any(|i| i.verify.issuer == raw.issuer) {
        push(
            errors,
            format!("{path}.issuer"),
            format!("{} is not a configured issuer", quote(&raw.issuer)),
        );
    }
    let api = parse_choice(
        Some(raw.api.as_str()),
        IdpApi::Okta,
        &[
            ("okta", IdpApi::Okta),
            ("keycloak", IdpApi::Keycloak),
            ("entra", IdpApi::Entra),
            ("auth0", IdpApi::Auth0),
            ("rfc7009", IdpApi::Rfc7009),
        ],
        &format!("{path}.api"),
        errors,
    );
    if raw.cluster.is_empty() {
        push(
            errors,
            format!("{path}.cluster"),
            "must name an Envoy cluster",
        );
    }
    let path_prefix = raw.path_prefix.unwrap_or_default();
    if !path_prefix.is_empty() {
        check_endpoint_path(&path_prefix, &format!("{path}.path_prefix"), errors);
    }
    if api == IdpApi::Rfc7009 && path_prefix.is_empty() {
        push(
            errors,
            format!("{path}.path_prefix"),
            "rfc7009 needs the revocation endpoint's path here",
        );
    }
    if api == IdpApi::Keycloak && raw.realm.as_deref().is_none_or(str::is_empty) {
        push(errors, format!("{path}.realm"), "keycloak needs the realm");
    }
    if api == IdpApi::Rfc7009 && raw.client_id.as_deref().is_none_or(str::is_empty) {
        push(
            errors,
            format!("{path}.client_id"),
            "rfc7009 needs the client id (the secret comes from credential_env)",
        );
    }
    check_env_name(
        &raw.credential_env,
        &format!("{path}.credential_env"),
        errors,
    );
    let timeout_ms = raw.timeout_ms.unwrap_or(DEFAULT_POLL_TIMEOUT_MS);
    if !(100..=60_000).contains(&timeout_ms) {
        push(
            errors,
            format!("{path}.timeout_ms"),
            format!("{timeout_ms} is out of range (100 to 60000)"),
        );
    }
    if errors.len() > before {
        return None;
    }
    Some(IdpSessions {
        issuer: raw.issuer,
        api,
        authority: raw.authority.unwrap_or_else(|| raw.cluster.clone()),
        cluster: raw.cluster,
        path_prefix,
        credential_env: raw.credential_env,
        realm: raw.realm,
        client_id: raw.client_id,
        user_claim: raw.user_claim.unwrap_or_else(|| "sub".to_string()),
        timeout_ms,
    })
}

fn compile_poll(raw: RawPoll, path: &str, errors: &mut Vec<ConfigError>) -> Poll {
    let ppath = format!("{path}.poll");
    if raw.cluster.is_empty() {
        push(
            errors,
            format!("{ppath}.cluster"),
            "must name an Envoy cluster",
        );
    }
    if !raw.path.starts_with('/') {
        push(
            errors,
            format!("{ppath}.path"),
            format!("{} must start with \"/\"", quote(&raw.path)),
        );
    }
    let interval_secs = raw.interval_secs.unwrap_or(DEFAULT_POLL_INTERVAL_SECS);
    if !(1..=3600).contains(&interval_secs) {
        push(
            errors,
            format!("{ppath}.interval_secs"),
            format!("{interval_secs} is out of range (1 to 3600)"),
        );
    }
    let max_events = raw.max_events.unwrap_or(DEFAULT_POLL_MAX_EVENTS);
    if !(1..=1000).contains(&max_events) {
        push(
            errors,
            format!("{ppath}.max_events"),
            format!("{max_events} is out of range (1 to 1000)"),
        );
    }
    let timeout_ms = raw.timeout_ms.unwrap_or(DEFAULT_POLL_TIMEOUT_MS);
    if !(100..=60_000).contains(&timeout_ms) {
        push(
            errors,
            format!("{ppath}.timeout_ms"),
            format!("{timeout_ms} is out of range (100 to 60000)"),
        );
    }
    check_env_name(&raw.bearer_env, &format!("{ppath}.bearer_env"), errors);
    Poll {
        authority: raw.authority.unwrap_or_else(|| raw.cluster.clone()),
        cluster: raw.cluster,
        path: raw.path,
        interval_secs,
        max_events,
        timeout_ms,
        bearer_env: raw.bearer_env,
    }
}

fn compile_push(raw: RawPush, path: &str, errors: &mut Vec<ConfigError>) -> PushEndpoint {
    let ppath = format!("{path}.push");
    check_endpoint_path(&raw.path, &format!("{ppath}.path"), errors);
    check_env_name(&raw.bearer_env, &format!("{ppath}.bearer_env"), errors);
    PushEndpoint {
        path: raw.path,
        bearer_env: raw.bearer_env,
    }
}

/// An endpoint path: absolute, no query, nothing a normaliser would rewrite.
fn check_endpoint_path(path: &str, field: &str, errors: &mut Vec<ConfigError>) {
    let plain = path.starts_with('/')
        && path.len() <= 256
        && !path.contains("//")
        && !path.split('/').any(|s| s == "." || s == "..")
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-._~".contains(&b));
    if !plain {
        push(
            errors,
            field,
            format!(
                "{} must be a plain absolute path (letters, digits, '/', '-', '.', '_', '~')",
                quote(path)
            ),
        );
    }
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
