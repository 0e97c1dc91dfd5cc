//! The RLS v3 service: Envoy's `envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit`
//! answered by limitador, counting in Redis.
//!
//! A request is mapped the way limitador-server's `envoy_rls` maps it: the domain is the
//! limitador namespace, and the descriptors become the CEL list `descriptors` (one map of
//! entry key to value each), so limits say `descriptors[0].user`. limitador picks the limits
//! whose conditions hold and qualifies their counters by the variables; [`crate::store`]
//! checks and counts the hit against all of them at once in Redis.
//!
//! The answer has one `DescriptorStatus` per request descriptor, all alike (limitador judges
//! the request as a whole): `limit_remaining` is the smallest remaining count among the
//! limits that applied, `duration_until_reset` is the limiting counter's, rounded up to
//! whole seconds, and `current_limit` says which limit that is. With no limit applied,
//! `current_limit` is absent (and `limit_remaining` 0, as Envoy's reference service does).
//!
//! It must never hang or crash on a request: Redis errors and timeouts are gRPC
//! `UNAVAILABLE` (Envoy's `failure_mode_deny` decides then), request sizes are bounded, and
//! a limit whose CEL fails on a request is `INTERNAL` for that request only.

use crate::store::{Count, RedisCounters};
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::{
    rate_limit::Unit, Code, DescriptorStatus, RateLimit,
};
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_server::{
    RateLimitService, RateLimitServiceServer,
};
use envoy_types::pb::envoy::service::ratelimit::v3::{RateLimitRequest, RateLimitResponse};
use envoy_types::pb::google::protobuf::Duration as ProtoDuration;
use limitador::counter::Counter;
use limitador::limit::{Context, Limit};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tonic::{Request, Response, Status};

/// Descriptors a request may carry (Envoy sends one per matching rate-limit action set).
pub const MAX_DESCRIPTORS: usize = 16;
/// Entries a descriptor may carry.
pub const MAX_ENTRIES: usize = 32;
/// Bytes of a descriptor entry's key or value (and of the domain).
pub const MAX_TEXT_BYTES: usize = 1024;
/// The largest request message the server decodes.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// The name limitador-server gives the descriptor list in a limit's CEL.
const DESCRIPTORS: &str = "descriptors";

/// What one request was judged to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Refused (OVER_LIMIT).
    pub limited: bool,
    /// The limit that decided: on a refusal, the refusing limit that resets last (the hit
    /// would pass only once it has); otherwise the one with the fewest remaining. None when
    /// no limit applied.
    pub limiting: Option<Applied>,
    /// The smallest remaining count among the limits that applied (after this hit when it
    /// passed). None when no limit applied.
    pub remaining: Option<u64>,
}

/// One limit that applied to a request, as counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The limit's `name`, or `<max_value> per <seconds>s` when it has none.
    pub name: String,
    /// Its `max_value`.
    pub max_value: u64,
    /// Its window.
    pub seconds: u64,
    /// Its counter's remaining count.
    pub remaining: u64,
    /// Time until its counter resets.
    pub resets_in: Duration,
}

impl Decision {
    /// The decision for a request of `hits` hits, `limited` or not, over the limits that
    /// applied to it as counted.
    pub fn of(limited: bool, applied: &[Applied], hits: u64) -> Decision {
        let remaining = applied.iter().map(|a| a.remaining).min();
        let limiting = if limited {
            // The hit passes only once every refusing counter has reset.
            applied
                .iter()
                .filter(|a| a.remaining < hits)
                .max_by_key(|a| a.resets_in)
        } else {
            // Fewest remaining; of those, the one that resets last.
            applied.iter().min_by(|a, b| {
                a.remaining
                    .cmp(&b.remaining)
                    .then(b.resets_in.cmp(&a.resets_in))
            })
        };
        Decision {
            limited,
            limiting: limiting.cloned(),
            remaining,
        }
    }

