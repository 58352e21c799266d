//! `idle`: open N connections, hold them, and read the server's memory growth per connection
//! (RSS and PSS of its whole process tree) and the kernel's socket memory.

use std::rc::Rc;
use std::time::Duration;

use clap::Args;
use serde_json::{Map, Value, json};

use super::clients::{Shared, new_room, open_many, opened_metrics};
use super::measure::memory_of;
use super::{Common, Env, Metrics};
use crate::procinfo::KernelSockets;

/// Headline metrics, in the order of the printed line.
pub const METRIC_KEYS: &[&str] = &[
    "connections_ok",
    "connections_alive_after_hold",
    "rss_per_conn_bytes",
    "rss_anon_per_conn_bytes",
    "pss_per_conn_bytes",
    "kernel_slab_per_conn_pair_bytes",
    "kernel_tcp_mem_per_conn_bytes",
];

#[derive(Args, Clone)]
pub struct IdleArgs {
    #[command(flatten)]
    pub common: Common,
    #[arg(long, default_value_t = 10_000)]
    pub connections: usize,
    /// Seconds to wait after the last handshake before the first memory reading.
    #[arg(long, default_value_t = 3.0)]
    pub settle: f64,
    /// Seconds to hold the connections before the final memory reading.
    #[arg(long, default_value_t = 5.0)]
    pub hold: f64,
    /// Subscribe every connection to this room (default: none; on the Jac dialect the server
    /// then gives each connection its own random channel).
    #[arg(long)]
    pub room: Option<String>,
    /// Offer permessage-deflate on every connection, as browsers do. A server that accepts it
    /// may keep compression state per connection (Jac Cloud: about 170 KB more each).
    #[arg(long)]
    pub deflate: bool,
}

impl IdleArgs {
    pub fn params(&self) -> Value {
        let mut p = json!({"connections": self.connections, "settle": self.settle, "hold": self.hold, "room": self.room});
        // Only when set, so records without it keep their old parameters.
        if self.deflate {
            p["deflate"] = json!(true);
        }
        p
    }
}

/// Open the connections, wait `settle`, read memory, wait `hold`, read it again. Memory is read
/// before the first connection opens, so whatever the server allocates on its first connections
/// (lazy imports, pools) counts against the connections; run a warm-up first (run.sh does).
pub async fn run(env: &Env, args: &IdleArgs) -> anyhow::Result<Metrics> {
    let connections = args.connections;
    let settle = Duration::from_secs_f64(args.settle);
    let hold = Duration::from_secs_f64(args.hold);
    let room = args.room.clone();
    let shared = Shared::new();
    let pid = env.server_pid;
    let mem_before = memory_of(pid);
    let kernel_before = KernelSockets::read();
    let rooms = room
        .map(|name| vec![Rc::new(new_room(name, 1))])
        .unwrap_or_default();
    let has_room = !rooms.is_empty();
    let opened = open_many(
        &env.target,
        &shared,
        connections,
        env.concurrency,
        env.handshake_timeout,
        &rooms,
        move |_| has_room.then_some(0),
    )
    .await;
    tokio::time::sleep(settle).await;
    let mem_settled = memory_of(pid);
    let kernel_after = KernelSockets::read();
    tokio::time::sleep(hold).await;
    let mem_held = memory_of(pid);
    let alive = opened.ok.saturating_sub(shared.disconnects.get());

    let mut m = Metrics::new();
    opened_metrics(&opened, &mut m);
    m.insert("connections_alive_after_hold".into(), json!(alive));
    if let (Some(before), Some(settled), Some(held)) = (mem_before, mem_settled, mem_held) {
        let n = opened.ok.max(1) as f64;
        let per = |a: u64, b: u64| ((b as f64 - a as f64) / n).round();
        m.insert("server_rss_before_bytes".into(), json!(before.rss));
        m.insert("server_rss_after_bytes".into(), json!(held.rss));
        m.insert(
            "rss_per_conn_bytes".into(),
            json!(per(before.rss, held.rss)),
        );
        m.insert(
            "rss_per_conn_after_settle_bytes".into(),
            json!(per(before.rss, settled.rss)),
        );
        m.insert(
            "rss_anon_per_conn_bytes".into(),
            json!(per(before.rss_anon, held.rss_anon)),
        );
        m.insert(
            "pss_per_conn_bytes".into(),
            json!(per(before.pss, held.pss)),
        );
        m.insert(
            "anonymous_per_conn_bytes".into(),
            json!(per(before.anonymous, held.anonymous)),
        );
    }
    // Kernel memory is system wide and covers both ends of each loopback connection.
    let n = opened.ok.max(1) as f64;
    m.insert(
        "kernel_tcp_mem_per_conn_bytes".into(),
        json!(
            ((kernel_after.tcp_mem_bytes as f64 - kernel_before.tcp_mem_bytes as f64) / n).round()
        ),
    );
    if !kernel_after.slab_bytes.is_empty() {
        m.insert(
            "kernel_slab_per_conn_pair_bytes".into(),
            json!(
                ((kernel_after.slab_total() as f64 - kernel_before.slab_total() as f64) / n)
                    .round()
            ),
        );
        let detail: Map<String, Value> = kernel_after
            .slab_bytes
            .iter()
            .map(|(k, v)| {
                let before = kernel_before.slab_bytes.get(k).copied().unwrap_or(0);
                (k.clone(), json!(((*v as f64 - before as f64) / n).round()))
            })
            .collect();
        m.insert(
            "kernel_slab_per_conn_pair_detail".into(),
            Value::Object(detail),
        );
    }
    m.insert(
        "kernel_tcp_inuse_delta".into(),
        json!(kernel_after.tcp_inuse as i64 - kernel_before.tcp_inuse as i64),
    );
    shared.cancel.cancel();
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(m)
}
