//! The subscriber side every scenario shares: opening many client connections with bounded
//! concurrency, the counters their reader tasks update, and the per-connection read loop that
//! answers pings and records the latency of timestamped messages. Everything runs on one thread
//! (the generator is pinned to one core), so shared counters are plain `Cell`s behind `Rc`.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use hdrhistogram::Histogram;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::Metrics;
use super::measure::new_histogram;
use crate::proto::{Conn, Reply, Target};
use crate::ws::{self, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT};

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
    pub fn new() -> Rc<Self> {
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
    pub fn outstanding(&self) -> u64 {
        (self.sent.get() * self.members.get()).saturating_sub(self.received.get())
    }
}

pub fn new_room(name: String, window: u64) -> Room {
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

pub fn payload(seq: u64, len: usize) -> String {
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
pub fn reset_on_drop(stream: &tokio::net::TcpStream) {
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

impl Opened {
    /// One outcome for connections opened in several groups (one per node of a cluster).
    pub fn merge(parts: Vec<Opened>) -> Opened {
        let mut all = Opened::empty();
        for part in parts {
            all.ok += part.ok;
            all.failed += part.failed;
            all.first_error = all.first_error.or(part.first_error);
            let _ = all.handshake.add(&part.handshake);
            all.wall += part.wall;
        }
        all
    }

    fn empty() -> Opened {
        Opened {
            ok: 0,
            failed: 0,
            first_error: None,
            handshake: new_histogram(),
            wall: Duration::ZERO,
        }
    }
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
    let result = Rc::new(RefCell::new(Opened::empty()));
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
    std::mem::replace(&mut *result, Opened::empty())
}

pub fn opened_metrics(opened: &Opened, out: &mut Metrics) {
    out.insert("connections_ok".into(), json!(opened.ok));
    out.insert("connections_failed".into(), json!(opened.failed));
    if let Some(err) = &opened.first_error {
        out.insert("first_error".into(), json!(err));
    }
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
