//! Counters and gauges: nothing is lost silently. Each drop, refusal and close is counted here and
//! exposed in Prometheus text format at `GET /metrics`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

macro_rules! metrics {
    ($( $(#[doc = $doc:literal])* $name:ident : $kind:literal ),* $(,)?) => {
        /// Process-wide counters. Every field is a relaxed atomic: cheap on the hot path.
        #[derive(Debug)]
        pub struct Metrics {
            started: Instant,
            $( $(#[doc = $doc])* pub $name: AtomicU64, )*
        }

        impl Default for Metrics {
            fn default() -> Self {
                Self { started: Instant::now(), $( $name: AtomicU64::new(0), )* }
            }
        }

        impl Metrics {
            /// Time since this process started counting.
            pub fn uptime(&self) -> std::time::Duration {
                self.started.elapsed()
            }

            /// Prometheus text exposition of every metric.
            pub fn render(&self) -> String {
                let mut out = String::new();
                let _ = writeln!(out, "# TYPE switchboard_uptime_seconds gauge");
                let _ = writeln!(out, "switchboard_uptime_seconds {}", self.started.elapsed().as_secs());
                $(
                    let help = concat!($($doc),*).trim();
                    let _ = writeln!(out, "# HELP switchboard_{} {}", stringify!($name), help);
                    let _ = writeln!(out, "# TYPE switchboard_{} {}", stringify!($name), $kind);
                    let _ = writeln!(out, "switchboard_{} {}", stringify!($name), self.$name.load(Ordering::Relaxed));
                )*
                out
            }
        }
    };
}

metrics! {
    /// WebSocket connections open now.
    connections_open: "gauge",
    /// WebSocket connections accepted since start.
    connections_total: "counter",
    /// Client frames received.
    frames_received: "counter",
    /// Frames queued to clients (one per recipient).
    frames_delivered: "counter",
    /// Error frames sent to clients.
    client_errors: "counter",
    /// Deliveries skipped because the recipient had already closed.
    deliveries_to_closed: "counter",
    /// Connections closed because their outbound queue was full (close code 4008, or a dropped
    /// TCP connection: see `slow_consumer_hangups`).
    slow_consumer_closes: "counter",
    /// Slow consumers (counted in `slow_consumer_closes`) whose TCP connection was dropped without
    /// the 4008 close frame: they did not read the rest of the frame in flight, or the close frame,
    /// within `limits.slow_consumer_grace_ms`.
    slow_consumer_hangups: "counter",
    /// Frames dropped from the queues of slow consumers.
    frames_dropped_slow_consumer: "counter",
    /// Bytes waiting in outbound queues now.
    outbound_queued_bytes: "gauge",
    /// Walker calls started.
    walker_calls: "counter",
    /// Walker calls that returned an error.
    walker_failures: "counter",
    /// Tokens refused (invalid, expired, forged or revoked).
    tokens_refused: "counter",
    /// Connections closed for silence (close code 4001).
    heartbeat_timeouts: "counter",
    /// Client messages refused by the per-connection rate limit.
    messages_rate_limited: "counter",
    /// Connections closed for sustained rate-limit abuse (close code 1008).
    rate_limit_closes: "counter",
    /// Upgrades refused by a connection limit (total, per IP or per user; close code 1013).
    connections_refused_limit: "counter",
    /// Browser upgrades refused because of their Origin (HTTP 403).
    origins_refused: "counter",
    /// Logins and registrations refused because every password-hashing slot stayed busy
    /// (HTTP 503 `hashing_busy`).
    hashing_refused: "counter",
    /// Logins and registrations refused by an attempt throttle (HTTP 429 `too_many_attempts`).
    account_attempts_throttled: "counter",
    /// 1 while this node's backplane link is up (connected and subscribed); 0 while it is down
    /// or when the node has no backplane.
    backplane_up: "gauge",
    /// Sends that did not reach the other nodes because the backplane was down (delivered on
    /// this node only).
    backplane_not_relayed: "counter",
    /// Backplane messages dropped because the backplane could not keep up: sends refused by the
    /// full outgoing queue, and messages the NATS client dropped for a slow subscription.
    backplane_dropped: "counter",
    /// Messages from other nodes delivered on this node.
    backplane_received: "counter",
    /// Backplane messages this node could not read (another format version, damage).
    backplane_malformed: "counter",
    /// Times the backplane link came back after a loss.
    backplane_reconnects: "counter",
}

impl Metrics {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn sub(gauge: &AtomicU64, n: u64) {
        gauge.fetch_sub(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
