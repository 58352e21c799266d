//! `switchboard-bench`: the load generator for Switchboard and the servers people would pick
//! instead. Each scenario prints one table row and writes a JSON record; `report` turns a
//! directory of records into BENCHMARKS.md with charts.
//!
//! ```text
//! switchboard-bench idle    --addr 127.0.0.1:8000 --server-pid PID --connections 10000
//! switchboard-bench connect --connections 10000
//! switchboard-bench fanout  --subscribers 1000 [--rate 100 | --window 4]
//! switchboard-bench rooms   --rooms 100 --per-room 10 --rate 10
//! switchboard-bench rpc     --clients 50 --duration 10
//! switchboard-bench report  --results bench/run/results --out BENCHMARKS.md --charts bench/charts
//! ```
//! The generator runs on one thread: pin it to one core with `taskset`.

mod procinfo;
mod proto;
mod report;
mod scenarios;
mod ws;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};

use proto::{Protocol, Target};
use scenarios::{Env, Metrics, Pace, Publishing};

#[derive(Parser)]
#[command(
    name = "switchboard-bench",
    about = "Load generator and side-by-side benchmarks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Open N connections and hold them; report the server's memory growth per connection.
    Idle {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 10_000)]
        connections: usize,
        /// Seconds to wait after the last handshake before the first memory reading.
        #[arg(long, default_value_t = 3.0)]
        settle: f64,
        /// Seconds to hold the connections before the final memory reading.
        #[arg(long, default_value_t = 5.0)]
        hold: f64,
        /// Subscribe every connection to this room (default: none; on the Jac dialect the server
        /// then gives each connection its own random channel).
        #[arg(long)]
        room: Option<String>,
    },
    /// Handshakes per second until N connections are open, and the handshake latency.
    Connect {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 10_000)]
        connections: usize,
    },
    /// S subscribers on one channel, one publisher.
    Fanout {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 1000)]
        subscribers: usize,
        #[command(flatten)]
        publishing: PublishArgs,
    },
    /// M channels of K subscribers, one publisher in each.
    Rooms {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 100)]
        rooms: usize,
        #[arg(long, default_value_t = 10)]
        per_room: usize,
        #[command(flatten)]
        publishing: PublishArgs,
    },
    /// C clients calling a walker with `response: true`, one call in flight each.
    Rpc {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 50)]
        clients: usize,
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        #[arg(long, default_value = "chat_service")]
        walker: String,
        /// Length of the walker's `message` argument.
        #[arg(long, default_value_t = 32)]
        payload: usize,
    },
    /// Summarise a directory of JSON records into a Markdown report with SVG charts.
    Report(report::ReportArgs),
}

#[derive(Args, Clone)]
struct Common {
    #[arg(long, value_enum, default_value = "jac")]
    protocol: Protocol,
    #[arg(long, default_value = "127.0.0.1:8000")]
    addr: SocketAddr,
    /// Server name in the output (default: the protocol).
    #[arg(long)]
    label: Option<String>,
    /// Pid of the server process, for memory and CPU readings.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Write the JSON record here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Free-form tag recorded in the JSON (for example the run number).
    #[arg(long, default_value = "")]
    tag: String,
    /// Pusher app id, key and secret (Sockudo).
    #[arg(long, default_value = "bench-app")]
    app_id: String,
    #[arg(long, default_value = "bench-key")]
    app_key: String,
    #[arg(long, default_value = "bench-secret")]
    app_secret: String,
    /// Bearer token for Jac dialect connections.
    #[arg(long)]
    token: Option<String>,
    /// Register and log in a bench user first and connect with its token (Jac dialect).
    #[arg(long)]
    login: bool,
    /// Source addresses for client sockets, round robin (e.g. 127.0.0.2,127.0.0.3).
    #[arg(long, value_delimiter = ',')]
    sources: Vec<IpAddr>,
    /// Handshakes in flight at once.
    #[arg(long, default_value_t = 100)]
    concurrency: usize,
    /// Seconds before a handshake counts as failed.
    #[arg(long, default_value_t = 15.0)]
    handshake_timeout: f64,
}

#[derive(Args, Clone)]
struct PublishArgs {
    /// Messages per second per publisher; 0 publishes flat out (windowed, see --window).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Flat out: most messages in flight per subscriber.
    #[arg(long, default_value_t = 8)]
    window: u64,
    /// Seconds of publishing.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Upper bound on messages per publisher.
    #[arg(long, default_value_t = 10_000_000)]
    max_messages: u64,
    /// Payload length in bytes (the timestamp and sequence, padded).
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// Seconds without progress after which undelivered messages count as lost.
    #[arg(long, default_value_t = 5.0)]
    drain: f64,
    /// HTTP keep-alive connections per publisher (Pusher HTTP publishing).
    #[arg(long, default_value_t = 4)]
    http_conns: usize,
}

