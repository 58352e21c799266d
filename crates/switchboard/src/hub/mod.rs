//! The hub: every live connection on this node, indexed by client id, by user, by channel and by
//! namespace, and the fan-out that puts one shared frame into many outbound queues.
//!
//! The hub knows no dialect and no other node. A dialect registers connections and asks for
//! deliveries; each connection's frames come from its dialect's [`FrameEncoder`]; the broker (see
//! [`crate::broker`]) carries deliveries between nodes and hands them to [`Hub::deliver`] on each.
//! No lock here is ever held across an `.await`.
//!
//! Over 500 lines because the indexes and the fan-out that walks them belong together: every
//! index change (register, subscribe, identity) and every delivery takes the same entries, and
//! splitting them would spread the locking rules over several files.
//!
//! - `client_slot`: the socket or sockets known by one client id.
//! - `connection`: one live connection (ids, identity, channels, outbound queue).
//! - `delivery`: a message on its way, the per-dialect frame cache and the encoder seam.
//! - `observer`: channel joins and leaves, for presence and the broker's interest; slow
//!   consumers, for the statistics.
//! - `outbound`: the bounded per-connection queue.
//! - `target`: who a delivery is for.

mod client_slot;
mod connection;
mod delivery;
mod observer;
mod outbound;
mod target;
#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use bytes::Bytes;
use dashmap::DashMap;
use parking_lot::RwLock;

pub use connection::{ConnKey, Connection, WalkerPermit};
pub use delivery::{Delivery, DialectId, FrameEncoder, MAX_DIALECTS, Route};
pub use observer::{ChannelEvent, ChannelObserver, OverflowObserver};
pub use outbound::{Batch, OutboundQueue, PushOutcome};
pub use target::Target;

use crate::close_code::{self, CloseCode};
use crate::identity::{Identity, user_id_of_address};
use crate::metrics::{DropReason, Metrics};
use client_slot::ClientSlot;
use delivery::FrameCache;

type Members = HashMap<ConnKey, Arc<Connection>>;

/// Bounds of each connection's outbound queue.
#[derive(Debug, Clone, Copy)]
pub struct QueueBounds {
    pub messages: usize,
    pub bytes: usize,
}

/// The connection limits the hub enforces atomically as it indexes a connection.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Connections on this node.
    pub total: usize,
    /// Connections of one authenticated user (the public user is many people and has none).
    pub per_user: usize,
}

/// A new connection, as a dialect's connect path describes it.
#[derive(Debug)]
pub struct Registration {
    pub client_id: Arc<str>,
    pub dialect: DialectId,
    pub identity: Identity,
    pub channels: Vec<Arc<str>>,
    pub namespace: Option<Arc<str>>,
    /// Frames queued before the connection is reachable through any index, so nothing sent to
    /// its user or channels can overtake them.
    pub greeting: Vec<Bytes>,
    /// Whether other sockets may already hold this client id (the namespace dialect's `?uuid=`,
    /// shared by a browser's tabs); if not, a taken id is refused with `ClientIdInUse`.
    pub shared_client_id: bool,
}

/// Why a connection was not registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    #[error("client id already connected")]
    ClientIdInUse,
    /// A connection limit is reached; close the socket with this code.
    #[error("connection limit reached")]
    Full(CloseCode),
}

/// The user already has as many connections as allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the user has too many connections")]
pub struct UserFull;

#[derive(Debug)]
pub struct Hub {
    /// Origin of the hub's millisecond clock (liveness timestamps).
    epoch: Instant,
    next_key: AtomicU64,
    /// Registered connections plus reservations in progress, for the total limit.
    admitted: AtomicUsize,
    clients: DashMap<Arc<str>, ClientSlot>,
    users: DashMap<Arc<str>, Members>,
    channels: DashMap<Arc<str>, Members>,
    namespaces: DashMap<Arc<str>, Members>,
    encoders: Box<[Arc<dyn FrameEncoder>]>,
    observers: RwLock<Vec<Arc<dyn ChannelObserver>>>,
    overflows: std::sync::OnceLock<Arc<dyn OverflowObserver>>,
    queue_bounds: QueueBounds,
    limits: ConnectionLimits,
    metrics: Arc<Metrics>,
}

