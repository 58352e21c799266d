//! The seam between nodes. A [`Broker`] carries every send to the other nodes of a cluster, where
//! its [`Inbound`] side hands it to that node's [`Hub::deliver`], the same call local sends use.
//!
//! - [`SingleNode`]: the default; one node needs nothing else.
//! - [`memory`]: several hubs in one process joined by an in-process bus: the reference for
//!   what every broker must do (origin skip, interest, order), and the test bed for cluster logic.
//! - [`redis`] and [`nats`]: real clusters over Redis pub/sub or NATS core. Each is an
//!   [`engine::Engine`] (its I/O tasks) inside the one [`engine::BackplaneBroker`], sharing the
//!   engine-neutral [`backplane`] (queue, link state, interest, receiving) and the [`wire`] format.
//!   [`connect`] picks one from a `redis://` or `nats://` URL.
//!
//! Interest: a broker that routes channel traffic only to nodes with members observes the hub's
//! channels ([`Broker::interest`]): the first local member of a channel subscribes the node to it,
//! the last one leaving unsubscribes it.

pub mod backplane;
pub mod engine;
pub mod memory;
pub mod nats;
pub mod redis;
pub mod roster;
pub mod wire;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};

use bytes::Bytes;

use crate::hub::{ChannelObserver, Delivery, Hub, Target};
use crate::metrics::Metrics;
use crate::presence::{Member, Presence};
pub use roster::Answers;
pub use wire::{ClusterOrder, DisconnectTarget, NodeFigures};

/// The other nodes' answers to a question, when they come.
pub type AnswersFuture<'a> = Pin<Box<dyn Future<Output = Answers<Bytes>> + Send + 'a>>;

/// What became of a send's copies for other nodes. The local delivery happened either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relay {
    /// Handed to the backplane while it was up (or there is no other node to reach).
    Relayed,
    /// The backplane is down: only this node's connections got it. Counted in
    /// `switchboard_backplane_not_relayed_total`.
    BackplaneDown,
    /// The outgoing queue was full (the backplane is slower than this node publishes): only this
    /// node's connections got it. Counted in `switchboard_backplane_dropped_total`.
    QueueFull,
}

impl Relay {
    pub fn is_relayed(self) -> bool {
        self == Self::Relayed
    }
}

/// Why a backplane URL could not be used.
#[derive(Debug, thiserror::Error)]
pub enum BackplaneError {
    #[error("backplane URL `{0}` must start with redis://, rediss://, nats:// or tls://")]
    Scheme(String),
    #[error("backplane URL `{url}` is invalid: {reason}")]
    Url { url: String, reason: String },
}

/// The broker for a backplane URL. It connects in the background (and keeps reconnecting), so a
/// node starts even while the backplane is down; `/health` says when it is.
pub fn connect(url: &str, node_id: &str, prefix: &str) -> Result<Arc<dyn Broker>, BackplaneError> {
    let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
    match scheme {
        "redis" | "rediss" => Ok(redis::broker(url, node_id, prefix)?),
        "nats" | "tls" => Ok(nats::broker(url, node_id, prefix)?),
        _ => Err(BackplaneError::Scheme(url.to_string())),
    }
}