impl PublishArgs {
    fn publishing(&self) -> Publishing {
        Publishing {
            pace: if self.rate > 0.0 {
                Pace::Rate(self.rate)
            } else {
                Pace::FlatOut {
                    window: self.window.max(1),
                }
            },
            duration: Duration::from_secs_f64(self.duration),
            max_messages: self.max_messages,
            payload_bytes: self.payload,
            drain: Duration::from_secs_f64(self.drain),
            http_conns: self.http_conns,
        }
    }

    fn params(&self) -> Value {
        json!({
            "rate": if self.rate > 0.0 { json!(self.rate) } else { json!("flat") },
            "window": self.window,
            "duration": self.duration,
            "payload": self.payload,
        })
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Command::Report(args) = &cli.command {
        return report::run(args);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let (scenario, common, params) = match &cli.command {
        Command::Idle {
            common,
            connections,
            settle,
            hold,
            room,
        } => (
            "idle",
            common,
            json!({"connections": connections, "settle": settle, "hold": hold, "room": room}),
        ),
        Command::Connect {
            common,
            connections,
        } => (
            "connect",
            common,
            json!({"connections": connections, "concurrency": common.concurrency}),
        ),
        Command::Fanout {
            common,
            subscribers,
            publishing,
        } => {
            let mut p = publishing.params();
            p["subscribers"] = json!(subscribers);
            ("fanout", common, p)
        }
        Command::Rooms {
            common,
            rooms,
            per_room,
            publishing,
        } => {
            let mut p = publishing.params();
            p["rooms"] = json!(rooms);
            p["per_room"] = json!(per_room);
            ("rooms", common, p)
        }
        Command::Rpc {
            common,
            clients,
            duration,
            walker,
            payload,
        } => (
            "rpc",
            common,
            json!({"clients": clients, "duration": duration, "walker": walker, "payload": payload}),
        ),
        Command::Report(_) => unreachable!(),
    };
    let mut bearer = common.token.clone();
    if common.login {
        bearer = Some(scenarios::login(common.addr).await?);
    }
    let target = Rc::new(Target {
        protocol: common.protocol,
        addr: common.addr,
        host: common.addr.to_string(),
        app_id: common.app_id.clone(),
        app_key: common.app_key.clone(),
        app_secret: common.app_secret.clone(),
        bearer,
        sources: common.sources.clone(),
    });
    let env = Env {
        target,
        server_pid: common.server_pid,
        concurrency: common.concurrency,
        handshake_timeout: Duration::from_secs_f64(common.handshake_timeout),
    };
    let metrics: Metrics = match &cli.command {
        Command::Idle {
            connections,
            settle,
            hold,
            room,
            ..
        } => {
            scenarios::idle(
                &env,
                *connections,
                Duration::from_secs_f64(*settle),
                Duration::from_secs_f64(*hold),
                room.clone(),
            )
            .await?
        }
        Command::Connect { connections, .. } => scenarios::connect(&env, *connections).await?,
        Command::Fanout {
            subscribers,
            publishing,
            ..
        } => scenarios::rooms(&env, 1, *subscribers, &publishing.publishing()).await?,
        Command::Rooms {
            rooms,
            per_room,
            publishing,
            ..
        } => scenarios::rooms(&env, *rooms, *per_room, &publishing.publishing()).await?,
        Command::Rpc {
            clients,
            duration,
            walker,
            payload,
            ..
        } => {
            scenarios::rpc(
                &env,
                *clients,
                Duration::from_secs_f64(*duration),
                walker,
                *payload,
            )
            .await?
        }
        Command::Report(_) => unreachable!(),
    };
    let label = common
        .label
        .clone()
        .unwrap_or_else(|| format!("{:?}", common.protocol).to_lowercase());
    print_row(scenario, &label, &params, &metrics);
    let record = json!({
        "scenario": scenario,
        "server": label,
        "protocol": common.protocol,
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

/// One human-readable line per run: the headline figures of the scenario.
fn print_row(scenario: &str, label: &str, params: &Value, m: &Metrics) {
    let keys: &[&str] = match scenario {
        "idle" => &[
            "connections_ok",
            "connections_alive_after_hold",
            "rss_per_conn_bytes",
            "rss_anon_per_conn_bytes",
            "pss_per_conn_bytes",
            "kernel_slab_per_conn_pair_bytes",
            "kernel_tcp_mem_per_conn_bytes",
        ],
        "connect" => &[
            "connections_ok",
            "connections_failed",
            "handshakes_per_sec",
            "handshake_p50_ms",
            "handshake_p99_ms",
            "server_cpu_us_per_handshake",
        ],
        "fanout" | "rooms" => &[
            "connections_ok",
            "messages_sent",
            "deliveries_per_sec",
            "lost",
            "p50_ms",
            "p90_ms",
            "p99_ms",
            "p999_ms",
            "server_cpu_ns_per_delivery",
            "server_cpu_util",
            "server_core_busy",
            "generator_core_busy",
            "server_core_niced_other",
        ],
        _ => &[
            "calls",
            "errors",
            "calls_per_sec",
            "p50_ms",
            "p99_ms",
            "server_cpu_us_per_call",
        ],
    };
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
