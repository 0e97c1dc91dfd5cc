//! Assurance classification: from `amr`, `acr` and custom claims to a set of
//! authentication methods and one level on an ordered scale.
//!
//! # How a session is classified
//!
//! 1. Every claim value is read as *evidence*: a normalised method name and the **weakest**
//!    level it could stand for. A bare `mfa` says "some second factor" and so counts as push,
//!    the weakest MFA on the scale; Auth0's `mfa` (push and FIDO2 alike) therefore never
//!    counts as phishing-resistant.
//! 2. The session level is the **strongest** level that the evidence proves (a password plus
//!    an OTP is `otp`).
//! 3. Operator mappings win over built-ins: `amr_levels` (also used for Duo
//!    `auth_context.factor` values), `acr_levels` (also for Entra `acrs` ids),
//!    `phishing_resistant_acrs` (Entra) and `custom_claims`.
//! 4. Values nobody knows add no level and are listed in [`Assurance::unknown`] as
//!    `<claim>:<value>` (sanitised, at most 64 characters). Malformed claims are listed as
//!    `<claim>:(not_array)`, `(not_string)`, `(non_string_element)`, `(truncated)` or
//!    `(malformed)`; parentheses cannot occur in a sanitised value, so the two never collide.
//!    At most [`MAX_VALUES_PER_CLAIM`] values per claim are read.
//!
//! No provider's `amr` tells number-matched push from plain push, and NIST SP 800-63B-4
//! counts neither as phishing-resistant: `push_number_match` comes only from operator
//! mappings (e.g. `amr_levels: {"swk": "push_number_match"}` for an Okta org that enforces
//! number challenge) or from Duo's `verified_duo_push` factor.
//!
//! # Method vocabulary ([`Assurance::methods`], sorted, unique)
//!
//! | method | meaning | level |
//! |---|---|---|
//! | `pwd`, `pin`, `kba` | password, PIN, security question | password |
//! | `biometric` | face/fingerprint/iris/retina/voice alone | password |
//! | `windows_integrated`, `federated` | Windows auth, upstream IdP of unknown strength | password |
//! | `bypass_code` | Duo help-desk bypass code | password |
//! | `push` | push approval (Okta Verify push, custom-app push, Entra Authenticator `rsa`, Duo Push) | push |
//! | `swk`, `hwk`, `pop` | key proof-of-possession without origin binding (generic reading) | push |
//! | `phone_call`, `out_of_band` | approve by phone call / other channel | push |
//! | `duo` | Duo via Okta (factor not reported) | push |
//! | `mfa_unspecified` | "MFA happened" with no named second factor | push |
//! | `verified_push` | Duo Verified Push (code typed into the app) | push_number_match |
//! | `otp`, `sms`, `voice`, `email` | one-time codes (TOTP/HOTP/hardware, SMS, voice, email) | otp |
//! | `webauthn` | WebAuthn / FIDO2 / passkey (Okta `pop`) | phishing_resistant |
//! | `fastpass` | Okta FastPass (`okta_verify` + `phr`) | phishing_resistant |
//! | `smart_card` | smart card / PIV certificate | phishing_resistant (hardware-bound with `hwk`) |
//! | `phishing_resistant`, `hardware_bound_phishing_resistant` | OpenID `phr` / `phrh` | as named |
//! | `entra_auth_context` | Entra `acrs` id listed in `phishing_resistant_acrs` | phishing_resistant |
//! | `user_presence`, `risk_signal`, `none`, `mfa_skipped` | no authentication strength | none |
//! | `<claim>:<value>` | operator mappings of values without a built-in name | as mapped |
//!
//! Provider facts and their sources are in [`vocab`].

mod vocab;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;

use crate::claims::Claims;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;

