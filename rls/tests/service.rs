//! mfa-gate-rls as a process, against a real `redis-server` (no persistence, a port of its
//! own), asked over gRPC with the RLS v3 client: the demo limits (per user 3 in 300 s and
//! 10 in 3600 s, per client 20 in 300 s), counting that is atomic and never counts a
//! refused hit, Redis going away (UNAVAILABLE, in bounded time) and coming back.
//! Never skipped: without redis-server the tests fail and say how to install it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use envoy_types::pb::envoy::extensions::common::ratelimit::v3::{
    rate_limit_descriptor::Entry, RateLimitDescriptor,
};
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::Code;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_client::RateLimitServiceClient;
use envoy_types::pb::envoy::service::ratelimit::v3::{RateLimitRequest, RateLimitResponse};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

const DEMO_LIMITS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../envoy/ratelimit-limits.yaml"
);

/// A fresh directory, removed on drop unless the test failed.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let path =
            std::env::temp_dir().join(format!("mfa-gate-rls-{}-{n}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Scratch(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `redis-server` on a loopback port, without persistence; killed on drop.
struct Redis {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Redis {
    fn start(scratch: &Scratch) -> Redis {
        let mut redis = Redis {
            port: free_port(),
            dir: scratch.0.clone(),
            child: None,
        };
        redis.restart();
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn restart(&mut self) {
        assert!(self.child.is_none(), "Redis is running");
        let log = std::fs::File::create(self.dir.join("redis.log")).unwrap();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run redis-server ({e}): install redis-server (make setup)")
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ping(self.port) {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut answer = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut answer).is_ok()
        && &answer == b"+PONG\r\n"
}

/// The service binary, started on a free port; killed on drop.
struct Rls {
    address: SocketAddr,
    child: Child,
}

impl Rls {
    fn start(redis_url: &str, limits: &Path, scratch: &Scratch) -> Rls {
        let log = std::fs::File::create(scratch.0.join("rls.log")).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_mfa-gate-rls"))
            .args(["--listen", "127.0.0.1:0", "--redis", redis_url])
            .arg("--limits")
            .arg(limits)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let Some(address) = line.trim().strip_prefix("listening ") else {
            let log = std::fs::read_to_string(scratch.0.join("rls.log")).unwrap_or_default();
            panic!("mfa-gate-rls printed {line:?}; its log: {log}");
        };
        Rls {
            address: address.parse().unwrap(),
            child,
        }
    }

    async fn client(&self) -> RateLimitServiceClient<Channel> {
        RateLimitServiceClient::connect(format!("http://{}", self.address))
            .await
            .unwrap()
    }
}

impl Drop for Rls {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What mfa-gate sends for a prompt: domain mfa-gate, one descriptor.
fn prompt(user: &str, client: Option<&str>) -> RateLimitRequest {
    let mut entries = vec![("mfa_gate_push", "duo-auth"), ("user", user)];
    entries.extend(client.map(|c| ("client", c)));
    RateLimitRequest {
        domain: "mfa-gate".into(),
        descriptors: vec![RateLimitDescriptor {
            entries: entries
                .into_iter()
                .map(|(key, value)| Entry {
                    key: key.into(),
                    value: value.into(),
                })
                .collect(),
            ..RateLimitDescriptor::default()
        }],
        hits_addend: 0,
    }
}

fn user(n: u32) -> String {
    format!("{n:032x}")
}

async fn ask(
    client: &mut RateLimitServiceClient<Channel>,
    request: RateLimitRequest,
) -> RateLimitResponse {
    tokio::time::timeout(Duration::from_secs(5), client.should_rate_limit(request))
        .await
        .expect("an answer within 5 s")
        .expect("an OK gRPC status")
        .into_inner()
}

fn code(response: &RateLimitResponse) -> Code {
    Code::try_from(response.overall_code).unwrap()
}

fn remaining(response: &RateLimitResponse) -> u32 {
    assert_eq!(
        response.statuses.len(),
        1,
        "one status for the one descriptor"
    );
    response.statuses[0].limit_remaining
}

fn limit_name(response: &RateLimitResponse) -> String {
    response.statuses[0].current_limit.clone().unwrap().name
}

fn reset_seconds(response: &RateLimitResponse) -> i64 {
    response.statuses[0].duration_until_reset.unwrap().seconds
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_prompts_then_over_limit_per_user() {
    let scratch = Scratch::new("per-user");
    let redis = Redis::start(&scratch);
    let rls = Rls::start(&redis.url(), Path::new(DEMO_LIMITS), &scratch);
    let mut client = rls.client().await;
    let alice = user(1);
    for expected in [2, 1, 0] {
        let answer = ask(&mut client, prompt(&alice, Some("192.0.2.1"))).await;
        assert_eq!(code(&answer), Code::Ok);
        assert_eq!(remaining(&answer), expected);
        assert_eq!(limit_name(&answer), "push-per-user-5m");
        let reset = reset_seconds(&answer);
        assert!((1..=300).contains(&reset), "reset {reset}");
    }
    let fourth = ask(&mut client, prompt(&alice, Some("192.0.2.1"))).await;
    assert_eq!(code(&fourth), Code::OverLimit);
    assert_eq!(fourth.statuses[0].code, Code::OverLimit as i32);
    assert_eq!(remaining(&fourth), 0);
    assert_eq!(limit_name(&fourth), "push-per-user-5m");
    let limit = fourth.statuses[0].current_limit.clone().unwrap();
    assert_eq!(limit.requests_per_unit, 3);
    let reset = reset_seconds(&fourth);
    assert!(reset > 0 && reset <= 300, "duration_until_reset {reset}");

    // Bob is counted apart, and without a client entry the per-client limit is not his.
    let bob = user(2);
    let answer = ask(&mut client, prompt(&bob, None)).await;
    assert_eq!(code(&answer), Code::Ok);
    assert_eq!(remaining(&answer), 2);
    // Alice stays refused.
    let fifth = ask(&mut client, prompt(&alice, None)).await;
    assert_eq!(code(&fifth), Code::OverLimit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_prompts_per_client_address() {
    let scratch = Scratch::new("per-client");
    let redis = Redis::start(&scratch);
    let rls = Rls::start(&redis.url(), Path::new(DEMO_LIMITS), &scratch);
    let mut client = rls.client().await;
    for n in 0..20 {
        let answer = ask(&mut client, prompt(&user(100 + n), Some("198.51.100.7"))).await;
        assert_eq!(code(&answer), Code::Ok, "prompt {n}");
        // Each user's own 3-in-300 s leaves 2; the client's count is lower from the 18th.
        assert_eq!(remaining(&answer), (19 - n).min(2), "prompt {n}");
    }
    let refused = ask(&mut client, prompt(&user(200), Some("198.51.100.7"))).await;
    assert_eq!(code(&refused), Code::OverLimit);
    assert_eq!(limit_name(&refused), "push-per-client-5m");
    // Another address is not affected.
    let other = ask(&mut client, prompt(&user(200), Some("198.51.100.8"))).await;
    assert_eq!(code(&other), Code::Ok);
    assert_eq!(
        remaining(&other),
        2,
        "the refused prompt was not counted for user 200"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_prompt_is_counted_nowhere() {
    let scratch = Scratch::new("not-counted");
    let limits = scratch.0.join("limits.yaml");
    std::fs::write(
        &limits,
        "- {namespace: mfa-gate, name: user, max_value: 3, seconds: 300, \
           conditions: ['has(descriptors[0].mfa_gate_push)'], variables: ['descriptors[0].user']}\n\
         - {namespace: mfa-gate, name: client, max_value: 5, seconds: 300, \
           conditions: ['has(descriptors[0].mfa_gate_push)'], variables: ['descriptors[0].client']}\n",
    )
    .unwrap();
    let redis = Redis::start(&scratch);
    let rls = Rls::start(&redis.url(), &limits, &scratch);
    let mut client = rls.client().await;
    for _ in 0..3 {
        assert_eq!(
            code(&ask(&mut client, prompt(&user(1), Some("10.0.0.1"))).await),
            Code::Ok
        );
    }
    for _ in 0..3 {
        let refused = ask(&mut client, prompt(&user(1), Some("10.0.0.1"))).await;
        assert_eq!(code(&refused), Code::OverLimit);
        assert_eq!(limit_name(&refused), "user");
    }
    // The client counter saw 3 hits, not 6: user 2 from that address has 1 left after his.
    let answer = ask(&mut client, prompt(&user(2), Some("10.0.0.1"))).await;
    assert_eq!(code(&answer), Code::Ok);
    assert_eq!(remaining(&answer), 1);
    assert_eq!(limit_name(&answer), "client");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompts_at_once_cannot_share_the_last_unit() {
    let scratch = Scratch::new("concurrent");
    let redis = Redis::start(&scratch);
    let rls = Rls::start(&redis.url(), Path::new(DEMO_LIMITS), &scratch);
    let client = rls.client().await;
    let mut tasks = Vec::new();
    for _ in 0..24 {
        let mut client = client.clone();
        tasks.push(tokio::spawn(async move {
            code(&ask(&mut client, prompt(&user(7), None)).await)
        }));
    }
    let mut passed = 0;
    for task in tasks {
        if task.await.unwrap() == Code::Ok {
            passed += 1;
        }
    }
    assert_eq!(
        passed, 3,
        "exactly the limit passes, however the prompts interleave"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_requests() {
    let scratch = Scratch::new("other");
    let redis = Redis::start(&scratch);
    let rls = Rls::start(&redis.url(), Path::new(DEMO_LIMITS), &scratch);
    let mut client = rls.client().await;
    // No push entry: no limit applies.
    let mut plain = prompt(&user(1), None);
    plain.descriptors[0].entries.remove(0);
    let answer = ask(&mut client, plain).await;
    assert_eq!(code(&answer), Code::Ok);
    assert_eq!(answer.statuses[0].current_limit, None);
    // Another domain: none of these limits.
    let mut other = prompt(&user(1), None);
    other.domain = "elsewhere".into();
    assert_eq!(
        ask(&mut client, other).await.statuses[0].current_limit,
        None
    );
    // hits_addend counts as many hits.
    let mut two = prompt(&user(3), None);
    two.hits_addend = 2;
    assert_eq!(remaining(&ask(&mut client, two.clone()).await), 1);
    assert_eq!(code(&ask(&mut client, two).await), Code::OverLimit);
    // A request without descriptors is refused as invalid.
    let mut empty = prompt(&user(1), None);
    empty.descriptors.clear();
    let status = client.should_rate_limit(empty).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_is_unavailable_and_redis_back_answers_again() {
    let scratch = Scratch::new("redis-down");
    let mut redis = Redis::start(&scratch);
    let rls = Rls::start(&redis.url(), Path::new(DEMO_LIMITS), &scratch);
    let mut client = rls.client().await;
    assert_eq!(
        code(&ask(&mut client, prompt(&user(1), None)).await),
        Code::Ok
    );

    redis.stop();
    for _ in 0..3 {
        let started = Instant::now();
        let status = tokio::time::timeout(
            Duration::from_secs(5),
            client.should_rate_limit(prompt(&user(1), None)),
        )
        .await
        .expect("an answer, not a hang")
        .unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }
    let log = std::fs::read_to_string(scratch.0.join("rls.log")).unwrap();
    assert!(log.contains("WARN"), "a log line for the failure: {log}");

    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    let answer = loop {
        match client.should_rate_limit(prompt(&user(1), None)).await {
            Ok(answer) => break answer.into_inner(),
            Err(status) => {
                assert_eq!(status.code(), tonic::Code::Unavailable);
                assert!(Instant::now() < deadline, "no answer after Redis came back");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    // A new, empty Redis: the count starts again.
    assert_eq!(code(&answer), Code::Ok);
    assert_eq!(remaining(&answer), 2);
}

#[test]
fn a_bad_limits_file_or_no_redis_stops_it_at_start() {
    let scratch = Scratch::new("start");
    let bad = scratch.0.join("bad.yaml");
    std::fs::write(&bad, "- {namespace: mfa-gate, max_value: 3, second: 300}\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mfa-gate-rls"))
        .args(["--listen", "127.0.0.1:0", "--redis", "redis://127.0.0.1:1"])
        .arg("--limits")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad limits file") && stderr.contains("limits[0].second: unknown key"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());

    let out = Command::new(env!("CARGO_BIN_EXE_mfa-gate-rls"))
        .args(["--listen", "127.0.0.1:0", "--redis-wait-ms", "300"])
        .args(["--redis", &format!("redis://127.0.0.1:{}", free_port())])
        .args(["--limits", DEMO_LIMITS])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot reach Redis at redis://127.0.0.1:"),
        "{stderr}"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_mfa-gate-rls"))
        .args([
            "--redis",
            "redis://127.0.0.1:1",
            "--limits",
            DEMO_LIMITS,
            "--bogus",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
