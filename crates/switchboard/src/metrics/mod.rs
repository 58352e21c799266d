//! Prometheus metrics: nothing is lost silently. Every connection, message, drop, refusal and
//! backplane failure is counted here and exposed at `GET /metrics` in the Prometheus text format
//! (docs/operations.md lists every series).
//!
//! Each app owns its registry (several apps can run in one process, as the tests do). Every
//! label set is built when the app starts: the hot path increments a counter it already holds
//! (one per dialect, per drop reason, per registered walker), never hashes or formats a label.
//!
//! - [`reasons`]: the closed sets of label values (drop reasons, handshake failures, walker
//!   outcomes);
//! - [`walkers`]: the per-walker series;
//! - [`process`]: the process's resident memory.

pub mod process;
pub mod reasons;
pub mod walkers;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use crate::hub::DialectId;
pub use reasons::{DropReason, HandshakeFailure, WalkerOutcome};
pub use walkers::WalkerMetrics;

/// The `Content-Type` of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DialectLabel {
    dialect: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeLabel {
    node_id: String,
}

/// One dialect's series, resolved once.
#[derive(Debug, Clone, Default)]
pub struct DialectMetrics {
    /// WebSocket connections open now.
    pub connections: Gauge,
    /// Connections accepted (registered, and their upgrade completed) since start.
    pub accepted: Counter,
    /// Client messages (text or binary) received.
    pub received: Counter,
    /// Frames written to clients' sockets.
    pub sent: Counter,
}

/// Every metric of one app. Counters and gauges are relaxed atomics: cheap on the hot path.
#[derive(Debug)]
pub struct Metrics {
    started: Instant,
    registry: Registry,
    /// Indexed by [`DialectId`].
    dialects: Box<[DialectMetrics]>,
    /// Indexed by [`DropReason`].
    dropped: Box<[Counter]>,
    /// Indexed by [`HandshakeFailure`].
    handshake_failures: Box<[Counter]>,
    walkers: HashMap<Arc<str>, WalkerMetrics>,
    uptime: Gauge<f64, AtomicU64>,
    resident_memory: Gauge,
    /// Frames queued to clients: one per recipient of each delivery, plus replies, errors and
    /// greetings.
    pub deliveries: Counter,
    /// Bytes waiting in outbound queues now.
    pub outbound_queued_bytes: Gauge,
    /// Error frames and refusals sent to clients.
    pub client_errors: Counter,
    /// Connections closed because their outbound queue was full (close 4008, or a dropped TCP
    /// connection: see `slow_consumer_hangups`).
    pub slow_consumer_closes: Counter,
    /// Slow consumers whose TCP connection was dropped without the 4008 close frame: they did
    /// not read the rest of the frame in flight, or the close frame, within the grace.
    pub slow_consumer_hangups: Counter,
    /// Connections closed for sustained rate-limit abuse (close 1008).
    pub rate_limit_closes: Counter,
    /// Connections closed for silence (close 4001).
    pub heartbeat_timeouts: Counter,
    /// Tokens refused (invalid, expired, forged or revoked), on any endpoint.
    pub tokens_refused: Counter,
    /// `change_user` switches refused by the per-user connection limit.
    pub user_switches_refused: Counter,
    /// HTTP API requests refused because of their Origin (HTTP 403; WebSocket upgrades are in
    /// the handshake failures).
    pub cors_refused: Counter,
    /// Logins and registrations refused because every password-hashing slot stayed busy.
    pub hashing_refused: Counter,
    /// Logins and registrations refused by an attempt throttle.
    pub account_attempts_throttled: Counter,
    /// Calls of a walker name that is not registered.
    pub unknown_walker_calls: Counter,
    /// 1 while the backplane link is up; 0 while it is down or when there is none.
    pub backplane_up: Gauge,
    /// Sends that did not reach the other nodes because the backplane was down.
    pub backplane_not_relayed: Counter,
    /// Backplane messages dropped because the backplane could not keep up.
    pub backplane_dropped: Counter,
    /// Messages from other nodes delivered on this node.
    pub backplane_received: Counter,
    /// Backplane messages this node could not read.
    pub backplane_malformed: Counter,
    /// Times the backplane link came back after a loss.
    pub backplane_reconnects: Counter,
}