/// How strongly the session's user authenticated, weakest first. Ordering is meaningful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// No authentication evidence at all.
    None,
    /// A knowledge factor only.
    Password,
    /// Push approval (a single tap).
    Push,
    /// Push approval with number matching.
    PushNumberMatch,
    /// A one-time code (TOTP, SMS, email, hardware OTP).
    Otp,
    /// Phishing-resistant (WebAuthn/passkey, FastPass, smart card).
    PhishingResistant,
    /// Phishing-resistant with a hardware-bound, non-exportable key.
    HardwareBoundPhishingResistant,
}

impl Level {
    /// All levels, weakest first.
    pub const ALL: [Level; 7] = [
        Level::None,
        Level::Password,
        Level::Push,
        Level::PushNumberMatch,
        Level::Otp,
        Level::PhishingResistant,
        Level::HardwareBoundPhishingResistant,
    ];

    /// The configuration / log spelling, e.g. `phishing_resistant`.
    pub fn as_str(self) -> &'static str {
        LEVEL_NAMES.get(self as usize).copied().unwrap_or("none")
    }

    /// Parses the configuration spelling.
    pub fn parse(s: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.as_str() == s)
    }
}

/// Hands every level's name, weakest first (as [`Level`] orders them), to a macro as its
/// last argument `[..]`. The names are written here once: [`Level::as_str`], the rendered
/// reasons and the record's `required_level` member are all built from this list.
macro_rules! with_level_names {
    ($callback:ident ! ( $($args:tt)* )) => {
        $callback!(
            $($args)* [
                "none",
                "password",
                "push",
                "push_number_match",
                "otp",
                "phishing_resistant",
                "hardware_bound_phishing_resistant"
            ]
        )
    };
}
pub(crate) use with_level_names;

macro_rules! name_array {
    ([$($name:literal),*]) => {
        [$($name),*]
    };
}

/// Level names by `Level as usize`.
const LEVEL_NAMES: [&str; Level::ALL.len()] = with_level_names!(name_array!());

/// Identity-provider profile: which vocabulary the issuer's `amr`/`acr` use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// RFC 8176 `amr` values and OpenID `phr`/`phrh` `acr` values only.
    #[default]
    Generic,
    /// Okta: `okta_verify`+`swk`/`phr`/`otp`, `pop`, `sc`, `urn:okta:loa:*` acr values.
    Okta,
    /// Microsoft Entra ID: v1.0 `amr` (`rsa`, `ngcmfa`, …) and `acrs` auth-context ids.
    EntraId,
    /// Auth0: `mfa` / PAPE multi-factor only (never phishing-resistant by itself).
    Auth0,
    /// Keycloak: LoA aliases and mapper-defined `amr`, mapped by the operator.
    Keycloak,
    /// Ping (PingOne sign-on policy names in `acr`; PingAM/AIC operator-defined values).
    Ping,
    /// Duo: Duo SSO `amr` plus Universal Prompt `auth_context.factor`.
    Duo,
}

impl Profile {
    /// All profiles.
    pub const ALL: [Profile; 7] = [
        Profile::Generic,
        Profile::Okta,
        Profile::EntraId,
        Profile::Auth0,
        Profile::Keycloak,
        Profile::Ping,
        Profile::Duo,
    ];

    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Generic => "generic",
            Profile::Okta => "okta",
            Profile::EntraId => "entra_id",
            Profile::Auth0 => "auth0",
            Profile::Keycloak => "keycloak",
            Profile::Ping => "ping",
            Profile::Duo => "duo",
        }
    }

    /// Parses the configuration spelling.
    pub fn parse(s: &str) -> Option<Profile> {
        Profile::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// A custom claim mapping: when `claim` has one of `values` (string, or array of strings),
/// the session gets at least that level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomClaimRule {
    /// Claim name; a dotted path (`ext.mfa_method`) reaches into nested objects.
    pub claim: String,
    /// Claim value → the level it proves.
    pub values: Vec<(String, Level)>,
}

