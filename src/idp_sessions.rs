//! Ending a session at its IdP once the gate has revoked it: the call each supported API
//! takes (Okta, Keycloak, Entra ID, Auth0, RFC 7009 token revocation), built from the
//! session and the configuration. The credential is not part of it: the glue adds it
//! from the VM environment when it dispatches, so it never reaches a log or a record.
//! When to try again is [`crate::schedule::RetryQueue`]'s.

use crate::config::{IdpApi, IdpSessions};
use crate::response::percent_encode;
use crate::token::session::Session;

/// How the credential is presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// `Authorization: SSWS <token>` (Okta API tokens).
    Ssws,
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// `Authorization: Basic base64(client_id:secret)` (RFC 7009 client authentication).
    Basic { client_id: String },
}

/// One call to an IdP, without its credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndSessionCall {
    /// Index into `revocation.idp_sessions`.
    pub api: usize,
    /// `DELETE` or `POST`.
    pub method: &'static str,
    /// The request path.
    pub path: String,
    /// The form body (RFC 7009), if any.
    pub body: Option<String>,
    /// How the credential goes in.
    pub credential: Credential,
    /// What the call ends, for logs: `session <sid>` or `user <id>` (never a token).
    pub what: String,
}

/// The call that ends `session` at the IdP `api` (index `index`), if it can be built:
/// the session must name what the API needs (a `sid`, a user id, or for RFC 7009 the
/// token itself, `token`).
pub fn end_session_call(
    index: usize,
    api: &IdpSessions,
    session: &Session,
    token: Option<&str>,
) -> Option<EndSessionCall> {
    let prefix = api.path_prefix.trim_end_matches('/');
    let user = session.idp_user.as_deref().map(percent_encode);
    let sid = session.session_id.as_deref().map(percent_encode);
    let call = |method, path: String, what: String, credential| EndSessionCall {
        api: index,
        method,
        path,
        body: None,
        credential,
        what,
    };
    match api.api {
        IdpApi::Okta => {
            let user = user?;
            Some(call(
                "DELETE",
                format!("{prefix}/api/v1/users/{user}/sessions"),
                format!("user {user}"),
                Credential::Ssws,
            ))
        }
        IdpApi::Keycloak => {
            let realm = percent_encode(api.realm.as_deref()?);
            match (sid, user) {
                (Some(sid), _) => Some(call(
                    "DELETE",
                    format!("{prefix}/admin/realms/{realm}/sessions/{sid}"),
                    format!("session {sid}"),
                    Credential::Bearer,
                )),
                (None, Some(user)) => Some(call(
                    "POST",
                    format!("{prefix}/admin/realms/{realm}/users/{user}/logout"),
                    format!("user {user}"),
                    Credential::Bearer,
                )),
                (None, None) => None,
            }
        }
        IdpApi::Entra => {
            let user = user?;
            Some(call(
                "POST",
                format!("{prefix}/v1.0/users/{user}/revokeSignInSessions"),
                format!("user {user}"),
                Credential::Bearer,
            ))
        }
        IdpApi::Auth0 => match (sid, user) {
            (Some(sid), _) => Some(call(
                "POST",
                format!("{prefix}/api/v2/sessions/{sid}/revoke"),
                format!("session {sid}"),
                Credential::Bearer,
            )),
            (None, Some(user)) => Some(call(
                "DELETE",
                format!("{prefix}/api/v2/users/{user}/sessions"),
                format!("user {user}"),
                Credential::Bearer,
            )),
            (None, None) => None,
        },
        IdpApi::Rfc7009 => {
            let token = token?;
            let client_id = api.client_id.clone()?;
            let mut c = call(
                "POST",
                prefix.to_string(),
                "the session's token".to_string(),
                Credential::Basic { client_id },
            );
            c.body = Some(format!(
                "token={}&token_type_hint=access_token",
                percent_encode(token)
            ));
            Some(c)
        }
    }
}

/// Whether an answer of `status` means the session is ended (or was already gone).
pub fn ended(status: u32) -> bool {
    (200..300).contains(&status) || status == 404
}

