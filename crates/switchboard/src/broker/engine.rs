//! [`BackplaneBroker`]: the one [`Broker`] every backplane engine (Redis, NATS) is. The
//! engine-neutral [`Backplane`] does the work a broker is asked for; an [`Engine`] only starts the
//! I/O tasks that move its queue onto the wire and the wire into [`Backplane::receive`].

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::backplane::{Backplane, Receivers};
use super::roster::ClusterPresence;
use super::wire::{ClusterOrder, NodeFigures};
use super::{AnswersFuture, Broker, Inbound, Relay};
use crate::hub::{ChannelObserver, Delivery, Target};
use crate::presence::Presence;

/// One backplane server technology: how a node talks to it.
pub trait Engine: Send + Sync + std::fmt::Debug + 'static {
    /// Spawn the tasks that connect (and keep reconnecting), publish what `receivers.queue`
    /// holds, follow `receivers.interest_changes`, and hand what arrives to `backplane`; they
    /// end when `stop` is cancelled.
    fn start(&self, backplane: Arc<Backplane>, receivers: Receivers, stop: CancellationToken);
}

/// A node's broker over the backplane engine `E`. Its tasks start when it is attached to a hub
/// and stop when it is dropped.
#[derive(Debug)]
pub struct BackplaneBroker<E: Engine> {
    backplane: Arc<Backplane>,
    engine: E,
    receivers: parking_lot::Mutex<Option<Receivers>>,
    stop: CancellationToken,
}

impl<E: Engine> BackplaneBroker<E> {
    pub fn new(engine: E, node_id: &str, prefix: &str) -> Arc<Self> {
        let (backplane, receivers) = Backplane::new(Arc::from(node_id), prefix);
        Arc::new(Self {
            backplane,
            engine,
            receivers: parking_lot::Mutex::new(Some(receivers)),
            stop: CancellationToken::new(),
        })
    }
}

impl<E: Engine> Drop for BackplaneBroker<E> {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl<E: Engine> Broker for BackplaneBroker<E> {
    fn node_id(&self) -> &str {
        self.backplane.node_id()
    }

    fn publish(&self, target: &Target, delivery: &Delivery) -> Relay {
        self.backplane.publish(target, delivery)
    }

    fn attach(&self, inbound: Inbound) {
        self.backplane.attach(inbound);
        let Some(receivers) = self.receivers.lock().take() else {
            return;
        };
        tokio::spawn(self.backplane.clone().announce(self.stop.clone()));
        self.engine
            .start(self.backplane.clone(), receivers, self.stop.clone());
    }

    fn interest(&self) -> Option<Arc<dyn ChannelObserver>> {
        Some(self.backplane.interest_observer())
    }

    fn backplane_up(&self) -> Option<bool> {
        Some(self.backplane.is_up())
    }

    fn presence(&self) -> Option<Arc<dyn Presence>> {
        Some(Arc::new(ClusterPresence::new(self.backplane.clone())))
    }

    fn unsent(&self) -> usize {
        self.backplane.unsent()
    }

    fn peers(&self) -> Vec<(Arc<str>, Option<NodeFigures>)> {
        self.backplane.peers()
    }

    fn send_order(&self, change: &ClusterOrder) -> Relay {
        self.backplane.publish_order(change)
    }

    fn ask<'a>(&'a self, question: &'a [u8]) -> AnswersFuture<'a> {
        Box::pin(self.backplane.ask(question))
    }
}
