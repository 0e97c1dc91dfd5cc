//! Built-in vocabularies: which `amr` / `acr` values each provider profile documents, and
//! the method and level each one proves. Every table cites its source.
//!
//! Rule for every entry: a value counts as the *weakest* method it could stand for
//! (e.g. a bare `mfa` is "some second factor", so the weakest MFA on our scale: push).

use super::{Level, Profile};

/// What one claim value (or a documented combination of values) proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Term {
    /// Normalised method name (see the vocabulary in the module doc of `assurance`).
    pub method: &'static str,
    /// The weakest level this evidence could stand for.
    pub level: Level,
}

const fn t(method: &'static str, level: Level) -> Term {
    Term { method, level }
}

use Level::{
    HardwareBoundPhishingResistant as Hbpr, None as NoLevel, Otp, Password,
    PhishingResistant as Pr, Push, PushNumberMatch,
};

/// `amr` values that name a single knowledge/first factor or only a context signal. A bare
/// `mfa` marker is only read as "an unnamed second factor" when every other value is one of
/// these (or `mfa` itself).
pub(crate) const FIRST_FACTOR_OR_SIGNAL: &[&str] = &[
    "pwd", "pin", "kba", "fed", "wia", "user", "geo", "rba", "none", "mfa",
];

/// Names that unambiguously denote an origin-bound authenticator protocol (WebAuthn/FIDO).
/// Not RFC 8176 values, but emitted by several providers and by `amr` mappers.
pub(crate) const WEBAUTHN_LIKE: &[&str] = &["webauthn", "fido", "fido2", "passkey", "u2f"];

/// Generic vocabulary, used by every profile after its own table.
///
/// Sources: RFC 8176 §2 and the IANA "Authentication Method Reference Values" registry
/// (shared/vectors/claims/rfc8176_amr_registry.json); OpenID "EAP ACR Values" 1.0 for
/// `phr`/`phrh`; NIST SP 800-63B-4 for the judgements (push and OTP are not
/// phishing-resistant; PSTN SMS/voice is a *restricted* authenticator but still a
/// one-time code, so `sms` stays at `otp` and operators who forbid it map it lower with
/// `amr_levels: {"sms": "password"}`).
fn generic_amr(value: &str) -> Option<Term> {
    Some(match value {
        "pwd" => t("pwd", Password),
        "pin" => t("pin", Password),
        "kba" => t("kba", Password),
        // Biometrics alone are one factor of unknown binding.
        "face" | "fpt" | "iris" | "retina" | "vbm" => t("biometric", Password),
        "wia" => t("windows_integrated", Password),
        // Federated assertion: the upstream method is unknown, so a single factor at most.
        "fed" => t("federated", Password),
        "otp" => t("otp", Otp),
        "sms" => t("sms", Otp),
        // RFC 8176 `tel`: "confirmation using a telephone call" — may be a press-a-key
        // approval, so the weakest it could be is an approval (push level).
        "tel" => t("phone_call", Push),
        // Multiple-channel authentication: an out-of-band approval at the weakest.
        "mca" => t("out_of_band", Push),
        // Proof of possession of a key: says nothing about origin binding, so a push-style
        // approval with an app key is the weakest it could be. `hwk` alone likewise.
        "swk" => t("swk", Push),
        "hwk" => t("hwk", Push),
        // IANA `pop`: "proof-of-possession of a key, unspecified whether hardware or
        // software secured" — same reasoning as `swk`. (Okta's profile reads it as WebAuthn,
        // as Okta documents.)
        "pop" => t("pop", Push),
        // A smart card (PIV/CAC-style certificate authentication) is phishing-resistant
        // per NIST SP 800-63B-4; with `hwk` it is hardware-bound (see `combos`).
        "sc" => t("smart_card", Pr),
        // The OpenID EAP ACR values, seen in `amr` too (Okta FastPass puts `phr` there).
        "phr" => t("phishing_resistant", Pr),
        "phrh" => t("hardware_bound_phishing_resistant", Hbpr),
        "user" => t("user_presence", NoLevel),
        "geo" | "rba" => t("risk_signal", NoLevel),
        "none" => t("none", NoLevel),
        v if WEBAUTHN_LIKE.contains(&v) => t("webauthn", Pr),
        _ => return None,
    })
}

/// Generic `acr` values. OpenID EAP ACR Values 1.0 §2: `phr` = phishing-resistant,
/// `phrh` = phishing-resistant with a hardware-protected key. OpenID PAPE 1.0 policy URIs
/// (still used by Auth0): multi-factor says nothing about the factor (→ push, the weakest
/// MFA); multi-factor-physical means a physical device (weakest: a hardware OTP token).
fn generic_acr(value: &str) -> Option<Term> {
    Some(match value {
        "phr" => t("phishing_resistant", Pr),
        "phrh" => t("hardware_bound_phishing_resistant", Hbpr),
        "http://schemas.openid.net/pape/policies/2007/06/multi-factor" => {
            t("mfa_unspecified", Push)
        }
        "http://schemas.openid.net/pape/policies/2007/06/multi-factor-physical" => t("otp", Otp),
        "http://schemas.openid.net/pape/policies/2007/06/phishing-resistant" => {
            t("phishing_resistant", Pr)
        }
        _ => return None,
    })
}

