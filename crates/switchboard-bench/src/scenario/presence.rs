//! `presence`: N connections of Switchboard's channel dialect join one channel within a second,
//! then leave it within a second. Every join and leave sends `online-update` to the members
//! already there, so a storm of N joins is about N²/2 deliveries. Reported per storm: deliveries
//! per second and the latency of `online-update` (from the `join`/`leave` frame being written to
//! a member reading the update), and the server's memory per member (RSS growth from before the
//! joins to after them, divided by N).
//!
//! Each connection first opens on a channel of its own and asks for its members, which tells it
//! its own connection id; an update's `from` then names the join or leave it answers.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio_util::sync::CancellationToken;

use super::clients::reset_on_drop;
use super::measure::{latency_metrics, memory_of, new_histogram, round3};
use super::{Env, Metrics};
use crate::proto::Conn;
use crate::ws::{self, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT};

pub const METRIC_KEYS: &[&str] = &[
    "connections_ok",
    "join_deliveries_per_sec",
    "join_p50_ms",
    "join_p99_ms",
    "leave_deliveries_per_sec",
    "leave_p99_ms",
    "rss_per_member_bytes",
];

#[derive(Args, Clone)]
pub struct PresenceArgs {
    #[command(flatten)]
    pub common: super::Common,
    #[arg(long, default_value_t = 1000)]
    pub members: usize,
    /// Seconds over which the joins (and then the leaves) are spread.
    #[arg(long, default_value_t = 1.0)]
    pub storm_secs: f64,
    /// Seconds without a new update after which a storm counts as over.
    #[arg(long, default_value_t = 2.0)]
    pub drain: f64,
}

impl PresenceArgs {
    pub fn params(&self) -> Value {
        json!({"members": self.members, "storm_secs": self.storm_secs})
    }
}

const CHANNEL: &str = "bench-presence";

/// What every reader shares: who is who, when each join and leave was sent, what arrived.
struct Storm {
    index_of: RefCell<HashMap<String, usize>>,
    sent_at: RefCell<Vec<Option<Instant>>>,
    connected: Cell<bool>,
    received: Cell<u64>,
    first_send: Cell<Option<Instant>>,
    last_receive: Cell<Option<Instant>>,
    hist: RefCell<Histogram<u64>>,
}

