//! Poll-based SET delivery (RFC 8936): the request body a receiver POSTs (§2.4: `maxEvents`,
//! `returnImmediately`, `ack`, `setErrs`) and the transmitter's answer (§2.5: `sets`, a
//! JSON object of `jti` → compact SET, and `moreAvailable`).
//!
//! The answer is read leniently where transmitters differ: `sets` missing, `null` or an
//! empty array means no events, `moreAvailable` missing (or not a boolean) means false,
//! unknown members are ignored, and a member of `sets` whose value is not a string is
//! skipped and listed in [`PollResponse::malformed`] (so it can be answered in `setErrs`).
//! What is bounded: the body ([`MAX_POLL_BODY_BYTES`]) and the SETs read from one answer
//! ([`MAX_POLL_SETS`]; those over it are left unacknowledged, so the transmitter sends
//! them again).

use std::fmt;

use serde_json::Value;

use crate::events::EventError;
use crate::json::{json_str, push_u64};

/// Largest poll answer read, bytes.
pub const MAX_POLL_BODY_BYTES: usize = 2 * 1024 * 1024;
/// Most SETs read from one poll answer.
pub const MAX_POLL_SETS: usize = 1000;

/// A SET the receiver refused, reported back in `setErrs` (RFC 8936 §2.4, codes of RFC 8935
/// §2.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetErr {
    /// The SET's `jti` (its key in `sets`).
    pub jti: String,
    /// The error code, e.g. `invalid_key`.
    pub err: String,
    /// A short human-readable description.
    pub description: String,
}

impl SetErr {
    /// The report for the SET under `jti` refused with `error`.
    pub fn new(jti: &str, error: &EventError) -> SetErr {
        SetErr {
            jti: jti.to_string(),
            err: error.err_code().to_string(),
            description: error.to_string(),
        }
    }
}

/// One SET of a poll answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolledSet {
    /// Its key in `sets` (the transmitter's `jti` for it).
    pub jti: String,
    /// The compact SET.
    pub token: String,
}

/// A transmitter's poll answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollResponse {
    /// The SETs, at most [`MAX_POLL_SETS`].
    pub sets: Vec<PolledSet>,
    /// Members of `sets` whose value is not a string (their keys).
    pub malformed: Vec<String>,
    /// Members of `sets` over [`MAX_POLL_SETS`], not read.
    pub over_cap: usize,
    /// `moreAvailable`: poll again without waiting.
    pub more_available: bool,
}

/// Why a poll answer could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollError {
    /// Over [`MAX_POLL_BODY_BYTES`].
    TooLarge { len: usize, max: usize },
    /// Not a JSON object, or `sets` neither an object nor absent / null / `[]`.
    Malformed(String),
}

impl PollError {
    /// Stable snake_case code for logs and counters.
    pub fn reason(&self) -> &'static str {
        match self {
            PollError::TooLarge { .. } => "poll_body_too_large",
            PollError::Malformed(_) => "malformed_poll_body",
        }
    }
}

impl fmt::Display for PollError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PollError::TooLarge { len, max } => {
                write!(f, "poll answer is {len} bytes, over the {max}-byte limit")
            }
            PollError::Malformed(why) => write!(f, "malformed poll answer: {why}"),
        }
    }
}

/// The JSON body of a poll request. `maxEvents` and `returnImmediately` are always sent
/// (`maxEvents: 0` only acknowledges, §2.4.1); `ack` and `setErrs` only when not empty.
pub fn poll_request_body(
    max_events: u32,
    return_immediately: bool,
    ack: &[String],
    set_errs: &[SetErr],
) -> Vec<u8> {
    let mut out = String::with_capacity(64 + ack.iter().map(|j| j.len() + 3).sum::<usize>());
    out.push_str("{\"maxEvents\":");
    push_u64(&mut out, u64::from(max_events));
    out.push_str(",\"returnImmediately\":");
    out.push_str(if return_immediately { "true" } else { "false" });
    if !ack.is_empty() {
        out.push_str(",\"ack\":");
        crate::json::json_str_array(&mut out, ack);
    }
    if !set_errs.is_empty() {
        out.push_str(",\"setErrs\":{");
        for (i, set_err) in set_errs.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            json_str(&mut out, &set_err.jti);
            out.push_str(":{\"err\":");
            json_str(&mut out, &set_err.err);
            out.push_str(",\"description\":");
            json_str(&mut out, &set_err.description);
            out.push('}');
        }
        out.push('}');
    }
    out.push('}');
    out.into_bytes()
}

