//! The facade: classify by headers, identify with the body, resolve polls through the
//! transactions, user keys.

use super::endpoint::{preset, FieldSource};
use super::*;
use crate::store::MemoryStore;

const T0: u64 = 1_700_000_000;

fn settings() -> PromptSettings {
    let mut authn = preset("okta_authn", "authn").unwrap();
    authn.users = vec![FieldSource::Header("x-okta-user".into())];
    PromptSettings {
        endpoints: vec![
            preset("duo", "duo").unwrap(),
            preset("okta_factors", "okta").unwrap(),
            authn,
        ],
        ..PromptSettings::default()
    }
}

fn request(method: &str, path: &str, extra: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    let mut h = vec![
        (":method".to_string(), method.as_bytes().to_vec()),
        (":path".to_string(), path.as_bytes().to_vec()),
        (
            ":authority".to_string(),
            b"api-xxxx.duosecurity.com".to_vec(),
        ),
    ];
    h.extend(
        extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec())),
    );
    h
}

const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");
const JSON: (&str, &str) = ("content-type", "application/json; charset=utf-8");

fn run(
    s: &PromptSettings,
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
    body: &str,
) -> Result<Identified, IdentifyError> {
    let h = request(method, path, extra);
    let matched = classify(s, method.as_bytes(), path.as_bytes()).expect("a push endpoint");
    identify(s, &matched, &h, body.as_bytes())
}

#[test]
fn classify_by_method_and_path_only() {
    let s = settings();
    let m = classify(&s, b"POST", b"/auth/v2/auth").unwrap();
    assert_eq!(
        m,
        Matched {
            endpoint: 0,
            step: Step::Initiate,
            needs_body: true
        }
    );
    let m = classify(&s, b"GET", b"/auth/v2/auth_status?txid=abc").unwrap();
    assert_eq!((m.endpoint, m.step), (0, Step::Poll));
    let m = classify(&s, b"POST", b"/api/v1/users/00u1/factors/opf1/verify").unwrap();
    assert_eq!(
        (m.endpoint, m.step, m.needs_body),
        (1, Step::Initiate, true)
    );
    let m = classify(
        &s,
        b"GET",
        b"/api/v1/users/00u1/factors/opf1/transactions/mst1",
    )
    .unwrap();
    assert_eq!((m.endpoint, m.step, m.needs_body), (1, Step::Poll, false));
    let m = classify(&s, b"POST", b"/api/v1/authn/factors/opf1/verify").unwrap();
    assert_eq!((m.endpoint, m.step), (2, Step::Initiate));
    // Spellings the provider serves the same are the same endpoint.
    assert!(classify(&s, b"post", b"/auth/v2/auth/").is_some());
    assert!(classify(&s, b"POST", b"/AUTH/v2/auth").is_some());
    assert!(classify(&s, b"POST", b"/auth/v2//auth").is_some());
    assert!(classify(&s, b"POST", b"/x/../auth/v2/auth").is_some());
    assert!(classify(&s, b"POST", b"/auth/v2/%61uth").is_some());
    // Not push endpoints.
    assert_eq!(classify(&s, b"GET", b"/auth/v2/auth"), None);
    assert_eq!(classify(&s, b"POST", b"/auth/v2/preauth"), None);
    assert_eq!(
        classify(
            &s,
            b"POST",
            b"/api/v1/users/00u1/factors/opf1/verify/resend"
        ),
        None
    );
    assert_eq!(classify(&s, b"POST", b""), None);
}

#[test]
fn duo_push_is_a_prompt_for_the_form_user_and_a_passcode_is_not() {
    let s = settings();
    let id = run(
        &s,
        "POST",
        "/auth/v2/auth",
        &[FORM],
        "username=Jane&factor=push&device=auto&async=1",
    )
    .unwrap();
    assert_eq!(
        id,
        Identified {
            endpoint: 0,
            step: Step::Initiate,
            is_prompt: true,
            user: Some(user_key(b"jane")),
            transaction: None,
        }
    );
    let id = run(
        &s,
        "POST",
        "/auth/v2/auth",
        &[FORM],
        "user_id=DUXXXX&factor=AUTO",
    )
    .unwrap();
    assert!(id.is_prompt);
    assert_eq!(id.user, Some(user_key(b"duxxxx")));
    let id = run(
        &s,
        "POST",
        "/auth/v2/auth",
        &[FORM],
        "username=jane&factor=passcode&passcode=123456",
    )
    .unwrap();
    assert!(!id.is_prompt);
    // A push without a user cannot be counted.
    assert_eq!(
        run(&s, "POST", "/auth/v2/auth", &[FORM], "factor=push"),
        Err(IdentifyError::UserMissing)
    );
    // Two factors or two users: read differently upstream, refused here.
    assert_eq!(
        run(
            &s,
            "POST",
            "/auth/v2/auth",
            &[FORM],
            "username=jane&factor=passcode&factor=push"
        ),
        Err(IdentifyError::Unreadable("push_field_repeated"))
    );
    assert_eq!(
        run(
            &s,
            "POST",
            "/auth/v2/auth",
            &[FORM],
            "username=jane&username=john&factor=push"
        ),
        Err(IdentifyError::Unreadable("push_field_repeated"))
    );
    // Not a form: refused, not guessed.
    assert_eq!(
        run(
            &s,
            "POST",
            "/auth/v2/auth",
            &[("content-type", "text/plain")],
            "username=jane&factor=push"
        ),
        Err(IdentifyError::Unreadable("push_body_unreadable"))
    );
    assert_eq!(
        run(
            &s,
            "POST",
            "/auth/v2/auth",
            &[],
            "username=jane&factor=push"
        ),
        Err(IdentifyError::Unreadable("push_body_unreadable"))
    );
}

