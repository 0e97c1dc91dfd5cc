//! RFC 8936 poll delivery, the transmitter's side: one bounded queue of unacknowledged SETs
//! per stream, the poll request's members (section 2.2) and the response (section 2.3).
//!
//! Semantics (RFC 8936 sections 2.2 to 2.4):
//! - `ack` and `setErrs` are processed first: an acknowledged SET, or one the receiver
//!   reports an error for, is dropped (the transmitter is released from retaining it);
//! - then up to `maxEvents` (all when absent; none with 0, an acknowledge-only request) of
//!   the oldest SETs still unacknowledged are returned, whether or not an earlier poll
//!   returned them already: an unacknowledged SET is delivered again until acknowledged;
//! - `moreAvailable` is true when unacknowledged SETs remain beyond those returned;
//! - `returnImmediately` false (the default) makes the request a long poll: with nothing to
//!   return it waits for a SET up to the demo's long-poll time.
//!
//! The queue is bounded ([`PollQueue::new`]'s `max`): at the bound the oldest SET is dropped
//! and the drop is logged, since that receiver will never see it.

use serde_json::{json, Map, Value};
use std::collections::VecDeque;

/// One stream's unacknowledged SETs, oldest first.
#[derive(Debug)]
pub struct PollQueue {
    max: usize,
    pending: VecDeque<(String, String)>,
}

impl PollQueue {
    /// An empty queue holding at most `max` SETs (at least 1).
    pub fn new(max: usize) -> PollQueue {
        PollQueue {
            max: max.max(1),
            pending: VecDeque::new(),
        }
    }

    /// Queues a SET; returns the `jti` of the oldest one if it had to be dropped.
    pub fn push(&mut self, jti: &str, set: &str) -> Option<String> {
        let dropped = if self.pending.len() >= self.max {
            self.pending.pop_front().map(|(jti, _)| jti)
        } else {
            None
        };
        self.pending.push_back((jti.to_string(), set.to_string()));
        dropped
    }

    /// Drops the SET `jti`; false when it was not queued (already acknowledged, or unknown).
    pub fn remove(&mut self, jti: &str) -> bool {
        match self.pending.iter().position(|(j, _)| j == jti) {
            Some(i) => {
                self.pending.remove(i);
                true
            }
            None => false,
        }
    }

    /// Up to `max` of the oldest SETs (`jti`, SET), and whether more remain.
    pub fn oldest(&self, max: Option<usize>) -> (Vec<(String, String)>, bool) {
        let take = max.unwrap_or(usize::MAX).min(self.pending.len());
        let sets = self.pending.iter().take(take).cloned().collect();
        (sets, self.pending.len() > take)
    }
}

/// An error the receiver reports for one SET (`setErrs`, RFC 8936 section 2.2; codes from
/// RFC 8935 section 2.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetError {
    pub jti: String,
    pub err: String,
    pub description: String,
}

/// A poll request's members (RFC 8936 section 2.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollRequest {
    /// `maxEvents`: at most this many SETs; 0 for acknowledge-only.
    pub max_events: Option<usize>,
    /// `returnImmediately` (default false: long poll).
    pub return_immediately: bool,
    /// `ack`: the `jti`s received and accepted.
    pub ack: Vec<String>,
    /// `setErrs`: the SETs received and refused.
    pub set_errs: Vec<SetError>,
}

impl PollRequest {
    /// Parses the JSON body. An empty body is a poll with every member at its default.
    /// Errors are the `description` of a 400 `invalid_request` (RFC 8936 section 2.5.1).
    pub fn parse(body: &[u8]) -> Result<PollRequest, String> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(PollRequest::default());
        }
        let value: Value =
            serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
        let object = value.as_object().ok_or("the body must be a JSON object")?;
        let mut request = PollRequest::default();
        if let Some(max) = object.get("maxEvents") {
            let max = max
                .as_u64()
                .ok_or("maxEvents must be a non-negative integer")?;
            request.max_events = Some(usize::try_from(max).unwrap_or(usize::MAX));
        }
        if let Some(flag) = object.get("returnImmediately") {
            request.return_immediately = flag
                .as_bool()
                .ok_or("returnImmediately must be a boolean")?;
        }
        if let Some(ack) = object.get("ack") {
            let list = ack
                .as_array()
                .ok_or("ack must be an array of jti strings")?;
            for jti in list {
                let jti = jti.as_str().ok_or("ack must be an array of jti strings")?;
                request.ack.push(jti.to_string());
            }
        }
        if let Some(errs) = object.get("setErrs") {
            let errs = errs
                .as_object()
                .ok_or("setErrs must be an object of jti: {err, description}")?;
            for (jti, error) in errs {
                let field = |name: &str| {
                    error
                        .get(name)
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .ok_or(format!("setErrs[\"{jti}\"] needs a string \"{name}\""))
                };
                request.set_errs.push(SetError {
                    jti: jti.clone(),
                    err: field("err")?,
                    // `description` is OPTIONAL in RFC 8935 section 2.3.
                    description: field("description").unwrap_or_default(),
                });
            }
        }
        Ok(request)
    }
}

/// The poll response (RFC 8936 section 2.3): `sets` maps `jti` to the SET (empty when none),
/// `moreAvailable` is sent when true.
pub fn response(sets: &[(String, String)], more_available: bool) -> Value {
    let mut map = Map::new();
    for (jti, set) in sets {
        map.insert(jti.clone(), set.as_str().into());
    }
    let mut body = json!({ "sets": map });
    if more_available {
        body["moreAvailable"] = true.into();
    }
    body
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn the_queue_is_bounded_and_drops_the_oldest() {
        let mut queue = PollQueue::new(2);
        assert_eq!(queue.push("a", "A"), None);
        assert_eq!(queue.push("b", "B"), None);
        assert_eq!(queue.push("c", "C").as_deref(), Some("a"));
        let (sets, more) = queue.oldest(Some(1));
        assert_eq!(sets, vec![("b".to_string(), "B".to_string())]);
        assert!(more);
        assert!(queue.remove("b") && !queue.remove("b"));
        assert_eq!(queue.oldest(None).0.len(), 1);
    }

    #[test]
    fn poll_requests_are_checked() {
        let request =
            PollRequest::parse(br#"{"maxEvents":0,"returnImmediately":true,"ack":["x"],"setErrs":{"y":{"err":"invalid_key","description":"d"}}}"#)
                .unwrap();
        assert_eq!(request.max_events, Some(0));
        assert!(request.return_immediately);
        assert_eq!(request.ack, vec!["x"]);
        assert_eq!(request.set_errs[0].err, "invalid_key");
        assert_eq!(PollRequest::parse(b"").unwrap(), PollRequest::default());
        assert!(PollRequest::parse(br#"{"maxEvents":-1}"#).is_err());
        assert!(PollRequest::parse(br#"{"ack":"x"}"#).is_err());
        assert!(PollRequest::parse(b"[]").is_err());
    }
}
