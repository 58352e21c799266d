//! One live connection as the hub sees it: its ids, identity, channels and outbound queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;

use super::outbound::OutboundQueue;
use crate::dialect::Dialect;
use crate::identity::Identity;

/// Process-unique key of a connection; cheaper to hash than the client id and never reused, so a
/// stale socket can never remove a newer one that reuses its client id.
pub type ConnKey = u64;

/// A connection registered in the hub. Shared by the hub's indexes and the connection's task.
#[derive(Debug)]
pub struct Connection {
    pub(crate) key: ConnKey,
    client_id: Arc<str>,
    dialect: Dialect,
    membership: Mutex<Membership>,
    pub(crate) outbound: OutboundQueue,
    inflight_walkers: AtomicUsize,
    /// When the peer was last heard from, in milliseconds on the hub's clock.
    last_seen_ms: AtomicU64,
    /// When the heartbeat last pinged it, in milliseconds on the hub's clock.
    last_ping_ms: AtomicU64,
}

/// What the hub's indexes hold this connection under; changed only through the hub.
#[derive(Debug)]
pub(crate) struct Membership {
    pub(crate) identity: Identity,
    pub(crate) channels: Vec<Arc<str>>,
}

impl Connection {
    pub(crate) fn new(
        key: ConnKey,
        client_id: Arc<str>,
        dialect: Dialect,
        identity: Identity,
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
            }),
            outbound,
            inflight_walkers: AtomicUsize::new(0),
            last_seen_ms: AtomicU64::new(now_ms),
            last_ping_ms: AtomicU64::new(now_ms),
        }
    }

    pub fn client_id(&self) -> &Arc<str> {
        &self.client_id
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub fn identity(&self) -> Identity {
        self.membership.lock().identity.clone()
    }

    /// Channels this connection is subscribed to.
    pub fn channels(&self) -> Vec<Arc<str>> {
        self.membership.lock().channels.clone()
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

    pub(crate) fn last_ping_ms(&self) -> u64 {
        self.last_ping_ms.load(Ordering::Relaxed)
    }

    pub(crate) fn mark_pinged(&self, now_ms: u64) {
        self.last_ping_ms.store(now_ms, Ordering::Relaxed);
    }

    /// Reserve a walker slot; `false` when `limit` calls are already running.
    pub(crate) fn try_start_walker(&self, limit: usize) -> bool {
        self.inflight_walkers
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .is_ok()
    }

    pub(crate) fn finish_walker(&self) {
        self.inflight_walkers.fetch_sub(1, Ordering::AcqRel);
    }
}
