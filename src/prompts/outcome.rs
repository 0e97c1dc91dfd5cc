//! The provider's answers: the outcome of a prompt ([`read_outcome`], by the endpoint's
//! ordered rules) and the transaction an initiate's answer names ([`read_transaction`]).
//! Bodies may be anything: never panics, reads at most
//! [`MAX_RESPONSE_BODY_BYTES`](super::MAX_RESPONSE_BODY_BYTES), and a non-2xx answer or a
//! body that is not JSON is no outcome. Keeps nothing of the body.

use super::endpoint::{parse_json_strict, scalar_text, Endpoint};
use super::history::PromptOutcome;
use super::{transaction_key, MAX_RESPONSE_BODY_BYTES};
use serde_json::Value;

fn json(status: u16, body: &[u8]) -> Option<Value> {
    if !(200..300).contains(&status) || body.is_empty() || body.len() > MAX_RESPONSE_BODY_BYTES {
        return None;
    }
    parse_json_strict(body)
}

/// The outcome the provider's answer (`status`, `body`) tells, by the endpoint's rules
/// (first match wins); `None` when no rule matches or the answer is not a 2xx JSON body.
pub fn read_outcome(endpoint: &Endpoint, status: u16, body: &[u8]) -> Option<PromptOutcome> {
    let value = json(status, body)?;
    endpoint.outcomes.iter().find_map(|rule| {
        let found = value.pointer(&rule.pointer).and_then(scalar_text)?;
        (*found == *rule.equals.as_bytes()).then_some(rule.outcome)
    })
}

