//! Assurance classification: from `amr`, `acr` and custom claims to a set of
//! authentication methods and one level on an ordered scale.
//!
//! OWNER: assurance helper. Interface fixed below; implementation to be completed.

use crate::claims::Claims;
use serde::{Deserialize, Serialize};

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
        match self {
            Level::None => "none",
            Level::Password => "password",
            Level::Push => "push",
            Level::PushNumberMatch => "push_number_match",
            Level::Otp => "otp",
            Level::PhishingResistant => "phishing_resistant",
            Level::HardwareBoundPhishingResistant => "hardware_bound_phishing_resistant",
        }
    }

    /// Parses the configuration spelling.
    pub fn parse(s: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.as_str() == s)
    }
}

/// Identity-provider profile: which vocabulary the issuer's `amr`/`acr` use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// RFC 8176 `amr` values and OpenID `phr`/`phrh` `acr` values only.
    #[default]
    Generic,
    Okta,
    EntraId,
    Auth0,
    Keycloak,
    Ping,
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
    pub claim: String,
    pub values: Vec<(String, Level)>,
}

/// Per-issuer classification settings (compiled from configuration).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClassifierSettings {
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
}

/// Classifies a verified claim set. Never panics; unknown or malformed values classify
/// to the weakest level they could be and are listed in [`Assurance::unknown`].
pub fn classify(claims: &Claims, settings: &ClassifierSettings) -> Assurance {
    let _ = (claims, settings);
    Assurance {
        methods: Vec::new(),
        level: Level::None,
        unknown: Vec::new(),
        auth_time: None,
    }
}
