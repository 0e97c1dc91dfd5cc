//! The cases `mfa-gate demo --print-json` prints (request, curl line, expected answer), and
//! the check of an answer against one.

use crate::gateway::Gateway;
use crate::http::Answer;
use serde_json::Value;

/// One printed case.
#[derive(Debug, Clone)]
pub struct DemoCase {
    /// Demo user id (`anonymous` for no token).
    pub user: String,
    pub method: String,
    pub path: String,
    /// Headers with a concrete token.
    pub headers: Vec<(String, String)>,
    /// The same request as the curl line the demo prints.
    pub curl: String,
    /// `status`, and `www_authenticate_contains`, `location_starts_with`, `upstream_level`
    /// where they apply; `summary` in words.
    pub expect: Value,
}

impl DemoCase {
    /// The cases the gateway's demo printed.
    pub fn printed(gateway: &Gateway) -> Vec<DemoCase> {
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        gateway.demo_printed()["cases"]
            .as_array()
            .expect("the demo printed its cases")
            .iter()
            .map(|case| DemoCase {
                user: text(&case["user"]),
                method: text(&case["method"]),
                path: text(&case["path"]),
                headers: case["headers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|h| (text(&h[0]), text(&h[1])))
                    .collect(),
                curl: text(&case["curl"]),
                expect: case["expect"].clone(),
            })
            .collect()
    }

    /// `user METHOD path (expected ...)`, for messages.
    pub fn describe(&self) -> String {
        format!(
            "{} {} {} (expected {})",
            self.user, self.method, self.path, self.expect["summary"]
        )
    }

    /// The expected status.
    pub fn status(&self) -> u16 {
        self.expect["status"]
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .expect("printed status")
    }

    /// Sends the case's request through the gateway.
    pub fn send(&self, gateway: &Gateway) -> Answer {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        gateway.request(&self.method, &self.path, &headers, &[])
    }

    /// Panics unless `answer` is the printed one: status, and the `WWW-Authenticate`
    /// fragment, `Location` prefix or level the app saw where the case names them.
    pub fn assert_answer(&self, answer: &Answer) {
        let what = self.describe();
        assert_eq!(
            answer.status,
            self.status(),
            "{what}: body {}",
            answer.text()
        );
        if let Some(fragment) = self.expect["www_authenticate_contains"].as_str() {
            let www = answer.header("www-authenticate").unwrap_or("");
            assert!(www.contains(fragment), "{what}: WWW-Authenticate {www:?}");
        }
        if let Some(prefix) = self.expect["location_starts_with"].as_str() {
            let location = answer.header("location").unwrap_or("");
            assert!(
                location.starts_with(prefix),
                "{what}: Location {location:?}"
            );
            assert!(
                location.contains("acr_values=phr"),
                "{what}: Location {location:?}"
            );
        }
        if let Some(level) = self.expect["upstream_level"].as_str() {
            let echoed = answer.json();
            assert_eq!(echoed["headers"]["x-mfa-gate-level"], level, "{what}");
            assert_eq!(echoed["path"], self.path.as_str(), "{what}");
        }
    }
}
