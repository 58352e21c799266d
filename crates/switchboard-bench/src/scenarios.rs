//! The scenarios. Everything runs on one thread (the generator is pinned to one core), so shared
//! counters are plain `Cell`s behind `Rc`.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use hdrhistogram::Histogram;
use serde_json::{Map, Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::procinfo::{self, KernelSockets, Memory};
use crate::proto::{Conn, HttpConn, Protocol, Reply, Target};
use crate::ws::{self, FrameReader, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT};

pub type Metrics = Map<String, Value>;

/// Latency histogram in microseconds, 1 us to 10 minutes, 3 significant figures.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

pub fn latency_metrics(prefix: &str, hist: &Histogram<u64>, out: &mut Metrics) {
    if hist.is_empty() {
        return;
    }
    for (name, q) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999)] {
        out.insert(
            format!("{prefix}{name}_ms"),
            json!(ms(hist.value_at_quantile(q))),
        );
    }
    out.insert(format!("{prefix}max_ms"), json!(ms(hist.max())));
    out.insert(
        format!("{prefix}mean_ms"),
        json!((hist.mean() / 10.0).round() / 100.0),
    );
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Counters shared by every client task of a run.
pub struct Shared {
    pub hist: RefCell<Histogram<u64>>,
    pub received: Cell<u64>,
    pub disconnects: Cell<u64>,
    pub last_receive: Cell<Option<Instant>>,
    pub cancel: CancellationToken,
}

impl Shared {
    fn new() -> Rc<Self> {
        Rc::new(Self {
            hist: RefCell::new(new_histogram()),
            received: Cell::new(0),
            disconnects: Cell::new(0),
            last_receive: Cell::new(None),
            cancel: CancellationToken::new(),
        })
    }
}

/// One channel / room of a fan-out run.
pub struct Room {
    pub name: String,
    pub members: Cell<u64>,
    pub sent: Cell<u64>,
    pub received: Cell<u64>,
    /// Flat-out mode: most messages in flight per member.
    pub window: u64,
    pub waiting: Cell<bool>,
    pub notify: Notify,
}

impl Room {
    fn outstanding(&self) -> u64 {
        (self.sent.get() * self.members.get()).saturating_sub(self.received.get())
    }
}

/// Parse the send timestamp `@t<nanos>@` out of a frame.
fn stamp(text: &[u8]) -> Option<u64> {
    let at = ws::find(text, b"@t")? + 2;
    let mut value = 0u64;
    let mut any = false;
    for &b in &text[at..] {
        if b.is_ascii_digit() {
            value = value * 10 + u64::from(b - b'0');
            any = true;
        } else {
            break;
        }
    }
    any.then_some(value)
}

fn payload(seq: u64, len: usize) -> String {
    let mut text = format!("@t{}@s{seq}@", now_nanos());
    while text.len() < len {
        text.push('x');
    }
    text
}

/// Read a client's frames until cancelled or closed: answer pings, record timestamped messages.
async fn client_loop(
    mut conn: Conn,
    target: Rc<Target>,
    shared: Rc<Shared>,
    room: Option<Rc<Room>>,
) {
    let cancel = shared.cancel.clone();
    loop {
        let frame = tokio::select! {
            _ = cancel.cancelled() => break,
            frame = conn.reader.next(&mut conn.stream) => frame,
        };
        let reply = match frame {
            Ok(Some(frame)) => match frame.opcode {
                OP_TEXT | ws::OP_CONT => {
                    if let Some(sent) = stamp(frame.payload) {
                        let now = Instant::now();
                        let latency_us = now_nanos().saturating_sub(sent) / 1000;
                        let _ = shared.hist.borrow_mut().record(latency_us.max(1));
                        shared.received.set(shared.received.get() + 1);
                        shared.last_receive.set(Some(now));
                        if let Some(room) = &room {
                            room.received.set(room.received.get() + 1);
                            if room.waiting.get()
                                && room.outstanding() < room.window * room.members.get()
                            {
                                room.waiting.set(false);
                                room.notify.notify_one();
                            }
                        }
                        None
                    } else {
                        match target.reply_to(frame.payload) {
                            Reply::Text(text) => Some(ws::encode(OP_TEXT, text)),
                            Reply::None => None,
                        }
                    }
                }
                OP_PING => Some(ws::encode(OP_PONG, frame.payload)),
                OP_CLOSE => {
                    shared.disconnects.set(shared.disconnects.get() + 1);
                    break;
                }
                _ => None,
            },
            Ok(None) | Err(_) => {
                shared.disconnects.set(shared.disconnects.get() + 1);
                break;
            }
        };
        if let Some(reply) = reply
            && conn.stream.write_all(&reply).await.is_err()
        {
            shared.disconnects.set(shared.disconnects.get() + 1);
            break;
        }
    }
    reset_on_drop(&conn.stream);
}

