//! A hub with a pass-through dialect and a broker, for unit tests of the hub and its seams.

use std::sync::Arc;

use bytes::Bytes;

use super::{
    ConnectionLimits, Delivery, FrameEncoder, Hub, QueueBounds, Registration, Route, Target,
};
use crate::broker::{Broker, Inbound};
use crate::hub::Connection;
use crate::identity::Identity;
use crate::metrics::Metrics;

/// Sends the payload as the whole frame (like Jac Cloud).
#[derive(Debug)]
pub(crate) struct Verbatim;

impl FrameEncoder for Verbatim {
    fn dialect(&self) -> &'static str {
        "verbatim"
    }

    fn encode(&self, delivery: &Delivery, _route: &Route<'_>) -> Bytes {
        delivery.payload().clone()
    }
}

/// Puts the channel name in front of the payload, like a dialect whose frame names its channel.
#[derive(Debug)]
pub(crate) struct NamesChannel;

impl FrameEncoder for NamesChannel {
    fn dialect(&self) -> &'static str {
        "names-channel"
    }

    fn frame_names_channel(&self) -> bool {
        true
    }

    fn encode(&self, delivery: &Delivery, route: &Route<'_>) -> Bytes {
        let mut frame = route.channel.unwrap_or("-").as_bytes().to_vec();
        frame.push(b':');
        frame.extend_from_slice(delivery.payload());
        Bytes::from(frame)
    }
}

pub(crate) fn hub(limits: ConnectionLimits) -> Arc<Hub> {
    let encoders: Vec<Arc<dyn FrameEncoder>> = vec![Arc::new(Verbatim), Arc::new(NamesChannel)];
    let metrics = metrics_for(&encoders);
    Arc::new(Hub::new(
        encoders,
        QueueBounds {
            messages: 1000,
            bytes: 1 << 20,
        },
        limits,
        metrics,
    ))
}

/// Metrics for a hub of `encoders`, with no walkers.
pub(crate) fn metrics_for(encoders: &[Arc<dyn FrameEncoder>]) -> Arc<Metrics> {
    Arc::new(Metrics::new(
        "test-node",
        encoders.iter().map(|e| e.dialect()),
        [],
    ))
}

pub(crate) const UNLIMITED: ConnectionLimits = ConnectionLimits {
    total: usize::MAX,
    per_user: usize::MAX,
};

/// Register a connection of dialect `dialect` (0 verbatim, 1 names the channel).
pub(crate) fn connect(
    hub: &Hub,
    dialect: usize,
    identity: Identity,
    channels: &[&str],
) -> Arc<Connection> {
    hub.register(Registration {
        client_id: Arc::from(crate::ids::new_client_id()),
        dialect: Hub::dialect_id(dialect),
        identity,
        channels: channels.iter().map(|c| Arc::from(*c)).collect(),
        namespace: None,
        greeting: Vec::new(),
        shared_client_id: false,
    })
    .expect("registered")
}

/// Everything queued on `conn`, as text.
pub(crate) fn frames(conn: &Connection) -> Vec<String> {
    conn.outbound
        .drain()
        .frames
        .iter()
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect()
}

/// One node of an in-process cluster: a hub joined to others through `broker`.
pub(crate) struct TestNode {
    pub(crate) hub: Arc<Hub>,
    broker: Arc<dyn Broker>,
}

impl TestNode {
    pub(crate) fn new(broker: Arc<dyn Broker>) -> Self {
        let hub = hub(UNLIMITED);
        if let Some(interest) = broker.interest() {
            hub.observe_channels(interest);
        }
        broker.attach(Inbound::new(broker.node_id(), &hub));
        Self { hub, broker }
    }

    pub(crate) fn connect(&self, channels: &[&str]) -> Arc<Connection> {
        connect(&self.hub, 0, Identity::public(), channels)
    }

    /// Deliver here and forward to the others, as the app's publisher does.
    pub(crate) fn publish(&self, target: &Target, payload: &str) {
        let delivery = Delivery::from_raw_json(Bytes::copy_from_slice(payload.as_bytes()));
        self.hub.deliver(target, &delivery);
        let _ = self.broker.publish(target, &delivery);
    }
}
