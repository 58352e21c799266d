//! Sending from the server: `notify_users`, `notify_channels`, `notify_clients`, `broadcast` and,
//! inside a walker called over a WebSocket, `notify_self`.
//!
//! Every send is delivered to this node's connections at once (so a walker's notifications reach
//! its caller before the walker's reply, in call order) and then handed to the broker.

use std::sync::Arc;

use serde::Serialize;

use crate::broker::Broker;
use crate::hub::{Connection, Delivery, Hub, Target};
use crate::stats::Metrics;

/// Delivers locally, then forwards through the broker.
#[derive(Debug)]
pub struct Publisher {
    hub: Arc<Hub>,
    broker: Arc<dyn Broker>,
}

impl Publisher {
    pub fn new(hub: Arc<Hub>, broker: Arc<dyn Broker>) -> Self {
        Self { hub, broker }
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    pub fn broker(&self) -> &Arc<dyn Broker> {
        &self.broker
    }

    /// Deliver on this node and forward to the others. Returns the local recipient count.
    pub fn publish(&self, target: &Target, delivery: &Delivery) -> usize {
        let local = self.hub.deliver(target, delivery);
        self.broker.publish(target, delivery);
        local
    }

    /// Serialize `data` once and publish it. A value that cannot be serialized is logged.
    pub fn publish_json<T: Serialize + ?Sized>(&self, target: Target, data: &T) -> usize {
        match Delivery::from_json(data) {
            Ok(delivery) => self.publish(&target, &delivery),
            Err(err) => {
                tracing::error!(%err, "notification payload could not be serialized");
                0
            }
        }
    }
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
    /// Returns the local recipient count.
    pub fn publish(&self, target: &Target, delivery: &Delivery) -> usize {
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
                Metrics::inc(&self.publisher.hub().metrics().client_errors);
            }
        }
    }

    /// Send to every connection of these users: user ids, or Jac Cloud root ids (`n::<user id>`).
    /// Unknown ids are ignored.
    pub fn notify_users<S: AsRef<str>, T: Serialize + ?Sized>(&self, user_ids: &[S], data: &T) {
        self.publisher
            .publish_json(Target::Users(owned(user_ids)), data);
    }

    /// Send to every connection subscribed to these channels.
    pub fn notify_channels<S: AsRef<str>, T: Serialize + ?Sized>(&self, channels: &[S], data: &T) {
        self.publisher
            .publish_json(Target::Channels(owned(channels)), data);
    }

    /// Send to the connections with these client ids.
    pub fn notify_clients<S: AsRef<str>, T: Serialize + ?Sized>(&self, client_ids: &[S], data: &T) {
        self.publisher
            .publish_json(Target::Clients(owned(client_ids)), data);
    }

    /// Send to every connection.
    pub fn broadcast<T: Serialize + ?Sized>(&self, data: &T) {
        self.publisher.publish_json(Target::Everyone, data);
    }
}

fn owned<S: AsRef<str>>(ids: &[S]) -> Vec<String> {
    ids.iter().map(|s| s.as_ref().to_string()).collect()
}
