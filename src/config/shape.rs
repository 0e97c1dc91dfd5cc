//! The JSON shape of the configuration, checked before serde sees it, so that every
//! unknown field and wrong type is reported with its path (`routes[2].match.pathprefix`).
//! A small table-driven walker: far smaller in the wasm module than generic path tracking.

use super::ConfigError;
use serde_json::Value;

/// What a JSON value must look like.
pub enum Shape {
    Str,
    Bool,
    UInt,
    /// An integer, possibly negative.
    Int,
    /// Anything (checked later, e.g. an inline JWKS).
    Any,
    List(&'static Shape),
    /// An object with free keys and values of one shape.
    Map(&'static Shape),
    /// An object with these fields (name, shape, required).
    Obj(&'static [(&'static str, Shape, bool)]),
}

const STR_LIST: Shape = Shape::List(&Shape::Str);
const STR_MAP: Shape = Shape::Map(&Shape::Str);

const INTROSPECTION: Shape = Shape::Obj(&[
    ("cluster", Shape::Str, true),
    ("endpoint", Shape::Str, true),
    ("client_id", Shape::Str, true),
    ("client_secret_env", Shape::Str, true),
    ("auth", Shape::Str, false),
    ("timeout_ms", Shape::UInt, false),
    ("cache_ttl_secs", Shape::UInt, false),
    ("inactive_ttl_secs", Shape::UInt, false),
    (
        "fields",
        Shape::Obj(&[("amr", Shape::Str, false), ("acr", Shape::Str, false)]),
        false,
    ),
]);

const REMOTE_JWKS: Shape = Shape::Obj(&[
    ("cluster", Shape::Str, true),
    ("path", Shape::Str, true),
    ("authority", Shape::Str, false),
    ("refresh_interval_secs", Shape::UInt, false),
    ("timeout_ms", Shape::UInt, false),
]);

const CUSTOM_CLAIM: Shape = Shape::Obj(&[("claim", Shape::Str, true), ("values", STR_MAP, true)]);

const STEP_UP: Shape = Shape::Obj(&[
    ("authorization_endpoint", Shape::Str, true),
    ("client_id", Shape::Str, true),
    ("redirect_uri", Shape::Str, true),
]);

const ISSUER: Shape = Shape::Obj(&[
    ("issuer", Shape::Str, true),
    ("audiences", STR_LIST, false),
    ("allow_any_audience", Shape::Bool, false),
    ("algorithms", STR_LIST, false),
    ("jwks", Shape::Any, false),
    ("remote_jwks", REMOTE_JWKS, false),
    ("hmac_secret_base64", Shape::Str, false),
    ("clock_skew_secs", Shape::UInt, false),
    ("profile", Shape::Str, false),
    ("amr_levels", STR_MAP, false),
    ("acr_levels", STR_MAP, false),
    ("phishing_resistant_acrs", STR_LIST, false),
    ("custom_claims", Shape::List(&CUSTOM_CLAIM), false),
    ("step_up", STEP_UP, false),
    ("introspection", INTROSPECTION, false),
]);

const TOKEN_SOURCE: Shape = Shape::Obj(&[
    ("authorization_bearer", Shape::Bool, false),
    ("header", Shape::Str, false),
    ("cookie", Shape::Str, false),
]);

const MATCH: Shape = Shape::Obj(&[
    ("path", Shape::Str, false),
    ("path_prefix", Shape::Str, false),
    ("methods", STR_LIST, false),
    ("hosts", STR_LIST, false),
]);

const REQUIRE: Shape = Shape::Obj(&[
    ("level", Shape::Str, true),
    ("max_auth_age_secs", Shape::UInt, false),
    ("acr_values", Shape::Str, false),
]);

const ROUTE: Shape = Shape::Obj(&[
    ("name", Shape::Str, false),
    ("match", MATCH, true),
    ("require", REQUIRE, false),
    ("on_insufficient", Shape::Str, false),
    ("browser", Shape::Str, false),
    ("mode", Shape::Str, false),
    ("risk", THRESHOLDS, false),
]);

