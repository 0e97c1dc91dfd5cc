//! mfa-gate-rls: a rate-limit service speaking Envoy's RLS v3 gRPC API
//! (`envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit`), built on limitador
//! (Kuadrant's counting engine) with its counters in Redis, so several Envoys (and several
//! of these services) share one count. mfa-gate asks it for fleet-wide push-prompt limits;
//! the tests and `make run` start it beside `redis-server`.
//!
//! [`limits`] reads limitador's limits file; [`service`] answers requests (limitador picks
//! the limits and counters that apply); [`store`] checks and counts them in Redis. The binary (`src/main.rs`) wires them to the command line.
//! Nothing here may hang on a Redis that is gone: every Redis call is bounded in time.

pub mod limits;
pub mod service;
pub mod store;

pub use limits::{load_limits, parse_limits, LimitsError};
pub use service::{check_request, decide, Applied, Checked, Decision, Failure, Limits, Service};
pub use store::{connection_config, Count, RedisCounters};
