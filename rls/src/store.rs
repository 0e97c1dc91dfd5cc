//! Counting in Redis: the counters limitador qualifies for a request (one per limit that
//! applies, per value of its variables) checked and counted together by one Lua script, so
//! the check and the count are atomic: a hit is counted against every counter or against
//! none, a refused hit is never counted, and two requests at once (or two services on one
//! Redis) cannot both take a counter's last unit.
//!
//! A counter is a Redis integer (hits so far) that expires when its window ends, under
//! the key limitador's own Redis storage gives a limit without an `id`
//! (`namespace:{NS},counter:<JSON of the counter>`; the `{NS}` hash tag keeps a request's
//! counters on one Redis Cluster shard). Windows are fixed, from a counter's first hit.
//!
//! Every Redis call is bounded in time ([`connection_config`]); this module must never
//! wait on a Redis that is gone.

use limitador::counter::Counter;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::time::{Duration, Instant};

/// KEYS: the counters. ARGV[1]: hits; ARGV[2i], ARGV[2i+1]: counter i's window (ms) and
/// max value. Returns `admitted (1 or 0)`, then per counter its value (after the hits when
/// admitted) and its time to reset (ms).
const CHECK_AND_COUNT: &str = r"
local hits = tonumber(ARGV[1])
local values, ttls = {}, {}
local admitted = 1
for i = 1, #KEYS do
  local window = tonumber(ARGV[2 * i])
  local value = tonumber(redis.call('GET', KEYS[i]) or '0')
  local ttl = redis.call('PTTL', KEYS[i])
  if ttl < 0 then
    ttl = window
  end
  values[i] = value
  ttls[i] = ttl
  if value + hits > tonumber(ARGV[2 * i + 1]) then
    admitted = 0
  end
end
if admitted == 1 then
  for i = 1, #KEYS do
    values[i] = redis.call('INCRBY', KEYS[i], hits)
    if redis.call('PTTL', KEYS[i]) < 0 then
      redis.call('PEXPIRE', KEYS[i], ttls[i])
    end
  end
end
local result = {admitted}
for i = 1, #KEYS do
  table.insert(result, values[i])
  table.insert(result, ttls[i])
end
return result
";

/// One counter after a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    /// Hits counted in its window (including this request's when it was admitted).
    pub value: u64,
    /// Time until its window ends.
    pub resets_in: Duration,
}

/// How the connection to Redis is kept: each connection attempt and each answer bounded by
/// `timeout`; a lost connection is retried twice (about 50 ms, then 100 ms) before the
/// request that found it lost fails, and the next request tries again.
pub fn connection_config(timeout: Duration) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(2)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_millis(200))
}

/// The counters in one Redis.
#[derive(Clone)]
pub struct RedisCounters {
    connection: ConnectionManager,
    script: redis::Script,
}

impl RedisCounters {
    /// Connects to the Redis at `url`, which must answer within `wait` (tried every 100 ms
    /// meanwhile, so the service may start just before Redis does).
    pub async fn connect(url: &str, timeout: Duration, wait: Duration) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| format!("bad Redis URL {url:?}: {e}"))?;
        let deadline = Instant::now() + wait;
        loop {
            let attempt =
                ConnectionManager::new_with_config(client.clone(), connection_config(timeout));
            let failure = match tokio::time::timeout(timeout * 4, attempt).await {
                Ok(Ok(connection)) => {
                    return Ok(RedisCounters {
                        connection,
                        script: redis::Script::new(CHECK_AND_COUNT),
                    })
                }
                Ok(Err(e)) => e.to_string(),
                Err(_) => "no answer".to_string(),
            };
            if Instant::now() >= deadline {
                return Err(format!(
                    "cannot reach Redis at {url} within {} ms: {failure}",
                    wait.as_millis()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Checks `hits` against every counter and, when all have room, counts them in all:
    /// whether it was admitted, and each counter's count.
    pub async fn check_and_count(
        &self,
        counters: &[Counter],
        hits: u64,
    ) -> Result<(bool, Vec<Count>), redis::RedisError> {
        let mut invocation = self.script.prepare_invoke();
        invocation.arg(hits);
        for counter in counters {
            invocation.key(key_for(counter));
            let window_ms = u64::try_from(counter.window().as_millis()).unwrap_or(u64::MAX);
            invocation.arg(window_ms).arg(counter.max_value());
        }
        let mut connection = self.connection.clone();
        let answer: Vec<i64> = invocation.invoke_async(&mut connection).await?;
        let admitted = answer.first() == Some(&1);
        let counts = answer
            .get(1..)
            .unwrap_or_default()
            .chunks_exact(2)
            .map(|pair| Count {
                value: u64::try_from(pair[0]).unwrap_or(0),
                resets_in: Duration::from_millis(u64::try_from(pair[1]).unwrap_or(0)),
            })
            .collect::<Vec<_>>();
        if counts.len() != counters.len() {
            return Err(redis::RedisError::from((
                redis::ErrorKind::Parse,
                "unexpected answer from the counting script",
            )));
        }
        Ok((admitted, counts))
    }
}

/// The Redis key of a counter: limitador's text encoding for limits without an `id`.
pub fn key_for(counter: &Counter) -> Vec<u8> {
    let namespace = counter.namespace().as_ref();
    // A Counter is plain data (its limit's namespace, window, conditions, variables and
    // the variables' values): its JSON cannot fail.
    let json = serde_json::to_string(counter).unwrap_or_default();
    format!("namespace:{{{namespace}}},counter:{json}").into_bytes()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use limitador::limit::{Context, Limit};
    use std::collections::HashMap;

    fn counter(user: &str, max: u64) -> Counter {
        let limit = Limit::new(
            "mfa-gate",
            max,
            300,
            ["has(descriptors[0].mfa_gate_push)".try_into().unwrap()],
            ["descriptors[0].user".try_into().unwrap()],
        );
        let mut ctx = Context::default();
        ctx.list_binding(
            "descriptors".into(),
            vec![HashMap::from([
                ("mfa_gate_push".to_string(), "duo".to_string()),
                ("user".to_string(), user.to_string()),
            ])],
        );
        Counter::new(limit, &ctx).unwrap().unwrap()
    }

    #[test]
    fn keys_are_per_variable_value_not_per_max_value() {
        let key = String::from_utf8(key_for(&counter("aa", 3))).unwrap();
        assert!(key.starts_with("namespace:{mfa-gate},counter:{"), "{key}");
        assert!(key.contains("\"aa\""), "{key}");
        assert_eq!(key_for(&counter("aa", 3)), key_for(&counter("aa", 5)));
        assert_ne!(key_for(&counter("aa", 3)), key_for(&counter("bb", 3)));
    }
}
