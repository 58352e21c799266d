//! Operations: what an operator sees of a running node. Statistics (per namespace, per channel,
//! per node), the activity log, the live tap and the admin dashboard read from here; the
//! sessions and the publisher report into it.
//!
//! Reporting is cheap on purpose: a session bumps relaxed atomics and per-second buckets, and
//! anything that needs formatting (the activity log, the tap) is handed to a background task
//! through a bounded queue that drops, counted, rather than make a session wait.
//!
//! - [`clock`]: the statistics clock, settable in tests; ISO 8601 timestamps.
//! - [`window`]: exact sliding-window rates from per-second buckets.
//! - [`dropped`]: drop reasons and their counters.
//! - [`activity`]: the activity log, recorded off the sessions' path.
//! - [`tap`]: the live tap, log entries to admin viewers as they happen.
//! - [`stats`]: the snapshot `Switchboard::stats()` and `GET /admin/api/stats` return.
//! - [`history`]: the last hour of connections and message rates, for the dashboard's charts.
//! - [`connections`]: the admin view's connection list, and closing a connection.

pub mod activity;
pub mod clock;
pub mod connections;
pub mod dropped;
pub mod history;
pub mod stats;
pub mod tap;
pub mod window;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use dashmap::DashMap;

use crate::config::StatsConfig;
use crate::dialect::namespace::handle::NamespaceState;
use crate::hub::{Connection, Delivery, OverflowObserver, Target};
use activity::{ActivityEvent, ActivityLog, ActivityRecorder, Direction, Sender, Subject};
use clock::Clock;
use dropped::{DropCounters, DropKind};
use window::RateWindow;

/// Seconds of per-second counts kept for a channel's `messagesPerMinute`.
const CHANNEL_RATE_SECS: usize = 60;

/// A node's operational state: counters the sessions report into, read by the stats snapshot.
#[derive(Debug)]
pub struct Operations {
    clock: Clock,
    config: StatsConfig,
    /// When this node started, on the statistics clock.
    started_ms: u64,
    /// Client messages received, every dialect.
    messages: AtomicU64,
    /// Client messages refused, and frames dropped for slow consumers, every dialect.
    dropped: DropCounters,
    /// Messages sent to each channel in the last minute; entries of idle channels are pruned by
    /// the stats snapshot.
    channel_rates: DashMap<Arc<str>, RateWindow>,
    /// Every namespace by name, for their stats and their slow consumers.
    namespaces: HashMap<Arc<str>, Arc<NamespaceState>>,
    /// Client messages per second over the last hour, every dialect.
    received_rate: RateWindow,
    log: Arc<ActivityLog>,
    tap: Arc<tap::Tap>,
    recorder: ActivityRecorder,
    history: history::History,
}

impl Operations {
    /// Counters for node `node_id`, and the activity log's background task (spawned here).
    pub(crate) fn new(
        node_id: &str,
        clock: Clock,
        config: StatsConfig,
        namespaces: Vec<Arc<NamespaceState>>,
    ) -> Self {
        let log = Arc::new(ActivityLog::new(node_id, clock.clone(), &config));
        let tap = Arc::new(tap::Tap::default());
        Self {
            recorder: ActivityRecorder::start(log.clone(), tap.clone()),
            log,
            tap,
            history: history::History::default(),
            started_ms: clock.now_ms(),
            clock,
            config,
            messages: AtomicU64::new(0),
            dropped: DropCounters::default(),
            channel_rates: DashMap::new(),
            namespaces: namespaces
                .into_iter()
                .map(|state| (Arc::from(state.name()), state))
                .collect(),
            received_rate: RateWindow::new(3600),
        }
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn config(&self) -> &StatsConfig {
        &self.config
    }

    /// The last hour of connections and message rates.
    pub fn history(&self) -> Vec<history::HistoryPoint> {
        self.history.points()
    }

    /// Add a point to the history: `connections` open now, and the message rate of the last
    /// [`history::SAMPLE_SECS`] seconds.
    fn sample(&self, connections: usize) {
        let now = self.clock.now_ms();
        let messages = self.received_rate.count(now, history::SAMPLE_SECS);
        self.history.push(history::HistoryPoint {
            at: now,
            connections,
            messages_per_second: messages as f64 / history::SAMPLE_SECS as f64,
        });
    }

    /// The live tap admins subscribe to.
    pub fn tap(&self) -> &tap::Tap {
        &self.tap
    }

    /// A client message (`message`, from `conn`, for `subject`) was accepted by its dialect.
    pub(crate) fn received(
        &self,
        dialect: &'static str,
        subject: Subject,
        conn: &Connection,
        message: &Bytes,
    ) {
        let now = self.clock.now_ms();
        self.messages.fetch_add(1, Ordering::Relaxed);
        self.received_rate.record(now);
        self.record(now, dialect, subject, Direction::Received, conn, message);
    }

    /// A client message was refused: counted under `drop`, logged with `reason` (the error
    /// code the client was told).
    pub(crate) fn rejected(
        &self,
        dialect: &'static str,
        subject: Subject,
        conn: &Connection,
        message: &Bytes,
        (drop, reason): (DropKind, &'static str),
    ) {
        self.dropped.add(drop, 1);
        let now = self.clock.now_ms();
        let direction = Direction::Rejected(reason);
        self.record(now, dialect, subject, direction, conn, message);
    }

    fn record(
        &self,
        at_ms: u64,
        dialect: &'static str,
        subject: Subject,
        direction: Direction,
        conn: &Connection,
        message: &Bytes,
    ) {
        if !self.config.activity_log {
            return;
        }
        self.recorder.record(ActivityEvent {
            at_ms,
            dialect,
            subject,
            direction,
            sender: Sender::Client(conn.identity()),
            message: message.clone(),
        });
    }

    /// A message was published from this node (by a client relay or by server code). Logged
    /// under the dialect whose addressing the target uses: namespaces, channels, or the Jac
    /// dialect's users and client ids.
    pub(crate) fn sent(&self, target: &Target, delivery: &Delivery) {
        let now = self.clock.now_ms();
        let dialect = match target {
            Target::Namespace(_) => "namespace",
            Target::Channels(_) => "channel",
            Target::Users(_) | Target::Clients(_) | Target::Everyone => "jac",
        };
        if self.config.activity_log {
            self.recorder.record(ActivityEvent {
                at_ms: now,
                dialect,
                subject: Subject::Target(target.clone()),
                direction: Direction::Sent,
                sender: delivery
                    .sender_name_shared()
                    .map_or(Sender::Server, |name| Sender::Named(name.clone())),
                message: delivery.payload().clone(),
            });
        }
        if let Target::Channels(channels) = target {
            for channel in channels {
                // A shared read of the map: publishers to one channel do not queue on its shard.
                if let Some(rate) = self.channel_rates.get(channel.as_str()) {
                    rate.record(now);
                    continue;
                }
                self.channel_rates
                    .entry(Arc::from(channel.as_str()))
                    .or_insert_with(|| RateWindow::new(CHANNEL_RATE_SECS))
                    .record(now);
            }
        }
    }
}

impl OverflowObserver for Operations {
    fn on_overflow(&self, conn: &Connection, dropped: usize) {
        let dropped = dropped as u64;
        self.dropped.add(DropKind::SlowConsumer, dropped);
        if let Some(state) = conn
            .namespace()
            .and_then(|name| self.namespaces.get(&*name).cloned())
        {
            state.count_dropped(DropKind::SlowConsumer, dropped);
        }
    }
}
