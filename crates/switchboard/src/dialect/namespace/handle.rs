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

use serde::Serialize;

use super::definition::Namespace;
use crate::hub::{Connection, Delivery, Target};
use crate::notify::Publisher;

/// The endpoint prefix every namespace is served under.
pub const PATH_PREFIX: &str = "/api/1/ws/";

/// A namespace at run time: its definition, counters and the way out to the hub.
#[derive(Debug)]
pub(crate) struct NamespaceState {
    pub(crate) definition: Namespace,
    /// `/api/1/ws/<name>`.
    pub(crate) path: String,
    /// Set when the app's routes are built; weak so a hook holding a handle keeps no app alive.
    publisher: OnceLock<Weak<Publisher>>,
    started: Instant,
    messages: AtomicU64,
    messages_rate_limited: AtomicU64,
    /// Unix milliseconds of the last client message; 0 before the first.
    last_message_ms: AtomicU64,
}

impl NamespaceState {
    pub(crate) fn new(definition: Namespace) -> Self {
        Self {
            path: format!("{PATH_PREFIX}{}", definition.name),
            definition,
            publisher: OnceLock::new(),
            started: Instant::now(),
            messages: AtomicU64::new(0),
            messages_rate_limited: AtomicU64::new(0),
            last_message_ms: AtomicU64::new(0),
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.definition.name
    }

    pub(crate) fn attach(&self, publisher: &Arc<Publisher>) {
        let _ = self.publisher.set(Arc::downgrade(publisher));
    }

    pub(crate) fn publisher(&self) -> Option<Arc<Publisher>> {
        self.publisher.get().and_then(Weak::upgrade)
    }

    /// The hub's client id of a namespace client: its uuid, scoped to the namespace so the same
    /// browser's sockets on two namespaces are two addresses (`<name>:<uuid>`).
    pub(crate) fn hub_client_id(&self, uuid: &str) -> String {
        format!("{}:{uuid}", self.definition.name)
    }

    pub(crate) fn count_message(&self) {
        self.messages.fetch_add(1, Ordering::Relaxed);
        self.last_message_ms.store(unix_ms(), Ordering::Relaxed);
    }

    pub(crate) fn count_rate_limited(&self) {
        self.messages_rate_limited.fetch_add(1, Ordering::Relaxed);
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

/// Milliseconds since the Unix epoch.
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
        let state = &self.state;
        let members = state
            .publisher()
            .map(|p| p.hub().namespace_members(state.name()))
            .unwrap_or_default();
        let mut clients: Vec<&str> = members.iter().map(|c| &**c.client_id()).collect();
        clients.sort_unstable();
        clients.dedup();
        let mut users: Vec<_> = members
            .iter()
            .filter_map(|c| c.identity().account_id().map(str::to_string))
            .collect();
        users.sort_unstable();
        users.dedup();
        let last = state.last_message_ms.load(Ordering::Relaxed);
        let last_message_unix_ms = (last > 0).then_some(last);
        NamespaceStats {
            name: state.name().to_string(),
            path: state.path.clone(),
            sockets: members.len(),
            clients: clients.len(),
            users: users.len(),
            messages: state.messages.load(Ordering::Relaxed),
            messages_rate_limited: state.messages_rate_limited.load(Ordering::Relaxed),
            last_message_unix_ms,
            uptime_secs: state.started.elapsed().as_secs(),
            status: NamespaceStatus::of(members.len(), last_message_unix_ms, unix_ms()),
        }
    }
}

/// A namespace's counters on this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceStats {
    pub name: String,
    pub path: String,
    /// Open sockets.
    pub sockets: usize,
    /// Distinct client ids (tabs sharing a uuid count once).
    pub clients: usize,
    /// Distinct logged-in users.
    pub users: usize,
    /// Client messages processed (app-level pings and refused messages excluded).
    pub messages: u64,
    /// Client messages refused or dropped by the rate limit.
    pub messages_rate_limited: u64,
    pub last_message_unix_ms: Option<u64>,
    pub uptime_secs: u64,
    pub status: NamespaceStatus,
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
    fn of(sockets: usize, last_message_ms: Option<u64>, now_ms: u64) -> Self {
        const MINUTE: u64 = 60_000;
        let quiet = last_message_ms.map_or(u64::MAX, |last| now_ms.saturating_sub(last));
        if sockets == 0 || quiet >= 30 * MINUTE {
            NamespaceStatus::Red
        } else if quiet < 5 * MINUTE {
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

    #[test]
    fn status_follows_the_seed() {
        let now = 100 * 60_000;
        let ago = |minutes: u64| Some(now - minutes * 60_000);
        assert_eq!(NamespaceStatus::of(1, ago(1), now), Green);
        assert_eq!(NamespaceStatus::of(1, ago(10), now), Yellow);
        assert_eq!(NamespaceStatus::of(1, ago(31), now), Red);
        assert_eq!(NamespaceStatus::of(1, None, now), Red);
        assert_eq!(NamespaceStatus::of(0, ago(1), now), Red);
    }
}
