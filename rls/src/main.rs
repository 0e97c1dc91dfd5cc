//! `mfa-gate-rls --listen ADDR --redis URL --limits FILE`: serves Envoy's RLS v3 API on
//! ADDR, counting in Redis under the limits of FILE (limitador's format). Prints one line,
//! `listening ADDR` (the bound address), on stdout once it accepts connections; logs go to
//! stderr. SIGTERM or ctrl-c stops it. Exit codes: 2 for bad arguments or a bad limits
//! file, 1 when Redis cannot be reached at start or the address cannot be bound.

use mfa_gate_rls::{load_limits, Limits, RedisCounters, Service};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tokio_stream::StreamExt;

const USAGE: &str = "usage: mfa-gate-rls --redis redis://HOST:PORT --limits FILE \
[--listen 127.0.0.1:8081] [--timeout-ms 1000] [--redis-wait-ms 10000]";

/// How long in-flight calls get to finish once a stop is asked for.
const DRAIN: Duration = Duration::from_secs(2);

struct Args {
    listen: SocketAddr,
    redis: String,
    limits: PathBuf,
    timeout: Duration,
    redis_wait: Duration,
}

fn parse_args() -> Result<Option<Args>, String> {
    use lexopt::prelude::*;
    let mut parser = lexopt::Parser::from_env();
    let mut listen: SocketAddr = ([127, 0, 0, 1], 8081).into();
    let (mut redis, mut limits) = (None, None);
    let mut timeout = Duration::from_millis(1000);
    let mut redis_wait = Duration::from_millis(10_000);
    let millis = |value: String, flag: &str| {
        value
            .parse::<u64>()
            .ok()
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis)
            .ok_or_else(|| format!("{flag}: expected milliseconds (> 0), got {value:?}"))
    };
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Long("listen") => {
                let value = parser
                    .value()
                    .map_err(|e| e.to_string())?
                    .string()
                    .map_err(|e| format!("{e:?}"))?;
                listen = value
                    .parse()
                    .map_err(|_| format!("--listen: expected HOST:PORT, got {value:?}"))?;
            }
            Long("redis") => {
                redis = Some(
                    parser
                        .value()
                        .map_err(|e| e.to_string())?
                        .string()
                        .map_err(|e| format!("{e:?}"))?,
                )
            }
            Long("limits") => {
                limits = Some(PathBuf::from(parser.value().map_err(|e| e.to_string())?))
            }
            Long("timeout-ms") => {
                let value = parser
                    .value()
                    .map_err(|e| e.to_string())?
                    .string()
                    .map_err(|e| format!("{e:?}"))?;
                timeout = millis(value, "--timeout-ms")?;
            }
            Long("redis-wait-ms") => {
                let value = parser
                    .value()
                    .map_err(|e| e.to_string())?
                    .string()
                    .map_err(|e| format!("{e:?}"))?;
                redis_wait = millis(value, "--redis-wait-ms")?;
            }
            Short('h') | Long("help") => return Ok(None),
            other => return Err(other.unexpected().to_string()),
        }
    }
    Ok(Some(Args {
        listen,
        redis: redis.ok_or("--redis is required")?,
        limits: limits.ok_or("--limits is required")?,
        timeout,
        redis_wait,
    }))
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::INFO)
        .with_target(false)
        .init();
    let args = match parse_args() {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("mfa-gate-rls: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let limits = match load_limits(&args.limits) {
        Ok(limits) => limits,
        Err(e) => {
            eprintln!("mfa-gate-rls: bad limits file: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("mfa-gate-rls: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(serve(args, limits)) {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, message)) => {
            eprintln!("mfa-gate-rls: {message}");
            ExitCode::from(code)
        }
    }
}

async fn serve(args: Args, limits: Vec<limitador::limit::Limit>) -> Result<(), (u8, String)> {
    let count = limits.len();
    let store = RedisCounters::connect(&args.redis, args.timeout, args.redis_wait)
        .await
        .map_err(|e| (if e.starts_with("bad Redis URL") { 2 } else { 1 }, e))?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| (1, format!("cannot listen on {}: {e}", args.listen)))?;
    let address = listener
        .local_addr()
        .map_err(|e| (1, format!("cannot read the bound address: {e}")))?;
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener).map(|stream| {
        // Small gRPC frames: no Nagle delay.
        stream.inspect(|s| {
            let _ = s.set_nodelay(true);
        })
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        stop_signal().await;
        let _ = stop_tx.send(true);
    });
    let mut stopping = stop_rx.clone();
    let mut draining = stop_rx;
    let server = tonic::transport::Server::builder()
        .add_service(Service::new(Limits::new(limits), store, args.timeout).into_server())
        .serve_with_incoming_shutdown(incoming, async move {
            let _ = stopping.wait_for(|stop| *stop).await;
        });
    tracing::info!(
        "mfa-gate-rls {} serving RLS v3 on {address}, {count} limits, Redis {}",
        env!("CARGO_PKG_VERSION"),
        args.redis
    );
    println!("listening {address}");
    let _ = std::io::stdout().flush();
    tokio::select! {
        served = server => served.map_err(|e| (1, format!("server failed: {e}")))?,
        () = async {
            let _ = draining.wait_for(|stop| *stop).await;
            tokio::time::sleep(DRAIN).await;
        } => tracing::info!("stopped with calls still open after {} s", DRAIN.as_secs()),
    }
    tracing::info!("stopped");
    Ok(())
}

/// SIGTERM or ctrl-c (SIGINT).
async fn stop_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        () = terminate => {},
    }
}
