//! The seam between nodes. A [`Broker`] carries every send to the other nodes of a cluster, where
//! its [`Inbound`] side hands it to that node's [`Hub::deliver`], the same call local sends use.
//!
//! - [`SingleNode`]: the default; one node needs nothing else.
//! - [`memory`]: several hubs in one process joined by an in-process bus: the reference for
//!   what every broker must do (origin skip, interest, order), and the test bed for cluster logic.
//! - Redis pub/sub and NATS brokers will sit beside them as `redis.rs` and `nats.rs`.
//!
//! Interest: a broker that routes channel traffic only to nodes with members observes the hub's
//! channels ([`Broker::interest`]): the first local member of a channel subscribes the node to it,
//! the last one leaving unsubscribes it.

pub mod memory;

use std::sync::{Arc, Weak};

use crate::hub::{ChannelObserver, Delivery, Hub, Target};

/// Carries deliveries to other nodes.
pub trait Broker: Send + Sync + std::fmt::Debug + 'static {
    /// This node's id, stamped on everything it publishes.
    fn node_id(&self) -> &str;

    /// Forward a delivery that was already delivered on this node. Must not block: an
    /// implementation queues the message for its own I/O task and counts anything it drops.
    fn publish(&self, target: &Target, delivery: &Delivery);

    /// Start receiving: deliveries published by other nodes go to `inbound`.
    fn attach(&self, inbound: Inbound);

    /// The observer that turns local channel membership into subscriptions, for brokers that
    /// route by interest.
    fn interest(&self) -> Option<Arc<dyn ChannelObserver>> {
        None
    }
}

/// The receiving side of a broker on one node: delivers to its hub, skipping its own echo.
#[derive(Debug, Clone)]
pub struct Inbound {
    node_id: Arc<str>,
    hub: Weak<Hub>,
}

impl Inbound {
    pub fn new(node_id: impl Into<Arc<str>>, hub: &Arc<Hub>) -> Self {
        Self {
            node_id: node_id.into(),
            hub: Arc::downgrade(hub),
        }
    }

    /// Deliver a message published by node `origin`. Returns the local recipient count (zero
    /// for this node's own messages, already delivered when they were sent).
    pub fn deliver(&self, origin: &str, target: &Target, delivery: &Delivery) -> usize {
        if origin == &*self.node_id {
            return 0;
        }
        self.hub
            .upgrade()
            .map_or(0, |hub| hub.deliver(target, delivery))
    }
}

/// A single node: nothing to forward.
#[derive(Debug, Clone)]
pub struct SingleNode {
    node_id: Arc<str>,
}

impl SingleNode {
    pub fn new(node_id: impl Into<Arc<str>>) -> Self {
        Self {
            node_id: node_id.into(),
        }
    }
}

impl Broker for SingleNode {
    fn node_id(&self) -> &str {
        &self.node_id
    }

    fn publish(&self, _target: &Target, _delivery: &Delivery) {}

    fn attach(&self, _inbound: Inbound) {}
}