const THRESHOLDS: Shape = Shape::Obj(&[
    ("step_up_at", Shape::Int, false),
    ("deny_at", Shape::Int, false),
    ("revoke_at", Shape::Int, false),
]);

const POINTS: Shape = Shape::Obj(&[
    ("level", Shape::Map(&Shape::Int), false),
    ("device_bound", Shape::Int, false),
    ("device_unbound", Shape::Int, false),
    ("posture_managed", Shape::Int, false),
    ("posture_compliant", Shape::Int, false),
    ("posture_unmanaged", Shape::Int, false),
    ("posture_unknown", Shape::Int, false),
    ("new_country", Shape::Int, false),
    ("first_sighting", Shape::Int, false),
    ("anonymous_network", Shape::Int, false),
    ("impossible_travel", Shape::Int, false),
    ("location_unknown", Shape::Int, false),
    ("stale_authentication", Shape::Int, false),
]);

const POSTURE_SOURCE: Shape = Shape::Obj(&[
    ("claim", Shape::Str, false),
    ("header", Shape::Str, false),
    (
        "certificate",
        Shape::Obj(&[
            ("uri_san_prefixes", STR_LIST, false),
            ("dns_san_suffixes", STR_LIST, false),
            ("subject_contains", STR_LIST, false),
            ("posture", Shape::Str, true),
        ]),
        false,
    ),
]);

const RISK: Shape = Shape::Obj(&[
    ("points", POINTS, false),
    ("report_only", STR_LIST, false),
    ("stale_authentication_secs", Shape::UInt, false),
    ("thresholds", THRESHOLDS, false),
    (
        "posture",
        Shape::Obj(&[
            ("sources", Shape::List(&POSTURE_SOURCE), true),
            ("values", STR_MAP, false),
        ]),
        false,
    ),
    (
        "location",
        Shape::Obj(&[
            ("headers", Shape::Any, false),
            ("max_speed_kmh", Shape::UInt, false),
            ("min_distance_km", Shape::UInt, false),
            ("refresh_secs", Shape::UInt, false),
            ("known_countries_days", Shape::UInt, false),
            ("capacity", Shape::UInt, false),
        ]),
        false,
    ),
]);

const BINDING: Shape = Shape::Obj(&[(
    "dpop",
    Shape::Obj(&[
        ("max_age_secs", Shape::UInt, false),
        ("clock_skew_secs", Shape::UInt, false),
        ("replay_capacity", Shape::UInt, false),
        ("origins", STR_LIST, false),
    ]),
    false,
)]);

const TRANSMITTER: Shape = Shape::Obj(&[
    ("name", Shape::Str, true),
    ("issuer", Shape::Str, true),
    ("audience", Shape::Str, true),
    ("algorithms", STR_LIST, false),
    ("jwks", Shape::Any, false),
    ("remote_jwks", REMOTE_JWKS, false),
    ("subject_issuers", STR_LIST, false),
    (
        "poll",
        Shape::Obj(&[
            ("cluster", Shape::Str, true),
            ("path", Shape::Str, true),
            ("authority", Shape::Str, false),
            ("interval_secs", Shape::UInt, false),
            ("max_events", Shape::UInt, false),
            ("timeout_ms", Shape::UInt, false),
            ("bearer_env", Shape::Str, true),
        ]),
        false,
    ),
    (
        "push",
        Shape::Obj(&[("path", Shape::Str, true), ("bearer_env", Shape::Str, true)]),
        false,
    ),
]);

const REVOCATION: Shape = Shape::Obj(&[
    ("max_entries", Shape::UInt, false),
    ("max_token_lifetime_secs", Shape::UInt, false),
    (
        "subject_claims",
        Shape::Obj(&[("email", Shape::Str, false), ("opaque", Shape::Str, false)]),
        false,
    ),
    ("on_store_unavailable", Shape::Str, false),
    ("transmitters", Shape::List(&TRANSMITTER), false),
    (
        "backchannel_logout",
        Shape::Obj(&[("path", Shape::Str, true), ("audiences", STR_LIST, true)]),
        false,
    ),
    ("idp_sessions", Shape::List(&IDP_SESSIONS), false),
]);