/// The transaction an initiate's answer names (a 2xx JSON body), at the endpoint's
/// `transaction_response` pointer: a string, or a URL whose last path segment is the id
/// (Okta's `_links.poll.href`); as [`transaction_key`] digests it.
pub fn read_transaction(endpoint: &Endpoint, body: &[u8]) -> Option<[u8; 16]> {
    let pointer = endpoint.transaction_response.as_deref()?;
    let value = json(200, body)?;
    let text = value.pointer(pointer)?.as_str()?;
    let id = if text.contains('/') {
        let path = text.split(['?', '#']).next().unwrap_or_default();
        path.trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default()
    } else {
        text
    };
    let id = id.trim();
    (!id.is_empty()).then(|| transaction_key(id.as_bytes()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::prompts::endpoint::preset;

    // Duo Auth API v2 answers (duo.com/docs/authapi: /auth, async /auth, /auth_status).
    const DUO_ALLOW: &str = r#"{"stat":"OK","response":{"result":"allow","status":"allow","status_msg":"Success. Logging you in..."}}"#;
    const DUO_DENY: &str = r#"{"stat":"OK","response":{"result":"deny","status":"deny","status_msg":"Login request denied."}}"#;
    const DUO_TIMEOUT: &str = r#"{"stat":"OK","response":{"result":"deny","status":"timeout","status_msg":"Login timed out."}}"#;
    const DUO_WAITING: &str = r#"{"stat":"OK","response":{"result":"waiting","status":"pushed","status_msg":"Pushed a login request to your phone..."}}"#;
    const DUO_ASYNC: &str =
        r#"{"stat":"OK","response":{"txid":"45f7c92b-f45f-4862-8545-e0f58e78075a"}}"#;

    // Okta answers (developer.okta.com: Factors API verify and transaction status;
    // Authentication API verify push).
    const OKTA_WAITING: &str = r#"{"expiresAt":"2015-04-01T15:57:32.000Z","factorResult":"WAITING","_links":{"poll":{"href":"https://example.okta.com/api/v1/users/00u15s1KDETTQMQYABRL/factors/opf3hkfocI4JTLAju0g4/transactions/mst1eiHghhPxf0yhp0g","hints":{"allow":["GET"]}},"cancel":{"href":"https://example.okta.com/api/v1/users/00u15s1KDETTQMQYABRL/factors/opf3hkfocI4JTLAju0g4/transactions/mst1eiHghhPxf0yhp0g"}}}"#;
    const OKTA_REJECTED: &str = r#"{"factorResult":"REJECTED","_links":{"verify":{"href":"https://example.okta.com/api/v1/users/00u/factors/opf/verify"}}}"#;
    const OKTA_TIMEOUT: &str = r#"{"factorResult":"TIMEOUT"}"#;
    const OKTA_SUCCESS: &str = r#"{"factorResult":"SUCCESS"}"#;
    const AUTHN_WAITING: &str = r#"{"stateToken":"007ucIX7PATyn94hsHfOLVaXAmOBkKHWnOOLG43bsb","expiresAt":"2015-11-03T10:15:57.000Z","status":"MFA_CHALLENGE","factorResult":"WAITING","_embedded":{"factor":{"id":"opfh52xcuft3J4uZc0g3","factorType":"push","provider":"OKTA"}}}"#;
    const AUTHN_SUCCESS: &str = r#"{"expiresAt":"2015-11-03T10:15:57.000Z","status":"SUCCESS","sessionToken":"00Fpzf4en68pCXTsMjcX8JPMctzN2Wiw4LDOBL_9pe","_embedded":{"user":{"id":"00ub0oNGTSWTBKOLGLNR"}}}"#;
    const AUTHN_REJECTED: &str =
        r#"{"stateToken":"007uc","status":"MFA_CHALLENGE","factorResult":"REJECTED"}"#;

    #[test]
    fn duo_answers_are_read() {
        let duo = preset("duo", "duo").unwrap();
        for (body, outcome) in [
            (DUO_ALLOW, Some(PromptOutcome::Approved)),
            (DUO_DENY, Some(PromptOutcome::Denied)),
            (DUO_TIMEOUT, Some(PromptOutcome::Timeout)),
            (DUO_WAITING, Some(PromptOutcome::Pending)),
            (DUO_ASYNC, None),
        ] {
            assert_eq!(read_outcome(&duo, 200, body.as_bytes()), outcome, "{body}");
        }
        assert_eq!(
            read_transaction(&duo, DUO_ASYNC.as_bytes()),
            Some(transaction_key(b"45f7c92b-f45f-4862-8545-e0f58e78075a"))
        );
        assert_eq!(read_transaction(&duo, DUO_ALLOW.as_bytes()), None);
        // Not a 2xx: no outcome, whatever it says.
        assert_eq!(read_outcome(&duo, 400, DUO_ALLOW.as_bytes()), None);
        assert_eq!(read_outcome(&duo, 302, DUO_ALLOW.as_bytes()), None);
    }

    #[test]
    fn okta_answers_are_read_and_the_poll_link_names_the_transaction() {
        let okta = preset("okta_factors", "okta").unwrap();
        for (body, outcome) in [
            (OKTA_WAITING, PromptOutcome::Pending),
            (OKTA_REJECTED, PromptOutcome::Denied),
            (OKTA_TIMEOUT, PromptOutcome::Timeout),
            (OKTA_SUCCESS, PromptOutcome::Approved),
        ] {
            assert_eq!(read_outcome(&okta, 200, body.as_bytes()), Some(outcome));
        }
        assert_eq!(
            read_transaction(&okta, OKTA_WAITING.as_bytes()),
            Some(transaction_key(b"mst1eiHghhPxf0yhp0g"))
        );
        let authn = preset("okta_authn", "authn").unwrap();
        for (body, outcome) in [
            (AUTHN_WAITING, PromptOutcome::Pending),
            (AUTHN_SUCCESS, PromptOutcome::Approved),
            (AUTHN_REJECTED, PromptOutcome::Denied),
        ] {
            assert_eq!(read_outcome(&authn, 200, body.as_bytes()), Some(outcome));
        }
    }

    #[test]
    fn garbage_answers_are_no_outcome() {
        let duo = preset("duo", "duo").unwrap();
        let big = format!(
            r#"{{"response":{{"result":"allow","pad":"{}"}}}}"#,
            "x".repeat(MAX_RESPONSE_BODY_BYTES)
        );
        for body in [
            &b""[..],
            b"\x00\xff\xfe",
            b"<html>502</html>",
            b"{\"response\":",
            b"[1,2,3]",
            b"{\"response\":{\"result\":[\"allow\"]}}",
            b"{\"response\":{\"result\":\"allow\",\"result\":\"deny\"}}",
            big.as_bytes(),
        ] {
            assert_eq!(read_outcome(&duo, 200, body), None, "{body:?}");
            assert_eq!(read_transaction(&duo, body), None);
        }
        let deep = "[".repeat(100_000);
        assert_eq!(read_outcome(&duo, 200, deep.as_bytes()), None);
    }
}