/// Per-issuer classification settings (compiled from configuration).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClassifierSettings {
    /// The issuer's vocabulary.
    pub profile: Profile,
    /// Extra/overriding `amr` value → level mappings.
    pub amr_levels: Vec<(String, Level)>,
    /// Extra/overriding `acr` value → level mappings (e.g. Keycloak LoA aliases, Ping policies).
    pub acr_levels: Vec<(String, Level)>,
    /// Entra ID: `acrs` authentication-context ids bound to a phishing-resistant CA policy.
    pub phishing_resistant_acrs: Vec<String>,
    /// Claims mapped by the operator.
    pub custom_claims: Vec<CustomClaimRule>,
}

/// The outcome of classification for one session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Assurance {
    /// Normalised method names found (e.g. `push`, `webauthn`, `otp`, `pwd`), sorted, unique.
    pub methods: Vec<String>,
    /// The level the evidence supports (the weakest it could be when ambiguous).
    pub level: Level,
    /// Claim values that were not understood (named in the decision log).
    pub unknown: Vec<String>,
    /// `auth_time` claim, seconds since epoch, when present and numeric.
    pub auth_time: Option<u64>,
    /// `auth_time` is present but not a usable NumericDate (a string, negative, huge): the
    /// authentication age is unknown, and `iat` must not stand in for it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub auth_time_malformed: bool,
}

/// At most this many values are read from one claim (`amr`, `acrs`, a custom claim); the
/// rest are ignored and `<claim>:(truncated)` is listed as unknown.
pub const MAX_VALUES_PER_CLAIM: usize = 32;

/// At most this many entries are kept in [`Assurance::unknown`] (then `(more)`).
pub const MAX_UNKNOWN: usize = 16;

/// Longest value (in bytes) that is looked up at all; longer ones are unknown.
const MAX_VALUE_BYTES: usize = 256;

/// Longest value kept in an `unknown` entry or a generated method name.
const MAX_SHOWN_CHARS: usize = 64;

/// Classifies a verified claim set. Never panics; unknown or malformed values classify
/// to the weakest level they could be and are listed in [`Assurance::unknown`].
pub fn classify(claims: &Claims, settings: &ClassifierSettings) -> Assurance {
    let mut acc = Accumulator::default();
    classify_amr(claims, settings, &mut acc);
    classify_acr(claims, settings, &mut acc);
    if settings.profile == Profile::EntraId || !settings.phishing_resistant_acrs.is_empty() {
        classify_entra_acrs(claims, settings, &mut acc);
    }
    if settings.profile == Profile::Duo {
        classify_duo_factor(claims, settings, &mut acc);
    }
    for rule in &settings.custom_claims {
        classify_custom(claims, rule, &mut acc);
    }
    let (auth_time, malformed) = match claims.get("auth_time") {
        None | Some(Value::Null) => (None, false),
        Some(v) => {
            let secs = numeric_seconds(v);
            if secs.is_none() {
                acc.unknown("auth_time", "(malformed)");
            }
            (secs, secs.is_none())
        }
    };
    let mut assurance = acc.finish(auth_time);
    assurance.auth_time_malformed = malformed;
    assurance
}

#[derive(Default)]
struct Accumulator {
    methods: BTreeSet<String>,
    level: Option<Level>,
    unknown: Vec<String>,
    unknown_overflow: bool,
}

impl Accumulator {
    fn record(&mut self, method: &str, level: Level) {
        self.methods.insert(method.to_string());
        self.level = Some(self.level.map_or(level, |l| l.max(level)));
    }

    fn unknown(&mut self, claim: &str, shown: &str) {
        if self.unknown.len() >= MAX_UNKNOWN {
            self.unknown_overflow = true;
            return;
        }
        let entry = format!("{claim}:{shown}");
        if !self.unknown.contains(&entry) {
            self.unknown.push(entry);
        }
    }

    fn unknown_value(&mut self, claim: &str, value: &str) {
        let shown = sanitize(value);
        self.unknown(claim, &shown);
    }

