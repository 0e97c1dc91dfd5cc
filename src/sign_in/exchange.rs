//! The token endpoint's answer to a code exchange: its ID token verified as any session
//! token, then checked against the sign-in it finishes (the `nonce`, the level the route
//! needs, `auth_time` within `max_age`), and the session cookie set.

use super::callback::{clear_state, cookie_header};
use super::state::{self, PendingSignIn};
use super::{pages, SignInConfig, SignInSecrets, MAX_SESSION_COOKIE_BYTES, MAX_TOKEN_ANSWER_BYTES};
use crate::response::LocalReply;
use crate::token::establish::{verify_obtained, KeyLookup, SessionCache, Trust};

/// How the exchange ended: the reply, and the reason code when it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// The browser's answer: 302 back with the session cookie, or an error page.
    pub reply: LocalReply,
    /// `None` when the sign-in completed.
    pub failure: Option<String>,
    /// The session's level when it completed (for the log).
    pub level: Option<&'static str>,
}

fn failed(config: &SignInConfig, status: u32, reason: String, retry: &str) -> Finished {
    let mut reply = pages::failed(status, &reason, retry);
    reply.headers.push(clear_state(config));
    Finished {
        reply,
        failure: Some(reason),
        level: None,
    }
}

/// What the call to the token endpoint gave.
pub enum TokenAnswer<'a> {
    /// An HTTP answer: its status and body.
    Answered { status: u32, body: &'a [u8] },
    /// No answer: the cluster is unknown, the call timed out or was reset.
    Unavailable,
}

/// The OAuth error code of an error answer (RFC 6749 §5.2), reduced to safe characters.
fn oauth_error(body: &[u8]) -> String {
    let code = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
        .unwrap_or_default();
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(64)
        .collect()
}

/// Finishes a sign-in from the token endpoint's answer.
#[allow(clippy::too_many_arguments)]
pub fn finish(
    config: &SignInConfig,
    secrets: &SignInSecrets,
    pending: &PendingSignIn,
    answer: TokenAnswer<'_>,
    trust: &Trust<'_>,
    keys: &dyn KeyLookup,
    cache: &mut SessionCache,
    now: u64,
) -> Finished {
    let retry = pending.return_url.as_str();
    let body = match answer {
        TokenAnswer::Unavailable => {
            return failed(config, 502, "token_endpoint_unavailable".into(), retry)
        }
        TokenAnswer::Answered { status: 200, body } if body.len() <= MAX_TOKEN_ANSWER_BYTES => body,
        TokenAnswer::Answered { status: 200, .. } => {
            return failed(
                config,
                502,
                "token_answer_malformed:too_large".into(),
                retry,
            )
        }
        TokenAnswer::Answered { status, body } => {
            let code = oauth_error(body);
            let reason = if code.is_empty() {
                format!("token_endpoint_failed:{status}")
            } else {
                format!("token_endpoint_failed:{code}")
            };
            return failed(config, 502, reason, retry);
        }
    };
    let Ok(answer) = serde_json::from_slice::<serde_json::Value>(body) else {
        return failed(config, 502, "token_answer_malformed:json".into(), retry);
    };
    let Some(id_token) = answer.get("id_token").and_then(|t| t.as_str()) else {
        return failed(
            config,
            502,
            "token_answer_malformed:no_id_token".into(),
            retry,
        );
    };
    let verified = verify_obtained(trust, config.issuer, id_token.as_bytes(), keys, cache, now);
    let (session, claims) = match verified {
        Ok(v) => v,
        Err(code) => return failed(config, 502, format!("id_token_invalid:{code}"), retry),
    };
    let expected_nonce = state::nonce(&secrets.state_key, &pending.state);
    let nonce = claims
        .get("nonce")
        .and_then(|n| n.as_str())
        .unwrap_or_default();
    if !state::same_state(nonce.as_bytes(), expected_nonce.as_bytes()) {
        return failed(config, 502, "nonce_mismatch".into(), retry);
    }
    if session.level() < pending.asked.level {
        let reason = format!("level_not_met:{}", session.level().as_str());
        return failed(config, 401, reason, retry);
    }
    if let Some(max_age) = pending.asked.max_age {
        let skew = trust
            .issuers
            .get(config.issuer)
            .map_or(60, |i| i.verify.clock_skew_secs);
        let auth_time = claims.get("auth_time").and_then(serde_json::Value::as_u64);
        let recent =
            auth_time.is_some_and(|t| now <= t.saturating_add(max_age).saturating_add(skew));
        if !recent {
            return failed(config, 401, "max_age_exceeded".into(), retry);
        }
    }
    if id_token.len() > MAX_SESSION_COOKIE_BYTES {
        return failed(config, 502, "session_cookie_too_large".into(), retry);
    }
    let lifetime = session.expires_at.saturating_sub(now);
    let level = Some(session.level().as_str());
    Finished {
        reply: LocalReply {
            status: 302,
            headers: vec![
                ("location".into(), pending.return_url.clone()),
                ("cache-control".into(), "no-store".into()),
                (
                    "set-cookie".into(),
                    cookie_header(config, &config.session_cookie, id_token, Some(lifetime)),
                ),
                clear_state(config),
            ],
            body: Vec::new(),
            details: "mfa_gate_sign_in_complete",
        },
        failure: None,
        level,
    }
}