    /// The RLS answer, with one status per request descriptor.
    pub fn response(&self, descriptors: usize) -> RateLimitResponse {
        let code = if self.limited {
            Code::OverLimit
        } else {
            Code::Ok
        };
        let status = DescriptorStatus {
            code: code.into(),
            current_limit: self.limiting.as_ref().map(Applied::rate_limit),
            limit_remaining: self
                .remaining
                .map_or(0, |r| u32::try_from(r).unwrap_or(u32::MAX)),
            duration_until_reset: self.limiting.as_ref().map(|a| ProtoDuration {
                seconds: i64::try_from(whole_seconds_up(a.resets_in)).unwrap_or(i64::MAX),
                nanos: 0,
            }),
            quota: None,
        };
        RateLimitResponse {
            overall_code: code.into(),
            statuses: vec![status; descriptors.max(1)],
            ..RateLimitResponse::default()
        }
    }
}

impl Applied {
    /// A counter of `limit` as counted.
    pub fn of(limit: &Limit, count: Count) -> Applied {
        Applied {
            name: limit.name().map_or_else(
                || format!("{} per {}s", limit.max_value(), limit.seconds()),
                str::to_string,
            ),
            max_value: limit.max_value(),
            seconds: limit.seconds(),
            remaining: limit.max_value().saturating_sub(count.value),
            resets_in: count.resets_in,
        }
    }

    /// As Envoy's `RateLimit`: `requests_per_unit` is `max_value`; the unit is the window
    /// when the window is exactly one second, minute, hour or day, else UNKNOWN (RLS v3 has
    /// no other windows; the name still says it).
    fn rate_limit(&self) -> RateLimit {
        let unit = match self.seconds {
            1 => Unit::Second,
            60 => Unit::Minute,
            3600 => Unit::Hour,
            86_400 => Unit::Day,
            _ => Unit::Unknown,
        };
        RateLimit {
            name: self.name.clone(),
            requests_per_unit: u32::try_from(self.max_value).unwrap_or(u32::MAX),
            unit: unit.into(),
        }
    }
}

/// `d` in whole seconds, rounded up.
fn whole_seconds_up(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// A request, checked and mapped for limitador.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The domain, as a namespace.
    pub namespace: String,
    /// Each descriptor's entries (key to value), in order.
    pub descriptors: Vec<HashMap<String, String>>,
    /// Hits to count: the first descriptor's `hits_addend` if set, else the request's;
    /// 0 means 1.
    pub hits: u64,
}

/// Checks a request's bounds and maps it (an `INVALID_ARGUMENT` status says what is wrong).
pub fn check_request(request: &RateLimitRequest) -> Result<Checked, Status> {
    if request.domain.is_empty() {
        return Err(Status::invalid_argument("domain is empty"));
    }
    if request.domain.len() > MAX_TEXT_BYTES {
        return Err(Status::invalid_argument(format!(
            "domain is longer than {MAX_TEXT_BYTES} bytes"
        )));
    }
    if request.descriptors.is_empty() {
        return Err(Status::invalid_argument("no descriptors"));
    }
    if request.descriptors.len() > MAX_DESCRIPTORS {
        return Err(Status::invalid_argument(format!(
            "more than {MAX_DESCRIPTORS} descriptors"
        )));
    }
    let mut descriptors = Vec::with_capacity(request.descriptors.len());
    for (index, descriptor) in request.descriptors.iter().enumerate() {
        if descriptor.entries.len() > MAX_ENTRIES {
            return Err(Status::invalid_argument(format!(
                "descriptors[{index}] has more than {MAX_ENTRIES} entries"
            )));
        }
        if descriptor.is_negative_hits {
            return Err(Status::invalid_argument(format!(
                "descriptors[{index}]: negative hits are not supported"
            )));
        }
        let mut entries = HashMap::with_capacity(descriptor.entries.len());
        for entry in &descriptor.entries {
            if entry.key.len() > MAX_TEXT_BYTES || entry.value.len() > MAX_TEXT_BYTES {
                return Err(Status::invalid_argument(format!(
                    "descriptors[{index}]: an entry's key or value is longer than \
                     {MAX_TEXT_BYTES} bytes"
                )));
            }
            entries.insert(entry.key.clone(), entry.value.clone());
        }
        descriptors.push(entries);
    }
    let hits = request
        .descriptors
        .first()
        .and_then(|d| d.hits_addend.map(|h| h.value))
        .unwrap_or(u64::from(request.hits_addend))
        .max(1);
    Ok(Checked {
        namespace: request.domain.clone(),
        descriptors,
        hits,
    })
}

