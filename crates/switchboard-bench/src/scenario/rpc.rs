//! `rpc`: C clients each calling a walker with `response: true`, one call in flight per client,
//! for `--duration` or until `--max-calls` calls in all; round trips per second, latency and the
//! server's CPU per call.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use super::clients::reset_on_drop;
use super::measure::{CoreWatch, PerUnit, latency_metrics, new_histogram, round3};
use super::{Common, Env, Metrics};
use crate::proto::Protocol;
use crate::ws::{self, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT};

/// Headline metrics, in the order of the printed line.
pub const METRIC_KEYS: &[&str] = &[
    "calls",
    "errors",
    "calls_per_sec",
    "p50_ms",
    "p99_ms",
    "server_cpu_us_per_call",
];

#[derive(Args, Clone)]
pub struct RpcArgs {
    #[command(flatten)]
    pub common: Common,
    #[arg(long, default_value_t = 50)]
    pub clients: usize,
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    #[arg(long, default_value = "chat_service")]
    pub walker: String,
    /// Length of the walker's `message` argument.
    #[arg(long, default_value_t = 32)]
    pub payload: usize,
    /// Upper bound on calls, all clients together: with a long --duration, a fixed amount of
    /// work (for counting the server's instructions rather than timing it).
    #[arg(long)]
    pub max_calls: Option<u64>,
}

impl RpcArgs {
    pub fn params(&self) -> Value {
        let mut p = json!({"clients": self.clients, "duration": self.duration, "walker": self.walker, "payload": self.payload});
        if let Some(max) = self.max_calls {
            p["max_calls"] = json!(max);
        }
        p
    }
}

/// Connect every client first, then each one calls the walker in a loop until the duration is up;
/// a reply counts when its `status` frame arrives, an `error` frame counts as an error.
pub async fn run(env: &Env, args: &RpcArgs) -> anyhow::Result<Metrics> {
    let clients = args.clients;
    let duration = Duration::from_secs_f64(args.duration);
    let walker = args.walker.as_str();
    let payload_bytes = args.payload;
    anyhow::ensure!(
        env.target.protocol == Protocol::Jac,
        "rpc needs the Jac Cloud dialect (walkers)"
    );
    let hist = Rc::new(RefCell::new(new_histogram()));
    let calls = Rc::new(Cell::new(0u64));
    // Calls started, against --max-calls.
    let started_calls = Rc::new(Cell::new(0u64));
    let max_calls = args.max_calls.unwrap_or(u64::MAX);
    let errors = Rc::new(Cell::new(0u64));
    let first_error = Rc::new(RefCell::new(None::<String>));
    let mut conns = Vec::new();
    for i in 0..clients {
        let (conn, _) = env
            .target
            .open(i, None, None, env.handshake_timeout)
            .await?;
        conns.push(conn);
    }
    let message: String = "x".repeat(payload_bytes);
    let request = ws::encode(
        OP_TEXT,
        format!(r#"{{"type":"walker","walker":"{walker}","response":true,"context":{{"message":"{message}"}}}}"#).as_bytes(),
    );
    let request = Rc::new(request);
    let deadline = Instant::now() + duration;
    let cores = CoreWatch::start(env.server_pid);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for mut conn in conns {
        let (hist, calls, started_calls, errors, first_error, request) = (
            hist.clone(),
            calls.clone(),
            started_calls.clone(),
            errors.clone(),
            first_error.clone(),
            request.clone(),
        );
        tasks.push(tokio::task::spawn_local(async move {
            'calls: while Instant::now() < deadline && started_calls.get() < max_calls {
                started_calls.set(started_calls.get() + 1);
                let t0 = Instant::now();
                if conn.stream.write_all(&request).await.is_err() {
                    errors.set(errors.get() + 1);
                    break;
                }
                loop {
                    let next = tokio::time::timeout(
                        Duration::from_secs(30),
                        conn.reader.next(&mut conn.stream),
                    )
                    .await;
                    let Ok(Ok(Some(frame))) = next else {
                        errors.set(errors.get() + 1);
                        break 'calls;
                    };
                    match frame.opcode {
                        OP_TEXT => {
                            if ws::find(frame.payload, b"\"status\"").is_some() {
                                let _ = hist
                                    .borrow_mut()
                                    .record((t0.elapsed().as_micros() as u64).max(1));
                                calls.set(calls.get() + 1);
                                break;
                            }
                            if ws::find(frame.payload, b"\"error\"").is_some() {
                                errors.set(errors.get() + 1);
                                if first_error.borrow().is_none() {
                                    *first_error.borrow_mut() =
                                        Some(String::from_utf8_lossy(frame.payload).into_owned());
                                }
                                break;
                            }
                        }
                        OP_PING => {
                            let pong = ws::encode(OP_PONG, frame.payload);
                            let _ = conn.stream.write_all(&pong).await;
                        }
                        OP_CLOSE => {
                            errors.set(errors.get() + 1);
                            break 'calls;
                        }
                        _ => {}
                    }
                }
            }
            reset_on_drop(&conn.stream);
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let secs = started.elapsed().as_secs_f64();
    let mut m = Metrics::new();
    m.insert("calls".into(), json!(calls.get()));
    m.insert("errors".into(), json!(errors.get()));
    if let Some(err) = first_error.borrow().as_ref() {
        m.insert(
            "first_error".into(),
            json!(err.chars().take(300).collect::<String>()),
        );
    }
    m.insert("wall_secs".into(), json!(round3(secs)));
    m.insert(
        "calls_per_sec".into(),
        json!(round3(calls.get() as f64 / secs)),
    );
    latency_metrics("", &hist.borrow(), &mut m);
    cores.finish(
        &mut m,
        secs,
        PerUnit {
            key: "server_cpu_us_per_call",
            scale: 1e6,
            count: calls.get(),
        },
    );
    Ok(m)
}
