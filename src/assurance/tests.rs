//! Table-driven tests: documented provider claim sets (shared/vectors/claims) and hostile
//! inputs → methods, level and unknown values.

use super::*;
use serde_json::json;

fn vectors_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/vectors/claims")
}

fn load(name: &str) -> Value {
    let path = vectors_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "read {}: {e} (shared/ must sit beside the clone)",
            path.display()
        )
    });
    serde_json::from_str(&text).expect("vector file is JSON")
}

fn claims(v: Value) -> Claims {
    match v {
        Value::Object(m) => m,
        other => panic!("claims must be an object, got {other}"),
    }
}

fn settings(profile: Profile) -> ClassifierSettings {
    ClassifierSettings {
        profile,
        ..ClassifierSettings::default()
    }
}

fn amr(profile: Profile, values: &[&str]) -> Assurance {
    classify(&claims(json!({ "amr": values })), &settings(profile))
}

#[track_caller]
fn assert_class(a: &Assurance, methods: &[&str], level: Level) {
    assert_eq!(a.methods, methods, "methods of {a:?}");
    assert_eq!(a.level, level, "level of {a:?}");
}

// ---------------------------------------------------------------- documented vectors

#[test]
fn okta_every_documented_authenticator_row() {
    use Level::{Otp, Password, PhishingResistant, Push};
    // (authenticator_key, method) → (methods, level)
    let expected: &[(&str, &str, &[&str], Level)] = &[
        ("okta_password", "password", &["pwd"], Password),
        ("security_question", "security_question", &["kba"], Password),
        ("okta_email", "email", &["email"], Otp),
        ("phone_number", "sms", &["sms"], Otp),
        ("phone_number", "voice", &["voice"], Otp),
        ("duo", "duo", &["duo"], Push),
        ("symantec_vip", "otp", &["otp"], Otp),
        ("google_otp", "otp", &["otp"], Otp),
        ("okta_verify", "totp", &["otp"], Otp),
        ("okta_verify", "push", &["push"], Push),
        (
            "okta_verify",
            "signed_nonce",
            &["fastpass"],
            PhishingResistant,
        ),
        ("custom_app", "push", &["push"], Push),
        ("webauthn", "webauthn", &["webauthn"], PhishingResistant),
        ("onprem_mfa", "otp", &["otp"], Otp),
        ("rsa_token", "", &["otp"], Otp),
        ("yubikey_token", "", &["otp"], Otp),
        ("custom_otp", "", &["otp"], Otp),
        ("external_idp", "idp", &["federated"], Password),
        ("smart_card_idp", "cert", &["smart_card"], PhishingResistant),
    ];
    let doc = load("okta_amr_values_by_authenticator.json");
    let rows = doc["rows"].as_array().expect("rows");
    assert_eq!(
        rows.len(),
        expected.len(),
        "a documented row has no expectation"
    );
    for row in rows {
        let key = row["authenticator_key"].as_str().expect("key");
        let method = row["method"].as_str().expect("method");
        let (_, _, methods, level) = expected
            .iter()
            .find(|(k, m, _, _)| *k == key && *m == method)
            .unwrap_or_else(|| panic!("no expectation for {key}/{method}"));
        let a = classify(
            &claims(json!({ "amr": row["amr"] })),
            &settings(Profile::Okta),
        );
        assert_class(&a, methods, *level);
        assert!(a.unknown.is_empty(), "{key}/{method}: {:?}", a.unknown);
    }
}

#[test]
fn okta_smart_card_with_hardware_key_is_hardware_bound() {
    let a = amr(Profile::Okta, &["sc", "hwk"]);
    assert_class(
        &a,
        &["hwk", "smart_card"],
        Level::HardwareBoundPhishingResistant,
    );
}

#[test]
fn okta_documented_id_token_sms_mfa_pwd() {
    let doc = load("okta_id_token_amr_sms_mfa_pwd.json");
    let a = classify(&claims(doc["claims"].clone()), &settings(Profile::Okta));
    // `mfa` adds nothing: the second factor (sms) is named.
    assert_class(&a, &["pwd", "sms"], Level::Otp);
    assert_eq!(a.auth_time, Some(1_449_624_026));
    assert!(a.unknown.is_empty());
}