impl Hub {
    /// A hub whose connections speak the dialects of `encoders` (a connection's [`DialectId`] is
    /// its dialect's position in this list).
    pub fn new(
        encoders: Vec<Arc<dyn FrameEncoder>>,
        queue_bounds: QueueBounds,
        limits: ConnectionLimits,
        metrics: Arc<Metrics>,
    ) -> Self {
        assert!(encoders.len() <= MAX_DIALECTS, "too many dialects");
        assert!(
            metrics.dialect_count() >= encoders.len(),
            "the metrics must know every dialect"
        );
        Self {
            epoch: Instant::now(),
            next_key: AtomicU64::new(1),
            admitted: AtomicUsize::new(0),
            clients: DashMap::new(),
            users: DashMap::new(),
            channels: DashMap::new(),
            namespaces: DashMap::new(),
            encoders: encoders.into_boxed_slice(),
            observers: RwLock::new(Vec::new()),
            overflows: std::sync::OnceLock::new(),
            queue_bounds,
            limits,
            metrics,
        }
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The id a connection of the dialect at `index` in the encoder list gets.
    pub fn dialect_id(index: usize) -> DialectId {
        DialectId(index as u8)
    }

    /// The name of the dialect a connection with `id` speaks.
    pub fn dialect_name(&self, id: DialectId) -> &'static str {
        self.encoders.get(id.index()).map_or("", |e| e.dialect())
    }

    /// Be told of every channel join and leave from now on.
    pub fn observe_channels(&self, observer: Arc<dyn ChannelObserver>) {
        self.observers.write().push(observer);
    }

