//! The application's side of a namespace: [`NamespaceHandle`] (broadcast, broadcast_from,
//! send_to_client, stats; cloneable, usable from anywhere: walkers, HTTP handlers, timers) and
//! [`Client`], the socket a hook is called for.
//!
//! Sends go through the app's publisher, so they reach this namespace's clients on every node.
//! A handle obtained before the app is built (at registration) starts working once the app's
//! routes exist; until then its sends reach no one and return 0.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::definition::Namespace;
use crate::config::StatsConfig;
use crate::hub::{Connection, Delivery, Target};
use crate::notify::Publisher;
use crate::ops::clock::{Clock, iso8601};
use crate::ops::dropped::{DropCounters, DropKind, Dropped};
use crate::ops::window::RateWindow;

/// The endpoint prefix every namespace is served under.
pub const PATH_PREFIX: &str = "/api/1/ws/";

/// Seconds of per-second message counts a namespace keeps: `messagesPerHour` is exact.
const RATE_SPAN_SECS: usize = 3600;

/// A namespace at run time: its definition, counters and the way out to the hub.
#[derive(Debug)]
pub(crate) struct NamespaceState {
    pub(crate) definition: Namespace,
    /// `/api/1/ws/<name>`.
    pub(crate) path: String,
    /// Set when the app's routes are built.
    attached: OnceLock<Attachment>,
    started: Instant,
    messages: AtomicU64,
    /// Unix milliseconds (statistics clock) of the last client message; 0 before the first.
    last_message_ms: AtomicU64,
    /// Client messages per second over the last hour.
    rate: RateWindow,
    dropped: DropCounters,
}

/// What a namespace learns from the app once it exists.
#[derive(Debug)]
struct Attachment {
    /// Weak so a hook holding a handle keeps no app alive.
    publisher: Weak<Publisher>,
    clock: Clock,
    stats: StatsConfig,
}

impl NamespaceState {
    pub(crate) fn new(definition: Namespace) -> Self {
        Self {
            path: format!("{PATH_PREFIX}{}", definition.name),
            definition,
            attached: OnceLock::new(),
            started: Instant::now(),
            messages: AtomicU64::new(0),
            last_message_ms: AtomicU64::new(0),
            rate: RateWindow::new(RATE_SPAN_SECS),
            dropped: DropCounters::default(),
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.definition.name
    }

    pub(crate) fn attach(&self, publisher: &Arc<Publisher>, clock: Clock, stats: StatsConfig) {
        let _ = self.attached.set(Attachment {
            publisher: Arc::downgrade(publisher),
            clock,
            stats,
        });
    }

    pub(crate) fn publisher(&self) -> Option<Arc<Publisher>> {
        self.attached.get().and_then(|a| a.publisher.upgrade())
    }

    /// The hub's client id of a namespace client: its uuid, scoped to the namespace so the same
    /// browser's sockets on two namespaces are two addresses (`<name>:<uuid>`).
    pub(crate) fn hub_client_id(&self, uuid: &str) -> String {
        format!("{}:{uuid}", self.definition.name)
    }

    /// Count one client message received at `now_ms` (statistics clock).
    pub(crate) fn count_message(&self, now_ms: u64) {
        self.messages.fetch_add(1, Ordering::Relaxed);
        self.last_message_ms.store(now_ms, Ordering::Relaxed);
        self.rate.record(now_ms);
    }

    pub(crate) fn count_dropped(&self, reason: DropKind, n: u64) {
        self.dropped.add(reason, n);
    }

    fn publish<T: Serialize + ?Sized>(
        &self,
        target: Target,
        data: &T,
        speaker: Option<&str>,
    ) -> usize {
        let Some(publisher) = self.publisher() else {
            return 0;
        };
        let delivery = match Delivery::from_json(data) {
            Ok(delivery) => delivery,
            Err(err) => {
                tracing::error!(namespace = self.name(), %err, "payload could not be serialized");
                publisher.hub().metrics().client_errors.inc();
                return 0;
            }
        };
        let delivery = match speaker {
            Some(name) => delivery.with_sender_name(Arc::from(name)),
            None => delivery,
        };
        publisher.publish(&target, &delivery).local
    }
}

/// Milliseconds since the Unix epoch (the namespace dialect's `pong` timestamps).
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A registered namespace, as application code holds it. Cheap to clone.
#[derive(Debug, Clone)]
pub struct NamespaceHandle {
    pub(crate) state: Arc<NamespaceState>,
}

impl From<Arc<NamespaceState>> for NamespaceHandle {
    fn from(state: Arc<NamespaceState>) -> Self {
        Self { state }
    }
}

impl NamespaceHandle {
    pub fn name(&self) -> &str {
        self.state.name()
    }

    /// `/api/1/ws/<name>`.
    pub fn path(&self) -> &str {
        &self.state.path
    }

