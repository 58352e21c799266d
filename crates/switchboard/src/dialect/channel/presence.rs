//! Presence as seed 004 shows it: when a connection joins or leaves a channel (or disconnects),
//! the channel's other channel-dialect members receive
//! `{"from":ID,"channel":C,"cmd":"online-update","param":{"userID":U,"connected":BOOL}}`.
//!
//! Every join and leave reaches the hub's channel observer, whatever the dialect of the
//! connection (a Jac connection is a channel member too). The observer runs under the hub's
//! channel entry, so it only records the change and queues it; one task turns each change into a
//! delivery, in the order the changes happened. The delivery is restricted to this dialect
//! ([`Delivery::only_for`]; Jac has no presence), skips the connection it is about, and goes
//! through the broker like any channel send, so members on other nodes hear of it too.
//!
//! A channel with no channel-dialect member on this node (a Jac-only room) is not walked
//! locally: a join storm there costs one queued change per join, not one walk of the room.

use std::sync::{Arc, Weak};

use bytes::Bytes;
use dashmap::DashMap;
use tokio::sync::mpsc;

use super::{NAME, user_id_of};
use crate::hub::{ChannelEvent, ChannelObserver, ConnKey, Delivery, DialectId, Hub, Target};
use crate::json::push_string;
use crate::notify::Publisher;

/// The `cmd` of presence frames.
pub const ONLINE_UPDATE: &str = "online-update";

/// One join or leave, as recorded under the hub's lock.
#[derive(Debug)]
struct Change {
    channel: Arc<str>,
    client_id: Arc<str>,
    /// The account's user id, or the client id of an anonymous connection.
    user_id: Arc<str>,
    conn: ConnKey,
    connected: bool,
}

impl Change {
    fn delivery(&self) -> Delivery {
        let mut param = Vec::with_capacity(self.user_id.len() + 40);
        param.extend_from_slice(br#"{"userID":"#);
        push_string(&mut param, &self.user_id);
        param.extend_from_slice(if self.connected {
            br#","connected":true}"#
        } else {
            br#","connected":false}"#
        });
        Delivery::from_raw_json(Bytes::from(param))
            .with_event(ONLINE_UPDATE)
            .with_sender(self.client_id.clone(), None)
            .only_for(NAME)
            .excluding(self.conn)
    }
}

/// The hub's channel observer for presence.
#[derive(Debug)]
struct PresenceFeed {
    changes: mpsc::UnboundedSender<Change>,
    dialect: DialectId,
    /// Channel-dialect members per channel on this node: who could hear a change here.
    listeners: Arc<DashMap<Arc<str>, usize>>,
}

impl ChannelObserver for PresenceFeed {
    fn on_channel_event(&self, event: &ChannelEvent<'_>) {
        let (channel, conn, connected) = match *event {
            ChannelEvent::Joined { channel, conn, .. } => (channel, conn, true),
            ChannelEvent::Left { channel, conn, .. } => (channel, conn, false),
        };
        let channel: Arc<str> = Arc::from(channel);
        if conn.dialect() == self.dialect {
            if connected {
                *self.listeners.entry(channel.clone()).or_default() += 1;
            } else {
                self.listeners.remove_if_mut(&channel, |_, count| {
                    *count -= 1;
                    *count == 0
                });
            }
        }
        let identity = conn.identity();
        let user_id = user_id_of(conn, &identity);
        // Fails only once the task is gone, which happens only as the app shuts down.
        let _ = self.changes.send(Change {
            channel,
            client_id: conn.client_id().clone(),
            user_id,
            conn: conn.key(),
            connected,
        });
    }
}

/// Observe `hub`'s channels and start the task that publishes presence through `publisher`.
/// The task ends when the hub (which holds the observer) is dropped.
pub fn start(hub: &Hub, publisher: &Arc<Publisher>, dialect: DialectId) {
    let (changes, queued) = mpsc::unbounded_channel();
    let listeners = Arc::new(DashMap::new());
    hub.observe_channels(Arc::new(PresenceFeed {
        changes,
        dialect,
        listeners: listeners.clone(),
    }));
    tokio::spawn(publish(queued, Arc::downgrade(publisher), listeners));
}

async fn publish(
    mut queued: mpsc::UnboundedReceiver<Change>,
    publisher: Weak<Publisher>,
    listeners: Arc<DashMap<Arc<str>, usize>>,
) {
    while let Some(change) = queued.recv().await {
        let Some(publisher) = publisher.upgrade() else {
            return;
        };
        let delivery = change.delivery();
        let target = Target::Channels(vec![change.channel.to_string()]);
        if listeners.contains_key(&change.channel) {
            publisher.hub().deliver(&target, &delivery);
        }
        publisher.broker().publish(&target, &delivery);
    }
}
