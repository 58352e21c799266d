//! `connect`: handshakes per second until N connections are open, and the handshake latency.

use std::time::Duration;

use clap::Args;
use serde_json::{Value, json};

use super::clients::{Shared, open_many, opened_metrics};
use super::measure::{CoreWatch, PerUnit, latency_metrics, round3};
use super::{Common, Env, Metrics};

/// Headline metrics, in the order of the printed line.
pub const METRIC_KEYS: &[&str] = &[
    "connections_ok",
    "connections_failed",
    "handshakes_per_sec",
    "handshake_p50_ms",
    "handshake_p99_ms",
    "server_cpu_us_per_handshake",
];

#[derive(Args, Clone)]
pub struct ConnectArgs {
    #[command(flatten)]
    pub common: Common,
    #[arg(long, default_value_t = 10_000)]
    pub connections: usize,
}

impl ConnectArgs {
    pub fn params(&self) -> Value {
        json!({"connections": self.connections, "concurrency": self.common.concurrency})
    }
}

/// Open the connections with `--concurrency` handshakes in flight; a handshake ends when the
/// connection is usable (see `proto`), so the rate includes each protocol's first frames.
pub async fn run(env: &Env, args: &ConnectArgs) -> anyhow::Result<Metrics> {
    let connections = args.connections;
    let shared = Shared::new();
    let cores = CoreWatch::start(env.server_pid);
    let opened = open_many(
        &env.target,
        &shared,
        connections,
        env.concurrency,
        env.handshake_timeout,
        &[],
        |_| None,
    )
    .await;
    let mut m = Metrics::new();
    opened_metrics(&opened, &mut m);
    let secs = opened.wall.as_secs_f64();
    m.insert("wall_secs".into(), json!(round3(secs)));
    m.insert(
        "handshakes_per_sec".into(),
        json!((opened.ok as f64 / secs).round()),
    );
    latency_metrics("handshake_", &opened.handshake, &mut m);
    cores.finish(
        &mut m,
        secs,
        PerUnit {
            key: "server_cpu_us_per_handshake",
            scale: 1e6,
            count: opened.ok as u64,
        },
    );
    shared.cancel.cancel();
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(m)
}