const IDP_SESSIONS: Shape = Shape::Obj(&[
    ("issuer", Shape::Str, true),
    ("api", Shape::Str, true),
    ("cluster", Shape::Str, true),
    ("authority", Shape::Str, false),
    ("path_prefix", Shape::Str, false),
    ("credential_env", Shape::Str, true),
    ("realm", Shape::Str, false),
    ("client_id", Shape::Str, false),
    ("user_claim", Shape::Str, false),
    ("timeout_ms", Shape::UInt, false),
]);

/// A place a push request's field is read from (exactly one, checked when compiled).
pub(super) const FIELD_SOURCE: Shape = Shape::Obj(&[
    ("form", Shape::Str, false),
    ("json", Shape::Str, false),
    ("path_segment", Shape::UInt, false),
    ("header", Shape::Str, false),
    ("query", Shape::Str, false),
]);

/// A condition on a push request's field.
pub(super) const PUSH_CONDITION: Shape = Shape::Obj(&[
    ("form", Shape::Str, false),
    ("json", Shape::Str, false),
    ("path_segment", Shape::UInt, false),
    ("header", Shape::Str, false),
    ("query", Shape::Str, false),
    ("equals", Shape::Str, false),
    ("one_of", STR_LIST, false),
    ("absent", Shape::Bool, false),
]);

const PUSH_STEP: Shape = Shape::Obj(&[
    ("method", Shape::Str, false),
    ("methods", STR_LIST, false),
    ("path", Shape::Str, true),
    // One condition or a list (checked item by item when compiled).
    ("when", Shape::Any, false),
    // One source or a list.
    ("user", Shape::Any, false),
]);

const PUSH_WINDOW: Shape = Shape::Obj(&[
    ("prompts", Shape::UInt, true),
    ("window_secs", Shape::UInt, true),
]);

const PUSH_ENDPOINT: Shape = Shape::Obj(&[
    ("name", Shape::Str, true),
    ("provider", Shape::Str, false),
    ("initiate", PUSH_STEP, false),
    ("poll", PUSH_STEP, false),
    ("user", Shape::Any, false),
    (
        "transaction",
        Shape::Obj(&[
            ("request", Shape::Any, false),
            ("response", Shape::Str, false),
        ]),
        false,
    ),
    (
        "outcome",
        Shape::List(&Shape::Obj(&[
            ("pointer", Shape::Str, true),
            ("equals", Shape::Str, true),
            ("outcome", Shape::Str, true),
        ])),
        false,
    ),
]);

const SIGN_IN: Shape = Shape::Obj(&[
    ("issuer", Shape::Str, true),
    (
        "token_endpoint",
        Shape::Obj(&[
            ("cluster", Shape::Str, true),
            ("url", Shape::Str, true),
            ("timeout_ms", Shape::UInt, false),
        ]),
        true,
    ),
    ("client_auth", Shape::Str, false),
    ("client_secret_env", Shape::Str, false),
    ("client_key_env", Shape::Str, false),
    ("state_key_env", Shape::Str, true),
    ("session_cookie", Shape::Str, true),
    ("logout_path", Shape::Str, false),
    ("after_logout", Shape::Str, false),
    ("state_ttl_secs", Shape::UInt, false),
    ("secure_cookies", Shape::Bool, false),
]);

const PUSH_PROMPTS: Shape = Shape::Obj(&[
    ("endpoints", Shape::List(&PUSH_ENDPOINT), true),
    (
        "limits",
        Shape::Obj(&[
            ("per_user", Shape::List(&PUSH_WINDOW), false),
            ("per_client", Shape::List(&PUSH_WINDOW), false),
        ]),
        false,
    ),
    (
        "fatigue",
        Shape::Obj(&[
            ("window_secs", Shape::UInt, false),
            ("min_unanswered", Shape::UInt, false),
            ("action", Shape::Str, false),
            ("mark_ttl_secs", Shape::UInt, false),
            ("session_claim", Shape::Str, false),
        ]),
        false,
    ),
    (
        "counting",
        Shape::Obj(&[
            ("mode", Shape::Str, true),
            ("cluster", Shape::Str, false),
            ("domain", Shape::Str, false),
            ("timeout_ms", Shape::UInt, false),
            ("on_unavailable", Shape::Str, false),
        ]),
        false,
    ),
    ("max_body_bytes", Shape::UInt, false),
]);