pub async fn run(env: &Env, args: &PresenceArgs) -> anyhow::Result<Metrics> {
    let storm = Rc::new(Storm {
        index_of: RefCell::new(HashMap::new()),
        sent_at: RefCell::new(vec![None; args.members]),
        connected: Cell::new(true),
        received: Cell::new(0),
        first_send: Cell::new(None),
        last_receive: Cell::new(None),
        hist: RefCell::new(new_histogram()),
    });
    let cancel = CancellationToken::new();
    let mut writers = Vec::with_capacity(args.members);
    let mut m = Metrics::new();
    let mut failed = 0usize;
    let mut first_error = None;
    // Sequential opens: this is the set-up, not what is measured.
    for i in 0..args.members {
        match open_member(env, i).await {
            Ok((conn, id)) => {
                storm.index_of.borrow_mut().insert(id, writers.len());
                let (read, write) = conn.stream.into_split();
                tokio::task::spawn_local(read_loop(
                    read,
                    conn.reader,
                    storm.clone(),
                    cancel.clone(),
                ));
                writers.push(write);
            }
            Err(err) => {
                failed += 1;
                first_error.get_or_insert_with(|| format!("{err:#}"));
            }
        }
    }
    m.insert("connections_ok".into(), json!(writers.len()));
    m.insert("connections_failed".into(), json!(failed));
    if let Some(err) = first_error {
        m.insert("first_error".into(), json!(err));
    }
    if writers.is_empty() {
        anyhow::bail!("no member connected");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = memory_of(env.server_pid);
    storm_phase(&storm, &mut writers, args, "join", true, &mut m).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = memory_of(env.server_pid);
    if let (Some(before), Some(after)) = (before, after) {
        let per = after.rss.saturating_sub(before.rss) as f64 / writers.len() as f64;
        m.insert("rss_per_member_bytes".into(), json!(per.round()));
    }
    storm_phase(&storm, &mut writers, args, "leave", false, &mut m).await?;
    cancel.cancel();
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(m)
}

/// Open member `i` on a channel of its own and learn its connection id from `members`.
async fn open_member(env: &Env, i: usize) -> anyhow::Result<(Conn, String)> {
    let own = format!("bench-presence-own-{i}");
    let (mut conn, _) = env
        .target
        .open(i, Some(&own), None, env.handshake_timeout)
        .await?;
    let ask = format!(r#"{{"cmd":"members","channel":"{own}"}}"#);
    conn.stream
        .write_all(&ws::encode(OP_TEXT, ask.as_bytes()))
        .await?;
    let deadline = Instant::now() + env.handshake_timeout;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let frame = tokio::time::timeout(remaining, conn.reader.next(&mut conn.stream))
            .await
            .context("no members reply")??
            .context("closed before the members reply")?;
        if frame.opcode != OP_TEXT {
            continue;
        }
        let reply: Value = serde_json::from_slice(frame.payload)?;
        if reply["cmd"] == "members" {
            let id = reply["param"]["members"][0]["id"]
                .as_str()
                .context("members reply without an id")?
                .to_string();
            return Ok((conn, id));
        }
    }
}

/// Send `cmd` (join or leave) from every member, spread over `storm_secs`, and wait until the
/// updates stop arriving.
async fn storm_phase(
    storm: &Storm,
    writers: &mut [OwnedWriteHalf],
    args: &PresenceArgs,
    cmd: &str,
    connected: bool,
    m: &mut Metrics,
) -> anyhow::Result<()> {
    storm.connected.set(connected);
    storm.received.set(0);
    storm.first_send.set(None);
    storm.last_receive.set(None);
    *storm.hist.borrow_mut() = new_histogram();
    let frame = ws::encode(
        OP_TEXT,
        format!(r#"{{"cmd":"{cmd}","channel":"{CHANNEL}"}}"#).as_bytes(),
    );
    let count = writers.len();
    let step = Duration::from_secs_f64(args.storm_secs / count as f64);
    let start = tokio::time::Instant::now();
    for (i, writer) in writers.iter_mut().enumerate() {
        tokio::time::sleep_until(start + step * i as u32).await;
        let now = Instant::now();
        storm.sent_at.borrow_mut()[i] = Some(now);
        storm.first_send.set(storm.first_send.get().or(Some(now)));
        writer.write_all(&frame).await?;
    }
    let mut last = (storm.received.get(), Instant::now());
    let drain = Duration::from_secs_f64(args.drain);
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = storm.received.get();
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() >= drain {
            break;
        }
    }
    let received = storm.received.get();
    let secs = match (storm.first_send.get(), storm.last_receive.get()) {
        (Some(a), Some(b)) => b.saturating_duration_since(a).as_secs_f64().max(1e-9),
        _ => 1e-9,
    };
    m.insert(format!("{cmd}_deliveries"), json!(received));
    m.insert(
        format!("{cmd}_deliveries_min_expected"),
        json!(count * count.saturating_sub(1) / 2),
    );
    m.insert(format!("{cmd}_secs"), json!(round3(secs)));
    m.insert(
        format!("{cmd}_deliveries_per_sec"),
        json!((received as f64 / secs).round()),
    );
    latency_metrics(&format!("{cmd}_"), &storm.hist.borrow(), m);
    Ok(())
}

/// Read one member's frames: time each `online-update` of the current storm against the send
/// of the join or leave it reports; answer pings.
async fn read_loop(
    mut read: tokio::net::tcp::OwnedReadHalf,
    mut reader: ws::FrameReader,
    storm: Rc<Storm>,
    cancel: CancellationToken,
) {
    loop {
        let frame = tokio::select! {
            _ = cancel.cancelled() => break,
            frame = reader.next(&mut read) => frame,
        };
        let Ok(Some(frame)) = frame else { break };
        match frame.opcode {
            OP_TEXT if ws::find(frame.payload, b"online-update").is_some() => {
                let Ok(update) = serde_json::from_slice::<Value>(frame.payload) else {
                    continue;
                };
                if update["param"]["connected"] != storm.connected.get() {
                    continue;
                }
                let index = update["from"]
                    .as_str()
                    .and_then(|from| storm.index_of.borrow().get(from).copied());
                let sent = index.and_then(|i| storm.sent_at.borrow()[i]);
                if let Some(sent) = sent {
                    let now = Instant::now();
                    let us = now.saturating_duration_since(sent).as_micros() as u64;
                    let _ = storm.hist.borrow_mut().record(us.max(1));
                    storm.received.set(storm.received.get() + 1);
                    storm.last_receive.set(Some(now));
                }
            }
            // Pongs need the write half; the server's pings come every 30 s or so and a storm
            // lasts seconds, so they are left unanswered.
            OP_PING | OP_PONG => {}
            OP_CLOSE => break,
            _ => {}
        }
    }
    reset_on_drop(read.as_ref());
}