    /// Send `data` to every client of the namespace as a system message (`username` `""`).
    /// Returns how many sockets on this node it was queued for.
    pub fn broadcast<T: Serialize + ?Sized>(&self, data: &T) -> usize {
        self.state
            .publish(Target::Namespace(self.name().to_string()), data, None)
    }

    /// Send `data` to every client of the namespace under `username` (stamped into `data`).
    pub fn broadcast_from<T: Serialize + ?Sized>(&self, data: &T, username: &str) -> usize {
        self.state.publish(
            Target::Namespace(self.name().to_string()),
            data,
            Some(username),
        )
    }

    /// Send `data` to every socket of the client `client_id` (the uuid it connected with) in
    /// this namespace. Unknown ids reach no one.
    pub fn send_to_client<T: Serialize + ?Sized>(&self, client_id: &str, data: &T) -> usize {
        let address = self.state.hub_client_id(client_id);
        self.state
            .publish(Target::Clients(vec![address]), data, None)
    }

    /// Counters and status of this namespace on this node.
    pub fn stats(&self) -> NamespaceStats {
        let attached = self.state.attached.get();
        let now = attached.map_or_else(|| Clock::System.now_ms(), |a| a.clock.now_ms());
        let thresholds = attached.map_or_else(StatsConfig::default, |a| a.stats.clone());
        self.census().stats(now, &thresholds)
    }

    /// What this node knows of the namespace, in a form that adds up across nodes.
    pub fn census(&self) -> NamespaceCensus {
        let state = &self.state;
        let attached = state.attached.get();
        let members = state
            .publisher()
            .map(|p| p.hub().namespace_members(state.name()))
            .unwrap_or_default();
        let mut client_ids: Vec<String> =
            members.iter().map(|c| c.client_id().to_string()).collect();
        client_ids.sort_unstable();
        client_ids.dedup();
        let mut usernames: Vec<String> = members
            .iter()
            .filter_map(|c| {
                let identity = c.identity();
                identity
                    .is_authenticated()
                    .then(|| identity.username().map(str::to_string))
                    .flatten()
            })
            .collect();
        usernames.sort_unstable();
        usernames.dedup();
        let now = attached.map_or_else(|| Clock::System.now_ms(), |a| a.clock.now_ms());
        let last = state.last_message_ms.load(Ordering::Relaxed);
        let (messages_per_minute, messages_per_hour) =
            (state.rate.count(now, 60), state.rate.count(now, 3600));
        NamespaceCensus {
            name: state.name().to_string(),
            path: state.path.clone(),
            sockets: members.len(),
            client_ids,
            usernames,
            messages_per_minute,
            messages_per_hour,
            messages: state.messages.load(Ordering::Relaxed),
            last_message_unix_ms: (last > 0).then_some(last),
            dropped: state.dropped.snapshot(),
            uptime_secs: state.started.elapsed().as_secs(),
        }
    }
}

/// A namespace's counters on one node, with the client ids and usernames behind its counts, so
/// that the figures of several nodes add up without counting a client or user twice. Nodes of
/// a cluster send each other these for the merged statistics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceCensus {
    pub name: String,
    pub path: String,
    /// Open sockets.
    pub sockets: usize,
    /// Distinct client ids, sorted.
    pub client_ids: Vec<String>,
    /// Distinct logged-in usernames, sorted.
    pub usernames: Vec<String>,
    pub messages_per_minute: u64,
    pub messages_per_hour: u64,
    pub messages: u64,
    pub last_message_unix_ms: Option<u64>,
    pub dropped: Dropped,
    pub uptime_secs: u64,
}

impl NamespaceCensus {
    /// Add another node's census of the same namespace.
    pub fn merge(&mut self, other: NamespaceCensus) {
        fn union(mine: &mut Vec<String>, theirs: Vec<String>) {
            mine.extend(theirs);
            mine.sort_unstable();
            mine.dedup();
        }
        self.sockets += other.sockets;
        union(&mut self.client_ids, other.client_ids);
        union(&mut self.usernames, other.usernames);
        self.messages_per_minute += other.messages_per_minute;
        self.messages_per_hour += other.messages_per_hour;
        self.messages += other.messages;
        self.last_message_unix_ms = self.last_message_unix_ms.max(other.last_message_unix_ms);
        self.dropped += other.dropped;
        self.uptime_secs = self.uptime_secs.max(other.uptime_secs);
    }

    /// The figures and status colour at `now_ms`, by the `thresholds`.
    pub fn stats(self, now_ms: u64, thresholds: &StatsConfig) -> NamespaceStats {
        let last = self.last_message_unix_ms;
        NamespaceStats {
            status: NamespaceStatus::of(self.sockets, last, now_ms, thresholds),
            clients: self.client_ids.len(),
            users: self.usernames.len(),
            messages_per_minute: self.messages_per_minute,
            messages_per_hour: self.messages_per_hour,
            messages: self.messages,
            last_activity: last.map(iso8601),
            sockets: self.sockets,
            messages_rate_limited: self.dropped.rate_limit,
            last_message_unix_ms: last,
            uptime_secs: self.uptime_secs,
            dropped: self.dropped,
            name: self.name,
            path: self.path,
        }
    }
}