/// Why a request could not be judged.
#[derive(Debug)]
pub enum Failure {
    /// Redis failed or did not answer.
    Storage(redis::RedisError),
    /// A limit's variable could not be evaluated on this request.
    Evaluation(String),
}

/// The limits, by namespace.
#[derive(Debug, Default)]
pub struct Limits {
    by_namespace: HashMap<String, Vec<Limit>>,
}

impl Limits {
    /// Groups `limits` by namespace.
    pub fn new(limits: Vec<Limit>) -> Limits {
        let mut by_namespace: HashMap<String, Vec<Limit>> = HashMap::new();
        for limit in limits {
            by_namespace
                .entry(limit.namespace().as_ref().to_string())
                .or_default()
                .push(limit);
        }
        Limits { by_namespace }
    }

    /// The counters of the limits in `namespace` that apply in `context` (conditions hold,
    /// every variable set), as limitador qualifies them.
    pub fn counters(&self, namespace: &str, context: &Context) -> Result<Vec<Counter>, Failure> {
        let Some(limits) = self.by_namespace.get(namespace) else {
            return Ok(Vec::new());
        };
        let mut counters = Vec::new();
        for limit in limits.iter().filter(|l| l.applies(context)) {
            match Counter::new(limit.clone(), context) {
                Ok(Some(counter)) => counters.push(counter),
                Ok(None) => {}
                Err(e) => return Err(Failure::Evaluation(e.to_string())),
            }
        }
        Ok(counters)
    }
}

/// Judges `request` under `limits`, counting in `store`.
pub async fn decide(
    limits: &Limits,
    store: &RedisCounters,
    request: Checked,
) -> Result<Decision, Failure> {
    let mut context = Context::default();
    context.list_binding(DESCRIPTORS.to_string(), request.descriptors);
    let counters = limits.counters(&request.namespace, &context)?;
    if counters.is_empty() {
        return Ok(Decision::of(false, &[], request.hits));
    }
    let (admitted, counts) = store
        .check_and_count(&counters, request.hits)
        .await
        .map_err(Failure::Storage)?;
    let applied: Vec<Applied> = counters
        .iter()
        .zip(counts)
        .map(|(counter, count)| Applied::of(counter.limit(), count))
        .collect();
    Ok(Decision::of(!admitted, &applied, request.hits))
}

/// The gRPC service: [`decide`] under a deadline, on its own task.
#[derive(Clone)]
pub struct Service {
    limits: Arc<Limits>,
    store: RedisCounters,
    timeout: Duration,
}

impl Service {
    /// A service for `limits` counting in `store`, whose work per request is cut off after
    /// `timeout` (then `UNAVAILABLE`).
    pub fn new(limits: Limits, store: RedisCounters, timeout: Duration) -> Service {
        Service {
            limits: Arc::new(limits),
            store,
            timeout,
        }
    }

    /// The tonic server for it, with the message size bound.
    pub fn into_server(self) -> RateLimitServiceServer<Service> {
        RateLimitServiceServer::new(self).max_decoding_message_size(MAX_MESSAGE_BYTES)
    }

