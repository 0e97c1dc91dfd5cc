//! The demo IdP's legacy push endpoint, shaped like Duo's Auth API v2 (`POST /auth/v2/auth`
//! with `factor=push`, form-encoded; `GET|POST /auth/v2/auth_status?txid=` for an
//! asynchronous prompt): what mfa-gate guards with its `duo` push endpoint preset.
//!
//! There is no phone: the demo-only form field `demo_answer` (`allow`, the default; `deny`;
//! `timeout`) says what the user does with the prompt. An approved prompt for a demo user
//! (by `sub`, e.g. `pat@example.com`) also returns that user's new push session token in
//! `response.session_token`, as a legacy SSO would then sign them in.

use super::server::{parse_query, DemoRequest, DemoResponse};
use super::users::{DemoUser, USERS};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Mutex;

/// Asynchronous prompts kept for their polls (the oldest dropped beyond this).
const MAX_PENDING: usize = 1024;

/// What the user did with a prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Allow,
    Deny,
    Timeout,
}

/// Pending asynchronous prompts, by `txid`.
#[derive(Default)]
pub struct PushApi {
    pending: Mutex<HashMap<String, (String, Answer)>>,
}

impl PushApi {
    /// Answers `/auth/v2/auth` and `/auth/v2/auth_status`; `None` for any other path.
    /// `mint` signs a demo user in (their token).
    pub fn handle(
        &self,
        request: &DemoRequest,
        mint: &dyn Fn(&DemoUser) -> Option<String>,
    ) -> Option<DemoResponse> {
        match request.path.as_str() {
            "/auth/v2/auth" => Some(self.auth(request, mint)),
            "/auth/v2/auth_status" => Some(self.status(request, mint)),
            _ => None,
        }
    }

    fn auth(
        &self,
        request: &DemoRequest,
        mint: &dyn Fn(&DemoUser) -> Option<String>,
    ) -> DemoResponse {
        if request.method != "POST" {
            return fail(405, 40501, "Method not allowed");
        }
        let form = parse_query(&String::from_utf8_lossy(&request.body));
        let field = |name: &str| {
            form.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let Some(user) = field("username").or(field("user_id")) else {
            return fail(400, 40001, "Missing required request parameters: username");
        };
        if field("factor") != Some("push") {
            return fail(
                400,
                40002,
                "Invalid request parameters: factor (the demo does push only)",
            );
        }
        let answer = match field("demo_answer").unwrap_or("allow") {
            "allow" => Answer::Allow,
            "deny" => Answer::Deny,
            "timeout" => Answer::Timeout,
            _ => {
                return fail(
                    400,
                    40002,
                    "Invalid request parameters: demo_answer (allow, deny, timeout)",
                )
            }
        };
        if field("async") == Some("1") {
            let txid = crate::security_event::random_id();
            if let Ok(mut pending) = self.pending.lock() {
                if pending.len() >= MAX_PENDING {
                    pending.clear();
                }
                pending.insert(txid.clone(), (user.to_string(), answer));
            }
            return DemoResponse::json(200, &json!({"stat": "OK", "response": {"txid": txid}}));
        }
        DemoResponse::json(200, &result(user, answer, mint))
    }

    fn status(
        &self,
        request: &DemoRequest,
        mint: &dyn Fn(&DemoUser) -> Option<String>,
    ) -> DemoResponse {
        let form = parse_query(&String::from_utf8_lossy(&request.body));
        let txid = request.param("txid").map(str::to_string).or_else(|| {
            form.iter()
                .find(|(k, _)| k == "txid")
                .map(|(_, v)| v.clone())
        });
        let Some(txid) = txid else {
            return fail(400, 40001, "Missing required request parameters: txid");
        };
        let found = self.pending.lock().ok().and_then(|mut p| p.remove(&txid));
        match found {
            Some((user, answer)) => DemoResponse::json(200, &result(&user, answer, mint)),
            None => fail(400, 40002, "Invalid request parameters: txid"),
        }
    }
}

/// Duo's answer for a prompt the user handled with `answer`.
fn result(user: &str, answer: Answer, mint: &dyn Fn(&DemoUser) -> Option<String>) -> Value {
    match answer {
        Answer::Allow => {
            let mut response = json!({
                "result": "allow",
                "status": "allow",
                "status_msg": "Success. Logging you in...",
            });
            let token = USERS.iter().find(|u| u.subject == user).and_then(mint);
            if let (Some(token), Some(map)) = (token, response.as_object_mut()) {
                map.insert("session_token".into(), token.into());
            }
            json!({"stat": "OK", "response": response})
        }
        Answer::Deny => json!({"stat": "OK", "response": {
            "result": "deny", "status": "deny", "status_msg": "Login request denied."}}),
        Answer::Timeout => json!({"stat": "OK", "response": {
            "result": "deny", "status": "timeout", "status_msg": "Login timed out."}}),
    }
}

/// Duo's error shape.
fn fail(status: u16, code: u32, message: &str) -> DemoResponse {
    DemoResponse::json(
        status,
        &json!({"stat": "FAIL", "code": code, "message": message}),
    )
}
