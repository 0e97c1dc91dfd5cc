//! Envoy's rate limit service protocol (`envoy.service.ratelimit.v3.RateLimitService/
//! ShouldRateLimit`), the messages a push-prompt count needs: a [`RateLimitRequest`] with one
//! descriptor, and the answer read as an [`RlsAnswer`]. Field numbers follow
//! `envoy/service/ratelimit/v3/rls.proto` and `envoy/extensions/common/ratelimit/v3/
//! ratelimit.proto`; fields mfa-gate does not use are left out (prost skips them when
//! decoding, as protobuf requires). Encoded with `prost` (its derive, no protoc): the
//! well-kept protobuf crate, which builds for wasm32.
//!
//! Never trusts the answer's shape: a malformed message, an `UNKNOWN` code or an answer
//! without a verdict is an error the caller treats like an unreachable service.

use prost::Message;

/// gRPC service name, as `dispatch_grpc_call` takes it.
pub const SERVICE: &str = "envoy.service.ratelimit.v3.RateLimitService";
/// gRPC method name.
pub const METHOD: &str = "ShouldRateLimit";
/// Largest answer read, bytes (an RLS answer with one status is a few dozen).
pub const MAX_ANSWER_BYTES: usize = 16 * 1024;

/// `RateLimitRequest`.
#[derive(Clone, PartialEq, Message)]
pub struct RateLimitRequest {
    /// The limits' namespace (limitador) or domain (envoyproxy/ratelimit).
    #[prost(string, tag = "1")]
    pub domain: String,
    /// What to count.
    #[prost(message, repeated, tag = "2")]
    pub descriptors: Vec<RateLimitDescriptor>,
    /// Hits to add (0 means 1).
    #[prost(uint32, tag = "3")]
    pub hits_addend: u32,
}

/// `RateLimitDescriptor`.
#[derive(Clone, PartialEq, Message)]
pub struct RateLimitDescriptor {
    /// Key/value pairs, in order.
    #[prost(message, repeated, tag = "1")]
    pub entries: Vec<DescriptorEntry>,
}

/// `RateLimitDescriptor.Entry`.
#[derive(Clone, PartialEq, Message)]
pub struct DescriptorEntry {
    /// Entry key.
    #[prost(string, tag = "1")]
    pub key: String,
    /// Entry value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `RateLimitResponse` (the members mfa-gate reads).
#[derive(Clone, PartialEq, Message)]
pub struct RateLimitResponse {
    /// `Code`: 0 unknown, 1 OK, 2 over limit.
    #[prost(int32, tag = "1")]
    pub overall_code: i32,
    /// One status per descriptor sent.
    #[prost(message, repeated, tag = "2")]
    pub statuses: Vec<DescriptorStatus>,
}

/// `RateLimitResponse.DescriptorStatus`.
#[derive(Clone, PartialEq, Message)]
pub struct DescriptorStatus {
    /// `Code` of this descriptor.
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// The limit that applied, when the service says.
    #[prost(message, optional, tag = "2")]
    pub current_limit: Option<RateLimit>,
    /// Hits left in the limit's window.
    #[prost(uint32, tag = "3")]
    pub limit_remaining: u32,
    /// Until the window resets.
    #[prost(message, optional, tag = "4")]
    pub duration_until_reset: Option<Duration>,
}

/// `RateLimitResponse.RateLimit`.
#[derive(Clone, PartialEq, Message)]
pub struct RateLimit {
    /// Requests allowed per unit.
    #[prost(uint32, tag = "1")]
    pub requests_per_unit: u32,
    /// `Unit`: 1 second, 2 minute, 3 hour, 4 day, 5 month, 6 year, 7 week.
    #[prost(int32, tag = "2")]
    pub unit: i32,
    /// The limit's name.
    #[prost(string, tag = "3")]
    pub name: String,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, Message)]
pub struct Duration {
    /// Whole seconds.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds on top.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// `Code.OK`.
const CODE_OK: i32 = 1;
/// `Code.OVER_LIMIT`.
const CODE_OVER_LIMIT: i32 = 2;

/// The encoded request asking to count one hit of the descriptor `entries` in `domain`.
pub fn encode_request(domain: &str, entries: &[(&str, &str)]) -> Vec<u8> {
    let request = RateLimitRequest {
        domain: domain.to_string(),
        descriptors: vec![RateLimitDescriptor {
            entries: entries
                .iter()
                .map(|(key, value)| DescriptorEntry {
                    key: (*key).to_string(),
                    value: (*value).to_string(),
                })
                .collect(),
        }],
        hits_addend: 1,
    };
    request.encode_to_vec()
}

/// What the service said about the hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RlsAnswer {
    /// Over a limit: the hit was not counted, the prompt must not go on.
    pub over_limit: bool,
    /// Hits left in the tightest limit (when the service says).
    pub remaining: Option<u32>,
    /// Seconds until the limiting window resets, rounded up (when the service says).
    pub reset_secs: Option<u64>,
}

/// Why an answer cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerError {
    /// Larger than [`MAX_ANSWER_BYTES`].
    TooLarge,
    /// Not a `RateLimitResponse`.
    Malformed,
    /// `overall_code` neither OK nor OVER_LIMIT.
    NoVerdict,
}