/// The whole document.
pub static ROOT: Shape = Shape::Obj(&[
    ("mode", Shape::Str, false),
    ("realm", Shape::Str, false),
    ("issuers", Shape::List(&ISSUER), false),
    ("token_sources", Shape::List(&TOKEN_SOURCE), false),
    (
        "jwt_authn",
        Shape::Obj(&[("payload_in_metadata", Shape::Str, true)]),
        false,
    ),
    ("max_token_bytes", Shape::UInt, false),
    ("token_cache_entries", Shape::UInt, false),
    ("routes", Shape::List(&ROUTE), false),
    ("unmatched", Shape::Str, false),
    (
        "upstream_headers",
        Shape::Obj(&[
            ("subject", Shape::Str, false),
            ("level", Shape::Str, false),
            ("methods", Shape::Str, false),
        ]),
        false,
    ),
    (
        "paths",
        Shape::Obj(&[
            ("ambiguous", Shape::Str, false),
            ("case_insensitive", Shape::Bool, false),
        ]),
        false,
    ),
    ("revocation", REVOCATION, false),
    ("binding", BINDING, false),
    ("risk", RISK, false),
    ("push_prompts", PUSH_PROMPTS, false),
    ("sign_in", SIGN_IN, false),
]);

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

/// Checks `value` against `shape`, appending one error per problem.
pub fn check(value: &Value, shape: &Shape, path: &str, errors: &mut Vec<ConfigError>) {
    let mismatch = |expected: &str, errors: &mut Vec<ConfigError>| {
        errors.push(ConfigError {
            path: path.to_string(),
            message: format!("expected {expected}, found {}", kind(value)),
        })
    };
    match shape {
        Shape::Any => {}
        Shape::Str if !value.is_string() => mismatch("a string", errors),
        Shape::Bool if !value.is_boolean() => mismatch("a boolean", errors),
        Shape::UInt if !value.is_u64() => mismatch("a non-negative integer", errors),
        Shape::Int if !value.is_i64() => mismatch("an integer", errors),
        Shape::Str | Shape::Bool | Shape::UInt | Shape::Int => {}
        Shape::List(item) => match value.as_array() {
            None => mismatch("an array", errors),
            Some(items) => {
                for (i, v) in items.iter().enumerate() {
                    check(v, item, &format!("{path}[{i}]"), errors);
                }
            }
        },
        Shape::Map(item) => match value.as_object() {
            None => mismatch("an object", errors),
            Some(map) => {
                for (k, v) in map {
                    check(v, item, &join(path, k), errors);
                }
            }
        },
        Shape::Obj(fields) => match value.as_object() {
            None => mismatch("an object", errors),
            Some(map) => {
                for (k, v) in map {
                    match fields.iter().find(|(name, _, _)| name == k) {
                        Some((_, field_shape, _)) => check(v, field_shape, &join(path, k), errors),
                        None => {
                            let known: Vec<&str> = fields.iter().map(|(n, _, _)| *n).collect();
                            errors.push(ConfigError {
                                path: path.to_string(),
                                message: format!(
                                    "unknown field `{}` (expected one of: {})",
                                    k.chars().take(64).collect::<String>(),
                                    known.join(", ")
                                ),
                            });
                        }
                    }
                }
                for (name, _, required) in fields.iter() {
                    if *required && !map.contains_key(*name) {
                        errors.push(ConfigError {
                            path: join(path, name),
                            message: "is required".to_string(),
                        });
                    }
                }
            }
        },
    }
}
