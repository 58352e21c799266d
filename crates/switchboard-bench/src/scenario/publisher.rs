//! The publisher side of `fanout`, `rooms`, `publish` and `cluster`: how publishers pace
//! themselves, and one publisher per room writing timestamped messages over WebSocket, or over an
//! HTTP publish API (Pusher's events API always; Switchboard's `/api/publish` for `publish`), with
//! a bounded number of requests in flight over keep-alive connections.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::clients::{Room, payload};
use crate::proto::{HttpConn, Protocol, Target};
use crate::ws::{self, FrameReader, OP_PING, OP_PONG};

#[derive(Args, Clone)]
pub struct PublishArgs {
    /// Messages per second per publisher; 0 publishes flat out (windowed, see --window).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Flat out: most messages in flight per subscriber.
    #[arg(long, default_value_t = 8)]
    pub window: u64,
    /// Seconds of publishing.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Upper bound on messages per publisher.
    #[arg(long, default_value_t = 10_000_000)]
    pub max_messages: u64,
    /// Payload length in bytes (the timestamp and sequence, padded).
    #[arg(long, default_value_t = 64)]
    pub payload: usize,
    /// Seconds without progress after which undelivered messages count as lost.
    #[arg(long, default_value_t = 5.0)]
    pub drain: f64,
    /// HTTP keep-alive connections per publisher, one request in flight on each (HTTP publishing).
    #[arg(long, default_value_t = 4)]
    pub http_conns: usize,
}

impl PublishArgs {
    pub fn publishing(&self) -> Publishing {
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
            over_http: false,
            batch: 1,
        }
    }

    pub fn params(&self) -> Value {
        json!({
            "rate": if self.rate > 0.0 { json!(self.rate) } else { json!("flat") },
            "window": self.window,
            "duration": self.duration,
            "payload": self.payload,
        })
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
    /// Publish through the server's HTTP API even when it has a WebSocket way (Pusher always does).
    pub over_http: bool,
    /// Items per HTTP request (1: a single publish; more: the API's batch form).
    pub batch: usize,
}

pub struct Publisher {
    pub target: Rc<Target>,
    pub room: Rc<Room>,
    pub stop: CancellationToken,
    pub errors: Rc<Cell<u64>>,
    pub first_send: Rc<Cell<Option<Instant>>>,
    pub pace: Pace,
    pub payload_bytes: usize,
    pub max_messages: u64,
    pub http_conns: usize,
    pub over_http: bool,
    pub batch: usize,
    pub index: usize,
    pub timeout: Duration,
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
    pub async fn run(self) -> anyhow::Result<()> {
        let room_name = self.room.name.clone();
        let mut outlet = if self.over_http || self.target.protocol == Protocol::Pusher {
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
            // The `ws` floor and namespaces fix the target in the URL; a channel-dialect publisher
            // must be a member of the channel it sends to (the relay skips the sender itself).
            let publish_to = matches!(
                self.target.protocol,
                Protocol::Ws | Protocol::Channel | Protocol::Namespace
            )
            .then_some(room_name.as_str());
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
            // HTTP batches go out whole (the last one may be short when max_messages ends it).
            let items_per_request = self.batch.max(1) as u64;
            let left = self.max_messages - self.room.sent.get();
            let want = if want < left {
                want / items_per_request * items_per_request
            } else {
                want
            };
            if want > 0 {
                if self.first_send.get().is_none() {
                    self.first_send.set(Some(Instant::now()));
                }
                batch.clear();
                let mut items = Vec::new();
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
                        Outlet::Http { .. } => items.push(text),
                    }
                    self.room.sent.set(seq + 1);
                }
                if let Outlet::Http { queue, .. } = &outlet {
                    for chunk in items.chunks(items_per_request as usize) {
                        let request = self
                            .target
                            .http_publish_request(&room_name, chunk)
                            .context("this server has no HTTP publish API (--api-key?)")?;
                        queue.borrow_mut().push_back(request);
                    }
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
