//! `rooms` (and `fanout`, which is one room): M rooms of K subscribers, one publisher per room;
//! deliveries per second, latency, losses and the server's CPU per delivery.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::clients::{Opened, Room, Shared, new_room, open_many, opened_metrics};
use super::measure::{CoreWatch, PerUnit, latency_metrics, round3};
use super::publisher::{Pace, PublishArgs, Publisher, Publishing};
use super::{Common, Env, Metrics};
use crate::procinfo;

/// Headline metrics of `rooms` and `fanout`, in the order of the printed line.
pub const METRIC_KEYS: &[&str] = &[
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
];

#[derive(Args, Clone)]
pub struct RoomsArgs {
    #[command(flatten)]
    pub common: Common,
    #[arg(long, default_value_t = 100)]
    pub rooms: usize,
    #[arg(long, default_value_t = 10)]
    pub per_room: usize,
    #[command(flatten)]
    pub publishing: PublishArgs,
}

impl RoomsArgs {
    pub fn params(&self) -> Value {
        let mut p = self.publishing.params();
        p["rooms"] = json!(self.rooms);
        p["per_room"] = json!(self.per_room);
        p
    }
}

pub async fn run(env: &Env, args: &RoomsArgs) -> anyhow::Result<Metrics> {
    run_rooms(
        env,
        args.rooms,
        args.per_room,
        &args.publishing.publishing(),
    )
    .await
}

/// M rooms of K subscribers, one publisher per room: subscribers connect first (spread evenly
/// over `env.nodes`), then every publisher runs for the duration (publishing through
/// `env.target`), then deliveries drain until all arrived or none for `drain`.
pub async fn run_rooms(
    env: &Env,
    room_count: usize,
    per_room: usize,
    publishing: &Publishing,
) -> anyhow::Result<Metrics> {
    let names = (0..room_count).map(|i| format!("bench-room-{i}")).collect();
    run_named_rooms(env, names, per_room, publishing).await
}

/// [`run_rooms`] with rooms of given names (a namespace must be one the server serves).
pub async fn run_named_rooms(
    env: &Env,
    names: Vec<String>,
    per_room: usize,
    publishing: &Publishing,
) -> anyhow::Result<Metrics> {
    let room_count = names.len();
    let target = env.target.clone();
    let shared = Shared::new();
    let window = match publishing.pace {
        Pace::FlatOut { window } => window,
        Pace::Rate(_) => u64::MAX / 4,
    };
    let rooms: Vec<Rc<Room>> = names
        .into_iter()
        .map(|name| Rc::new(new_room(name, window)))
        .collect();
    // Subscriber g connects to node g % n: every room has members on every node.
    let total = room_count * per_room;
    let node_count = env.nodes.len().max(1);
    let mut opened_all = Vec::new();
    for (k, node) in env.nodes.iter().enumerate() {
        let count = total / node_count + usize::from(k < total % node_count);
        let opened = open_many(
            node,
            &shared,
            count,
            env.concurrency,
            env.handshake_timeout,
            &rooms,
            move |i| Some((i * node_count + k) / per_room),
        )
        .await;
        opened_all.push(opened);
    }
    let opened = Opened::merge(opened_all);
    let mut m = Metrics::new();
    opened_metrics(&opened, &mut m);
    if opened.ok == 0 {
        anyhow::bail!(
            "no subscriber connected: {}",
            opened.first_error.unwrap_or_default()
        );
    }
    // Let the server settle after the connection burst.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let stop_publishing = CancellationToken::new();
    let publish_errors = Rc::new(Cell::new(0u64));
    let first_send = Rc::new(Cell::new(None::<Instant>));
    let gen_cpu_before = procinfo::self_cpu_seconds();
    let cores = CoreWatch::start(env.server_pid).with_groups(&env.cpu_groups);
    let mut publishers = Vec::new();
    for (i, room) in rooms.iter().enumerate() {
        let publisher = Publisher {
            target: target.clone(),
            room: room.clone(),
            stop: stop_publishing.clone(),
            errors: publish_errors.clone(),
            first_send: first_send.clone(),
            pace: publishing.pace,
            payload_bytes: publishing.payload_bytes,
            max_messages: publishing.max_messages,
            http_conns: publishing.http_conns,
            over_http: publishing.over_http,
            batch: publishing.batch,
            index: room_count * per_room + i,
            timeout: env.handshake_timeout,
        };
        publishers.push(tokio::task::spawn_local(publisher.run()));
    }
    // Until the duration is up, or sooner when every publisher has sent --max-messages (a fixed
    // amount of work, for counting the server's instructions rather than timing it).
    let publish_deadline = Instant::now() + publishing.duration;
    loop {
        let now = Instant::now();
        if now >= publish_deadline
            || rooms
                .iter()
                .all(|room| room.sent.get() >= publishing.max_messages)
        {
            break;
        }
        tokio::time::sleep((publish_deadline - now).min(Duration::from_millis(10))).await;
    }
    stop_publishing.cancel();
    for p in publishers {
        if let Ok(Err(err)) = p.await {
            m.insert("publisher_error".into(), json!(format!("{err:#}")));
        }
    }
    let last_send = Instant::now();
    // Drain: until everything arrived, or nothing more arrives for `drain`.
    let expected: u64 = rooms.iter().map(|r| r.sent.get() * r.members.get()).sum();
    let mut last_progress = (shared.received.get(), Instant::now());
    while shared.received.get() < expected {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = shared.received.get();
        if now != last_progress.0 {
            last_progress = (now, Instant::now());
        } else if last_progress.1.elapsed() >= publishing.drain {
            break;
        }
    }
    let received = shared.received.get();
    let end = shared.last_receive.get().unwrap_or_else(Instant::now);
    let start = first_send.get().unwrap_or(last_send);
    let secs = end.saturating_duration_since(start).as_secs_f64().max(1e-9);
    let sent: u64 = rooms.iter().map(|r| r.sent.get()).sum();
    m.insert("messages_sent".into(), json!(sent));
    m.insert(
        "publish_secs".into(),
        json!(round3(
            last_send.saturating_duration_since(start).as_secs_f64()
        )),
    );
    m.insert("deliveries_expected".into(), json!(expected));
    m.insert("deliveries_received".into(), json!(received));
    m.insert("lost".into(), json!(expected.saturating_sub(received)));
    m.insert(
        "deliveries_per_sec".into(),
        json!((received as f64 / secs).round()),
    );
    m.insert("messages_per_sec".into(), json!(round3(sent as f64 / secs)));
    m.insert("publish_errors".into(), json!(publish_errors.get()));
    m.insert("disconnects".into(), json!(shared.disconnects.get()));
    latency_metrics("", &shared.hist.borrow(), &mut m);
    let gen_cpu = procinfo::self_cpu_seconds() - gen_cpu_before;
    m.insert("generator_cpu_util".into(), json!(round3(gen_cpu / secs)));
    cores.finish(
        &mut m,
        secs,
        PerUnit {
            key: "server_cpu_ns_per_delivery",
            scale: 1e9,
            count: received,
        },
    );
    shared.cancel.cancel();
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(m)
}