impl AnswerError {
    /// Reason code for logs and records.
    pub fn code(self) -> &'static str {
        match self {
            AnswerError::TooLarge => "rls_answer_too_large",
            AnswerError::Malformed => "rls_answer_malformed",
            AnswerError::NoVerdict => "rls_answer_unknown",
        }
    }
}

/// Reads a `ShouldRateLimit` answer.
pub fn decode_answer(bytes: &[u8]) -> Result<RlsAnswer, AnswerError> {
    if bytes.len() > MAX_ANSWER_BYTES {
        return Err(AnswerError::TooLarge);
    }
    let response = RateLimitResponse::decode(bytes).map_err(|_| AnswerError::Malformed)?;
    let over_limit = match response.overall_code {
        CODE_OK => false,
        CODE_OVER_LIMIT => true,
        _ => return Err(AnswerError::NoVerdict),
    };
    // The tightest status: over-limit ones first, then the fewest hits left.
    let status = response
        .statuses
        .iter()
        .min_by_key(|s| (s.code != CODE_OVER_LIMIT, s.limit_remaining));
    // A status without `current_limit` means no limit applied: its 0 says nothing.
    let remaining = status
        .filter(|s| s.current_limit.is_some())
        .map(|s| s.limit_remaining);
    let reset_secs = status
        .and_then(|s| s.duration_until_reset.as_ref())
        .map(|d| {
            let seconds = u64::try_from(d.seconds).unwrap_or(0);
            seconds.saturating_add(u64::from(d.nanos > 0))
        });
    Ok(RlsAnswer {
        over_limit,
        remaining,
        reset_secs,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn request_carries_domain_one_descriptor_and_one_hit() {
        let bytes = encode_request("mfa-gate", &[("mfa_gate_push", "duo"), ("user", "ab12")]);
        let decoded = RateLimitRequest::decode(bytes.as_slice()).unwrap();
        assert_eq!(decoded.domain, "mfa-gate");
        assert_eq!(decoded.hits_addend, 1);
        assert_eq!(decoded.descriptors.len(), 1);
        let entries = &decoded.descriptors[0].entries;
        assert_eq!(entries[0].key, "mfa_gate_push");
        assert_eq!(entries[1].value, "ab12");
        // Field 1 (domain, length-delimited) comes first on the wire: tag byte 0x0a.
        assert_eq!(bytes[0], 0x0a);
    }

    fn answer(code: i32, statuses: Vec<DescriptorStatus>) -> Vec<u8> {
        RateLimitResponse {
            overall_code: code,
            statuses,
        }
        .encode_to_vec()
    }

    fn status(code: i32, remaining: u32, reset: Option<(i64, i32)>) -> DescriptorStatus {
        DescriptorStatus {
            code,
            current_limit: Some(RateLimit {
                requests_per_unit: 3,
                unit: 2,
                name: String::new(),
            }),
            limit_remaining: remaining,
            duration_until_reset: reset.map(|(seconds, nanos)| Duration { seconds, nanos }),
        }
    }

    #[test]
    fn ok_answer_gives_remaining() {
        let read =
            decode_answer(&answer(CODE_OK, vec![status(CODE_OK, 2, Some((300, 0)))])).unwrap();
        assert_eq!(
            read,
            RlsAnswer {
                over_limit: false,
                remaining: Some(2),
                reset_secs: Some(300)
            }
        );
    }

    #[test]
    fn over_limit_answer_rounds_reset_up() {
        let read = decode_answer(&answer(
            CODE_OVER_LIMIT,
            vec![
                status(CODE_OK, 5, None),
                status(CODE_OVER_LIMIT, 0, Some((41, 5))),
            ],
        ))
        .unwrap();
        assert!(read.over_limit);
        assert_eq!(read.remaining, Some(0));
        assert_eq!(read.reset_secs, Some(42));
    }

    #[test]
    fn answer_without_statuses_is_a_verdict_without_figures() {
        let read = decode_answer(&answer(CODE_OK, vec![])).unwrap();
        assert_eq!(read.remaining, None);
        assert_eq!(read.reset_secs, None);
    }

    #[test]
    fn a_status_without_a_limit_has_no_remaining_count() {
        let mut bare = status(CODE_OK, 0, None);
        bare.current_limit = None;
        let read = decode_answer(&answer(CODE_OK, vec![bare])).unwrap();
        assert_eq!(read.remaining, None);
    }

    #[test]
    fn unknown_code_and_garbage_are_errors() {
        assert_eq!(
            decode_answer(&answer(0, vec![])),
            Err(AnswerError::NoVerdict)
        );
        assert_eq!(
            decode_answer(&answer(7, vec![])),
            Err(AnswerError::NoVerdict)
        );
        assert_eq!(
            decode_answer(&[0xff, 0xff, 0xff]),
            Err(AnswerError::Malformed)
        );
        assert_eq!(
            decode_answer(&vec![0u8; MAX_ANSWER_BYTES + 1]),
            Err(AnswerError::TooLarge)
        );
        // Empty bytes are a message with every field at its default: code UNKNOWN.
        assert_eq!(decode_answer(&[]), Err(AnswerError::NoVerdict));
    }

    #[test]
    fn negative_reset_reads_as_zero() {
        let read =
            decode_answer(&answer(CODE_OVER_LIMIT, vec![status(2, 0, Some((-5, 0)))])).unwrap();
        assert_eq!(read.reset_secs, Some(0));
    }
}