#[test]
fn auth0_documented_tokens_with_and_without_mfa() {
    let doc = load("auth0_id_token_with_and_without_mfa.json");
    let with = classify(&claims(doc["with_mfa"].clone()), &settings(Profile::Auth0));
    // Push and FIDO2 both surface as `mfa`: never phishing-resistant.
    assert_class(&with, &["mfa_unspecified"], Level::Push);
    assert!(with.unknown.is_empty());
    let without = classify(
        &claims(doc["without_mfa"].clone()),
        &settings(Profile::Auth0),
    );
    assert_class(&without, &[], Level::None);
    assert!(without.unknown.is_empty());
}

#[test]
fn entra_documented_example_and_value_table() {
    let doc = load("entra_amr_values.json");
    let example = &doc["documented_example_password_plus_authenticator_app"];
    let a = classify(&claims(example.clone()), &settings(Profile::EntraId));
    assert_class(&a, &["push", "pwd"], Level::Push);

    use Level::{Otp, Password, Push};
    let expected: &[(&str, &str, Level)] = &[
        ("pwd", "pwd", Password),
        ("rsa", "push", Push),
        ("otp", "otp", Otp),
        ("fed", "federated", Password),
        ("wia", "windows_integrated", Password),
        ("mfa", "mfa_unspecified", Push),
        ("ngcmfa", "mfa_unspecified", Push),
        ("wiaormfa", "windows_integrated", Password),
        ("none", "none", Level::None),
    ];
    let values = doc["values"].as_object().expect("values");
    assert_eq!(
        values.len(),
        expected.len(),
        "a documented value has no expectation"
    );
    for value in values.keys() {
        let (_, method, level) = expected
            .iter()
            .find(|(v, _, _)| v == value)
            .unwrap_or_else(|| panic!("no expectation for {value}"));
        let a = amr(Profile::EntraId, &[value]);
        assert_class(&a, &[method], *level);
        assert!(a.unknown.is_empty(), "{value}");
    }
}

#[test]
fn generic_knows_every_rfc8176_value() {
    let doc = load("rfc8176_amr_registry.json");
    for value in doc["values"].as_array().expect("values") {
        let v = value.as_str().expect("string");
        let a = amr(Profile::Generic, &[v]);
        assert!(a.unknown.is_empty(), "{v} is unknown");
        assert!(
            a.level <= Level::PhishingResistant,
            "{v} alone must not be hardware-bound"
        );
    }
}

// ---------------------------------------------------------------- per-profile tables

#[test]
fn generic_amr_and_acr_table() {
    use Level::{HardwareBoundPhishingResistant, Otp, Password, PhishingResistant, Push};
    use Profile::Generic as G;
    type Case<'a> = (&'a [&'a str], Option<&'a str>, &'a [&'a str], Level);
    let cases: &[Case] = &[
        (&["pwd"], None, &["pwd"], Password),
        (&["pwd", "otp"], None, &["otp", "pwd"], Otp),
        (&["pwd", "sms", "mfa"], None, &["pwd", "sms"], Otp),
        (&["pwd", "mfa"], None, &["mfa_unspecified", "pwd"], Push),
        (&["swk"], None, &["swk"], Push),
        (&["hwk"], None, &["hwk"], Push),
        // IANA `pop` says nothing about origin binding.
        (&["pop"], None, &["pop"], Push),
        (&["hwk", "pop"], None, &["hwk", "pop"], Push),
        (&["webauthn"], None, &["webauthn"], PhishingResistant),
        (
            &["hwk", "fido2"],
            None,
            &["hwk", "webauthn"],
            HardwareBoundPhishingResistant,
        ),
        (&["sc"], None, &["smart_card"], PhishingResistant),
        (
            &["sc", "hwk", "pin"],
            None,
            &["hwk", "pin", "smart_card"],
            HardwareBoundPhishingResistant,
        ),
        (&["tel"], None, &["phone_call"], Push),
        (
            &["fpt", "user"],
            None,
            &["biometric", "user_presence"],
            Password,
        ),
        (&[], Some("phr"), &["phishing_resistant"], PhishingResistant),
        (
            &[],
            Some("phrh"),
            &["hardware_bound_phishing_resistant"],
            HardwareBoundPhishingResistant,
        ),
        (
            &["pwd"],
            Some("phr"),
            &["phishing_resistant", "pwd"],
            PhishingResistant,
        ),
        (
            &[],
            Some("http://schemas.openid.net/pape/policies/2007/06/multi-factor"),
            &["mfa_unspecified"],
            Push,
        ),
    ];
    for (amr_values, acr, methods, level) in cases {
        let mut c = json!({ "amr": amr_values });
        if let Some(acr) = acr {
            c["acr"] = json!(acr);
        }
        let a = classify(&claims(c), &settings(G));
        assert_class(&a, methods, *level);
        assert!(a.unknown.is_empty(), "{amr_values:?}: {:?}", a.unknown);
    }
}

