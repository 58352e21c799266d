//! The hub: every live connection on this process, indexed by client id, by user (root id) and by
//! channel, and the fan-out that puts one shared frame into many outbound queues.
//!
//! The hub is dialect-agnostic and local: a dialect registers connections and asks for
//! deliveries; the backplane (see [`crate::backplane`]) carries deliveries between processes and
//! hands them to each process's hub. No lock here is ever held across an `.await`.

mod connection;
mod delivery;
mod outbound;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use dashmap::DashMap;

pub use connection::{ConnKey, Connection};
pub use delivery::Delivery;
pub use outbound::{Batch, OutboundQueue, PushOutcome};

use crate::close_code::CloseCode;
use crate::dialect::Dialect;
use crate::identity::Identity;
use crate::stats::Metrics;

type Members = HashMap<ConnKey, Arc<Connection>>;

/// Bounds of each connection's outbound queue.
#[derive(Debug, Clone, Copy)]
pub struct QueueBounds {
    pub messages: usize,
    pub bytes: usize,
}

/// A client id already belongs to a live connection.
#[derive(Debug, thiserror::Error)]
#[error("client id already connected")]
pub struct ClientIdInUse;

#[derive(Debug)]
pub struct Hub {
    /// Origin of the hub's millisecond clock (liveness timestamps).
    epoch: Instant,
    next_key: AtomicU64,
    clients: DashMap<Arc<str>, Arc<Connection>>,
    users: DashMap<Arc<str>, Members>,
    channels: DashMap<Arc<str>, Members>,
    queue_bounds: QueueBounds,
    metrics: Arc<Metrics>,
}