impl Metrics {
    /// The metrics of an app on node `node_id` whose connections speak `dialects` (by
    /// [`DialectId`] order) and whose walkers are `walkers`.
    pub fn new<'a>(
        node_id: &str,
        dialects: impl IntoIterator<Item = &'static str>,
        walkers: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let mut registry = Registry::with_prefix("switchboard");
        let r = &mut registry;

        let connections = Family::<DialectLabel, Gauge>::default();
        let accepted = Family::<DialectLabel, Counter>::default();
        let received = Family::<DialectLabel, Counter>::default();
        let sent = Family::<DialectLabel, Counter>::default();
        register(
            r,
            "connections",
            "WebSocket connections open now",
            &connections,
        );
        register(
            r,
            "connections_accepted",
            "WebSocket connections accepted since start",
            &accepted,
        );
        register(
            r,
            "messages_received",
            "Client messages (text or binary) received",
            &received,
        );
        register(
            r,
            "messages_sent",
            "Frames written to clients' sockets (deliveries, replies, errors, greetings)",
            &sent,
        );
        let dialects = dialects
            .into_iter()
            .map(|dialect| {
                let label = DialectLabel { dialect };
                DialectMetrics {
                    connections: connections.get_or_create_owned(&label),
                    accepted: accepted.get_or_create_owned(&label),
                    received: received.get_or_create_owned(&label),
                    sent: sent.get_or_create_owned(&label),
                }
            })
            .collect();

        let dropped = reason_counters(
            r,
            "dropped",
            "Messages that did not reach a client, by reason",
            DropReason::ALL.iter().map(|r| r.label()),
        );
        let handshake_failures = reason_counters(
            r,
            "handshake_failures",
            "WebSocket handshakes refused, by reason",
            HandshakeFailure::ALL.iter().map(|r| r.label()),
        );

        let walker_calls = Family::default();
        let walker_durations = walkers::duration_family();
        register(
            r,
            "walker_calls",
            "Walker calls by walker and outcome (ok, error, refused)",
            &walker_calls,
        );
        r.register_with_unit(
            "walker_duration",
            "How long walker bodies ran, by walker and outcome (ok, error)",
            Unit::Seconds,
            walker_durations.clone(),
        );
        let walkers = walkers::resolve(walkers, &walker_calls, &walker_durations);

        let node = Info::new(NodeLabel {
            node_id: node_id.to_string(),
        });
        r.register("node", "This node's id (always 1)", node);
        let uptime = Gauge::<f64, AtomicU64>::default();
        r.register_with_unit(
            "uptime",
            "Time since the app started",
            Unit::Seconds,
            uptime.clone(),
        );
        let resident_memory = Gauge::default();
        r.register_with_unit(
            "process_resident_memory",
            "Resident memory of the whole process (Linux; 0 elsewhere)",
            Unit::Bytes,
            resident_memory.clone(),
        );

        let outbound_queued_bytes = Gauge::default();
        r.register_with_unit(
            "outbound_queued",
            "Bytes waiting in outbound queues now",
            Unit::Bytes,
            outbound_queued_bytes.clone(),
        );