    /// Answers one request (what `ShouldRateLimit` does, without the gRPC envelope).
    pub async fn answer(&self, request: &RateLimitRequest) -> Result<RateLimitResponse, Status> {
        let checked = check_request(request)?;
        let descriptors = checked.descriptors.len();
        let (limits, store) = (Arc::clone(&self.limits), self.store.clone());
        // Its own task: a limit's condition that fails on this request (limitador unwraps
        // a condition's result) fails this request only.
        let task = tokio::spawn(async move { decide(&limits, &store, checked).await });
        let abort = task.abort_handle();
        match tokio::time::timeout(self.timeout, task).await {
            Ok(Ok(Ok(decision))) => {
                tracing::debug!(
                    domain = %request.domain,
                    limited = decision.limited,
                    remaining = ?decision.remaining,
                    limit = ?decision.limiting.as_ref().map(|a| &a.name),
                    "ShouldRateLimit"
                );
                Ok(decision.response(descriptors))
            }
            Ok(Ok(Err(Failure::Storage(error)))) => {
                tracing::warn!("Redis failed: {error}");
                Err(Status::unavailable("rate-limit storage unavailable"))
            }
            Ok(Ok(Err(Failure::Evaluation(error)))) => {
                tracing::error!("evaluating the limits failed: {error}");
                Err(Status::internal("evaluating the limits failed"))
            }
            Ok(Err(join)) => {
                tracing::error!("evaluating the limits failed: {join}");
                Err(Status::internal("evaluating the limits failed"))
            }
            Err(_) => {
                abort.abort();
                tracing::warn!(
                    "Redis did not answer within {} ms",
                    self.timeout.as_millis()
                );
                Err(Status::unavailable(
                    "rate-limit storage did not answer in time",
                ))
            }
        }
    }
}

