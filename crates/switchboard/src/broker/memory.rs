//! An in-process broker: several hubs in one process, joined by a [`MemoryBus`].
//!
//! It does what every broker must: a delivery reaches every other node exactly once and never its
//! own, messages from one publisher arrive in publish order, and channel traffic goes only to
//! nodes with a local member of the channel (interest follows the hub's channel observer).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::Mutex;

use super::{Broker, Inbound, Relay};
use crate::hub::{ChannelEvent, ChannelObserver, Delivery, Target};

/// The shared medium of one in-process cluster.
#[derive(Debug, Default)]
pub struct MemoryBus {
    nodes: Mutex<HashMap<Arc<str>, NodeEntry>>,
}

#[derive(Debug)]
struct NodeEntry {
    inbound: Option<Inbound>,
    /// Channels with at least one member on that node.
    channels: HashSet<Arc<str>>,
}

impl MemoryBus {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Whether `node` is subscribed to `channel` (has a local member).
    pub fn is_interested(&self, node: &str, channel: &str) -> bool {
        self.nodes
            .lock()
            .get(node)
            .is_some_and(|entry| entry.channels.contains(channel))
    }
}

/// One node's connection to a [`MemoryBus`].
#[derive(Debug)]
pub struct MemoryBroker {
    node_id: Arc<str>,
    bus: Arc<MemoryBus>,
}

impl MemoryBroker {
    pub fn new(bus: Arc<MemoryBus>, node_id: impl Into<Arc<str>>) -> Arc<Self> {
        let node_id = node_id.into();
        bus.nodes.lock().insert(
            node_id.clone(),
            NodeEntry {
                inbound: None,
                channels: HashSet::new(),
            },
        );
        Arc::new(Self { node_id, bus })
    }
}

impl Broker for MemoryBroker {
    fn node_id(&self) -> &str {
        &self.node_id
    }

    fn publish(&self, target: &Target, delivery: &Delivery) -> Relay {
        // Pick the recipients under the lock, deliver outside it: a hub never runs under it.
        let recipients: Vec<Inbound> = {
            let nodes = self.bus.nodes.lock();
            nodes
                .iter()
                .filter(|(id, _)| **id != self.node_id)
                .filter(|(_, entry)| match target {
                    Target::Channels(channels) => {
                        channels.iter().any(|c| entry.channels.contains(c.as_str()))
                    }
                    _ => true,
                })
                .filter_map(|(_, entry)| entry.inbound.clone())
                .collect()
        };
        for inbound in recipients {
            // A real broker sends bytes; a fresh copy here keeps each node's frame cache its own.
            inbound.deliver(&self.node_id, target, &delivery.relayed());
        }
        Relay::Relayed
    }

    fn attach(&self, inbound: Inbound) {
        if let Some(entry) = self.bus.nodes.lock().get_mut(&self.node_id) {
            entry.inbound = Some(inbound);
        }
    }

    fn interest(&self) -> Option<Arc<dyn ChannelObserver>> {
        Some(Arc::new(Interest {
            node_id: self.node_id.clone(),
            bus: self.bus.clone(),
        }))
    }
}

/// Subscribes its node to a channel on the first local member and unsubscribes on the last.
#[derive(Debug)]
struct Interest {
    node_id: Arc<str>,
    bus: Arc<MemoryBus>,
}

impl ChannelObserver for Interest {
    fn on_channel_event(&self, event: &ChannelEvent<'_>) {
        let mut nodes = self.bus.nodes.lock();
        let Some(entry) = nodes.get_mut(&self.node_id) else {
            return;
        };
        match *event {
            ChannelEvent::Joined {
                channel,
                first: true,
                ..
            } => {
                entry.channels.insert(Arc::from(channel));
            }
            ChannelEvent::Left {
                channel,
                last: true,
                ..
            } => {
                entry.channels.remove(channel);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::test_support::{TestNode, frames};

    #[test]
    fn a_channel_message_reaches_every_other_node_once_and_not_its_own_twice() {
        let bus = MemoryBus::new();
        let a = TestNode::new(MemoryBroker::new(bus.clone(), "a"));
        let b = TestNode::new(MemoryBroker::new(bus.clone(), "b"));
        let on_a = a.connect(&["room"]);
        let on_b = b.connect(&["room"]);
        a.publish(&Target::Channels(vec!["room".into()]), "1");
        assert_eq!(frames(&on_a), vec!["1"]);
        assert_eq!(frames(&on_b), vec!["1"]);
    }

    #[test]
    fn interest_follows_the_first_and_last_local_member() {
        let bus = MemoryBus::new();
        let a = TestNode::new(MemoryBroker::new(bus.clone(), "a"));
        let b = TestNode::new(MemoryBroker::new(bus.clone(), "b"));
        assert!(!bus.is_interested("b", "room"));
        let member = b.connect(&["room"]);
        let second = b.connect(&["room"]);
        assert!(bus.is_interested("b", "room"));
        b.hub.unregister(&member);
        assert!(bus.is_interested("b", "room"));
        b.hub.unregister(&second);
        assert!(!bus.is_interested("b", "room"));
        // Nothing on b listens any more, so a's channel traffic is not sent there.
        let listener = b.connect(&["other"]);
        a.publish(&Target::Channels(vec!["room".into()]), "x");
        assert!(frames(&listener).is_empty());
        assert!(!a.hub.metrics().render().is_empty());
    }

    #[test]
    fn user_and_client_targets_cross_nodes_in_publish_order() {
        let bus = MemoryBus::new();
        let a = TestNode::new(MemoryBroker::new(bus.clone(), "a"));
        let b = TestNode::new(MemoryBroker::new(bus.clone(), "b"));
        let on_b = b.connect(&[]);
        let client = on_b.client_id().to_string();
        for n in 0..5 {
            a.publish(&Target::Clients(vec![client.clone()]), &n.to_string());
        }
        a.publish(&Target::Everyone, "all");
        assert_eq!(frames(&on_b), vec!["0", "1", "2", "3", "4", "all"]);
    }
}