#[test]
fn the_body_cap_holds() {
    let s = PromptSettings {
        max_body_bytes: 32,
        ..settings()
    };
    let body = format!("username=jane&factor=push&pad={}", "x".repeat(32));
    assert_eq!(
        run(&s, "POST", "/auth/v2/auth", &[FORM], &body),
        Err(IdentifyError::BodyTooLarge)
    );
    assert_eq!(IdentifyError::BodyTooLarge.code(), "push_body_too_large");
    assert_eq!(IdentifyError::UserMissing.code(), "push_user_missing");
}

#[test]
fn okta_users_come_from_the_path_and_json_bodies_tell_codes_from_pushes() {
    let s = settings();
    let id = run(
        &s,
        "POST",
        "/api/v1/users/00uAB%43/factors/opf1/verify",
        &[JSON],
        "",
    )
    .unwrap();
    assert!(id.is_prompt);
    assert_eq!(id.user, Some(user_key(b"00uabc")));
    let id = run(
        &s,
        "POST",
        "/api/v1/users/00u1/factors/opf1/verify",
        &[JSON],
        "{}",
    )
    .unwrap();
    assert!(id.is_prompt);
    let id = run(
        &s,
        "POST",
        "/api/v1/users/00u1/factors/ost1/verify",
        &[JSON],
        r#"{"passCode":"123456"}"#,
    )
    .unwrap();
    assert!(!id.is_prompt);
    assert_eq!(
        run(
            &s,
            "POST",
            "/api/v1/users/00u1/factors/opf1/verify",
            &[JSON],
            r#"{"passCode":"1","passCode":"2"}"#
        ),
        Err(IdentifyError::Unreadable("push_body_unreadable"))
    );
    assert_eq!(
        run(
            &s,
            "POST",
            "/api/v1/users/00u1/factors/opf1/verify",
            &[JSON],
            "{not json"
        ),
        Err(IdentifyError::Unreadable("push_body_unreadable"))
    );
    let poll = run(
        &s,
        "GET",
        "/api/v1/users/00u1/factors/opf1/transactions/mst1eiHghhPxf0yhp0g",
        &[],
        "",
    )
    .unwrap();
    assert_eq!(poll.step, Step::Poll);
    assert!(!poll.is_prompt, "a poll never counts");
    assert_eq!(poll.user, Some(user_key(b"00u1")));
    assert_eq!(
        poll.transaction,
        Some(transaction_key(b"mst1eiHghhPxf0yhp0g"))
    );
}

#[test]
fn okta_authn_users_come_from_the_trusted_header_and_a_pending_verify_is_a_poll() {
    let s = settings();
    let body = r#"{"stateToken":"007ucIX7PATyn94hsHfOLVaXAmOBkKHWnOOLG43bsb"}"#;
    let path = "/api/v1/authn/factors/opfh52xcuft3J4uZc0g3/verify";
    let user = ("x-okta-user", "jane@example.com");
    let id = run(&s, "POST", path, &[JSON, user], body).unwrap();
    assert!(id.is_prompt);
    assert_eq!(id.user, Some(user_key(b"jane@example.com")));
    let token = transaction_key(b"007ucIX7PATyn94hsHfOLVaXAmOBkKHWnOOLG43bsb");
    assert_eq!(id.transaction, Some(token));
    assert_eq!(
        run(&s, "POST", path, &[JSON], body),
        Err(IdentifyError::UserMissing)
    );
    assert_eq!(
        run(
            &s,
            "POST",
            path,
            &[JSON, user, ("x-okta-user", "john")],
            body
        ),
        Err(IdentifyError::Unreadable("push_field_repeated"))
    );

    let mut store = MemoryStore::default();
    // Not seen yet: a new prompt.
    let first = resolve(&s, id.clone(), &store, T0);
    assert_eq!(first, id);
    history::note_prompt(
        &mut store,
        &s.fatigue,
        &user_key(b"jane@example.com"),
        Some(token),
        T0,
    )
    .unwrap();
    // The same request again while the push waits: a poll, attributed to the prompt's user.
    let again = run(&s, "POST", path, &[JSON, ("x-okta-user", "mallory")], body).unwrap();
    let again = resolve(&s, again, &store, T0 + 3);
    assert_eq!(again.step, Step::Poll);
    assert!(!again.is_prompt);
    assert_eq!(again.user, Some(user_key(b"jane@example.com")));
    // Once answered (rejected), the same verify is a new prompt.
    history::settle(
        &mut store,
        &s.fatigue,
        &user_key(b"jane@example.com"),
        Some(token),
        PromptOutcome::Denied,
        T0 + 5,
    )
    .unwrap();
    let retry = resolve(&s, id.clone(), &store, T0 + 6);
    assert_eq!((retry.step, retry.is_prompt), (Step::Initiate, true));
}

