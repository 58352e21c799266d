//! Sending from the server: `notify_users`, `notify_channels`, `notify_clients`, `broadcast` and,
//! inside a walker called over a WebSocket, `notify_self`.
//!
//! Every send is delivered to this node's connections at once (so a walker's notifications reach
//! its caller before the walker's reply, in call order) and then handed to the broker.

use std::sync::Arc;

use serde::Serialize;

use crate::broker::{Broker, Relay};
use crate::hub::{Connection, Delivery, Hub, Target};
use crate::ops::Operations;

/// Delivers locally, then forwards through the broker.
#[derive(Debug)]
pub struct Publisher {
    hub: Arc<Hub>,
    broker: Arc<dyn Broker>,
    /// Told of every send, for the statistics and the activity log.
    ops: Arc<Operations>,
}

impl Publisher {
    pub fn new(hub: Arc<Hub>, broker: Arc<dyn Broker>, ops: Arc<Operations>) -> Self {
        Self { hub, broker, ops }
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    pub fn broker(&self) -> &Arc<dyn Broker> {
        &self.broker
    }

    /// Deliver on this node and forward to the others: the local recipient count, and whether
    /// the other nodes will get it.
    pub fn publish(&self, target: &Target, delivery: &Delivery) -> Published {
        let local = self.hub.deliver(target, delivery);
        self.ops.sent(target, delivery);
        let relay = self.broker.publish(target, delivery);
        Published { local, relay }
    }

    /// Serialize `data` once and publish it. A value that cannot be serialized is logged (and
    /// reaches no one, so nothing is relayed either).
    pub fn publish_json<T: Serialize + ?Sized>(&self, target: Target, data: &T) -> Published {
        match Delivery::from_json(data) {
            Ok(delivery) => self.publish(&target, &delivery),
            Err(err) => {
                tracing::error!(%err, "notification payload could not be serialized");
                Published {
                    local: 0,
                    relay: Relay::Relayed,
                }
            }
        }
    }
}

/// The outcome of one send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// Connections of this node it was queued to.
    pub local: usize,
    /// Whether the other nodes will get it (always relayed on a single node).
    pub relay: Relay,
}

/// The notify handle a walker body receives (and the app gets from [`crate::Switchboard`]).
#[derive(Debug, Clone)]
pub struct Notifier {
    publisher: Arc<Publisher>,
    origin: Option<Arc<Connection>>,
}

impl Notifier {
    pub(crate) fn new(publisher: Arc<Publisher>, origin: Option<Arc<Connection>>) -> Self {
        Self { publisher, origin }
    }

    /// The client id of the connection that called this walker; `None` over REST.
    pub fn origin_client_id(&self) -> Option<&str> {
        self.origin.as_deref().map(|conn| &**conn.client_id())
    }

    /// Deliver an already-built message (a publish item) here and on every other node.
    pub fn publish(&self, target: &Target, delivery: &Delivery) -> Published {
        self.publisher.publish(target, delivery)
    }

    /// Send to the connection that called this walker. A no-op outside a WebSocket call.
    pub fn notify_self<T: Serialize + ?Sized>(&self, data: &T) {
        let Some(origin) = &self.origin else {
            return;
        };
        match Delivery::from_json(data) {
            Ok(delivery) => {
                self.publisher
                    .hub()
                    .deliver_to_connection(origin, &delivery);
            }
            Err(err) => {
                tracing::error!(%err, "notify_self payload could not be serialized");
                self.publisher.hub().metrics().client_errors.inc();
            }
        }
    }

    // Each send below returns whether the other nodes of a cluster will get it: anything but
    // `Relay::Relayed` means only this node's connections did (the backplane is down or behind).

    /// Send to every connection of these users: user ids, or Jac Cloud root ids (`n::<user id>`).
    /// Unknown ids are ignored.
    pub fn notify_users<S: AsRef<str>, T: Serialize + ?Sized>(
        &self,
        user_ids: &[S],
        data: &T,
    ) -> Relay {
        self.publisher
            .publish_json(Target::Users(owned(user_ids)), data)
            .relay
    }

    /// Send to every connection subscribed to these channels.
    pub fn notify_channels<S: AsRef<str>, T: Serialize + ?Sized>(
        &self,
        channels: &[S],
        data: &T,
    ) -> Relay {
        self.publisher
            .publish_json(Target::Channels(owned(channels)), data)
            .relay
    }

    /// Send to the connections with these client ids.
    pub fn notify_clients<S: AsRef<str>, T: Serialize + ?Sized>(
        &self,
        client_ids: &[S],
        data: &T,
    ) -> Relay {
        self.publisher
            .publish_json(Target::Clients(owned(client_ids)), data)
            .relay
    }

    /// Send to every connection.
    pub fn broadcast<T: Serialize + ?Sized>(&self, data: &T) -> Relay {
        self.publisher.publish_json(Target::Everyone, data).relay
    }
}

fn owned<S: AsRef<str>>(ids: &[S]) -> Vec<String> {
    ids.iter().map(|s| s.as_ref().to_string()).collect()
}
