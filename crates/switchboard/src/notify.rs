//! Sending from the server: `notify_users`, `notify_channels`, `notify_clients`, `broadcast` and,
//! inside a walker called over a WebSocket, `notify_self`.
//!
//! Every send is delivered to this process's connections at once (so a walker's notifications
//! reach its caller before the walker's reply, in call order) and then handed to the backplane.

use std::sync::Arc;

use serde::Serialize;

use crate::backplane::Backplane;
use crate::hub::{Connection, Delivery, Hub};
use crate::stats::Metrics;

/// Who a delivery is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Users(Vec<String>),
    Channels(Vec<String>),
    Clients(Vec<String>),
    Everyone,
}

/// Delivers locally, then forwards through the backplane.
#[derive(Debug)]
pub struct Publisher {
    hub: Arc<Hub>,
    backplane: Arc<dyn Backplane>,
}

impl Publisher {
    pub fn new(hub: Arc<Hub>, backplane: Arc<dyn Backplane>) -> Self {
        Self { hub, backplane }
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// Deliver on this process and forward to the others. Returns the local recipient count.
    pub fn publish(&self, target: &Target, delivery: &Delivery) -> usize {
        let local = match target {
            Target::Users(ids) => self.hub.deliver_to_users(ids, delivery),
            Target::Channels(ids) => self.hub.deliver_to_channels(ids, delivery),
            Target::Clients(ids) => self.hub.deliver_to_clients(ids, delivery),
            Target::Everyone => self.hub.broadcast(delivery),
        };
        self.backplane.publish(target, delivery);
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

    /// Send to the connection that called this walker. A no-op outside a WebSocket call.
    pub fn notify_self<T: Serialize + ?Sized>(&self, data: &T) {
        let Some(origin) = &self.origin else {
            return;
        };
        match serde_json::to_vec(data) {
            Ok(bytes) => {
                let delivery = Delivery::from_raw_json(bytes.into());
                self.publisher
                    .hub()
                    .push_frame(origin, delivery.frame_for(origin.dialect()));
            }
            Err(err) => {
                tracing::error!(%err, "notify_self payload could not be serialized");
                Metrics::inc(&self.publisher.hub().metrics().client_errors);
            }
        }
    }

    /// Send to every connection of these users (`n::...` root ids). Unknown ids are ignored.
    pub fn notify_users<S: AsRef<str>, T: Serialize + ?Sized>(&self, root_ids: &[S], data: &T) {
        self.publisher
            .publish_json(Target::Users(owned(root_ids)), data);
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