    /// Milliseconds since the hub started: the clock of liveness timestamps.
    pub fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Index a new connection. The total and per-user limits are checked and taken in the same
    /// step, under the index entries, so concurrent connects cannot overshoot them.
    pub fn register(&self, registration: Registration) -> Result<Arc<Connection>, RegisterError> {
        let Registration {
            client_id,
            dialect,
            identity,
            channels,
            namespace,
            greeting,
            shared_client_id,
        } = registration;
        let total = self.limits.total;
        if self
            .admitted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < total).then_some(n + 1)
            })
            .is_err()
        {
            return Err(RegisterError::Full(close_code::TRY_AGAIN_LATER));
        }
        let key = self.next_key.fetch_add(1, Ordering::Relaxed);
        let queue = OutboundQueue::new(self.queue_bounds.messages, self.queue_bounds.bytes);
        let conn = Arc::new(Connection::new(
            key,
            client_id.clone(),
            dialect,
            identity.clone(),
            namespace.clone(),
            queue,
            self.now_ms(),
        ));
        for frame in greeting {
            self.push_frame(&conn, frame);
        }
        if self.add_user_member(&identity, &conn).is_err() {
            self.admitted.fetch_sub(1, Ordering::AcqRel);
            return Err(RegisterError::Full(close_code::TOO_MANY_FOR_USER));
        }
        match self.clients.entry(client_id) {
            dashmap::Entry::Occupied(mut slot) if shared_client_id => {
                slot.get_mut().push(conn.clone());
            }
            dashmap::Entry::Occupied(_) => {
                remove_member(&self.users, identity.user_id(), key);
                self.admitted.fetch_sub(1, Ordering::AcqRel);
                return Err(RegisterError::ClientIdInUse);
            }
            dashmap::Entry::Vacant(slot) => {
                slot.insert(ClientSlot::One(conn.clone()));
            }
        }
        if let Some(namespace) = namespace {
            self.namespaces
                .entry(namespace)
                .or_default()
                .insert(key, conn.clone());
        }
        for channel in channels {
            self.subscribe(&conn, channel);
        }
        // `accepted` is counted by the connect path once the socket is live.
        self.metrics.dialect(conn.dialect()).connections.inc();
        Ok(conn)
    }

    /// Remove a connection from every index. Only removes this very connection from its client
    /// id's entry: other sockets sharing the id stay reachable.
    pub fn unregister(&self, conn: &Arc<Connection>) {
        let mut removed = false;
        self.clients.remove_if_mut(conn.client_id(), |_, slot| {
            if slot.only(conn.key) {
                removed = true;
                return true;
            }
            removed = slot.remove(conn.key);
            false
        });
        let (user_id, channels, namespace) = {
            let mut membership = conn.membership();
            membership.unregistered = true;
            (
                membership.identity.user_id().clone(),
                std::mem::take(&mut membership.channels),
                membership.namespace.take(),
            )
        };
        remove_member(&self.users, &user_id, conn.key);
        if let Some(namespace) = namespace {
            remove_member(&self.namespaces, &namespace, conn.key);
        }
        for channel in channels {
            self.leave_channel(&channel, conn);
        }
        let leftover = conn.outbound.drain().bytes as i64;
        self.metrics.outbound_queued_bytes.dec_by(leftover);
        if removed {
            self.admitted.fetch_sub(1, Ordering::AcqRel);
            self.metrics.dialect(conn.dialect()).connections.dec();
        }
    }

    /// Re-authenticate a live connection: move it from its old user's index to the new one's.
    /// Over the new user's connection limit it keeps its old identity.
    ///
    /// Other tasks may call this for the same connection (a revocation beside the connection's
    /// own `change_user`), so the whole move happens under the connection's membership lock.
    /// While it is held only the user index is touched, and no code holding a user index entry
    /// takes a membership lock, so the two cannot wait on each other.
    pub fn set_identity(&self, conn: &Arc<Connection>, identity: Identity) -> Result<(), UserFull> {
        let mut membership = conn.membership();
        if membership.unregistered {
            return Ok(());
        }
        if !membership.identity.same_user(&identity) {
            self.add_user_member(&identity, conn)?;
            remove_member(&self.users, membership.identity.user_id(), conn.key);
        }
        membership.identity = identity;
        Ok(())
    }

    /// Add `conn` to `identity`'s user index entry unless that user is at its limit.
    fn add_user_member(&self, identity: &Identity, conn: &Arc<Connection>) -> Result<(), UserFull> {
        let mut members = self.users.entry(identity.user_id().clone()).or_default();
        if identity.is_authenticated() && members.len() >= self.limits.per_user {
            let empty = members.is_empty();
            drop(members);
            if empty {
                self.users
                    .remove_if(identity.user_id(), |_, members| members.is_empty());
            }
            return Err(UserFull);
        }
        members.insert(conn.key, conn.clone());
        Ok(())
    }

    /// Subscribe a connection to a channel. Returns the channel's member count on this node
    /// afterwards (unchanged if it already was a member).
    pub fn subscribe(&self, conn: &Arc<Connection>, channel: Arc<str>) -> usize {
        {
            let mut membership = conn.membership();
            if membership.channels.contains(&channel) {
                drop(membership);
                return self.channel_size(&channel);
            }
            membership.channels.push(channel.clone());
        }
        let mut members = self.channels.entry(channel.clone()).or_default();
        let first = members.is_empty();
        members.insert(conn.key, conn.clone());
        self.tell_observers(&ChannelEvent::Joined {
            channel: &channel,
            conn,
            first,
        });
        members.len()
    }

    /// Unsubscribe a connection from a channel; a channel with no members stops existing.
    /// Returns the channel's member count on this node afterwards.
    pub fn unsubscribe(&self, conn: &Arc<Connection>, channel: &str) -> usize {
        {
            let mut membership = conn.membership();
            let before = membership.channels.len();
            membership.channels.retain(|c| &**c != channel);
            if membership.channels.len() == before {
                drop(membership);
                return self.channel_size(channel);
            }
        }
        self.leave_channel(channel, conn)
    }

    fn leave_channel(&self, channel: &str, conn: &Arc<Connection>) -> usize {
        let remaining = match self.channels.get_mut(channel) {
            Some(mut members) => {
                if members.remove(&conn.key).is_some() {
                    self.tell_observers(&ChannelEvent::Left {
                        channel,
                        conn,
                        last: members.is_empty(),
                    });
                }
                members.len()
            }
            None => return 0,
        };
        if remaining == 0 {
            self.channels
                .remove_if(channel, |_, members| members.is_empty());
        }
        remaining
    }

    fn tell_observers(&self, event: &ChannelEvent<'_>) {
        for observer in self.observers.read().iter() {
            observer.on_channel_event(event);
        }
    }

    /// The connection with this client id (the first, when several sockets share it).
    pub fn connection(&self, client_id: &str) -> Option<Arc<Connection>> {
        self.clients.get(client_id).map(|slot| slot.first().clone())
    }

    /// Every socket registered under this client id.
    pub fn connections_of_client(&self, client_id: &str) -> Vec<Arc<Connection>> {
        self.clients
            .get(client_id)
            .map(|slot| slot.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Live connections on this node (sockets, not distinct client ids).
    pub fn connection_count(&self) -> usize {
        self.clients.iter().map(|slot| slot.len()).sum()
    }

    /// Live connections of one user.
    pub fn user_connection_count(&self, user_id: &str) -> usize {
        self.users.get(user_id).map_or(0, |m| m.len())
    }

    /// The live connections of one user (for revocation and role changes).
    pub fn user_connections(&self, user_id: &str) -> Vec<Arc<Connection>> {
        self.users
            .get(user_id)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The members of a channel on this node.
    pub fn channel_members(&self, channel: &str) -> Vec<Arc<Connection>> {
        self.channels
            .get(channel)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The members of a namespace on this node.
    pub fn namespace_members(&self, namespace: &str) -> Vec<Arc<Connection>> {
        self.namespaces
            .get(namespace)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// How many connections a namespace has on this node.
    pub fn namespace_size(&self, namespace: &str) -> usize {
        self.namespaces.get(namespace).map_or(0, |m| m.len())
    }

    /// Visit every connection (for the heartbeat sweep). Holds each index shard's read lock only
    /// while visiting that shard.
    pub fn for_each_connection(&self, mut visit: impl FnMut(&Arc<Connection>)) {
        for slot in self.clients.iter() {
            slot.iter().for_each(&mut visit);
        }
    }

    /// Every channel with members on this node, with its member count.
    pub fn channel_sizes(&self) -> Vec<(Arc<str>, usize)> {
        self.channels
            .iter()
            .map(|entry| (entry.key().clone(), entry.value().len()))
            .collect()
    }

    /// Tell `observer` of every slow consumer from now on (one observer per hub; a second call
    /// is ignored).
    pub fn observe_overflows(&self, observer: Arc<dyn OverflowObserver>) {
        let _ = self.overflows.set(observer);
    }

    pub fn channel_size(&self, channel: &str) -> usize {
        self.channels.get(channel).map_or(0, |m| m.len())
    }

    /// Queue `frame` on one connection (a reply or error frame), counting the outcome. Returns
    /// whether it was queued.
    pub fn push_frame(&self, conn: &Connection, frame: Bytes) -> bool {
        let mut tally = Tally::default();
        let queued = self.enqueue(conn, frame, &mut tally);
        tally.record(&self.metrics);
        queued
    }

    /// Queue one frame, adding successes to `tally` (counted once per fan-out) and counting the
    /// rare failures at once.
    fn enqueue(&self, conn: &Connection, frame: Bytes, tally: &mut Tally) -> bool {
        let len = frame.len() as u64;
        match conn.outbound.push(frame) {
            PushOutcome::Queued => {
                tally.frames += 1;
                tally.bytes += len;
                true
            }
            PushOutcome::Overflowed { dropped, bytes } => {
                self.metrics.slow_consumer_closes.inc();
                self.metrics
                    .dropped(DropReason::SlowConsumer)
                    .inc_by(dropped as u64);
                self.metrics.outbound_queued_bytes.dec_by(bytes as i64);
                tracing::warn!(client_id = %conn.client_id(), dropped, "slow consumer closed");
                if let Some(observer) = self.overflows.get() {
                    observer.on_overflow(conn, dropped);
                }
                false
            }
            PushOutcome::Closing => {
                self.metrics.dropped(DropReason::RecipientClosed).inc();
                false
            }
        }
    }

    /// Deliver to every connection `target` names on this node. Returns on how many connections
    /// the message was queued. Each connection receives it at most once, even when named twice.
    pub fn deliver(&self, target: &Target, delivery: &Delivery) -> usize {
        let mut fanout = Fanout {
            hub: self,
            frames: FrameCache::new(delivery, &self.encoders),
            tally: Tally::default(),
            delivered: 0,
        };
        match target {
            Target::Clients(ids) => {
                let mut seen = (ids.len() > 1).then(HashSet::new);
                for id in ids {
                    let Some(slot) = self.clients.get(id.as_str()) else {
                        continue;
                    };
                    for conn in slot.iter() {
                        if first_visit(&mut seen, conn.key) {
                            fanout.send(conn, &Route::default());
                        }
                    }
                }
            }
            Target::Users(ids) => fanout.members(
                &self.users,
                ids.iter().map(|id| user_id_of_address(id)),
                ids.len(),
                |_| Route::default(),
            ),
            Target::Channels(ids) => fanout.members(
                &self.channels,
                ids.iter().map(String::as_str),
                ids.len(),
                |channel| Route {
                    channel: Some(channel),
                    namespace: None,
                },
            ),
            Target::Namespace(name) => fanout.members(
                &self.namespaces,
                std::iter::once(name.as_str()),
                1,
                |namespace| Route {
                    channel: None,
                    namespace: Some(namespace),
                },
            ),
            Target::Everyone => {
                for slot in self.clients.iter() {
                    for conn in slot.iter() {
                        fanout.send(conn, &Route::default());
                    }
                }
            }
        }
        fanout.finish()
    }

    /// Deliver to one connection known by handle (`notify_self`).
    pub fn deliver_to_connection(&self, conn: &Connection, delivery: &Delivery) -> bool {
        let mut frames = FrameCache::new(delivery, &self.encoders);
        if frames.excludes(conn) {
            return false;
        }
        let frame = frames.frame(conn.dialect(), &Route::default());
        if frame.is_empty() {
            return false;
        }
        self.push_frame(conn, frame)
    }

    /// Ask every connection to close with `code` (graceful shutdown).
    pub fn close_all(&self, code: CloseCode) {
        for slot in self.clients.iter() {
            for conn in slot.iter() {
                conn.outbound.close(code);
            }
        }
    }
}

/// Successful enqueues of one fan-out, added to the shared counters once at its end: one atomic
/// add per fan-out instead of two per recipient.
#[derive(Default)]
struct Tally {
    frames: u64,
    bytes: u64,
}

impl Tally {
    fn record(self, metrics: &Metrics) {
        if self.frames > 0 {
            metrics.deliveries.inc_by(self.frames);
            metrics.outbound_queued_bytes.inc_by(self.bytes as i64);
        }
    }
}

/// One delivery in progress.
struct Fanout<'a> {
    hub: &'a Hub,
    frames: FrameCache<'a>,
    tally: Tally,
    delivered: usize,
}

impl Fanout<'_> {
    fn send(&mut self, conn: &Connection, route: &Route<'_>) {
        if self.frames.excludes(conn) {
            return;
        }
        let frame = self.frames.frame(conn.dialect(), route);
        // Empty: this connection's dialect does not carry the delivery.
        if frame.is_empty() {
            return;
        }
        if self.hub.enqueue(conn, frame, &mut self.tally) {
            self.delivered += 1;
        }
    }

    /// Send to the members of each of `keys` in `index`, each connection once.
    fn members<'k>(
        &mut self,
        index: &DashMap<Arc<str>, Members>,
        keys: impl Iterator<Item = &'k str>,
        key_count: usize,
        route_of: impl Fn(&'k str) -> Route<'k>,
    ) {
        // One key cannot reach a connection twice; only several keys need de-duplication.
        let mut seen = (key_count > 1).then(HashSet::new);
        for key in keys {
            let Some(members) = index.get(key) else {
                continue;
            };
            let route = route_of(key);
            self.frames.next_route();
            for (conn_key, conn) in members.iter() {
                if first_visit(&mut seen, *conn_key) {
                    self.send(conn, &route);
                }
            }
        }
    }

    fn finish(self) -> usize {
        self.tally.record(&self.hub.metrics);
        self.delivered
    }
}

fn first_visit(seen: &mut Option<HashSet<ConnKey>>, key: ConnKey) -> bool {
    seen.as_mut().is_none_or(|seen| seen.insert(key))
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
