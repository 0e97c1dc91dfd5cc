//! Every provider profile end to end: documented claim sets (../shared/vectors/claims and
//! the providers' docs cited in src/assurance/vocab.rs), signed at test time, against the
//! privileged route (/admin needs phishing_resistant) and the otp route (/reports, deny).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::{json, Value};

/// (profile, extra issuer settings, claims to merge, expected /admin, expected /reports)
fn cases() -> Vec<(&'static str, Value, Value, u32, u32)> {
    vec![
        // Okta: push is okta_verify+swk; FastPass okta_verify+phr; WebAuthn pop; TOTP otp.
        (
            "okta",
            json!({}),
            json!({"amr":["pwd","okta_verify","swk"]}),
            401,
            403,
        ),
        (
            "okta",
            json!({}),
            json!({"amr":["okta_verify","phr"]}),
            200,
            200,
        ),
        ("okta", json!({}), json!({"amr":["pwd","pop"]}), 200, 200),
        (
            "okta",
            json!({}),
            json!({"amr":["pwd","okta_verify","otp"]}),
            401,
            200,
        ),
        (
            "okta",
            json!({}),
            json!({"amr":["sms","mfa","pwd"]}),
            401,
            200,
        ),
        // Okta org that enforces number challenge: the operator maps swk.
        (
            "okta",
            json!({"amr_levels":{"swk":"push_number_match"}}),
            json!({"amr":["pwd","okta_verify","swk"]}),
            401,
            403,
        ),
        // Entra ID v1: Authenticator app (rsa) is push; FIDO2 only via a bound auth context.
        (
            "entra_id",
            json!({}),
            json!({"amr":["mfa","rsa","pwd"]}),
            401,
            403,
        ),
        (
            "entra_id",
            json!({"phishing_resistant_acrs":["c7"]}),
            json!({"acrs":["c7"]}),
            200,
            200,
        ),
        (
            "entra_id",
            json!({"phishing_resistant_acrs":["c7"]}),
            json!({"acrs":["c1"]}),
            401,
            403,
        ),
        // Auth0: bare mfa never counts as phishing-resistant.
        (
            "auth0",
            json!({}),
            json!({"amr":["mfa"],"acr":"http://schemas.openid.net/pape/policies/2007/06/multi-factor"}),
            401,
            403,
        ),
        ("auth0", json!({}), json!({}), 401, 403),
        // Keycloak: LoA aliases mapped by the operator.
        (
            "keycloak",
            json!({"acr_levels":{"gold":"phishing_resistant","silver":"otp"}}),
            json!({"acr":"gold"}),
            200,
            200,
        ),
        (
            "keycloak",
            json!({"acr_levels":{"gold":"phishing_resistant","silver":"otp"}}),
            json!({"acr":"silver"}),
            401,
            200,
        ),
        ("keycloak", json!({}), json!({"acr":"gold"}), 401, 403),
        // Ping: sign-on policy names in acr.
        ("ping", json!({}), json!({"acr":"Multi_Factor"}), 401, 403),
        (
            "ping",
            json!({"acr_levels":{"Passkey_Policy":"phishing_resistant"}}),
            json!({"acr":"Passkey_Policy"}),
            200,
            200,
        ),
        // Duo Universal Prompt: auth_context.factor.
        (
            "duo",
            json!({}),
            json!({"auth_context":{"factor":"duo_push"}}),
            401,
            403,
        ),
        (
            "duo",
            json!({}),
            json!({"auth_context":{"factor":"verified_duo_push"}}),
            401,
            403,
        ),
        (
            "duo",
            json!({}),
            json!({"auth_context":{"factor":"webauthn_security_key"}}),
            200,
            200,
        ),
        // Generic RFC 8176 / OpenID EAP.
        ("generic", json!({}), json!({"acr":"phr"}), 200, 200),
        ("generic", json!({}), json!({"amr":["pwd","otp"]}), 401, 200),
        ("generic", json!({}), json!({"amr":["swk"]}), 401, 403),
    ]
}

#[test]
fn documented_claim_sets_get_the_expected_answers() {
    let mut failures = Vec::new();
    for (profile, extra, merge, admin, reports) in cases() {
        let mut issuer = json!({"profile": profile});
        for (k, v) in extra.as_object().unwrap() {
            issuer[k] = v.clone();
        }
        let mut gate = Gate::with_clusters(
            &config_with(issuer, json!({})),
            mfa_gate_host::Clusters::new(),
            1,
        );
        let mut c = claims("user", &[]);
        c.as_object_mut().unwrap().remove("amr");
        for (k, v) in merge.as_object().unwrap() {
            c[k] = v.clone();
        }
        let token = KEY.token(&c);
        let got_admin = gate.get_with_token("/admin", &token).response.status as u32;
        let got_reports = gate.get_with_token("/reports", &token).response.status as u32;
        if (got_admin, got_reports) != (admin, reports) {
            failures.push(format!(
                "{profile} {extra} {merge}: /admin {got_admin} (want {admin}), /reports {got_reports} (want {reports})"
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn okta_documented_amr_table_never_lets_push_reach_admin() {
    // ../shared/vectors/claims/okta_amr_values_by_authenticator.json: every row.
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/vectors/claims/okta_amr_values_by_authenticator.json"
    );
    let table: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("shared vectors")).unwrap();
    let mut gate = Gate::with_clusters(
        &config_with(json!({"profile":"okta"}), json!({})),
        mfa_gate_host::Clusters::new(),
        1,
    );
    let mut checked = 0;
    for row in table["rows"].as_array().unwrap() {
        let amr: Vec<&str> = row["amr"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let mut c = claims("user", &amr);
        c["amr"] = json!(["pwd"].iter().chain(amr.iter()).collect::<Vec<_>>());
        let status = gate
            .get_with_token("/admin", &KEY.token(&c))
            .response
            .status;
        let phishing_resistant =
            amr.contains(&"pop") || amr.contains(&"phr") || amr.contains(&"sc");
        let want = if phishing_resistant { 200 } else { 401 };
        assert_eq!(status, want, "row {row}");
        checked += 1;
    }
    assert!(checked >= 15);
}