    fn finish(mut self, auth_time: Option<u64>) -> Assurance {
        if self.unknown_overflow {
            self.unknown.push("(more)".to_string());
        }
        Assurance {
            methods: self.methods.into_iter().collect(),
            level: self.level.unwrap_or(Level::None),
            unknown: self.unknown,
            auth_time,
            auth_time_malformed: false,
        }
    }
}

/// Reads a claim that should be a string or an array of strings. Returns the usable values
/// (de-duplicated, order kept, capped) and lists malformed parts as unknown.
fn string_values<'c>(
    value: Option<&'c Value>,
    claim: &str,
    allow_single_string: bool,
    acc: &mut Accumulator,
) -> Vec<&'c str> {
    let mut out: Vec<&'c str> = Vec::new();
    match value {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if allow_single_string => push_value(&mut out, s, claim, acc),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                if i >= MAX_VALUES_PER_CLAIM {
                    acc.unknown(claim, "(truncated)");
                    break;
                }
                match item {
                    Value::String(s) => push_value(&mut out, s, claim, acc),
                    _ => acc.unknown(claim, "(non_string_element)"),
                }
            }
        }
        Some(_) if allow_single_string => acc.unknown(claim, "(not_string)"),
        Some(_) => acc.unknown(claim, "(not_array)"),
    }
    out
}

fn push_value<'c>(out: &mut Vec<&'c str>, s: &'c str, claim: &str, acc: &mut Accumulator) {
    if s.len() > MAX_VALUE_BYTES {
        acc.unknown_value(claim, s);
    } else if !out.contains(&s) {
        out.push(s);
    }
}

fn lookup(map: &[(String, Level)], value: &str) -> Option<Level> {
    map.iter().find(|(k, _)| k == value).map(|(_, l)| *l)
}

fn mapped_method(builtin: Option<vocab::Term>, claim: &str, value: &str) -> String {
    builtin.map_or_else(
        || format!("{claim}:{}", sanitize(value)),
        |t| t.method.to_string(),
    )
}

fn classify_amr(claims: &Claims, settings: &ClassifierSettings, acc: &mut Accumulator) {
    let profile = settings.profile;
    let values = string_values(claims.get("amr"), "amr", false, acc);
    let mut second_factor_named = false;
    let mut remaining: Vec<&str> = Vec::with_capacity(values.len());
    for v in values {
        if let Some(level) = lookup(&settings.amr_levels, v) {
            let method = mapped_method(vocab::amr_term(profile, v), "amr", v);
            acc.record(&method, level);
            if !vocab::FIRST_FACTOR_OR_SIGNAL.contains(&v) {
                second_factor_named = true;
            }
        } else {
            remaining.push(v);
        }
    }
    for combo in vocab::combos(profile, &remaining) {
        for term in &combo.terms {
            acc.record(term.method, term.level);
        }
        remaining.retain(|v| !combo.consumes.contains(v));
        second_factor_named = true;
    }
    let mut has_mfa_marker = false;
    for v in remaining {
        if v == "mfa" {
            has_mfa_marker = true;
            continue;
        }
        match vocab::amr_term(profile, v) {
            Some(term) => {
                acc.record(term.method, term.level);
                if !vocab::FIRST_FACTOR_OR_SIGNAL.contains(&v) {
                    second_factor_named = true;
                }
            }
            None => acc.unknown_value("amr", v),
        }
    }
    // `mfa` only adds evidence when no second factor is named: then the unnamed factor
    // counts as the weakest MFA (push).
    if has_mfa_marker && !second_factor_named {
        acc.record("mfa_unspecified", Level::Push);
    }
}

fn classify_acr(claims: &Claims, settings: &ClassifierSettings, acc: &mut Accumulator) {
    // `acr` is a string (OIDC Core §2); an array is tolerated.
    for v in string_values(claims.get("acr"), "acr", true, acc) {
        let builtin = vocab::acr_term(settings.profile, v);
        if let Some(level) = lookup(&settings.acr_levels, v) {
            acc.record(&mapped_method(builtin, "acr", v), level);
        } else if let Some(term) = builtin {
            acc.record(term.method, term.level);
        } else {
            acc.unknown_value("acr", v);
        }
    }
}