/// Whether an answer of `status` is worth trying again (throttled, server trouble, no
/// answer at all as 0).
pub fn worth_retrying(status: u32) -> bool {
    matches!(status, 0 | 408 | 425 | 429) || status >= 500
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::assurance::{Assurance, Level};
    use crate::token::session::{SessionFacts, UpstreamHeaders};

    fn session(sid: Option<&str>, user: Option<&str>) -> Session {
        let facts = SessionFacts {
            issuer_index: 0,
            issuer: "https://idp".into(),
            subject: Some("alice".into()),
            session_id: sid.map(str::to_string),
            assurance: Assurance {
                methods: vec![],
                level: Level::Push,
                unknown: vec![],
                auth_time: None,
                auth_time_malformed: false,
            },
            issued_at: None,
            expires_at: 1,
            revocation: None,
            idp_user: user.map(str::to_string),
            binding: Ok(None),
            posture_claim: None,
            push_user: None,
            subject_key: None,
        };
        Session::new(facts, &UpstreamHeaders::default())
    }

    fn api(kind: IdpApi) -> IdpSessions {
        IdpSessions {
            issuer: "https://idp".into(),
            api: kind,
            cluster: "idp".into(),
            authority: "idp".into(),
            path_prefix: "/base/".into(),
            credential_env: "T".into(),
            realm: Some("demo realm".into()),
            client_id: Some("gate".into()),
            user_claim: "sub".into(),
            timeout_ms: 1000,
        }
    }

    #[test]
    fn each_api_gets_its_own_call() {
        let s = session(Some("s/1"), Some("00u1"));
        let okta = end_session_call(0, &api(IdpApi::Okta), &s, None).unwrap();
        assert_eq!(
            (okta.method, okta.path.as_str()),
            ("DELETE", "/base/api/v1/users/00u1/sessions")
        );
        assert_eq!(okta.credential, Credential::Ssws);
        let kc = end_session_call(0, &api(IdpApi::Keycloak), &s, None).unwrap();
        assert_eq!(kc.path, "/base/admin/realms/demo%20realm/sessions/s%2F1");
        assert_eq!(kc.method, "DELETE");
        let kc_user =
            end_session_call(0, &api(IdpApi::Keycloak), &session(None, Some("u")), None).unwrap();
        assert_eq!(
            (kc_user.method, kc_user.path.as_str()),
            ("POST", "/base/admin/realms/demo%20realm/users/u/logout")
        );
        let entra = end_session_call(0, &api(IdpApi::Entra), &s, None).unwrap();
        assert_eq!(
            (entra.method, entra.path.as_str()),
            ("POST", "/base/v1.0/users/00u1/revokeSignInSessions")
        );
        let auth0 = end_session_call(0, &api(IdpApi::Auth0), &s, None).unwrap();
        assert_eq!(
            (auth0.method, auth0.path.as_str()),
            ("POST", "/base/api/v2/sessions/s%2F1/revoke")
        );
        let rfc = end_session_call(0, &api(IdpApi::Rfc7009), &s, Some("a.b.c")).unwrap();
        assert_eq!(rfc.path, "/base");
        assert_eq!(
            rfc.body.as_deref(),
            Some("token=a.b.c&token_type_hint=access_token")
        );
        assert_eq!(
            rfc.credential,
            Credential::Basic {
                client_id: "gate".into()
            }
        );
        assert!(!rfc.what.contains("a.b.c"), "a token never goes into logs");
    }

    #[test]
    fn a_session_without_what_the_api_needs_gets_no_call() {
        let bare = session(None, None);
        for kind in [
            IdpApi::Okta,
            IdpApi::Keycloak,
            IdpApi::Entra,
            IdpApi::Auth0,
            IdpApi::Rfc7009,
        ] {
            assert_eq!(
                end_session_call(0, &api(kind), &bare, None),
                None,
                "{kind:?}"
            );
        }
    }

    #[test]
    fn answers_are_read_as_ended_or_worth_retrying() {
        assert!(ended(204) && ended(200) && ended(404));
        assert!(!ended(401) && !ended(500));
        assert!(worth_retrying(0) && worth_retrying(429) && worth_retrying(503));
        assert!(!worth_retrying(401) && !worth_retrying(403) && !worth_retrying(400));
    }
}