#[test]
fn a_duo_poll_is_attributed_through_its_transaction() {
    let s = settings();
    let mut store = MemoryStore::default();
    let jane = user_key(b"jane");
    history::note_prompt(&mut store, &s.fatigue, &jane, None, T0).unwrap();
    let txid = transaction_key(b"45f7c92b-f45f-4862-8545-e0f58e78075a");
    history::attach_transaction(&mut store, &s.fatigue, &jane, &txid, T0).unwrap();
    let poll = run(
        &s,
        "GET",
        "/auth/v2/auth_status?txid=45f7c92b-f45f-4862-8545-e0f58e78075a",
        &[],
        "",
    )
    .unwrap();
    assert_eq!(poll.user, None, "a Duo poll does not name its user");
    assert_eq!(poll.transaction, Some(txid));
    let poll = resolve(&s, poll, &store, T0 + 2);
    assert_eq!(poll.user, Some(jane));
    // A form poll carries it in the body.
    let poll = run(
        &s,
        "POST",
        "/auth/v2/auth_status",
        &[FORM],
        "txid=45f7c92b-f45f-4862-8545-e0f58e78075a",
    )
    .unwrap();
    assert_eq!(resolve(&s, poll, &store, T0 + 2).user, Some(jane));
    // An unknown transaction: no user.
    let poll = run(&s, "GET", "/auth/v2/auth_status?txid=other", &[], "").unwrap();
    assert_eq!(resolve(&s, poll, &store, T0 + 2).user, None);
}

#[test]
fn user_keys_are_normalised_digests_and_hex_is_what_leaves() {
    assert_eq!(
        user_key(b" Jane@Example.COM\t"),
        user_key(b"jane@example.com")
    );
    assert_ne!(user_key(b"jane"), user_key(b"john"));
    let hex = user_key(b"jane").hex();
    assert_eq!(hex.len(), 32);
    assert!(hex
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    assert_eq!(user_key(b"jane").short(), hex[..8]);
    // Transactions are case-sensitive, and never the same digest as a user.
    assert_ne!(transaction_key(b"AbC"), transaction_key(b"abc"));
    assert_ne!(transaction_key(b"jane"), user_key(b"jane").0);
    assert_ne!(client_key(b"jane"), user_key(b"jane").0);
}

#[test]
fn garbage_requests_never_panic() {
    let s = settings();
    let bodies: [&[u8]; 6] = [
        b"",
        b"\xff\xfe\x00",
        b"%%%&&&===",
        b"{",
        b"[[[[[[",
        b"a=%ZZ&factor=%70ush&username=%",
    ];
    for (method, path) in [
        ("POST", "/auth/v2/auth"),
        ("POST", "/api/v1/users/%ff/factors/x/verify"),
        ("POST", "/api/v1/authn/factors/x/verify"),
        ("GET", "/auth/v2/auth_status?txid=%00&txid=%00"),
    ] {
        for body in bodies {
            for ct in [
                "application/x-www-form-urlencoded",
                "application/json",
                "application/problem+json",
                "",
            ] {
                let h = request(
                    method,
                    path,
                    &[("content-type", ct), ("x-okta-user", "\u{1}")],
                );
                if let Some(m) = classify(&s, method.as_bytes(), path.as_bytes()) {
                    let _ = identify(&s, &m, &h, body);
                }
            }
        }
    }
    // A %-encoded factor is read decoded, as Duo reads it.
    let id = run(
        &s,
        "POST",
        "/auth/v2/auth",
        &[FORM],
        "a=%ZZ&factor=%70ush&username=%",
    )
    .unwrap();
    assert!(id.is_prompt);
    assert_eq!(id.user, Some(user_key(b"%")));
    // A matched index that is not configured is refused, not a panic.
    let m = Matched {
        endpoint: 9,
        step: Step::Initiate,
        needs_body: false,
    };
    assert!(identify(&s, &m, &request("POST", "/", &[]), b"").is_err());
}
