//! Configuration parsing: defaults, every error with its path, each compiled part.

use super::*;
use crate::assurance::{Level, Profile};
use crate::policy::OnInsufficient;

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
        errs.contains(&"routes[0].match.methods: expected an array, found a string".to_string()),
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

const TRANSMITTER: &str = r#"{"name":"okta","issuer":"https://idp.example","audience":"gate",
    "remote_jwks":{"cluster":"idp","path":"/ssf/jwks"},
    "poll":{"cluster":"idp","path":"/ssf/poll","bearer_env":"SSF_BEARER"},
    "push":{"path":"/.mfa-gate/ssf","bearer_env":"SSF_PUSH"}}"#;

#[test]
fn revocation_section_gets_documented_defaults() {
    let doc = minimal(
        "",
        &format!(r#","revocation":{{"transmitters":[{TRANSMITTER}]}}"#),
    );
    let c = parse(doc.as_bytes()).unwrap();
    let r = c.revocation.as_ref().unwrap();
    assert_eq!(r.max_entries, 100_000);
    assert_eq!(r.max_token_lifetime_secs, 86_400);
    assert_eq!(r.email_claim.as_deref(), Some("email"));
    assert_eq!(r.opaque_claim, None);
    assert_eq!(r.on_store_unavailable, StoreUnavailable::Deny);
    let t = &r.transmitters[0];
    assert_eq!(t.subject_issuers, vec!["https://idp.example".to_string()]);
    let poll = t.poll.as_ref().unwrap();
    assert_eq!(
        (poll.interval_secs, poll.max_events, poll.timeout_ms),
        (5, 100, 5000)
    );
    assert_eq!(poll.authority, "idp");
    assert_eq!(
        r.endpoint_paths().collect::<Vec<_>>(),
        vec!["/.mfa-gate/ssf"]
    );
    assert!(parse(minimal("", "").as_bytes())
        .unwrap()
        .revocation
        .is_none());
}

#[test]
fn revocation_errors_name_their_field() {
    let cases = [
        (r#"{"max_entries":5}"#, "revocation.max_entries: 5 is out of range"),
        (r#"{"max_token_lifetime_secs":10}"#, "revocation.max_token_lifetime_secs: 10 is out of range"),
        (r#"{"on_store_unavailable":"maybe"}"#, "revocation.on_store_unavailable: unknown"),
        (
            r#"{"transmitters":[{"name":"x y","issuer":"i","audience":"a","remote_jwks":{"cluster":"c","path":"/j"},"push":{"path":"/p","bearer_env":"B"}}]}"#,
            "revocation.transmitters[0].name: invalid name \"x y\"",
        ),
        (
            r#"{"transmitters":[{"name":"x","issuer":"i","audience":"a","push":{"path":"/p","bearer_env":"B"}}]}"#,
            "revocation.transmitters[0]: needs the transmitter's keys",
        ),
        (
            r#"{"transmitters":[{"name":"x","issuer":"i","audience":"a","remote_jwks":{"cluster":"c","path":"/j"}}]}"#,
            "revocation.transmitters[0]: set poll, push or both",
        ),
        (
            r#"{"transmitters":[{"name":"x","issuer":"i","audience":"a","remote_jwks":{"cluster":"c","path":"/j"},"push":{"path":"/p","bearer_env":"s3cr3t-value!"}}]}"#,
            "revocation.transmitters[0].push.bearer_env: \"s3cr3t-value!\" is not an environment variable name",
        ),
        (
            r#"{"transmitters":[{"name":"x","issuer":"i","audience":"a","remote_jwks":{"cluster":"c","path":"/j"},"push":{"path":"/a/../p","bearer_env":"B"}}]}"#,
            "revocation.transmitters[0].push.path: \"/a/../p\" must be a plain absolute path",
        ),
        (
            r#"{"transmitters":[{"name":"x","issuer":"i","audience":"a","remote_jwks":{"cluster":"c","path":"/j"},"subject_issuers":["https://elsewhere"],"push":{"path":"/p","bearer_env":"B"}}]}"#,
            "revocation.transmitters[0].subject_issuers[0]: \"https://elsewhere\" is not a configured issuer",
        ),
        (
            r#"{"transmitters":[{"name":"x","issuer":"i","audience":"a","remote_jwks":{"cluster":"c","path":"/j"},"push":{"path":"/p","bearer_env":"B"}}],"backchannel_logout":{"path":"/p","audiences":["a"]}}"#,
            "revocation: two endpoints share the path \"/p\"",
        ),
        (r#"{"backchannel_logout":{"path":"/bcl","audiences":[]}}"#, "revocation.backchannel_logout.audiences"),
        (
            r#"{"idp_sessions":[{"issuer":"https://idp.example","api":"keycloak","cluster":"kc","credential_env":"KC"}]}"#,
            "revocation.idp_sessions[0].realm: keycloak needs the realm",
        ),
        (
            r#"{"idp_sessions":[{"issuer":"https://idp.example","api":"ping","cluster":"kc","credential_env":"KC"}]}"#,
            "revocation.idp_sessions[0].api: unknown",
        ),
        (
            r#"{"idp_sessions":[{"issuer":"https://other","api":"okta","cluster":"o","credential_env":"O"}]}"#,
            "revocation.idp_sessions[0].issuer: \"https://other\" is not a configured issuer",
        ),
        (r#"{"transmiters":[]}"#, "revocation: unknown field `transmiters`"),
    ];
    for (section, expected) in cases {
        let errs = errors_of(&minimal("", &format!(r#","revocation":{section}"#)));
        assert!(
            errs.iter().any(|e| e.starts_with(expected)),
            "{section}: expected {expected:?}, got {errs:?}"
        );
    }
    // A rule that revokes needs somewhere to keep the revocation.
    let doc = minimal("", "").replace(
        r#""max_auth_age_secs":900}"#,
        r#""max_auth_age_secs":900},"on_insufficient":"revoke""#,
    );
    let errs = errors_of(&doc);
    assert!(
        errs.iter()
            .any(|e| e
                .starts_with("routes[0].on_insufficient: \"revoke\" needs a revocation section")),
        "{errs:?}"
    );
    let with = doc.replacen(
        r#""routes""#,
        r#""revocation":{"backchannel_logout":{"path":"/bcl","audiences":["api"]}},"routes""#,
        1,
    );
    let c = parse(with.as_bytes()).unwrap();
    assert_eq!(c.routes[0].on_insufficient, OnInsufficient::Revoke);
}
