//! One live connection as the hub sees it: its ids, identity, channels and outbound queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;

use super::delivery::DialectId;
use super::outbound::OutboundQueue;
use crate::identity::Identity;

/// Process-unique key of a connection; cheaper to hash than the client id and never reused, so a
/// stale socket can never remove a newer one that reuses its client id.
pub type ConnKey = u64;

/// A connection registered in the hub. Shared by the hub's indexes and the connection's task.
#[derive(Debug)]
pub struct Connection {
    pub(crate) key: ConnKey,
    client_id: Arc<str>,
    dialect: DialectId,
    membership: Mutex<Membership>,
    pub(crate) outbound: OutboundQueue,
    inflight_walkers: AtomicUsize,
    /// When the peer was last heard from, in milliseconds on the hub's clock.
    last_seen_ms: AtomicU64,
    /// When the heartbeat last pinged it, in milliseconds on the hub's clock.
    last_ping_ms: AtomicU64,
    /// When it was registered, in milliseconds on the hub's clock (its age in the admin view).
    connected_ms: u64,
}

/// What the hub's indexes hold this connection under; changed only through the hub.
#[derive(Debug)]
pub(crate) struct Membership {
    pub(crate) identity: Identity,
    pub(crate) channels: Vec<Arc<str>>,
    /// The namespace a namespace-dialect connection belongs to.
    pub(crate) namespace: Option<Arc<str>>,
    /// Set by `Hub::unregister`: the connection is leaving every index and must not be added
    /// to one again (a revocation from another task may race with its end).
    pub(crate) unregistered: bool,
}

impl Connection {
    pub(crate) fn new(
        key: ConnKey,
        client_id: Arc<str>,
        dialect: DialectId,
        identity: Identity,
        namespace: Option<Arc<str>>,
        outbound: OutboundQueue,
        now_ms: u64,
    ) -> Self {
        Self {
            key,
            client_id,
            dialect,
            membership: Mutex::new(Membership {
                identity,
                channels: Vec::new(),
                namespace,
                unregistered: false,
            }),
            outbound,
            inflight_walkers: AtomicUsize::new(0),
            last_seen_ms: AtomicU64::new(now_ms),
            last_ping_ms: AtomicU64::new(now_ms),
            connected_ms: now_ms,
        }
    }

    /// This connection's process-unique key (see [`ConnKey`]).
    pub fn key(&self) -> ConnKey {
        self.key
    }

    pub fn client_id(&self) -> &Arc<str> {
        &self.client_id
    }

    pub fn dialect(&self) -> DialectId {
        self.dialect
    }

    pub fn identity(&self) -> Identity {
        self.membership.lock().identity.clone()
    }

    /// The namespace of a namespace-dialect connection.
    pub fn namespace(&self) -> Option<Arc<str>> {
        self.membership.lock().namespace.clone()
    }

    /// Channels this connection is subscribed to.
    pub fn channels(&self) -> Vec<Arc<str>> {
        self.membership.lock().channels.clone()
    }

    /// Whether this connection is subscribed to `channel` (without copying its channel list).
    pub fn is_in_channel(&self, channel: &str) -> bool {
        self.membership
            .lock()
            .channels
            .iter()
            .any(|c| &**c == channel)
    }

    /// How many channels this connection is subscribed to.
    pub fn channel_count(&self) -> usize {
        self.membership.lock().channels.len()
    }

    pub(crate) fn membership(&self) -> parking_lot::MutexGuard<'_, Membership> {
        self.membership.lock()
    }

    /// Record that the peer sent something (any frame, including a pong).
    pub(crate) fn mark_seen(&self, now_ms: u64) {
        self.last_seen_ms.store(now_ms, Ordering::Relaxed);
    }

    pub(crate) fn last_seen_ms(&self) -> u64 {
        self.last_seen_ms.load(Ordering::Relaxed)
    }

    /// When it was registered, in milliseconds on the hub's clock ([`super::Hub::now_ms`]).
    pub fn connected_ms(&self) -> u64 {
        self.connected_ms
    }

    pub(crate) fn last_ping_ms(&self) -> u64 {
        self.last_ping_ms.load(Ordering::Relaxed)
    }

    pub(crate) fn mark_pinged(&self, now_ms: u64) {
        self.last_ping_ms.store(now_ms, Ordering::Relaxed);
    }

    /// Take one of `limit` walker slots; `None` when `limit` calls are already running. The slot
    /// is given back when the permit drops, however the call ends.
    pub(crate) fn try_start_walker(self: &Arc<Self>, limit: usize) -> Option<WalkerPermit> {
        self.inflight_walkers
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()
            .map(|_| WalkerPermit { conn: self.clone() })
    }
}

/// One running walker call of a connection: a semaphore permit over the connection's counter
/// (a counter, not a `tokio::sync::Semaphore`, to keep idle connections small).
#[derive(Debug)]
pub struct WalkerPermit {
    conn: Arc<Connection>,
}

impl Drop for WalkerPermit {
    fn drop(&mut self) {
        self.conn.inflight_walkers.fetch_sub(1, Ordering::AcqRel);
    }
}