/// Linger 0: dropping the socket sends a reset instead of a close handshake, so client ports do
/// not sit in TIME_WAIT and runs can follow each other at once. A zero linger never blocks.
#[allow(deprecated)]
fn reset_on_drop(stream: &tokio::net::TcpStream) {
    let _ = stream.set_linger(Some(Duration::ZERO));
}

/// Outcome of opening many connections.
pub struct Opened {
    pub ok: u64,
    pub failed: u64,
    pub first_error: Option<String>,
    pub handshake: Histogram<u64>,
    pub wall: Duration,
}

/// Open `count` client connections with at most `concurrency` handshakes in flight; each one is
/// handed to a holder task reading its frames. `room_of(i)` picks the room of client `i`.
pub async fn open_many(
    target: &Rc<Target>,
    shared: &Rc<Shared>,
    count: usize,
    concurrency: usize,
    timeout: Duration,
    rooms: &[Rc<Room>],
    room_of: impl Fn(usize) -> Option<usize> + 'static,
) -> Opened {
    let next = Rc::new(Cell::new(0usize));
    let result = Rc::new(RefCell::new(Opened {
        ok: 0,
        failed: 0,
        first_error: None,
        handshake: new_histogram(),
        wall: Duration::ZERO,
    }));
    let room_of = Rc::new(room_of);
    let rooms: Rc<Vec<Rc<Room>>> = Rc::new(rooms.to_vec());
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1).min(count.max(1)) {
        let (target, shared, next, result, room_of, rooms) = (
            target.clone(),
            shared.clone(),
            next.clone(),
            result.clone(),
            room_of.clone(),
            rooms.clone(),
        );
        workers.push(tokio::task::spawn_local(async move {
            loop {
                let i = next.get();
                if i >= count {
                    break;
                }
                next.set(i + 1);
                let room = room_of(i).map(|r| rooms[r].clone());
                let opened = target
                    .open(i, room.as_ref().map(|r| r.name.as_str()), None, timeout)
                    .await;
                let mut result = result.borrow_mut();
                match opened {
                    Ok((conn, took)) => {
                        result.ok += 1;
                        let _ = result.handshake.record((took.as_micros() as u64).max(1));
                        if let Some(room) = &room {
                            room.members.set(room.members.get() + 1);
                        }
                        tokio::task::spawn_local(client_loop(
                            conn,
                            target.clone(),
                            shared.clone(),
                            room,
                        ));
                    }
                    Err(err) => {
                        result.failed += 1;
                        if result.first_error.is_none() {
                            result.first_error = Some(format!("{err:#}"));
                        }
                    }
                }
            }
        }));
    }
    for worker in workers {
        let _ = worker.await;
    }
    let mut result = result.borrow_mut();
    result.wall = started.elapsed();
    std::mem::replace(
        &mut *result,
        Opened {
            ok: 0,
            failed: 0,
            first_error: None,
            handshake: new_histogram(),
            wall: Duration::ZERO,
        },
    )
}

fn memory_of(pid: Option<u32>) -> Option<Memory> {
    pid.and_then(|p| Memory::read_tree(p).ok())
}

pub struct Env {
    pub target: Rc<Target>,
    pub server_pid: Option<u32>,
    pub concurrency: usize,
    pub handshake_timeout: Duration,
}