#[test]
fn okta_acr_values() {
    use Level::{HardwareBoundPhishingResistant, Password, PhishingResistant, Push};
    for (acr, level) in [
        ("urn:okta:loa:1fa:any", Password),
        ("urn:okta:loa:1fa:pwd", Password),
        ("urn:okta:loa:2fa:any:ifpossible", Password),
        ("urn:okta:loa:2fa:any", Push),
        ("phr", PhishingResistant),
        ("phrh", HardwareBoundPhishingResistant),
    ] {
        let a = classify(&claims(json!({ "acr": acr })), &settings(Profile::Okta));
        assert_eq!(a.level, level, "{acr}");
    }
}

#[test]
fn okta_verify_alone_counts_as_push_and_okta_pop_with_hwk_is_hardware_bound() {
    assert_class(
        &amr(Profile::Okta, &["okta_verify"]),
        &["push"],
        Level::Push,
    );
    assert_class(
        &amr(Profile::Okta, &["pop", "hwk"]),
        &["hwk", "webauthn"],
        Level::HardwareBoundPhishingResistant,
    );
}

#[test]
fn entra_acrs_bound_to_phishing_resistant_policy() {
    let mut s = settings(Profile::EntraId);
    s.phishing_resistant_acrs = vec!["c1".into()];
    s.acr_levels = vec![("c2".into(), Level::Otp)];
    let a = classify(
        &claims(json!({ "amr": ["pwd","rsa","mfa"], "acrs": ["c1"] })),
        &s,
    );
    assert_class(
        &a,
        &["entra_auth_context", "push", "pwd"],
        Level::PhishingResistant,
    );

    let a = classify(&claims(json!({ "acrs": ["c2", "c7"] })), &s);
    assert_class(&a, &["acrs:c2"], Level::Otp);
    assert_eq!(a.unknown, vec!["acrs:c7"]);

    // Without the operator's list, no Entra token is phishing-resistant.
    let a = classify(
        &claims(json!({ "acrs": ["c1"] })),
        &settings(Profile::EntraId),
    );
    assert_eq!(a.level, Level::None);
    assert_eq!(a.unknown, vec!["acrs:c1"]);
}

#[test]
fn keycloak_acr_needs_operator_levels() {
    let bare = settings(Profile::Keycloak);
    let a = classify(&claims(json!({ "acr": "gold" })), &bare);
    assert_eq!(a.level, Level::None);
    assert_eq!(a.unknown, vec!["acr:gold"]);
    let a = classify(&claims(json!({ "acr": "1" })), &bare);
    assert_class(&a, &["pwd"], Level::Password);

    let mut s = settings(Profile::Keycloak);
    s.acr_levels = vec![
        ("gold".into(), Level::PhishingResistant),
        ("1".into(), Level::Otp),
    ];
    s.amr_levels = vec![(
        "webauthn-passwordless".into(),
        Level::HardwareBoundPhishingResistant,
    )];
    let a = classify(&claims(json!({ "acr": "gold" })), &s);
    assert_class(&a, &["acr:gold"], Level::PhishingResistant);
    // Operator mappings win over the built-in "1" = password.
    assert_class(
        &classify(&claims(json!({ "acr": "1" })), &s),
        &["pwd"],
        Level::Otp,
    );
    let a = classify(&claims(json!({ "amr": ["webauthn-passwordless"] })), &s);
    assert_class(
        &a,
        &["amr:webauthn-passwordless"],
        Level::HardwareBoundPhishingResistant,
    );
}

#[test]
fn ping_sign_on_policy_names() {
    let s = settings(Profile::Ping);
    let a = classify(
        &claims(json!({ "acr": "Single_Factor", "amr": ["pwd"] })),
        &s,
    );
    assert_class(&a, &["pwd"], Level::Password);
    let a = classify(&claims(json!({ "acr": "Multi_Factor" })), &s);
    assert_class(&a, &["mfa_unspecified"], Level::Push);
    let a = classify(&claims(json!({ "acr": "Passwordless_Journey" })), &s);
    assert_eq!(a.unknown, vec!["acr:Passwordless_Journey"]);
}