/// Entra ID v2.0 access tokens carry `acrs`: the Conditional Access authentication-context
/// ids the session satisfied. The operator names the ids bound to a phishing-resistant
/// authentication-strength policy; other ids may be mapped with `acr_levels`.
fn classify_entra_acrs(claims: &Claims, settings: &ClassifierSettings, acc: &mut Accumulator) {
    for v in string_values(claims.get("acrs"), "acrs", false, acc) {
        if settings.phishing_resistant_acrs.iter().any(|a| a == v) {
            acc.record("entra_auth_context", Level::PhishingResistant);
        } else if let Some(level) = lookup(&settings.acr_levels, v) {
            acc.record(&format!("acrs:{}", sanitize(v)), level);
        } else {
            acc.unknown_value("acrs", v);
        }
    }
}

/// Duo Universal Prompt tokens: `auth_context.factor`.
fn classify_duo_factor(claims: &Claims, settings: &ClassifierSettings, acc: &mut Accumulator) {
    const CLAIM: &str = "auth_context.factor";
    let Some(value) = claim_at_path(claims, CLAIM) else {
        return;
    };
    for v in string_values(Some(value), CLAIM, true, acc) {
        let builtin = vocab::duo_factor(v);
        if let Some(level) = lookup(&settings.amr_levels, v) {
            acc.record(&mapped_method(builtin, CLAIM, v), level);
        } else if let Some(term) = builtin {
            acc.record(term.method, term.level);
        } else {
            acc.unknown_value(CLAIM, v);
        }
    }
}

fn classify_custom(claims: &Claims, rule: &CustomClaimRule, acc: &mut Accumulator) {
    let Some(value) = claim_at_path(claims, &rule.claim) else {
        return;
    };
    let claim = sanitize(&rule.claim);
    for v in string_values(Some(value), &claim, true, acc) {
        match lookup(&rule.values, v) {
            Some(level) => acc.record(&format!("{claim}:{}", sanitize(v)), level),
            None => acc.unknown_value(&claim, v),
        }
    }
}

/// A claim by name; when no top-level claim has that exact name, a dotted path into nested
/// objects (`auth_context.factor`). At most 8 levels deep.
fn claim_at_path<'c>(claims: &'c Claims, path: &str) -> Option<&'c Value> {
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    let mut parts = path.split('.');
    let mut current = claims.get(parts.next()?)?;
    for (depth, part) in parts.enumerate() {
        if depth >= 8 {
            return None;
        }
        current = current.as_object()?.get(part)?;
    }
    Some(current)
}

/// Seconds since the epoch from a JSON number (integers, or non-negative finite floats
/// rounded down); anything else is `None`.
fn numeric_seconds(v: &Value) -> Option<u64> {
    let n = v.as_number()?;
    if let Some(u) = n.as_u64() {
        return Some(u);
    }
    let f = n.as_f64()?;
    if f.is_finite() && f >= 0.0 && f < u64::MAX as f64 {
        Some(f as u64)
    } else {
        None
    }
}

/// A value made safe for logs, reason codes and header-free display: ASCII letters, digits
/// and `._-~:/+=@` are kept, everything else becomes `_`; at most 64 characters (then `..`).
pub fn sanitize(value: &str) -> String {
    let mut out = String::with_capacity(value.len().min(MAX_SHOWN_CHARS + 2));
    for (i, c) in value.chars().enumerate() {
        if i >= MAX_SHOWN_CHARS {
            out.push_str("..");
            break;
        }
        let keep = c.is_ascii_alphanumeric() || "._-~:/+=@".contains(c);
        out.push(if keep { c } else { '_' });
    }
    out
}