/// Reads a transmitter's poll answer.
pub fn parse_poll_response(body: &[u8]) -> Result<PollResponse, PollError> {
    if body.len() > MAX_POLL_BODY_BYTES {
        return Err(PollError::TooLarge {
            len: body.len(),
            max: MAX_POLL_BODY_BYTES,
        });
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| PollError::Malformed("body is not JSON".into()))?;
    let Value::Object(mut members) = value else {
        return Err(PollError::Malformed("body is not a JSON object".into()));
    };
    let mut response = PollResponse {
        more_available: members.get("moreAvailable") == Some(&Value::Bool(true)),
        ..PollResponse::default()
    };
    let sets = match members.remove("sets") {
        None | Some(Value::Null) => return Ok(response),
        Some(Value::Array(items)) if items.is_empty() => return Ok(response),
        Some(Value::Object(sets)) => sets,
        Some(_) => return Err(PollError::Malformed("sets is not a JSON object".into())),
    };
    for (jti, set) in sets {
        if response.sets.len() + response.malformed.len() >= MAX_POLL_SETS {
            response.over_cap += 1;
            continue;
        }
        match set {
            Value::String(token) => response.sets.push(PolledSet { jti, token }),
            _ => response.malformed.push(jti),
        }
    }
    Ok(response)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parsed(body: &[u8]) -> Value {
        serde_json::from_slice(body).unwrap()
    }

    #[test]
    fn a_first_poll_asks_for_events_only() {
        assert_eq!(
            parsed(&poll_request_body(100, false, &[], &[])),
            json!({"maxEvents": 100, "returnImmediately": false})
        );
    }

    #[test]
    fn acknowledgements_and_errors_are_sent_with_the_next_poll() {
        let set_errs = [
            SetErr::new("j-3", &EventError::WrongIssuer),
            SetErr {
                jti: "j-\"4\"".into(),
                err: "invalid_request".into(),
                description: "line\nbreak".into(),
            },
        ];
        let body = poll_request_body(0, true, &["j-1".into(), "j-2".into()], &set_errs);
        assert_eq!(
            parsed(&body),
            json!({
                "maxEvents": 0,
                "returnImmediately": true,
                "ack": ["j-1", "j-2"],
                "setErrs": {
                    "j-3": {"err": "invalid_issuer", "description": "iss is not the transmitter's"},
                    "j-\"4\"": {"err": "invalid_request", "description": "line\nbreak"},
                },
            })
        );
        let errs_only = parsed(&poll_request_body(10, false, &[], &set_errs[..1]));
        assert!(errs_only.get("ack").is_none(), "{errs_only}");
        assert_eq!(errs_only["setErrs"]["j-3"]["err"], "invalid_issuer");
    }

    #[test]
    fn an_answer_with_sets() {
        let body = json!({
            "sets": {"j-1": "eyJ.a.b", "j-2": "eyJ.c.d"},
            "moreAvailable": true,
        });
        let response = parse_poll_response(body.to_string().as_bytes()).unwrap();
        assert_eq!(
            response.sets,
            vec![
                PolledSet {
                    jti: "j-1".into(),
                    token: "eyJ.a.b".into()
                },
                PolledSet {
                    jti: "j-2".into(),
                    token: "eyJ.c.d".into()
                },
            ]
        );
        assert!(response.more_available);
        assert!(response.malformed.is_empty());
    }

    #[test]
    fn answers_are_read_leniently_where_transmitters_differ() {
        for body in [
            json!({}),
            json!({"sets": null}),
            json!({"sets": []}),
            json!({"sets": {}}),
            json!({"sets": null, "moreAvailable": "yes"}),
            json!({"moreAvailable": false, "extension": {"x": 1}}),
        ] {
            assert_eq!(
                parse_poll_response(body.to_string().as_bytes()),
                Ok(PollResponse::default()),
                "{body}"
            );
        }
        let body = json!({"sets": {"j-1": "eyJ.a.b", "j-2": {"not": "a string"}, "j-3": null},
            "unknown": true});
        let response = parse_poll_response(body.to_string().as_bytes()).unwrap();
        assert_eq!(response.sets.len(), 1);
        assert_eq!(
            response.malformed,
            vec!["j-2".to_string(), "j-3".to_string()]
        );
        assert!(!response.more_available);
    }

    #[test]
    fn unreadable_and_oversize_answers_are_refused() {
        for body in [
            &b"[]"[..],
            b"not json",
            b"\"sets\"",
            b"{\"sets\": [\"eyJ.a.b\"]}",
            b"{\"sets\": 1}",
        ] {
            assert!(
                matches!(parse_poll_response(body), Err(PollError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let huge = vec![b' '; MAX_POLL_BODY_BYTES + 1];
        let error = parse_poll_response(&huge).unwrap_err();
        assert_eq!(
            error,
            PollError::TooLarge {
                len: MAX_POLL_BODY_BYTES + 1,
                max: MAX_POLL_BODY_BYTES
            }
        );
        assert_eq!(error.reason(), "poll_body_too_large");
        // Exactly at the cap is read.
        let mut at_cap = b"{}".to_vec();
        at_cap.resize(MAX_POLL_BODY_BYTES, b' ');
        assert_eq!(parse_poll_response(&at_cap), Ok(PollResponse::default()));
    }

    #[test]
    fn at_most_a_thousand_sets_are_read_from_one_answer() {
        let sets: serde_json::Map<String, Value> = (0..MAX_POLL_SETS + 5)
            .map(|i| (format!("j-{i:05}"), json!("eyJ.a.b")))
            .collect();
        let body = json!({"sets": sets}).to_string();
        let response = parse_poll_response(body.as_bytes()).unwrap();
        assert_eq!(response.sets.len(), MAX_POLL_SETS);
        assert_eq!(response.over_cap, 5);
    }
}