impl Hub {
    pub fn new(queue_bounds: QueueBounds, metrics: Arc<Metrics>) -> Self {
        Self {
            epoch: Instant::now(),
            next_key: AtomicU64::new(1),
            clients: DashMap::new(),
            users: DashMap::new(),
            channels: DashMap::new(),
            queue_bounds,
            metrics,
        }
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Milliseconds since the hub started: the clock of liveness timestamps.
    pub fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Add a connection under `client_id`, as `identity`, subscribed to `channels`. The
    /// `greeting` frames are queued before the connection is reachable through any index, so
    /// nothing sent to its user or channels can overtake them.
    pub fn register(
        &self,
        client_id: Arc<str>,
        dialect: Dialect,
        identity: Identity,
        channels: &[Arc<str>],
        greeting: Vec<bytes::Bytes>,
    ) -> Result<Arc<Connection>, ClientIdInUse> {
        let key = self.next_key.fetch_add(1, Ordering::Relaxed);
        let queue = OutboundQueue::new(self.queue_bounds.messages, self.queue_bounds.bytes);
        let conn = Arc::new(Connection::new(
            key,
            client_id.clone(),
            dialect,
            identity.clone(),
            queue,
            self.now_ms(),
        ));
        for frame in greeting {
            self.push_frame(&conn, frame);
        }
        match self.clients.entry(client_id) {
            dashmap::Entry::Occupied(_) => return Err(ClientIdInUse),
            dashmap::Entry::Vacant(slot) => {
                slot.insert(conn.clone());
            }
        }
        add_member(&self.users, identity.root_id().clone(), &conn);
        for channel in channels {
            self.subscribe(&conn, channel.clone());
        }
        Metrics::inc(&self.metrics.connections_open);
        Metrics::inc(&self.metrics.connections_total);
        Ok(conn)
    }

    /// Remove a connection from every index. Only removes the client-id entry if it still points
    /// at this very connection.
    pub fn unregister(&self, conn: &Arc<Connection>) {
        self.clients
            .remove_if(conn.client_id(), |_, current| current.key == conn.key);
        let (root_id, channels) = {
            let mut membership = conn.membership();
            (
                membership.identity.root_id().clone(),
                std::mem::take(&mut membership.channels),
            )
        };
        remove_member(&self.users, &root_id, conn.key);
        for channel in channels {
            remove_member(&self.channels, &channel, conn.key);
        }
        let leftover = conn.outbound.drain().bytes as u64;
        Metrics::sub(&self.metrics.outbound_queued_bytes, leftover);
        Metrics::sub(&self.metrics.connections_open, 1);
    }

    /// Re-authenticate a live connection: move it from its old user's index to the new one's.
    pub fn set_identity(&self, conn: &Arc<Connection>, identity: Identity) {
        let old_root = {
            let mut membership = conn.membership();
            std::mem::replace(&mut membership.identity, identity.clone())
                .root_id()
                .clone()
        };
        if old_root != *identity.root_id() {
            remove_member(&self.users, &old_root, conn.key);
            add_member(&self.users, identity.root_id().clone(), conn);
        }
    }

    /// Subscribe a connection to a channel; a no-op if it already is.
    pub fn subscribe(&self, conn: &Arc<Connection>, channel: Arc<str>) {
        {
            let mut membership = conn.membership();
            if membership.channels.contains(&channel) {
                return;
            }
            membership.channels.push(channel.clone());
        }
        add_member(&self.channels, channel, conn);
    }

    /// Unsubscribe a connection from a channel; a channel with no members stops existing.
    pub fn unsubscribe(&self, conn: &Arc<Connection>, channel: &str) {
        {
            let mut membership = conn.membership();
            let before = membership.channels.len();
            membership.channels.retain(|c| &**c != channel);
            if membership.channels.len() == before {
                return;
            }
        }
        remove_member(&self.channels, channel, conn.key);
    }

    pub fn connection(&self, client_id: &str) -> Option<Arc<Connection>> {
        self.clients.get(client_id).map(|c| c.clone())
    }

    pub fn connection_count(&self) -> usize {
        self.clients.len()
    }

    /// Live connections of one user (root id).
    pub fn user_connection_count(&self, root_id: &str) -> usize {
        self.users.get(root_id).map_or(0, |m| m.len())
    }

    /// Visit every connection (for the heartbeat sweep). Holds each index shard's read lock only
    /// while visiting that shard.
    pub fn for_each_connection(&self, mut visit: impl FnMut(&Arc<Connection>)) {
        for conn in self.clients.iter() {
            visit(conn.value());
        }
    }

    pub fn channel_size(&self, channel: &str) -> usize {
        self.channels.get(channel).map_or(0, |m| m.len())
    }

    /// Queue `frame` on one connection, counting the outcome. Returns whether it was queued.
    pub fn push_frame(&self, conn: &Connection, frame: bytes::Bytes) -> bool {
        let len = frame.len() as u64;
        match conn.outbound.push(frame) {
            PushOutcome::Queued => {
                Metrics::inc(&self.metrics.frames_delivered);
                Metrics::add(&self.metrics.outbound_queued_bytes, len);
                true
            }
            PushOutcome::Overflowed { dropped, bytes } => {
                Metrics::inc(&self.metrics.slow_consumer_closes);
                Metrics::add(&self.metrics.frames_dropped_slow_consumer, dropped as u64);
                Metrics::sub(&self.metrics.outbound_queued_bytes, bytes as u64);
                tracing::warn!(client_id = %conn.client_id(), dropped, "slow consumer closed");
                false
            }
            PushOutcome::Closing => {
                Metrics::inc(&self.metrics.deliveries_to_closed);
                false
            }
        }
    }

    fn deliver(&self, conn: &Connection, delivery: &Delivery) -> bool {
        self.push_frame(conn, delivery.frame_for(conn.dialect()))
    }

    /// Deliver to the connections with these client ids. Unknown ids are ignored. Returns how
    /// many connections the message was queued on.
    pub fn deliver_to_clients<S: AsRef<str>>(
        &self,
        client_ids: &[S],
        delivery: &Delivery,
    ) -> usize {
        let mut seen = HashSet::new();
        let mut delivered = 0;
        for id in client_ids {
            if let Some(conn) = self.clients.get(id.as_ref())
                && seen.insert(conn.key)
                && self.deliver(&conn, delivery)
            {
                delivered += 1;
            }
        }
        delivered
    }

    /// Deliver to every connection of these users (root ids).
    pub fn deliver_to_users<S: AsRef<str>>(&self, root_ids: &[S], delivery: &Delivery) -> usize {
        self.deliver_to_members(&self.users, root_ids, delivery)
    }

    /// Deliver to every connection subscribed to these channels.
    pub fn deliver_to_channels<S: AsRef<str>>(&self, channels: &[S], delivery: &Delivery) -> usize {
        self.deliver_to_members(&self.channels, channels, delivery)
    }

    /// Deliver to every connection on this process.
    pub fn broadcast(&self, delivery: &Delivery) -> usize {
        let mut delivered = 0;
        for conn in self.clients.iter() {
            if self.deliver(&conn, delivery) {
                delivered += 1;
            }
        }
        delivered
    }

    fn deliver_to_members<S: AsRef<str>>(
        &self,
        index: &DashMap<Arc<str>, Members>,
        keys: &[S],
        delivery: &Delivery,
    ) -> usize {
        let mut delivered = 0;
        // One key cannot reach a connection twice; only several keys need de-duplication.
        let mut seen = (keys.len() > 1).then(HashSet::new);
        for key in keys {
            let Some(members) = index.get(key.as_ref()) else {
                continue;
            };
            for (conn_key, conn) in members.iter() {
                if let Some(seen) = seen.as_mut()
                    && !seen.insert(*conn_key)
                {
                    continue;
                }
                if self.deliver(conn, delivery) {
                    delivered += 1;
                }
            }
        }
        delivered
    }

    /// Ask every connection to close with `code` (graceful shutdown).
    pub fn close_all(&self, code: CloseCode) {
        for conn in self.clients.iter() {
            conn.outbound.close(code);
        }
    }
}

fn add_member(index: &DashMap<Arc<str>, Members>, key: Arc<str>, conn: &Arc<Connection>) {
    index.entry(key).or_default().insert(conn.key, conn.clone());
}

fn remove_member(index: &DashMap<Arc<str>, Members>, key: &str, conn_key: ConnKey) {
    let now_empty = match index.get_mut(key) {
        Some(mut members) => {
            members.remove(&conn_key);
            members.is_empty()
        }
        None => false,
    };
    if now_empty {
        index.remove_if(key, |_, members| members.is_empty());
    }
}