#[test]
fn duo_universal_prompt_factor() {
    use Level::{Otp, Password, PhishingResistant, Push, PushNumberMatch};
    let s = settings(Profile::Duo);
    for (factor, methods, level) in [
        ("duo_push", &["push"][..], Push),
        ("verified_duo_push", &["verified_push"][..], PushNumberMatch),
        ("phone_call", &["phone_call"][..], Push),
        ("sms_passcode", &["sms"][..], Otp),
        ("passcode", &["otp"][..], Otp),
        ("hardware_token", &["otp"][..], Otp),
        ("bypass_code", &["bypass_code"][..], Password),
        (
            "webauthn_security_key",
            &["webauthn"][..],
            PhishingResistant,
        ),
        ("remembered_device", &["mfa_skipped"][..], Level::None),
    ] {
        let c = json!({ "auth_context": { "factor": factor, "result": "success" } });
        let a = classify(&claims(c), &s);
        assert_class(&a, methods, level);
    }
    let a = classify(
        &claims(json!({ "auth_context": { "factor": "carrier_pigeon" } })),
        &s,
    );
    assert_eq!(a.unknown, vec!["auth_context.factor:carrier_pigeon"]);
    // Duo SSO `amr` follows RFC 8176.
    assert_class(
        &amr(Profile::Duo, &["pwd", "mfa"]),
        &["mfa_unspecified", "pwd"],
        Push,
    );
}

// ---------------------------------------------------------------- operator configuration

#[test]
fn amr_levels_override_builtins_including_combinations() {
    let mut s = settings(Profile::Okta);
    s.amr_levels = vec![("swk".into(), Level::PushNumberMatch)];
    let a = classify(&claims(json!({ "amr": ["okta_verify", "swk", "pwd"] })), &s);
    assert_class(&a, &["push", "pwd"], Level::PushNumberMatch);

    // An operator who does not accept SMS as a second factor: `mfa` must not bring it back.
    let mut s = settings(Profile::Okta);
    s.amr_levels = vec![("sms".into(), Level::Password)];
    let doc = load("okta_id_token_amr_sms_mfa_pwd.json");
    let a = classify(&claims(doc["claims"].clone()), &s);
    assert_class(&a, &["pwd", "sms"], Level::Password);
}

#[test]
fn acr_levels_override_builtin_acr() {
    let mut s = settings(Profile::Generic);
    s.acr_levels = vec![("phr".into(), Level::Otp)];
    let a = classify(&claims(json!({ "acr": "phr" })), &s);
    assert_class(&a, &["phishing_resistant"], Level::Otp);
}

#[test]
fn custom_claims_map_number_matching() {
    let mut s = settings(Profile::Okta);
    s.custom_claims = vec![
        CustomClaimRule {
            claim: "mfa_method".into(),
            values: vec![("push_nm".into(), Level::PushNumberMatch)],
        },
        CustomClaimRule {
            claim: "ext.strength".into(),
            values: vec![("high".into(), Level::PhishingResistant)],
        },
    ];
    let c = json!({ "amr": ["okta_verify", "swk"], "mfa_method": "push_nm" });
    let a = classify(&claims(c), &s);
    assert_class(&a, &["mfa_method:push_nm", "push"], Level::PushNumberMatch);

    let c = json!({ "mfa_method": ["other", "push_nm"], "ext": { "strength": "high" } });
    let a = classify(&claims(c), &s);
    assert_class(
        &a,
        &["ext.strength:high", "mfa_method:push_nm"],
        Level::PhishingResistant,
    );
    assert_eq!(a.unknown, vec!["mfa_method:other"]);

    let a = classify(&claims(json!({ "mfa_method": 7 })), &s);
    assert_eq!(a.level, Level::None);
    assert_eq!(a.unknown, vec!["mfa_method:(not_string)"]);
}

// ---------------------------------------------------------------- hostile input