/// A namespace's counters on this node. Serialized, it is one entry of the stats API's
/// `namespaces` (seed 003's field names); the fields marked "Rust only" are not sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceStats {
    /// Rust only: the path says it.
    #[serde(skip)]
    pub name: String,
    pub path: String,
    pub status: NamespaceStatus,
    /// Distinct client ids (tabs sharing a uuid count once).
    #[serde(rename = "clientCount")]
    pub clients: usize,
    /// Distinct logged-in usernames.
    #[serde(rename = "activeUsers")]
    pub users: usize,
    /// Client messages in the last 60 seconds.
    pub messages_per_minute: u64,
    /// Client messages in the last 3600 seconds.
    pub messages_per_hour: u64,
    /// Client messages processed (app-level pings and refused messages excluded).
    #[serde(rename = "totalMessages")]
    pub messages: u64,
    /// When the last client message came, ISO 8601 UTC; `null` before the first.
    pub last_activity: Option<String>,
    pub dropped: Dropped,
    /// Rust only: open sockets.
    #[serde(skip)]
    pub sockets: usize,
    /// Rust only: client messages refused or dropped by a rate limit (`dropped.rateLimit`).
    #[serde(skip)]
    pub messages_rate_limited: u64,
    /// Rust only.
    #[serde(skip)]
    pub last_message_unix_ms: Option<u64>,
    /// Rust only.
    #[serde(skip)]
    pub uptime_secs: u64,
}

/// Seed 003's activity indicator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NamespaceStatus {
    /// A client message in the last 5 minutes.
    Green,
    /// Clients, but no message for 5 to 30 minutes.
    Yellow,
    /// No clients, or no message for 30 minutes or more.
    Red,
}

impl NamespaceStatus {
    /// The colour of a namespace with `sockets` open and its last message at `last_message_ms`,
    /// at `now_ms`, by the `[stats]` thresholds.
    fn of(sockets: usize, last_message_ms: Option<u64>, now_ms: u64, stats: &StatsConfig) -> Self {
        let quiet = last_message_ms.map_or(u64::MAX, |last| now_ms.saturating_sub(last));
        if sockets == 0 || quiet >= stats.status_stale_secs.saturating_mul(1000) {
            NamespaceStatus::Red
        } else if quiet < stats.status_idle_secs.saturating_mul(1000) {
            NamespaceStatus::Green
        } else {
            NamespaceStatus::Yellow
        }
    }
}

/// The socket a hook is called for.
#[derive(Debug, Clone)]
pub struct Client {
    uuid: Arc<str>,
    namespace: NamespaceHandle,
    conn: Arc<Connection>,
}

impl Client {
    pub(crate) fn new(uuid: Arc<str>, state: Arc<NamespaceState>, conn: Arc<Connection>) -> Self {
        Self {
            uuid,
            namespace: NamespaceHandle { state },
            conn,
        }
    }

    /// The client id (its uuid), shared by every socket of the same client.
    pub fn id(&self) -> &str {
        &self.uuid
    }

    /// The namespace it is connected to.
    pub fn namespace(&self) -> &NamespaceHandle {
        &self.namespace
    }

    /// Send `data` to this socket only, as a system message. Returns whether it was queued.
    pub fn send<T: Serialize + ?Sized>(&self, data: &T) -> bool {
        let Some(publisher) = self.namespace.state.publisher() else {
            return false;
        };
        match Delivery::from_json(data) {
            Ok(delivery) => publisher.hub().deliver_to_connection(&self.conn, &delivery),
            Err(err) => {
                tracing::error!(%err, "payload could not be serialized");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::NamespaceStatus::{self, *};
    use crate::config::StatsConfig;

    #[test]
    fn status_follows_the_seed() {
        let now = 100 * 60_000;
        let ago = |minutes: u64| Some(now - minutes * 60_000);
        let seed = StatsConfig::default();
        assert_eq!(NamespaceStatus::of(1, ago(1), now, &seed), Green);
        assert_eq!(NamespaceStatus::of(1, ago(10), now, &seed), Yellow);
        assert_eq!(NamespaceStatus::of(1, ago(31), now, &seed), Red);
        assert_eq!(NamespaceStatus::of(1, None, now, &seed), Red);
        assert_eq!(NamespaceStatus::of(0, ago(1), now, &seed), Red);
        let quick = StatsConfig {
            status_idle_secs: 10,
            status_stale_secs: 60,
            ..seed
        };
        assert_eq!(
            NamespaceStatus::of(1, Some(now - 20_000), now, &quick),
            Yellow
        );
    }
}
