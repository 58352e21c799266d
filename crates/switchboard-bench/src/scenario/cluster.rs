//! `cluster`: one channel whose S subscribers are spread evenly over several server nodes joined
//! by a backplane (Redis or NATS), one publisher on the first node at a fixed rate. With no
//! `--peers` it is the same load on one node, the baseline the cluster is compared with.
//!
//! Besides `fanout`'s figures it reports the CPU time of every node together
//! (`nodes_cpu_ns_per_delivery`: what crossing nodes costs per delivered message, beside the
//! single node's) and of the backplane process (`--backplane-pid`, e.g. the local
//! `redis-server` or `nats-server`), whose work the nodes' figures do not show.

use std::net::SocketAddr;
use std::rc::Rc;

use clap::Args;
use serde_json::{Value, json};

use super::fanout::FanoutArgs;
use super::measure::{CpuGroup, round3};
use super::rooms::run_rooms;
use super::{Env, Metrics};

/// Headline metrics, in the order of the printed line.
pub const METRIC_KEYS: &[&str] = &[
    "connections_ok",
    "messages_sent",
    "deliveries_per_sec",
    "lost",
    "p50_ms",
    "p99_ms",
    "nodes_cpu_ns_per_delivery",
    "backplane_cpu_util",
    "backplane_cpu_us_per_message",
    "server_core_busy",
    "generator_core_busy",
];

#[derive(Args, Clone)]
pub struct ClusterArgs {
    /// `--addr` is the node the publisher talks to; it also holds its share of subscribers.
    #[command(flatten)]
    pub fanout: FanoutArgs,
    /// The other nodes' addresses; subscribers are spread evenly over `--addr` and these.
    #[arg(long, value_delimiter = ',')]
    pub peers: Vec<SocketAddr>,
    /// Pids of the other nodes, for their CPU time.
    #[arg(long, value_delimiter = ',')]
    pub peer_pids: Vec<u32>,
    /// What joins the nodes, recorded with the figures: `redis`, `nats` or `none` (one node).
    #[arg(long, default_value = "none")]
    pub backplane: String,
    /// Pid of the backplane server (redis-server, nats-server), for its CPU time.
    #[arg(long)]
    pub backplane_pid: Option<u32>,
}

impl ClusterArgs {
    pub fn params(&self) -> Value {
        let mut p = self.fanout.params();
        p["nodes"] = json!(1 + self.peers.len());
        p["backplane"] = json!(self.backplane);
        p
    }
}

pub async fn run(env: &Env, args: &ClusterArgs) -> anyhow::Result<Metrics> {
    let mut nodes = vec![env.target.clone()];
    for &addr in &args.peers {
        let mut peer = (*env.target).clone();
        peer.addr = addr;
        peer.host = addr.to_string();
        nodes.push(Rc::new(peer));
    }
    let mut cpu_groups = vec![CpuGroup {
        name: "nodes",
        pids: env
            .server_pid
            .into_iter()
            .chain(args.peer_pids.iter().copied())
            .collect(),
    }];
    if let Some(pid) = args.backplane_pid {
        cpu_groups.push(CpuGroup {
            name: "backplane",
            pids: vec![pid],
        });
    }
    let cluster_env = Env {
        target: env.target.clone(),
        nodes,
        server_pid: env.server_pid,
        cpu_groups,
        concurrency: env.concurrency,
        handshake_timeout: env.handshake_timeout,
    };
    let fanout = &args.fanout;
    let mut m = run_rooms(
        &cluster_env,
        1,
        fanout.subscribers,
        &fanout.publishing.publishing(),
    )
    .await?;
    let sent = m["messages_sent"].as_u64().unwrap_or(0).max(1) as f64;
    if let Some(cpu) = m.get("backplane_cpu_seconds").and_then(Value::as_f64) {
        m.insert(
            "backplane_cpu_us_per_message".into(),
            json!(round3(cpu * 1e6 / sent)),
        );
    }
    Ok(m)
}