/// Okta single values. Source: okta/okta-developer-docs, guides/configure-amr-claims-mapping,
/// "Supported AMR values by authenticator type" (commit 03cf475d), transcribed in
/// shared/vectors/claims/okta_amr_values_by_authenticator.json. Combinations with
/// `okta_verify` / `sc` are in [`combos`].
fn okta_amr(value: &str) -> Option<Term> {
    Some(match value {
        "email" => t("email", Otp),
        "sms" => t("sms", Otp),
        // Okta `tel` = phone_number authenticator, voice method: a code read out by phone.
        "tel" => t("voice", Otp),
        // Duo as an Okta authenticator: the Duo factor is not reported; push is the weakest.
        "duo" => t("duo", Push),
        "google_otp" | "symantec" | "oauth_otp" | "rsa" | "yubikey" => t("otp", Otp),
        // Okta documents `pop` for the WebAuthn authenticator (FIDO2 / security key). A
        // synced passkey is possible, so not hardware-bound unless `hwk` is also present.
        "pop" => t("webauthn", Pr),
        // Custom authenticator push: `swk` alone.
        "swk" => t("push", Push),
        // `okta_verify` without a companion value: the weakest Okta Verify method (push).
        "okta_verify" => t("push", Push),
        _ => return None,
    })
}

/// Okta `acr` values (Okta step-up docs: `urn:okta:loa:*` and the OpenID `phr`/`phrh`).
fn okta_acr(value: &str) -> Option<Term> {
    Some(match value {
        "urn:okta:loa:1fa:any" | "urn:okta:loa:1fa:pwd" => t("pwd", Password),
        // "2fa if possible" may have been one factor only.
        "urn:okta:loa:2fa:any:ifpossible" => t("pwd", Password),
        "urn:okta:loa:2fa:any" => t("mfa_unspecified", Push),
        _ => return None,
    })
}

/// Microsoft Entra ID v1.0 token `amr` values. Source: entra-docs, ID-token and
/// access-token claims reference, "The amr claim" (shared/vectors/claims/entra_amr_values.json).
/// The table has no FIDO2 value; phishing resistance comes from `acrs` (see `classify`).
fn entra_amr(value: &str) -> Option<Term> {
    Some(match value {
        // "Proof of RSA key, e.g. Microsoft Authenticator app": push for our purposes.
        "rsa" => t("push", Push),
        // "Equivalent to mfa".
        "ngcmfa" => t("mfa_unspecified", Push),
        // "Windows or MFA credential": the weaker of the two.
        "wiaormfa" => t("windows_integrated", Password),
        _ => return None,
    })
}

/// Entra v1.0 `acr`: "0" = did not meet ISO/IEC 29115 requirements; "1" = it did.
fn entra_acr(value: &str) -> Option<Term> {
    Some(match value {
        "0" => t("none", NoLevel),
        "1" => t("pwd", Password),
        _ => return None,
    })
}

/// Auth0: `amr: ["mfa"]` and the PAPE multi-factor `acr` for *any* second factor, push and
/// FIDO2 alike (auth0/docs, mfa/guides/configure-step-up-web-apps, commit 1aea6ccb). The
/// generic tables already read both as `mfa_unspecified` at push level; Auth0 adds nothing.
fn auth0_amr(_value: &str) -> Option<Term> {
    None
}

/// Keycloak: `acr` is the LoA alias from the realm's `acr.loa.map` and `amr` comes from the
/// AMR protocol mapper with admin-set reference values, so operators map both with
/// `acr_levels` / `amr_levels`. Built in are only Keycloak's defaults without an LoA map:
/// `acr` "1" for a login with credentials and "0" for a login from an SSO cookie
/// (Keycloak server admin guide, "Step-up authentication flow"); both prove one factor.
fn keycloak_acr(value: &str) -> Option<Term> {
    Some(match value {
        "0" | "1" => t("pwd", Password),
        _ => return None,
    })
}

/// Ping: PingOne puts the sign-on (authentication) policy name in `acr`
/// (developer.pingidentity.com/pingone-api/platform/applications/application-sign-on-policy-assignments,
/// "Single_Factor" prompts for username and password; the MULTI_FACTOR_AUTHENTICATION action
/// takes "a one-time passcode ... or a push confirmation", so its weakest is push).
/// PingAM / Advanced Identity Cloud map `acr` keys to journeys and set `amr` per journey
/// (docs.pingidentity.com/pingam/8/am-oidc1/oidc-authentication-requirements): both are
/// operator-defined, so they go through `acr_levels` / `amr_levels`; `amr` values that
/// follow RFC 8176 are read by the generic table.
fn ping_acr(value: &str) -> Option<Term> {
    Some(match value {
        "Single_Factor" => t("pwd", Password),
        "Multi_Factor" => t("mfa_unspecified", Push),
        _ => return None,
    })
}