/// Carries deliveries to other nodes.
pub trait Broker: Send + Sync + std::fmt::Debug + 'static {
    /// This node's id, stamped on everything it publishes.
    fn node_id(&self) -> &str;

    /// Forward a delivery that was already delivered on this node. Must not block: an
    /// implementation queues the message for its own I/O task and counts anything it drops.
    /// Anything but [`Relay::Relayed`] means other nodes will not get it.
    fn publish(&self, target: &Target, delivery: &Delivery) -> Relay;

    /// Start receiving: deliveries published by other nodes go to `inbound`.
    fn attach(&self, inbound: Inbound);

    /// The observer that turns local channel membership into subscriptions, for brokers that
    /// route by interest.
    fn interest(&self) -> Option<Arc<dyn ChannelObserver>> {
        None
    }

    /// Whether the link to the other nodes works: `None` for a node without a backplane.
    fn backplane_up(&self) -> Option<bool> {
        None
    }

    /// Sends queued for other nodes and not yet sent (or counted lost).
    fn unsent(&self) -> usize {
        0
    }

    /// Presence across the cluster, for brokers that provide it (default: this node's hub).
    fn presence(&self) -> Option<Arc<dyn Presence>> {
        None
    }

    /// The other nodes heard from lately, with the figures each last announced (`None`: not
    /// yet). Empty for a single node.
    fn peers(&self) -> Vec<(Arc<str>, Option<NodeFigures>)> {
        Vec::new()
    }

    /// Send every other node an order to apply (an account change to act on in its live
    /// connections, a disconnect, an idempotency id seen).
    fn send_order(&self, _change: &ClusterOrder) -> Relay {
        Relay::Relayed
    }

    /// Ask every other live node `question`; each answers through its
    /// [`Inbound::on_question`] handler. The answers that came in time (none for a single node
    /// or a backplane that is down): the caller compares them with [`Broker::peers`] to know who
    /// is missing.
    fn ask<'a>(&'a self, _question: &'a [u8]) -> AnswersFuture<'a> {
        Box::pin(std::future::ready(Vec::new()))
    }
}

/// What a node does with an order from another node.
pub type OrderHandler = Arc<dyn Fn(ClusterOrder) + Send + Sync>;

/// How a node answers another node's question (the bytes are the app's business, not the
/// broker's).
pub type QuestionHandler = Arc<dyn Fn(&[u8]) -> Bytes + Send + Sync>;

/// The receiving side of a broker on one node: delivers to its hub, skipping its own echo.
#[derive(Clone)]
pub struct Inbound {
    node_id: Arc<str>,
    hub: Weak<Hub>,
    orders: Option<OrderHandler>,
    questions: Option<QuestionHandler>,
}

impl std::fmt::Debug for Inbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbound")
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

impl Inbound {
    pub fn new(node_id: impl Into<Arc<str>>, hub: &Arc<Hub>) -> Self {
        Self {
            node_id: node_id.into(),
            hub: Arc::downgrade(hub),
            orders: None,
            questions: None,
        }
    }

    /// Apply the orders other nodes send (the app acts on its live connections).
    pub fn on_order(mut self, handler: OrderHandler) -> Self {
        self.orders = Some(handler);
        self
    }

    /// Answer other nodes' questions (the app's statistics).
    pub fn on_question(mut self, handler: QuestionHandler) -> Self {
        self.questions = Some(handler);
        self
    }

    /// This node's answer to `question` (empty without a handler).
    pub fn answer(&self, question: &[u8]) -> Bytes {
        self.questions
            .as_ref()
            .map_or_else(Bytes::new, |handler| handler(question))
    }

    /// An order sent by node `origin` (this node's own are skipped: it acted already).
    pub fn ordered(&self, origin: &str, change: ClusterOrder) {
        if origin != &*self.node_id
            && let Some(handler) = &self.orders
        {
            handler(change);
        }
    }

    /// This node's members of `channel`.
    pub fn local_members(&self, channel: &str) -> Vec<Member> {
        self.hub.upgrade().map_or_else(Vec::new, |hub| {
            hub.channel_members(channel)
                .iter()
                .map(|conn| Member::of(&hub, conn))
                .collect()
        })
    }

    /// This node's figures for its alive announcements.
    pub fn figures(&self) -> NodeFigures {
        self.hub
            .upgrade()
            .map_or_else(NodeFigures::default, |hub| NodeFigures {
                connections: hub.connection_count() as u64,
                uptime_secs: hub.metrics().uptime().as_secs(),
            })
    }

    /// The metrics of this node's hub (while it lives).
    pub fn metrics(&self) -> Option<Arc<Metrics>> {
        self.hub.upgrade().map(|hub| hub.metrics().clone())
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

    fn publish(&self, _target: &Target, _delivery: &Delivery) -> Relay {
        Relay::Relayed
    }

    fn attach(&self, _inbound: Inbound) {}
}
