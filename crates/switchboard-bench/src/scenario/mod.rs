//! The scenarios, one file each, behind the [`Scenario`] enum: its variants are the generator's
//! subcommands (one argument struct per scenario, with the options every scenario shares in
//! [`Common`]), and it dispatches to each scenario's `run`, prints the headline line and writes
//! the JSON record `bench/run.sh` and `report` read. Adding a scenario touches one new file and
//! the match arms below.
//!
//! - `idle`, `connect`, `fanout`, `rooms`, `rpc`, `channel`, `presence`, `namespace`, `publish`,
//!   `cluster`: one scenario each (`fanout` is `rooms` with one room; `channel` is `fanout`
//!   through the channel dialect, `namespace` is `fanout` over the namespace dialect, `publish`
//!   is `fanout` fed through the HTTP publish API, `cluster` is `fanout` with its subscribers
//!   spread over several nodes).
//! - `clients`: the subscriber side they share (opening many connections, the read loop, counters).
//! - `publisher`: the publisher side of the fan-out scenarios (pacing, WebSocket or HTTP publish).
//! - `measure`: histograms, rounding, memory and CPU readings.

mod channel;
mod clients;
mod cluster;
mod connect;
mod fanout;
mod idle;
mod measure;
mod namespace;
mod presence;
mod publish;
mod publisher;
mod rooms;
mod rpc;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use crate::procinfo;
use crate::proto::{Protocol, Target};

/// A scenario's metrics: the `metrics` object of its JSON record.
pub type Metrics = Map<String, Value>;

/// What every scenario needs to reach and observe the server under test.
pub struct Env {
    /// The server (for a cluster: the node publishers talk to).
    pub target: Rc<Target>,
    /// Where subscribers connect, spread evenly: `[target]`, or every node of a cluster.
    pub nodes: Vec<Rc<Target>>,
    pub server_pid: Option<u32>,
    /// More processes whose CPU time fan-out scenarios report (a cluster's nodes and backplane).
    pub cpu_groups: Vec<measure::CpuGroup>,
    pub concurrency: usize,
    pub handshake_timeout: Duration,
}

#[derive(Subcommand, Clone)]
pub enum Scenario {
    /// Open N connections and hold them; report the server's memory growth per connection.
    Idle(idle::IdleArgs),
    /// Handshakes per second until N connections are open, and the handshake latency.
    Connect(connect::ConnectArgs),
    /// S subscribers on one channel, one publisher.
    Fanout(fanout::FanoutArgs),
    /// M channels of K subscribers, one publisher in each.
    Rooms(rooms::RoomsArgs),
    /// C clients calling a walker with `response: true`, one call in flight each.
    Rpc(rpc::RpcArgs),
    /// S members of one channel-dialect channel, one member publishing.
    Channel(channel::ChannelArgs),
    /// N channel-dialect connections joining one channel within a second, then leaving it.
    Presence(presence::PresenceArgs),
    /// S clients of one Switchboard namespace, one publisher in it (`fanout` in envelopes).
    Namespace(namespace::NamespaceArgs),
    /// S subscribers on one channel fed through the server's HTTP publish API, one item or a
    /// batch per request.
    Publish(publish::PublishApiArgs),
    /// S subscribers on one channel spread over several nodes, one publisher on the first node.
    Cluster(cluster::ClusterArgs),
}