/// Duo: Duo SSO sends an RFC 8176-style `amr` (duo.com/blog/amr-support-duo-sso-double-prompt),
/// read by the generic table. The Duo Universal Prompt / OIDC Auth API token carries
/// `auth_context.factor` (duo.com/docs/oauthapi), whose values are the Duo authentication-log
/// factors (duo.com/docs/adminapi#authentication-logs). Verified Duo Push makes the user type
/// a code shown at login into Duo Mobile: Duo's form of number matching, still not
/// phishing-resistant (NIST SP 800-63B-4).
pub(crate) fn duo_factor(value: &str) -> Option<Term> {
    Some(match value {
        "duo_push" => t("push", Push),
        "verified_duo_push" => t("verified_push", PushNumberMatch),
        "phone_call" => t("phone_call", Push),
        "sms_passcode" => t("sms", Otp),
        "passcode"
        | "duo_mobile_passcode"
        | "hardware_token"
        | "yubikey_code"
        | "yubikey_passcode" => t("otp", Otp),
        // Help-desk bypass codes are reusable secrets handed out by people.
        "bypass_code" => t("bypass_code", Password),
        "webauthn"
        | "webauthn_credential"
        | "webauthn_security_key"
        | "webauthn_chrome_touchid"
        | "passkey" => t("webauthn", Pr),
        // Duo skipped the second factor: no MFA evidence.
        "remembered_device" | "trusted_network" | "not_available" => t("mfa_skipped", NoLevel),
        _ => return None,
    })
}

/// The built-in reading of one `amr` value for `profile` (profile table, then generic).
pub(crate) fn amr_term(profile: Profile, value: &str) -> Option<Term> {
    let specific = match profile {
        Profile::Okta => okta_amr(value),
        Profile::EntraId => entra_amr(value),
        Profile::Auth0 => auth0_amr(value),
        Profile::Generic | Profile::Keycloak | Profile::Ping | Profile::Duo => None,
    };
    specific.or_else(|| generic_amr(value))
}

/// The built-in reading of one `acr` value for `profile` (profile table, then generic).
pub(crate) fn acr_term(profile: Profile, value: &str) -> Option<Term> {
    let specific = match profile {
        Profile::Okta => okta_acr(value),
        Profile::EntraId => entra_acr(value),
        Profile::Keycloak => keycloak_acr(value),
        Profile::Ping => ping_acr(value),
        Profile::Generic | Profile::Auth0 | Profile::Duo => None,
    };
    specific.or_else(|| generic_acr(value))
}

/// A documented combination of `amr` values that means more (or something else) than its
/// parts. `consumes` are removed before single values are read.
pub(crate) struct Combo<'v> {
    pub consumes: Vec<&'v str>,
    pub terms: Vec<Term>,
}

/// Finds documented combinations among `values` (already de-duplicated).
pub(crate) fn combos<'v>(profile: Profile, values: &[&'v str]) -> Vec<Combo<'v>> {
    let find = |wanted: &str| values.iter().copied().find(|v| *v == wanted);
    let mut out: Vec<Combo<'v>> = Vec::new();
    let add = |out: &mut Vec<Combo<'v>>, consumes: Vec<&'v str>, terms: Vec<Term>| {
        out.push(Combo { consumes, terms });
    };
    let okta = profile == Profile::Okta;
    let mut swk_used = false;
    if let (true, Some(ov)) = (okta, find("okta_verify")) {
        // Okta Verify: +phr = FastPass (signed nonce); +swk = push; +otp = TOTP.
        if let Some(phr) = find("phr") {
            add(&mut out, vec![ov, phr], vec![t("fastpass", Pr)]);
        } else if let Some(swk) = find("swk") {
            add(&mut out, vec![ov, swk], vec![t("push", Push)]);
            swk_used = true;
        } else if let Some(otp) = find("otp") {
            add(&mut out, vec![ov, otp], vec![t("otp", Otp)]);
        }
    }
    let mut hwk_used = false;
    // Smart card with a hardware-secured key (Okta: "hwk replaces swk"; RFC 8176 sc + hwk).
    if let (Some(sc), Some(hwk)) = (find("sc"), find("hwk")) {
        add(
            &mut out,
            vec![sc, hwk],
            vec![t("smart_card", Hbpr), t("hwk", Hbpr)],
        );
        hwk_used = true;
    } else if let (true, Some(sc), Some(swk), false) = (okta, find("sc"), find("swk"), swk_used) {
        add(&mut out, vec![sc, swk], vec![t("smart_card", Pr)]);
    }
    // WebAuthn with a hardware-secured key: hardware-bound phishing-resistant. Okta's `pop`
    // is documented WebAuthn; the generic `pop` is not (see `generic_amr`).
    if let (false, Some(hwk)) = (hwk_used, find("hwk")) {
        let webauthn = values
            .iter()
            .copied()
            .find(|v| WEBAUTHN_LIKE.contains(v) || (okta && *v == "pop"));
        if let Some(w) = webauthn {
            add(
                &mut out,
                vec![w, hwk],
                vec![t("webauthn", Hbpr), t("hwk", Hbpr)],
            );
        }
    }
    out
}
