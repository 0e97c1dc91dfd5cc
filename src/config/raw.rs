//! The configuration document's shape as serde types (stage 1 of 2): a plain mirror of the
//! JSON, `deny_unknown_fields` everywhere, every optional field defaulted. [`super::parse`]
//! compiles them into the checked form.

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub(super) mode: Option<String>,
    #[serde(default)]
    pub(super) realm: Option<String>,
    #[serde(default)]
    pub(super) issuers: Vec<RawIssuer>,
    #[serde(default)]
    pub(super) token_sources: Option<Vec<RawTokenSource>>,
    #[serde(default)]
    pub(super) jwt_authn: Option<RawJwtAuthn>,
    #[serde(default)]
    pub(super) max_token_bytes: Option<usize>,
    #[serde(default)]
    pub(super) token_cache_entries: Option<usize>,
    #[serde(default)]
    pub(super) routes: Vec<RawRoute>,
    #[serde(default)]
    pub(super) unmatched: Option<String>,
    #[serde(default)]
    pub(super) upstream_headers: Option<RawUpstreamHeaders>,
    #[serde(default)]
    pub(super) paths: Option<RawPaths>,
    #[serde(default)]
    pub(super) revocation: Option<RawRevocation>,
    #[serde(default)]
    pub(super) binding: Option<RawBinding>,
    #[serde(default)]
    pub(super) risk: Option<RawRisk>,
    #[serde(default)]
    pub(super) push_prompts: Option<RawPushPrompts>,
    #[serde(default)]
    pub(super) sign_in: Option<RawSignIn>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBinding {
    #[serde(default)]
    pub(super) dpop: Option<RawDpop>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDpop {
    #[serde(default)]
    pub(super) max_age_secs: Option<u64>,
    #[serde(default)]
    pub(super) clock_skew_secs: Option<u64>,
    #[serde(default)]
    pub(super) replay_capacity: Option<usize>,
    #[serde(default)]
    pub(super) origins: Vec<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawThresholds {
    #[serde(default)]
    pub(super) step_up_at: Option<i32>,
    #[serde(default)]
    pub(super) deny_at: Option<i32>,
    #[serde(default)]
    pub(super) revoke_at: Option<i32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRisk {
    #[serde(default)]
    pub(super) points: Option<RawPoints>,
    #[serde(default)]
    pub(super) report_only: Vec<String>,
    #[serde(default)]
    pub(super) stale_authentication_secs: Option<u64>,
    #[serde(default)]
    pub(super) thresholds: Option<RawThresholds>,
    #[serde(default)]
    pub(super) posture: Option<RawPosture>,
    #[serde(default)]
    pub(super) location: Option<RawLocation>,
}

/// Points per signal: the level table, then one field per signal (by its name; the shape
/// check has already refused unknown names: serde cannot deny them beside `flatten`).
#[derive(Debug, Deserialize)]
pub(super) struct RawPoints {
    #[serde(default)]
    pub(super) level: BTreeMap<String, i32>,
    #[serde(flatten)]
    pub(super) signals: BTreeMap<String, i32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPosture {
    pub(super) sources: Vec<RawPostureSource>,
    #[serde(default)]
    pub(super) values: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPostureSource {
    #[serde(default)]
    pub(super) claim: Option<String>,
    #[serde(default)]
    pub(super) header: Option<String>,
    #[serde(default)]
    pub(super) certificate: Option<RawCertificatePosture>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCertificatePosture {
    #[serde(default)]
    pub(super) uri_san_prefixes: Vec<String>,
    #[serde(default)]
    pub(super) dns_san_suffixes: Vec<String>,
    #[serde(default)]
    pub(super) subject_contains: Vec<String>,
    pub(super) posture: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLocation {
    #[serde(default)]
    pub(super) headers: Option<serde_json::Value>,
    #[serde(default)]
    pub(super) max_speed_kmh: Option<u64>,
    #[serde(default)]
    pub(super) min_distance_km: Option<u64>,
    #[serde(default)]
    pub(super) refresh_secs: Option<u64>,
    #[serde(default)]
    pub(super) known_countries_days: Option<u64>,
    #[serde(default)]
    pub(super) capacity: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPaths {
    #[serde(default)]
    pub(super) ambiguous: Option<String>,
    #[serde(default)]
    pub(super) case_insensitive: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIssuer {
    pub(super) issuer: String,
    #[serde(default)]
    pub(super) audiences: Vec<String>,
    #[serde(default)]
    pub(super) allow_any_audience: bool,
    #[serde(default)]
    pub(super) algorithms: Option<Vec<String>>,
    #[serde(default)]
    pub(super) jwks: Option<serde_json::Value>,
    #[serde(default)]
    pub(super) remote_jwks: Option<RawRemoteJwks>,
    #[serde(default)]
    pub(super) hmac_secret_base64: Option<String>,
    #[serde(default)]
    pub(super) clock_skew_secs: Option<u64>,
    #[serde(default)]
    pub(super) profile: Option<String>,
    #[serde(default)]
    pub(super) amr_levels: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) acr_levels: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) phishing_resistant_acrs: Vec<String>,
    #[serde(default)]
    pub(super) custom_claims: Vec<RawCustomClaim>,
    #[serde(default)]
    pub(super) step_up: Option<RawStepUp>,
    #[serde(default)]
    pub(super) introspection: Option<RawIntrospection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIntrospection {
    pub(super) cluster: String,
    pub(super) endpoint: String,
    pub(super) client_id: String,
    pub(super) client_secret_env: String,
    #[serde(default)]
    pub(super) auth: Option<String>,
    #[serde(default)]
    pub(super) timeout_ms: Option<u64>,
    #[serde(default)]
    pub(super) cache_ttl_secs: Option<u64>,
    #[serde(default)]
    pub(super) inactive_ttl_secs: Option<u64>,
    #[serde(default)]
    pub(super) fields: Option<RawIntrospectionFields>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIntrospectionFields {
    #[serde(default)]
    pub(super) amr: Option<String>,
    #[serde(default)]
    pub(super) acr: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRemoteJwks {
    pub(super) cluster: String,
    pub(super) path: String,
    #[serde(default)]
    pub(super) authority: Option<String>,
    #[serde(default)]
    pub(super) refresh_interval_secs: Option<u64>,
    #[serde(default)]
    pub(super) timeout_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCustomClaim {
    pub(super) claim: String,
    pub(super) values: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStepUp {
    pub(super) authorization_endpoint: String,
    pub(super) client_id: String,
    pub(super) redirect_uri: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTokenSource {
    #[serde(default)]
    pub(super) authorization_bearer: Option<bool>,
    #[serde(default)]
    pub(super) header: Option<String>,
    #[serde(default)]
    pub(super) cookie: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawJwtAuthn {
    pub(super) payload_in_metadata: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoute {
    #[serde(default)]
    pub(super) name: Option<String>,
    #[serde(rename = "match")]
    pub(super) matcher: RawMatch,
    #[serde(default)]
    pub(super) require: Option<RawRequire>,
    #[serde(default)]
    pub(super) on_insufficient: Option<String>,
    #[serde(default)]
    pub(super) browser: Option<String>,
    #[serde(default)]
    pub(super) mode: Option<String>,
    #[serde(default)]
    pub(super) risk: Option<RawThresholds>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMatch {
    #[serde(default)]
    pub(super) path: Option<String>,
    #[serde(default)]
    pub(super) path_prefix: Option<String>,
    #[serde(default)]
    pub(super) methods: Vec<String>,
    #[serde(default)]
    pub(super) hosts: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRequire {
    pub(super) level: String,
    #[serde(default)]
    pub(super) max_auth_age_secs: Option<u64>,
    #[serde(default)]
    pub(super) acr_values: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUpstreamHeaders {
    #[serde(default)]
    pub(super) subject: Option<String>,
    #[serde(default)]
    pub(super) level: Option<String>,
    #[serde(default)]
    pub(super) methods: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRevocation {
    #[serde(default)]
    pub(super) max_entries: Option<usize>,
    #[serde(default)]
    pub(super) max_token_lifetime_secs: Option<u64>,
    #[serde(default)]
    pub(super) subject_claims: Option<RawSubjectClaims>,
    #[serde(default)]
    pub(super) on_store_unavailable: Option<String>,
    #[serde(default)]
    pub(super) transmitters: Vec<RawTransmitter>,
    #[serde(default)]
    pub(super) backchannel_logout: Option<RawBackchannelLogout>,
    #[serde(default)]
    pub(super) idp_sessions: Vec<RawIdpSessions>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIdpSessions {
    pub(super) issuer: String,
    pub(super) api: String,
    pub(super) cluster: String,
    #[serde(default)]
    pub(super) authority: Option<String>,
    #[serde(default)]
    pub(super) path_prefix: Option<String>,
    pub(super) credential_env: String,
    #[serde(default)]
    pub(super) realm: Option<String>,
    #[serde(default)]
    pub(super) client_id: Option<String>,
    #[serde(default)]
    pub(super) user_claim: Option<String>,
    #[serde(default)]
    pub(super) timeout_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSubjectClaims {
    #[serde(default)]
    pub(super) email: Option<String>,
    #[serde(default)]
    pub(super) opaque: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTransmitter {
    pub(super) name: String,
    pub(super) issuer: String,
    pub(super) audience: String,
    #[serde(default)]
    pub(super) algorithms: Option<Vec<String>>,
    #[serde(default)]
    pub(super) jwks: Option<serde_json::Value>,
    #[serde(default)]
    pub(super) remote_jwks: Option<RawRemoteJwks>,
    #[serde(default)]
    pub(super) subject_issuers: Option<Vec<String>>,
    #[serde(default)]
    pub(super) poll: Option<RawPoll>,
    #[serde(default)]
    pub(super) push: Option<RawPush>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPoll {
    pub(super) cluster: String,
    pub(super) path: String,
    #[serde(default)]
    pub(super) authority: Option<String>,
    #[serde(default)]
    pub(super) interval_secs: Option<u64>,
    #[serde(default)]
    pub(super) max_events: Option<u32>,
    #[serde(default)]
    pub(super) timeout_ms: Option<u64>,
    pub(super) bearer_env: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPush {
    pub(super) path: String,
    pub(super) bearer_env: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBackchannelLogout {
    pub(super) path: String,
    pub(super) audiences: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPushPrompts {
    pub(super) endpoints: Vec<RawPushEndpoint>,
    #[serde(default)]
    pub(super) limits: Option<RawPushLimits>,
    #[serde(default)]
    pub(super) fatigue: Option<RawFatigue>,
    #[serde(default)]
    pub(super) counting: Option<RawCounting>,
    #[serde(default)]
    pub(super) max_body_bytes: Option<usize>,
}

/// `user` and `when` take one object or a list of them: read as JSON, checked by
/// `push_prompts.rs` item by item (the shape table has no unions).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPushEndpoint {
    pub(super) name: String,
    #[serde(default)]
    pub(super) provider: Option<String>,
    #[serde(default)]
    pub(super) initiate: Option<RawPushStep>,
    #[serde(default)]
    pub(super) poll: Option<RawPushStep>,
    #[serde(default)]
    pub(super) user: Option<serde_json::Value>,
    #[serde(default)]
    pub(super) transaction: Option<RawPushTransaction>,
    #[serde(default)]
    pub(super) outcome: Option<Vec<RawOutcomeRule>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPushStep {
    #[serde(default)]
    pub(super) method: Option<String>,
    #[serde(default)]
    pub(super) methods: Option<Vec<String>>,
    pub(super) path: String,
    #[serde(default)]
    pub(super) when: Option<serde_json::Value>,
    #[serde(default)]
    pub(super) user: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFieldSource {
    #[serde(default)]
    pub(super) form: Option<String>,
    #[serde(default)]
    pub(super) json: Option<String>,
    #[serde(default)]
    pub(super) path_segment: Option<usize>,
    #[serde(default)]
    pub(super) header: Option<String>,
    #[serde(default)]
    pub(super) query: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPushCondition {
    #[serde(default)]
    pub(super) form: Option<String>,
    #[serde(default)]
    pub(super) json: Option<String>,
    #[serde(default)]
    pub(super) path_segment: Option<usize>,
    #[serde(default)]
    pub(super) header: Option<String>,
    #[serde(default)]
    pub(super) query: Option<String>,
    #[serde(default)]
    pub(super) equals: Option<String>,
    #[serde(default)]
    pub(super) one_of: Option<Vec<String>>,
    #[serde(default)]
    pub(super) absent: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPushTransaction {
    #[serde(default)]
    pub(super) request: Option<serde_json::Value>,
    #[serde(default)]
    pub(super) response: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOutcomeRule {
    pub(super) pointer: String,
    pub(super) equals: String,
    pub(super) outcome: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPushLimits {
    #[serde(default)]
    pub(super) per_user: Option<Vec<RawPushWindow>>,
    #[serde(default)]
    pub(super) per_client: Option<Vec<RawPushWindow>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPushWindow {
    pub(super) prompts: u64,
    pub(super) window_secs: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFatigue {
    #[serde(default)]
    pub(super) window_secs: Option<u64>,
    #[serde(default)]
    pub(super) min_unanswered: Option<u64>,
    #[serde(default)]
    pub(super) action: Option<String>,
    #[serde(default)]
    pub(super) mark_ttl_secs: Option<u64>,
    #[serde(default)]
    pub(super) session_claim: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCounting {
    pub(super) mode: String,
    #[serde(default)]
    pub(super) cluster: Option<String>,
    #[serde(default)]
    pub(super) domain: Option<String>,
    #[serde(default)]
    pub(super) timeout_ms: Option<u64>,
    #[serde(default)]
    pub(super) on_unavailable: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSignIn {
    pub(super) issuer: String,
    pub(super) token_endpoint: RawTokenEndpoint,
    #[serde(default)]
    pub(super) client_auth: Option<String>,
    #[serde(default)]
    pub(super) client_secret_env: Option<String>,
    #[serde(default)]
    pub(super) client_key_env: Option<String>,
    pub(super) state_key_env: String,
    pub(super) session_cookie: String,
    #[serde(default)]
    pub(super) logout_path: Option<String>,
    #[serde(default)]
    pub(super) after_logout: Option<String>,
    #[serde(default)]
    pub(super) state_ttl_secs: Option<u64>,
    #[serde(default)]
    pub(super) secure_cookies: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTokenEndpoint {
    pub(super) cluster: String,
    pub(super) url: String,
    #[serde(default)]
    pub(super) timeout_ms: Option<u64>,
}