fn opened_metrics(opened: &Opened, out: &mut Metrics) {
    out.insert("connections_ok".into(), json!(opened.ok));
    out.insert("connections_failed".into(), json!(opened.failed));
    if let Some(err) = &opened.first_error {
        out.insert("first_error".into(), json!(err));
    }
}

/// `idle`: open N connections, hold them, report the server's memory growth per connection.
pub async fn idle(
    env: &Env,
    connections: usize,
    settle: Duration,
    hold: Duration,
    room: Option<String>,
) -> anyhow::Result<Metrics> {
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

/// `connect`: handshakes per second until N are open, and handshake latency.
pub async fn connect(env: &Env, connections: usize) -> anyhow::Result<Metrics> {
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

/// Busy shares of the server's and the generator's cores over a measurement.
struct CoreWatch {
    server: Option<(Vec<usize>, procinfo::CoreTimes)>,
    generator: (Vec<usize>, procinfo::CoreTimes),
    /// The server's pid and its process CPU seconds at the start.
    server_cpu: Option<(u32, f64)>,
}

/// What the server's CPU time is divided by: `key` names the metric, `scale` turns seconds into
/// its unit (1e6 for µs, 1e9 for ns), `count` is how many units of work were done.
struct PerUnit<'a> {
    key: &'a str,
    scale: f64,
    count: u64,
}

impl CoreWatch {
    fn start(server_pid: Option<u32>) -> Self {
        let server = server_pid
            .map(procinfo::allowed_cpus)
            .filter(|c| c.len() == 1)
            .map(|c| {
                let t = procinfo::CoreTimes::read(&c);
                (c, t)
            });
        let gen_cpus = procinfo::allowed_cpus(std::process::id());
        let t = procinfo::CoreTimes::read(&gen_cpus);
        Self {
            server,
            generator: (gen_cpus, t),
            server_cpu: server_pid.map(|pid| (pid, procinfo::cpu_seconds(pid))),
        }
    }

    /// Record the server's CPU use over `secs` and per unit of work, and how busy both cores were.
    fn finish(&self, m: &mut Metrics, secs: f64, per: PerUnit<'_>) {
        if let Some((pid, before)) = self.server_cpu {
            let cpu = procinfo::cpu_seconds(pid) - before;
            m.insert("server_cpu_util".into(), json!(round3(cpu / secs)));
            m.insert(
                per.key.into(),
                json!(round3(cpu * per.scale / per.count.max(1) as f64)),
            );
        }
        if let Some((cpus, before)) = &self.server {
            let (busy, nice) = procinfo::CoreTimes::read(cpus).shares_since(before);
            m.insert("server_core_busy".into(), json!(round3(busy)));
            m.insert("server_core_niced_other".into(), json!(round3(nice)));
        }
        if self.generator.0.len() == 1 {
            let (busy, nice) =
                procinfo::CoreTimes::read(&self.generator.0).shares_since(&self.generator.1);
            m.insert("generator_core_busy".into(), json!(round3(busy)));
            m.insert("generator_core_niced_other".into(), json!(round3(nice)));
        }
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn new_room(name: String, window: u64) -> Room {
    Room {
        name,
        members: Cell::new(0),
        sent: Cell::new(0),
        received: Cell::new(0),
        window,
        waiting: Cell::new(false),
        notify: Notify::new(),
    }
}

/// How publishers pace themselves.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// Messages per second per room.
    Rate(f64),
    /// As fast as the subscribers take them, with at most `window` messages per subscriber in
    /// flight (so no server queue ever overflows).
    FlatOut { window: u64 },
}

pub struct Publishing {
    pub pace: Pace,
    pub duration: Duration,
    pub max_messages: u64,
    pub payload_bytes: usize,
    pub drain: Duration,
    pub http_conns: usize,
}

/// `fanout` and `rooms`: M rooms of K subscribers, one publisher per room.
pub async fn rooms(
    env: &Env,
    room_count: usize,
    per_room: usize,
    publishing: &Publishing,
) -> anyhow::Result<Metrics> {
    let target = env.target.clone();
    let shared = Shared::new();
    let window = match publishing.pace {
        Pace::FlatOut { window } => window,
        Pace::Rate(_) => u64::MAX / 4,
    };
    let rooms: Vec<Rc<Room>> = (0..room_count)
        .map(|i| Rc::new(new_room(format!("bench-room-{i}"), window)))
        .collect();
    let opened = open_many(
        &target,
        &shared,
        room_count * per_room,
        env.concurrency,
        env.handshake_timeout,
        &rooms,
        move |i| Some(i / per_room),
    )
    .await;
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
    let cores = CoreWatch::start(env.server_pid);
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
            index: room_count * per_room + i,
            timeout: env.handshake_timeout,
        };
        publishers.push(tokio::task::spawn_local(publisher.run()));
    }
    tokio::time::sleep(publishing.duration).await;
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

struct Publisher {
    target: Rc<Target>,
    room: Rc<Room>,
    stop: CancellationToken,
    errors: Rc<Cell<u64>>,
    first_send: Rc<Cell<Option<Instant>>>,
    pace: Pace,
    payload_bytes: usize,
    max_messages: u64,
    http_conns: usize,
    index: usize,
    timeout: Duration,
}

/// Where a publisher's messages go.
enum Outlet {
    Ws {
        writer: OwnedWriteHalf,
        pongs: Rc<RefCell<Vec<u8>>>,
    },
    Http {
        queue: Rc<RefCell<VecDeque<Vec<u8>>>>,
        ready: Rc<Notify>,
    },
}

impl Publisher {
    async fn run(self) -> anyhow::Result<()> {
        let room_name = self.room.name.clone();
        let mut outlet = if self.target.protocol == Protocol::Pusher {
            let queue: Rc<RefCell<VecDeque<Vec<u8>>>> = Rc::new(RefCell::new(VecDeque::new()));
            let ready = Rc::new(Notify::new());
            for w in 0..self.http_conns.max(1) {
                let mut http =
                    HttpConn::connect(self.target.addr, self.target.source_for(self.index + w))
                        .await
                        .context("publisher HTTP connect")?;
                let (queue, ready, stop, errors) = (
                    queue.clone(),
                    ready.clone(),
                    self.stop.clone(),
                    self.errors.clone(),
                );
                tokio::task::spawn_local(async move {
                    loop {
                        let job = queue.borrow_mut().pop_front();
                        match job {
                            Some(request) => match http.roundtrip(&request).await {
                                Ok(200) => {}
                                _ => errors.set(errors.get() + 1),
                            },
                            None => {
                                if stop.is_cancelled() {
                                    break;
                                }
                                tokio::select! {
                                    _ = ready.notified() => {}
                                    _ = stop.cancelled() => {}
                                }
                            }
                        }
                    }
                });
            }
            Outlet::Http { queue, ready }
        } else {
            let publish_to = (self.target.protocol == Protocol::Ws).then_some(room_name.as_str());
            let (conn, _) = self
                .target
                .open(self.index, None, publish_to, self.timeout)
                .await
                .context("publisher connect")?;
            let (reader, writer) = conn.stream.into_split();
            let pongs = Rc::new(RefCell::new(Vec::new()));
            tokio::task::spawn_local(drain_reader(
                reader,
                conn.reader,
                pongs.clone(),
                self.stop.clone(),
            ));
            Outlet::Ws { writer, pongs }
        };

        let started = Instant::now();
        let mut batch = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            if self.stop.is_cancelled() || self.room.sent.get() >= self.max_messages {
                break;
            }
            // How many to send now.
            let want = match self.pace {
                Pace::Rate(rate) => {
                    let due = (started.elapsed().as_secs_f64() * rate) as u64;
                    due.min(self.max_messages)
                        .saturating_sub(self.room.sent.get())
                }
                Pace::FlatOut { window } => {
                    let members = self.room.members.get().max(1);
                    let in_flight = self.room.outstanding().div_ceil(members);
                    window
                        .saturating_sub(in_flight)
                        .min(self.max_messages - self.room.sent.get())
                }
            };
            if want > 0 {
                if self.first_send.get().is_none() {
                    self.first_send.set(Some(Instant::now()));
                }
                batch.clear();
                for _ in 0..want {
                    let seq = self.room.sent.get();
                    let text = payload(seq, self.payload_bytes);
                    match &outlet {
                        Outlet::Ws { .. } => {
                            let frame = self
                                .target
                                .publish_frame(&room_name, &text)
                                .expect("ws publisher");
                            batch.extend_from_slice(&frame);
                        }
                        Outlet::Http { queue, .. } => {
                            queue
                                .borrow_mut()
                                .push_back(self.target.pusher_publish_request(&room_name, &text));
                        }
                    }
                    self.room.sent.set(seq + 1);
                }
                match &mut outlet {
                    Outlet::Ws { writer, pongs } => {
                        let pending = std::mem::take(&mut *pongs.borrow_mut());
                        batch.extend_from_slice(&pending);
                        writer.write_all(&batch).await.context("publish write")?;
                    }
                    Outlet::Http { ready, .. } => {
                        for _ in 0..want.min(self.http_conns as u64) {
                            ready.notify_one();
                        }
                    }
                }
            }
            match self.pace {
                Pace::Rate(_) => {
                    tokio::select! {
                        _ = tick.tick() => {}
                        _ = self.stop.cancelled() => break,
                    }
                }
                Pace::FlatOut { .. } => {
                    if want == 0 {
                        self.room.waiting.set(true);
                        tokio::select! {
                            _ = self.room.notify.notified() => {}
                            // Poll now and then in case a notification raced the flag.
                            _ = tokio::time::sleep(Duration::from_millis(5)) => {}
                            _ = self.stop.cancelled() => break,
                        }
                    }
                }
            }
        }
        // Let queued HTTP publishes finish.
        if let Outlet::Http { queue, .. } = &outlet {
            let deadline = Instant::now() + Duration::from_secs(10);
            while !queue.borrow().is_empty() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        Ok(())
    }
}

async fn drain_reader(
    mut reader: OwnedReadHalf,
    mut frames: FrameReader,
    pongs: Rc<RefCell<Vec<u8>>>,
    stop: CancellationToken,
) {
    loop {
        let frame = tokio::select! {
            _ = stop.cancelled() => {
                // Keep reading a little after the stop so replies do not back up.
                tokio::time::sleep(Duration::from_secs(2)).await;
                break;
            }
            f = frames.next(&mut reader) => f,
        };
        match frame {
            Ok(Some(frame)) if frame.opcode == OP_PING => {
                pongs
                    .borrow_mut()
                    .extend_from_slice(&ws::encode(OP_PONG, frame.payload));
            }
            Ok(Some(_)) => {}
            _ => break,
        }
    }
}

/// `rpc`: C clients each calling a walker with `response: true`, one call at a time.
pub async fn rpc(
    env: &Env,
    clients: usize,
    duration: Duration,
    walker: &str,
    payload_bytes: usize,
) -> anyhow::Result<Metrics> {
    anyhow::ensure!(
        env.target.protocol == Protocol::Jac,
        "rpc needs the Jac Cloud dialect (walkers)"
    );
    let hist = Rc::new(RefCell::new(new_histogram()));
    let calls = Rc::new(Cell::new(0u64));
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
        let (hist, calls, errors, first_error, request) = (
            hist.clone(),
            calls.clone(),
            errors.clone(),
            first_error.clone(),
            request.clone(),
        );
        tasks.push(tokio::task::spawn_local(async move {
            'calls: while Instant::now() < deadline {
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

/// Register and log in a bench user over the Jac Cloud REST API; returns the token.
pub async fn login(addr: SocketAddr) -> anyhow::Result<String> {
    use switchboard_client::http;
    let addr = addr.to_string();
    let email = format!("bench-{:x}@example.com", fastrand::u64(..));
    let body = json!({"email": email, "password": "bench-password-1"});
    let registered = http::post_json(&addr, "/user/register", &body, None).await?;
    anyhow::ensure!(
        (200..300).contains(&registered.status),
        "register failed: {} {}",
        registered.status,
        registered.text()
    );
    let logged_in = http::post_json(&addr, "/user/login", &body, None).await?;
    let token = logged_in.json()["token"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("login failed: {} {}", logged_in.status, logged_in.text()))?;
    Ok(token)
}