impl Scenario {
    /// The subcommand name, also the `scenario` field of the record.
    pub fn name(&self) -> &'static str {
        match self {
            Scenario::Idle(_) => "idle",
            Scenario::Connect(_) => "connect",
            Scenario::Fanout(_) => "fanout",
            Scenario::Rooms(_) => "rooms",
            Scenario::Rpc(_) => "rpc",
            Scenario::Channel(_) => "channel",
            Scenario::Presence(_) => "presence",
            Scenario::Namespace(_) => "namespace",
            Scenario::Publish(_) => "publish",
            Scenario::Cluster(_) => "cluster",
        }
    }

    /// The metrics printed on the headline line, in order.
    pub fn metric_keys(&self) -> &'static [&'static str] {
        match self {
            Scenario::Idle(_) => idle::METRIC_KEYS,
            Scenario::Connect(_) => connect::METRIC_KEYS,
            Scenario::Fanout(_) => fanout::METRIC_KEYS,
            Scenario::Rooms(_) => rooms::METRIC_KEYS,
            Scenario::Rpc(_) => rpc::METRIC_KEYS,
            Scenario::Channel(_) => channel::METRIC_KEYS,
            Scenario::Presence(_) => presence::METRIC_KEYS,
            Scenario::Namespace(_) => namespace::METRIC_KEYS,
            Scenario::Publish(_) => publish::METRIC_KEYS,
            Scenario::Cluster(_) => cluster::METRIC_KEYS,
        }
    }

    pub fn common(&self) -> &Common {
        match self {
            Scenario::Idle(a) => &a.common,
            Scenario::Connect(a) => &a.common,
            Scenario::Fanout(a) => &a.common,
            Scenario::Rooms(a) => &a.common,
            Scenario::Rpc(a) => &a.common,
            Scenario::Channel(a) => &a.fanout.common,
            Scenario::Presence(a) => &a.common,
            Scenario::Namespace(a) => &a.common,
            Scenario::Publish(a) => &a.common,
            Scenario::Cluster(a) => &a.fanout.common,
        }
    }

    /// The scenario's parameters: the `params` field of the record (tables are keyed by them).
    pub fn params(&self) -> Value {
        match self {
            Scenario::Idle(a) => a.params(),
            Scenario::Connect(a) => a.params(),
            Scenario::Fanout(a) => a.params(),
            Scenario::Rooms(a) => a.params(),
            Scenario::Rpc(a) => a.params(),
            Scenario::Channel(a) => a.params(),
            Scenario::Presence(a) => a.params(),
            Scenario::Namespace(a) => a.params(),
            Scenario::Publish(a) => a.params(),
            Scenario::Cluster(a) => a.params(),
        }
    }

    async fn measure(&self, env: &Env) -> anyhow::Result<Metrics> {
        match self {
            Scenario::Idle(a) => idle::run(env, a).await,
            Scenario::Connect(a) => connect::run(env, a).await,
            Scenario::Fanout(a) => fanout::run(env, a).await,
            Scenario::Rooms(a) => rooms::run(env, a).await,
            Scenario::Rpc(a) => rpc::run(env, a).await,
            Scenario::Channel(a) => channel::run(env, a).await,
            Scenario::Presence(a) => presence::run(env, a).await,
            Scenario::Namespace(a) => namespace::run(env, a).await,
            Scenario::Publish(a) => publish::run(env, a).await,
            Scenario::Cluster(a) => cluster::run(env, a).await,
        }
    }

    /// The protocol to speak: the channel-dialect and namespace scenarios speak theirs whatever
    /// `--protocol` says; the others speak `--protocol`.
    fn protocol(&self) -> Protocol {
        match self {
            Scenario::Channel(_) | Scenario::Presence(_) => Protocol::Channel,
            Scenario::Namespace(_) => Protocol::Namespace,
            _ => self.common().protocol,
        }
    }

    /// Run the scenario against the server, print its headline line and write its record.
    /// Must run inside a `LocalSet`: client tasks are `spawn_local`ed.
    pub async fn run(&self) -> anyhow::Result<()> {
        let common = self.common();
        let params = self.params();
        let scenario = self.name();
        let mut bearer = common.token.clone();
        if common.login {
            bearer = Some(clients::login(common.addr).await?);
        }
        let target = Rc::new(Target {
            protocol: self.protocol(),
            addr: common.addr,
            host: common.addr.to_string(),
            app_id: common.app_id.clone(),
            app_key: common.app_key.clone(),
            app_secret: common.app_secret.clone(),
            bearer,
            api_key: common.api_key.clone(),
            sources: common.sources.clone(),
            offer_deflate: matches!(self, Scenario::Idle(a) if a.deflate),
        });
        let env = Env {
            nodes: vec![target.clone()],
            target,
            cpu_groups: Vec::new(),
            server_pid: common.server_pid,
            concurrency: common.concurrency,
            handshake_timeout: Duration::from_secs_f64(common.handshake_timeout),
        };
        let metrics = self.measure(&env).await?;
        let label = common
            .label
            .clone()
            .unwrap_or_else(|| format!("{:?}", self.protocol()).to_lowercase());
        print_row(scenario, &label, &params, self.metric_keys(), &metrics);
        let record = json!({
            "scenario": scenario,
            "server": label,
            "protocol": self.protocol(),
            "protocol": self.protocol(),
            "tag": common.tag,
            "params": params,
            "metrics": metrics,
            "machine": procinfo::Machine::read(),
            "unix_time": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
            "command": std::env::args().collect::<Vec<_>>().join(" "),
        });
        if let Some(path) = &common.out {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(path, serde_json::to_string_pretty(&record)?)?;
        }
        Ok(())
    }
}

#[derive(Args, Clone)]
pub struct Common {
    #[arg(long, value_enum, default_value = "jac")]
    pub protocol: Protocol,
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub addr: SocketAddr,
    /// Server name in the output (default: the protocol).
    #[arg(long)]
    pub label: Option<String>,
    /// Pid of the server process, for memory and CPU readings.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Write the JSON record here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Free-form tag recorded in the JSON (for example the run number).
    #[arg(long, default_value = "")]
    pub tag: String,
    /// Pusher app id, key and secret (Sockudo).
    #[arg(long, default_value = "bench-app")]
    pub app_id: String,
    #[arg(long, default_value = "bench-key")]
    pub app_key: String,
    #[arg(long, default_value = "bench-secret")]
    pub app_secret: String,
    /// Bearer token for Jac dialect connections.
    #[arg(long)]
    pub token: Option<String>,
    /// Switchboard's HTTP publish API key (an `[[api_key]]` of its config), for `publish`.
    #[arg(long)]
    pub api_key: Option<String>,
    /// Register and log in a bench user first and connect with its token (Jac dialect).
    #[arg(long)]
    pub login: bool,
    /// Source addresses for client sockets, round robin (e.g. 127.0.0.2,127.0.0.3).
    #[arg(long, value_delimiter = ',')]
    pub sources: Vec<IpAddr>,
    /// Handshakes in flight at once.
    #[arg(long, default_value_t = 100)]
    pub concurrency: usize,
    /// Seconds before a handshake counts as failed.
    #[arg(long, default_value_t = 15.0)]
    pub handshake_timeout: f64,
}

/// One human-readable line per run: the headline figures of the scenario.
fn print_row(scenario: &str, label: &str, params: &Value, keys: &[&str], m: &Metrics) {
    let mut line = format!("{scenario:<8} {label:<12} {params}");
    for key in keys {
        if let Some(v) = m.get(*key) {
            line.push_str(&format!("  {key}={v}"));
        }
    }
    for key in ["first_error", "publisher_error"] {
        if let Some(v) = m.get(key) {
            line.push_str(&format!("  {key}={v}"));
        }
    }
    println!("{line}");
}