#[test]
fn malformed_amr_and_acr_never_panic_and_are_listed() {
    let s = settings(Profile::Okta);
    let cases: &[(Value, &[&str])] = &[
        (json!({ "amr": "pwd" }), &["amr:(not_array)"]),
        (json!({ "amr": 42 }), &["amr:(not_array)"]),
        (json!({ "amr": { "pwd": true } }), &["amr:(not_array)"]),
        (json!({ "amr": true }), &["amr:(not_array)"]),
        (json!({ "amr": null }), &[]),
        (json!({ "amr": [] }), &[]),
        (
            json!({ "amr": [1, null, ["pwd"], { "a": 1 }] }),
            &["amr:(non_string_element)"],
        ),
        (json!({ "acr": 1 }), &["acr:(not_string)"]),
        (json!({ "acr": ["phr", 2] }), &["acr:(non_string_element)"]),
        (
            json!({ "auth_time": "1700000000" }),
            &["auth_time:(malformed)"],
        ),
        (json!({ "auth_time": -5 }), &["auth_time:(malformed)"]),
        (json!({ "auth_time": 1e300 }), &["auth_time:(malformed)"]),
    ];
    for (c, unknown) in cases {
        let a = classify(&claims(c.clone()), &s);
        assert_eq!(a.unknown, *unknown, "{c}");
        assert_eq!(a.auth_time, None, "{c}");
    }
    // A malformed element does not hide the good ones.
    let a = classify(&claims(json!({ "amr": [7, "pop"], "acr": ["phr", 2] })), &s);
    assert_eq!(a.level, Level::PhishingResistant);
}

#[test]
fn auth_time_numeric_forms() {
    let s = settings(Profile::Generic);
    let at = |v: Value| classify(&claims(json!({ "auth_time": v })), &s).auth_time;
    assert_eq!(at(json!(1_700_000_000u64)), Some(1_700_000_000));
    assert_eq!(at(json!(1_700_000_000.9)), Some(1_700_000_000));
    assert_eq!(at(json!(0)), Some(0));
}

#[test]
fn huge_arrays_are_capped() {
    let mut values: Vec<Value> = (0..10_000).map(|i| json!(format!("x{i}"))).collect();
    values.push(json!("pop"));
    let a = classify(&claims(json!({ "amr": values })), &settings(Profile::Okta));
    // Only the first 32 are read: the trailing "pop" is never seen.
    assert_eq!(a.level, Level::None);
    assert_eq!(a.unknown.len(), MAX_UNKNOWN + 1);
    assert_eq!(a.unknown.last().map(String::as_str), Some("(more)"));

    let few: Vec<Value> = (0..40).map(|_| json!("pwd")).collect();
    let a = classify(&claims(json!({ "amr": few })), &settings(Profile::Okta));
    assert_class(&a, &["pwd"], Level::Password);
    assert_eq!(a.unknown, vec!["amr:(truncated)"]);
}

#[test]
fn hostile_strings_are_sanitised_in_unknown() {
    let long = "a".repeat(10_000);
    let c = json!({ "amr": ["pw\"d\r\nX-Evil: 1", "é€", long, "sp ace"] });
    let a = classify(&claims(c), &settings(Profile::Generic));
    assert_eq!(a.level, Level::None);
    let mut unknown = a.unknown.clone();
    unknown.sort();
    let mut expected = vec![
        "amr:pw_d__X-Evil:_1".to_string(),
        "amr:__".to_string(),
        format!("amr:{}..", "a".repeat(64)),
        "amr:sp_ace".to_string(),
    ];
    expected.sort();
    assert_eq!(unknown, expected);
    for u in &a.unknown {
        assert!(u.bytes().all(|b| b.is_ascii_graphic()), "{u}");
    }
}

#[test]
fn duplicate_values_count_once_and_unknown_does_not_lower_level() {
    let a = amr(Profile::Okta, &["pop", "pop", "zzz", "pwd"]);
    assert_class(&a, &["pwd", "webauthn"], Level::PhishingResistant);
    assert_eq!(a.unknown, vec!["amr:zzz"]);
}

#[test]
fn level_spelling_round_trips() {
    for level in Level::ALL {
        assert_eq!(Level::parse(level.as_str()), Some(level));
    }
    for profile in Profile::ALL {
        assert_eq!(Profile::parse(profile.as_str()), Some(profile));
    }
    assert_eq!(Level::parse("phishing_resistent"), None);
    assert!(Level::Push < Level::PushNumberMatch && Level::Otp < Level::PhishingResistant);
}