#[tonic::async_trait]
impl RateLimitService for Service {
    async fn should_rate_limit(
        &self,
        request: Request<RateLimitRequest>,
    ) -> Result<Response<RateLimitResponse>, Status> {
        self.answer(request.get_ref()).await.map(Response::new)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::extensions::common::ratelimit::v3::{
        rate_limit_descriptor::Entry, RateLimitDescriptor,
    };

    fn descriptor(entries: &[(&str, &str)]) -> RateLimitDescriptor {
        RateLimitDescriptor {
            entries: entries
                .iter()
                .map(|(k, v)| Entry {
                    key: (*k).to_string(),
                    value: (*v).to_string(),
                })
                .collect(),
            ..RateLimitDescriptor::default()
        }
    }

    fn request(descriptors: Vec<RateLimitDescriptor>, hits: u32) -> RateLimitRequest {
        RateLimitRequest {
            domain: "mfa-gate".into(),
            descriptors,
            hits_addend: hits,
        }
    }

    fn applied(max: u64, seconds: u64, name: Option<&str>, remaining: u64, ms: u64) -> Applied {
        let mut limit = Limit::new("mfa-gate", max, seconds, [], []);
        if let Some(name) = name {
            limit.set_name(name.to_string());
        }
        let count = Count {
            value: max - remaining,
            resets_in: Duration::from_millis(ms),
        };
        Applied::of(&limit, count)
    }

    #[test]
    fn maps_a_request_like_limitador_server() {
        let checked = check_request(&request(
            vec![descriptor(&[
                ("mfa_gate_push", "duo"),
                ("user", "ab"),
                ("client", "10.0.0.1"),
            ])],
            0,
        ))
        .unwrap();
        assert_eq!(checked.namespace, "mfa-gate");
        assert_eq!(checked.hits, 1, "hits_addend 0 is one hit");
        assert_eq!(checked.descriptors.len(), 1);
        assert_eq!(checked.descriptors[0]["user"], "ab");
        assert_eq!(checked.descriptors[0]["client"], "10.0.0.1");
        let three = check_request(&request(vec![descriptor(&[("a", "b")])], 3)).unwrap();
        assert_eq!(three.hits, 3);
        let mut own = descriptor(&[("a", "b")]);
        own.hits_addend = Some(envoy_types::pb::google::protobuf::UInt64Value { value: 5 });
        assert_eq!(check_request(&request(vec![own], 3)).unwrap().hits, 5);
    }

    #[test]
    fn refuses_requests_out_of_bounds() {
        let message = |r: RateLimitRequest| check_request(&r).unwrap_err().message().to_string();
        let mut no_domain = request(vec![descriptor(&[("a", "b")])], 1);
        no_domain.domain.clear();
        assert_eq!(message(no_domain), "domain is empty");
        assert_eq!(message(request(vec![], 1)), "no descriptors");
        assert_eq!(
            message(request(vec![descriptor(&[("a", "b")]); 17], 1)),
            "more than 16 descriptors"
        );
        let long = "x".repeat(MAX_TEXT_BYTES + 1);
        assert!(message(request(vec![descriptor(&[("a", &long)])], 1))
            .contains("longer than 1024 bytes"));
        let many: Vec<(String, String)> = (0..33).map(|i| (i.to_string(), "v".into())).collect();
        let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            message(request(vec![descriptor(&many)], 1)),
            "descriptors[0] has more than 32 entries"
        );
        let mut negative = descriptor(&[("a", "b")]);
        negative.is_negative_hits = true;
        assert_eq!(
            message(request(vec![negative], 1)),
            "descriptors[0]: negative hits are not supported"
        );
        assert_eq!(
            check_request(&request(vec![], 1)).unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
    }

    #[test]
    fn a_pass_reports_the_fewest_remaining() {
        let counters = [
            applied(3, 300, Some("per-user-5m"), 1, 120_500),
            applied(10, 3600, None, 7, 3_000_000),
        ];
        let decision = Decision::of(false, &counters, 1);
        assert_eq!(decision.remaining, Some(1));
        let limiting = decision.limiting.clone().unwrap();
        assert_eq!(limiting.name, "per-user-5m");
        let response = decision.response(1);
        assert_eq!(response.overall_code, Code::Ok as i32);
        assert_eq!(response.statuses.len(), 1);
        let status = &response.statuses[0];
        assert_eq!(status.limit_remaining, 1);
        assert_eq!(
            status.duration_until_reset.unwrap().seconds,
            121,
            "rounded up"
        );
        let limit = status.current_limit.clone().unwrap();
        assert_eq!(limit.requests_per_unit, 3);
        assert_eq!(limit.unit, Unit::Unknown as i32, "300 s is no RLS unit");
        assert_eq!(limit.name, "per-user-5m");
    }

    #[test]
    fn a_refusal_reports_the_refusing_limit_that_resets_last() {
        let counters = [
            applied(3, 300, None, 0, 200_000),
            applied(10, 3600, None, 0, 1_800_000),
            applied(20, 60, None, 15, 59_000),
        ];
        let decision = Decision::of(true, &counters, 1);
        let limiting = decision.limiting.clone().unwrap();
        assert_eq!(limiting.name, "10 per 3600s");
        let response = decision.response(2);
        assert_eq!(response.overall_code, Code::OverLimit as i32);
        assert_eq!(response.statuses.len(), 2, "one per descriptor");
        let status = &response.statuses[1];
        assert_eq!(status.code, Code::OverLimit as i32);
        assert_eq!(status.limit_remaining, 0);
        assert_eq!(status.duration_until_reset.unwrap().seconds, 1800);
        assert_eq!(
            status.current_limit.clone().unwrap().unit,
            Unit::Hour as i32
        );
    }

    #[test]
    fn no_limit_applied_has_no_current_limit() {
        let response = Decision::of(false, &[], 1).response(1);
        assert_eq!(response.overall_code, Code::Ok as i32);
        assert_eq!(response.statuses[0].current_limit, None);
        assert_eq!(response.statuses[0].duration_until_reset, None);
        assert_eq!(response.statuses[0].limit_remaining, 0);
    }

    #[test]
    fn rounds_up_to_whole_seconds() {
        assert_eq!(whole_seconds_up(Duration::from_millis(0)), 0);
        assert_eq!(whole_seconds_up(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds_up(Duration::from_millis(300_000)), 300);
        assert_eq!(whole_seconds_up(Duration::from_millis(299_001)), 300);
    }

    #[test]
    fn the_demo_conditions_need_the_push_entry() {
        let limits = crate::parse_limits(
            "- {namespace: mfa-gate, max_value: 3, seconds: 300, \
             conditions: ['has(descriptors[0].mfa_gate_push)'], variables: ['descriptors[0].user']}",
        )
        .unwrap();
        let limit = &limits[0];
        let context = |entries: &[(&str, &str)]| {
            let mut ctx = Context::default();
            ctx.list_binding(
                DESCRIPTORS.into(),
                vec![entries
                    .iter()
                    .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                    .collect()],
            );
            ctx
        };
        assert!(limit.applies(&context(&[("mfa_gate_push", "duo"), ("user", "u")])));
        assert!(!limit.applies(&context(&[("user", "u")])));
    }
}