        Self {
            started: Instant::now(),
            dialects,
            dropped,
            handshake_failures,
            walkers,
            uptime,
            resident_memory,
            outbound_queued_bytes,
            deliveries: counter(
                r,
                "deliveries",
                "Frames queued to clients: one per recipient of each delivery, plus replies, errors and greetings",
            ),
            client_errors: counter(
                r,
                "client_errors",
                "Error frames and refusals sent to clients",
            ),
            slow_consumer_closes: counter(
                r,
                "slow_consumer_closes",
                "Connections closed because their outbound queue was full (close 4008)",
            ),
            slow_consumer_hangups: counter(
                r,
                "slow_consumer_hangups",
                "Slow consumers dropped without the 4008 close frame: they did not read within limits.slow_consumer_grace_ms",
            ),
            rate_limit_closes: counter(
                r,
                "rate_limit_closes",
                "Connections closed for sustained rate-limit abuse (close 1008)",
            ),
            heartbeat_timeouts: counter(
                r,
                "heartbeat_timeouts",
                "Connections closed for silence (close 4001)",
            ),
            tokens_refused: counter(
                r,
                "tokens_refused",
                "Tokens refused (invalid, expired, forged or revoked)",
            ),
            user_switches_refused: counter(
                r,
                "user_switches_refused",
                "change_user switches refused by the per-user connection limit",
            ),
            cors_refused: counter(
                r,
                "cors_refused",
                "HTTP API requests refused because of their Origin (HTTP 403)",
            ),
            hashing_refused: counter(
                r,
                "hashing_refused",
                "Logins and registrations refused because every password-hashing slot stayed busy (HTTP 503)",
            ),
            account_attempts_throttled: counter(
                r,
                "account_attempts_throttled",
                "Logins and registrations refused by an attempt throttle (HTTP 429)",
            ),
            unknown_walker_calls: counter(
                r,
                "unknown_walker_calls",
                "Calls of a walker name that is not registered",
            ),
            backplane_up: {
                let up = Gauge::default();
                r.register(
                    "backplane_up",
                    "1 while the backplane link is up; 0 while it is down or when there is none",
                    up.clone(),
                );
                up
            },
            backplane_not_relayed: counter(
                r,
                "backplane_not_relayed",
                "Sends that did not reach the other nodes because the backplane was down",
            ),
            backplane_dropped: counter(
                r,
                "backplane_dropped",
                "Backplane messages dropped because the backplane could not keep up",
            ),
            backplane_received: counter(
                r,
                "backplane_received",
                "Messages from other nodes delivered on this node",
            ),
            backplane_malformed: counter(
                r,
                "backplane_malformed",
                "Backplane messages this node could not read (another format version, damage)",
            ),
            backplane_reconnects: counter(
                r,
                "backplane_reconnects",
                "Times the backplane link came back after a loss",
            ),
            registry,
        }
    }

    /// Time since this app started counting.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// The series of the dialect a connection with `id` speaks.
    ///
    /// # Panics
    /// If `id` is not one of the dialects these metrics were built with; the hub checks that at
    /// start ([`crate::hub::Hub::new`]).
    pub fn dialect(&self, id: DialectId) -> &DialectMetrics {
        &self.dialects[id.index()]
    }

    /// How many dialects these metrics were built with.
    pub fn dialect_count(&self) -> usize {
        self.dialects.len()
    }

    /// The counter of messages dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> &Counter {
        &self.dropped[reason as usize]
    }

    /// The counter of handshakes refused for `reason`.
    pub fn handshake_failures(&self, reason: HandshakeFailure) -> &Counter {
        &self.handshake_failures[reason as usize]
    }

    /// The series of the registered walker `name`; `None` for a name no walker has.
    pub fn walker(&self, name: &str) -> Option<&WalkerMetrics> {
        self.walkers.get(name)
    }

    /// Count a call of `name` that never ran: as refused if such a walker exists, else as a
    /// call of an unknown walker.
    pub fn walker_refused(&self, name: &str) {
        match self.walker(name) {
            Some(walker) => walker.refused(),
            None => {
                self.unknown_walker_calls.inc();
            }
        }
    }

    /// Every metric in the Prometheus text format ([`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        self.uptime.set(self.started.elapsed().as_secs_f64());
        if let Some(bytes) = process::resident_memory_bytes() {
            self.resident_memory
                .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        }
        let mut text = String::new();
        // Writing to a String cannot fail, and every metric encodes.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry);
        text
    }
}

/// Register a metric under `name` with `help`.
fn register<M>(registry: &mut Registry, name: &str, help: &str, metric: &M)
where
    M: prometheus_client::registry::Metric + Clone,
{
    registry.register(name, help, metric.clone());
}

/// Register an unlabelled counter and return it.
fn counter(registry: &mut Registry, name: &str, help: &str) -> Counter {
    let counter = Counter::default();
    register(registry, name, help, &counter);
    counter
}

/// Register a counter family labelled `reason` and return one counter per reason, in order.
fn reason_counters(
    registry: &mut Registry,
    name: &str,
    help: &str,
    reasons: impl Iterator<Item = &'static str>,
) -> Box<[Counter]> {
    let family = Family::<ReasonLabel, Counter>::default();
    register(registry, name, help, &family);
    reasons
        .map(|reason| family.get_or_create_owned(&ReasonLabel { reason }))
        .collect()
}
