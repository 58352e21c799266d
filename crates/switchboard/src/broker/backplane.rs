//! What the Redis and NATS brokers share: the bounded outgoing queue, the link state behind
//! `/health`, interest bookkeeping, and the receiving side (decode, deliver once, skip own echo).
//!
//! Each engine adds only its I/O tasks: a writer that drains [`Backplane::next_batch`] onto the
//! engine, and a reader that subscribes to `all`, the node's own subject and the subjects of
//! [`Backplane::wanted_channels`], and hands every message to [`Backplane::receive`]. Nothing
//! here blocks a caller: publishing is a `try_send` on a queue bounded in messages and bytes, and
//! interest changes go to the reader through a channel.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::mpsc;

use super::roster::{ALIVE_EVERY, ASK_TIMEOUT, Answers, Roster};
use super::wire::{self, ClusterOrder, NodeFigures, Received, Subjects};
use super::{Inbound, Relay};
use crate::hub::{ChannelEvent, ChannelObserver, Delivery, Target};
use crate::metrics::Metrics;
use crate::presence::Member;
use prometheus_client::metrics::counter::Counter;

/// Most sends waiting for the writer; past this, publishing reports [`Relay::QueueFull`].
pub const QUEUE_MESSAGES: usize = 16_384;
/// Most encoded bytes waiting for the writer.
pub const QUEUE_BYTES: usize = 64 * 1024 * 1024;
/// Most writes the writer hands the engine at once.
pub const BATCH: usize = 256;
/// Ids remembered per origin to deliver a send heard on several channels once.
const DEDUP_WINDOW: usize = 1024;

/// One send waiting for the writer: the encoded message and every subject it goes to.
#[derive(Debug)]
pub struct Outgoing {
    pub subjects: Vec<String>,
    pub bytes: Bytes,
}

/// A channel whose local interest changed; the reader checks [`Backplane::wants`] for the rest.
pub type InterestChange = Arc<str>;

/// The engine-neutral half of a backplane broker.
#[derive(Debug)]
pub struct Backplane {
    node_id: Arc<str>,
    subjects: Subjects,
    /// The writer is connected (to the server the reader last reached).
    writer_up: AtomicBool,
    /// The reader is connected and holds every subject the node needs. Up = both.
    reader_up: AtomicBool,
    /// Bumped whenever the reader loses the server: a writer connected before then may hold a
    /// connection to a server that is gone (killed and restarted while the writer was idle).
    losses: AtomicU64,
    next_id: AtomicU64,
    queue: mpsc::Sender<Outgoing>,
    queued_bytes: AtomicUsize,
    /// Sends queued and not yet sent or counted lost (for a process that must flush before it
    /// exits, such as the `user` command).
    in_flight: AtomicUsize,
    /// Channels with a local member: their subjects are what the reader holds beside `all`.
    interest: Mutex<HashSet<Arc<str>>>,
    interest_changes: mpsc::UnboundedSender<InterestChange>,
    /// Recent ids of multi-channel sends, per origin.
    recent: Mutex<HashMap<Arc<str>, VecDeque<u64>>>,
    /// Live peers and pending `members` requests.
    roster: Roster,
    inbound: OnceLock<(Inbound, Arc<Metrics>)>,
}

/// The receiving ends the engine's tasks take when they start.
#[derive(Debug)]
pub struct Receivers {
    pub queue: mpsc::Receiver<Outgoing>,
    pub interest_changes: mpsc::UnboundedReceiver<InterestChange>,
}

impl Backplane {
    pub fn new(node_id: Arc<str>, prefix: &str) -> (Arc<Self>, Receivers) {
        let (queue, queue_rx) = mpsc::channel(QUEUE_MESSAGES);
        let (interest_changes, interest_rx) = mpsc::unbounded_channel();
        let backplane = Arc::new(Self {
            node_id,
            subjects: Subjects::new(prefix),
            writer_up: AtomicBool::new(false),
            reader_up: AtomicBool::new(false),
            losses: AtomicU64::new(0),
            // A random start keeps ids unique across restarts of a node with a fixed id.
            next_id: AtomicU64::new(rand::random::<u64>() >> 1),
            queue,
            queued_bytes: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            interest: Mutex::new(HashSet::new()),
            interest_changes,
            recent: Mutex::new(HashMap::new()),
            roster: Roster::default(),
            inbound: OnceLock::new(),
        });
        (
            backplane,
            Receivers {
                queue: queue_rx,
                interest_changes: interest_rx,
            },
        )
    }

    pub fn node_id(&self) -> &Arc<str> {
        &self.node_id
    }

    pub fn subjects(&self) -> &Subjects {
        &self.subjects
    }

    /// Connect the receiving side to this node's hub and its metrics.
    pub fn attach(&self, inbound: Inbound) {
        if let Some(metrics) = inbound.metrics() {
            let _ = self.inbound.set((inbound, metrics));
            self.report_state();
        }
    }

    fn metrics(&self) -> Option<&Metrics> {
        self.inbound.get().map(|(_, metrics)| &**metrics)
    }

    fn count(&self, counter: impl Fn(&Metrics) -> &Counter, n: u64) {
        if let Some(metrics) = self.metrics() {
            counter(metrics).inc_by(n);
        }
    }

    pub fn is_up(&self) -> bool {
        self.writer_up.load(Ordering::Acquire) && self.reader_up.load(Ordering::Acquire)
    }

    pub fn set_writer_up(&self, up: bool) {
        self.writer_up.store(up, Ordering::Release);
        self.report_state();
    }

    /// The reader lost the server: the writer must reconnect too before the node is up again.
    pub fn reader_lost(&self) {
        self.losses.fetch_add(1, Ordering::AcqRel);
        self.writer_up.store(false, Ordering::Release);
        self.set_reader_up(false);
    }

    /// How many times the reader lost the server so far.
    pub fn losses(&self) -> u64 {
        self.losses.load(Ordering::Acquire)
    }

    pub fn set_reader_up(&self, up: bool) {
        self.reader_up.store(up, Ordering::Release);
        self.report_state();
    }

    fn report_state(&self) {
        if let Some(metrics) = self.metrics() {
            metrics.backplane_up.set(i64::from(self.is_up()));
        }
    }

    /// Queue a send for the writer. Never waits: a down link or a full queue is reported and
    /// counted instead.
    pub fn publish(&self, target: &Target, delivery: &Delivery) -> Relay {
        let subjects = match target {
            Target::Users(ids) | Target::Clients(ids) if ids.is_empty() => Vec::new(),
            Target::Channels(channels) => {
                let mut subjects: Vec<String> =
                    channels.iter().map(|c| self.subjects.channel(c)).collect();
                subjects.sort_unstable();
                subjects.dedup();
                subjects
            }
            _ => vec![self.subjects.all()],
        };
        if subjects.is_empty() {
            // Nobody to reach on any node.
            return Relay::Relayed;
        }
        if !self.is_up() {
            self.count(|m| &m.backplane_not_relayed, 1);
            return Relay::BackplaneDown;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.enqueue(subjects, wire::encode(&self.node_id, id, target, delivery))
    }

    fn enqueue(&self, subjects: Vec<String>, bytes: Bytes) -> Relay {
        let size = bytes.len();
        if self.queued_bytes.fetch_add(size, Ordering::AcqRel) + size > QUEUE_BYTES {
            self.queued_bytes.fetch_sub(size, Ordering::AcqRel);
            self.count(|m| &m.backplane_dropped, 1);
            return Relay::QueueFull;
        }
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        match self.queue.try_send(Outgoing { subjects, bytes }) {
            Ok(()) => Relay::Relayed,
            Err(err) => {
                self.queued_bytes.fetch_sub(size, Ordering::AcqRel);
                self.in_flight.fetch_sub(1, Ordering::AcqRel);
                if matches!(err, mpsc::error::TrySendError::Full(_)) {
                    self.count(|m| &m.backplane_dropped, 1);
                    Relay::QueueFull
                } else {
                    self.count(|m| &m.backplane_not_relayed, 1);
                    Relay::BackplaneDown
                }
            }
        }
    }

    /// Queue an order for every node (on `all`).
    pub fn publish_order(&self, change: &ClusterOrder) -> Relay {
        if !self.is_up() {
            self.count(|m| &m.backplane_not_relayed, 1);
            return Relay::BackplaneDown;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let bytes = wire::encode_order(&self.node_id, id, change);
        self.enqueue(vec![self.subjects.all()], bytes)
    }

    /// The other live nodes and their latest figures.
    pub fn peers(&self) -> Vec<(Arc<str>, Option<NodeFigures>)> {
        self.roster.live_figures()
    }

    /// Every member of `channel` on every live node: this node's at once, the others' by asking
    /// them (see [`super::roster`]). With the backplane down, this node's only.
    pub async fn members(&self, channel: &str) -> Vec<Member> {
        let Some((inbound, _)) = self.inbound.get() else {
            return Vec::new();
        };
        let mut members = inbound.local_members(channel);
        let peers = self.roster.live_peers();
        if peers.is_empty() || !self.is_up() {
            return members;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let answered = self.roster.expect_members(id, peers);
        let request = wire::encode_members_request(&self.node_id, id, channel);
        if !self
            .enqueue(vec![self.subjects.all()], request)
            .is_relayed()
        {
            self.roster.give_up_members(id);
            return members;
        }
        let answers = match tokio::time::timeout(ASK_TIMEOUT, answered).await {
            Ok(Ok(answers)) => answers,
            _ => {
                tracing::warn!(channel, "not every node answered a members request in time");
                self.roster.give_up_members(id)
            }
        };
        members.extend(answers.into_iter().flat_map(|(_, theirs)| theirs));
        members
    }

    /// Ask every other live node `question` (see [`Inbound::on_question`]): their answers, as
    /// many as came within [`ASK_TIMEOUT`]. None with the backplane down or no other node.
    pub async fn ask(&self, question: &[u8]) -> Answers<Bytes> {
        let peers = self.roster.live_peers();
        if peers.is_empty() || !self.is_up() {
            return Vec::new();
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let answered = self.roster.expect_answers(id, peers);
        let asked = wire::encode_question(&self.node_id, id, question);
        if !self.enqueue(vec![self.subjects.all()], asked).is_relayed() {
            self.roster.give_up_question(id);
            return Vec::new();
        }
        match tokio::time::timeout(ASK_TIMEOUT, answered).await {
            Ok(Ok(answers)) => answers,
            _ => {
                tracing::warn!("not every node answered a question in time");
                self.roster.give_up_question(id)
            }
        }
    }

    /// Say this node is alive every [`ALIVE_EVERY`] until `stop`.
    pub async fn announce(self: Arc<Self>, stop: tokio_util::sync::CancellationToken) {
        let mut every = tokio::time::interval(ALIVE_EVERY);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = every.tick() => {
                    if self.is_up() {
                        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                        let figures = self.inbound.get().map(|(inbound, _)| inbound.figures()).unwrap_or_default();
                        let _ = self.enqueue(vec![self.subjects.all()], wire::encode_alive(&self.node_id, id, figures));
                    }
                }
            }
        }
    }

    /// Wait for the next sends (at most [`BATCH`]); `None` once the broker is gone.
    pub async fn next_batch(
        &self,
        queue: &mut mpsc::Receiver<Outgoing>,
        batch: &mut Vec<Outgoing>,
    ) -> Option<()> {
        batch.clear();
        if queue.recv_many(batch, BATCH).await == 0 {
            return None;
        }
        let bytes: usize = batch.iter().map(|o| o.bytes.len()).sum();
        self.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
        Some(())
    }

    /// Sends taken from the queue that the engine did not accept.
    pub fn not_relayed(&self, n: usize) {
        self.count(|m| &m.backplane_not_relayed, n as u64);
        self.in_flight.fetch_sub(n, Ordering::AcqRel);
    }

    /// Sends taken from the queue that the engine accepted.
    pub fn sent(&self, n: usize) {
        self.in_flight.fetch_sub(n, Ordering::AcqRel);
    }

    /// Sends neither sent nor counted lost yet.
    pub fn unsent(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Messages the engine itself dropped because this node read too slowly.
    pub fn dropped(&self, n: u64) {
        self.count(|m| &m.backplane_dropped, n);
    }

    pub fn reconnected(&self) {
        self.count(|m| &m.backplane_reconnects, 1);
    }

    /// Every channel with a local member now: the reader holds their subjects beside `all`.
    pub fn wanted_channels(&self) -> Vec<Arc<str>> {
        self.interest.lock().iter().cloned().collect()
    }

    /// Whether `channel` still has local members (the reader re-checks on every change).
    pub fn wants(&self, channel: &str) -> bool {
        self.interest.lock().contains(channel)
    }

    /// Hand one message from the backplane to this node's hub.
    pub fn receive(&self, bytes: Bytes) {
        let Some((inbound, metrics)) = self.inbound.get() else {
            return;
        };
        let message = match wire::decode(bytes) {
            Ok(Received::Delivery(message)) => message,
            Ok(Received::Order { origin, change }) => {
                inbound.ordered(&origin, change);
                return;
            }
            Ok(Received::Alive { origin, figures }) => {
                if origin != self.node_id {
                    self.roster.alive(&origin, figures);
                }
                return;
            }
            Ok(Received::MembersRequest {
                origin,
                id,
                channel,
            }) => {
                if origin != self.node_id {
                    let members = inbound.local_members(&channel);
                    let reply_id = self.next_id.fetch_add(1, Ordering::Relaxed);
                    let reply = wire::encode_members_reply(&self.node_id, reply_id, id, &members);
                    let _ = self.enqueue(vec![self.subjects.node(&origin)], reply);
                }
                return;
            }
            Ok(Received::MembersReply {
                origin,
                request,
                members,
            }) => {
                self.roster.answer_members(&origin, request, members);
                return;
            }
            Ok(Received::Question {
                origin,
                id,
                question,
            }) => {
                if origin != self.node_id {
                    // Answered here, on the reader: a question is rare (an operator's stats
                    // request) and its answer is built from counters without waiting.
                    let answer = inbound.answer(&question);
                    let next_id = || self.next_id.fetch_add(1, Ordering::Relaxed);
                    for part in wire::encode_answer(&self.node_id, next_id, id, &answer) {
                        let _ = self.enqueue(vec![self.subjects.node(&origin)], part);
                    }
                }
                return;
            }
            Ok(Received::AnswerPart {
                origin,
                question,
                index,
                count,
                bytes,
            }) => {
                self.roster
                    .answer_part(&origin, question, index, count, bytes);
                return;
            }
            Err(err) => {
                metrics.backplane_malformed.inc();
                tracing::warn!(%err, "unreadable message from the backplane");
                return;
            }
        };
        if message.origin == self.node_id {
            return;
        }
        // One send to several channels is published on each; a node holding more than one of
        // them delivers it the first time only.
        if matches!(&message.target, Target::Channels(c) if c.len() > 1)
            && !self.first_sighting(&message.origin, message.id)
        {
            return;
        }
        metrics.backplane_received.inc();
        inbound.deliver(&message.origin, &message.target, &message.delivery);
    }

    fn first_sighting(&self, origin: &Arc<str>, id: u64) -> bool {
        let mut recent = self.recent.lock();
        let seen = recent.entry(origin.clone()).or_default();
        if seen.contains(&id) {
            return false;
        }
        if seen.len() == DEDUP_WINDOW {
            seen.pop_front();
        }
        seen.push_back(id);
        true
    }

    /// The observer that keeps [`Backplane::wanted_channels`] equal to the hub's channels.
    pub fn interest_observer(self: &Arc<Self>) -> Arc<dyn ChannelObserver> {
        Arc::new(Interest(self.clone()))
    }
}

/// Records the first and last local member of each channel and wakes the reader.
#[derive(Debug)]
struct Interest(Arc<Backplane>);

impl ChannelObserver for Interest {
    fn on_channel_event(&self, event: &ChannelEvent<'_>) {
        let channel = match *event {
            ChannelEvent::Joined {
                channel,
                first: true,
                ..
            } => {
                let channel: Arc<str> = Arc::from(channel);
                self.0.interest.lock().insert(channel.clone());
                channel
            }
            ChannelEvent::Left {
                channel,
                last: true,
                ..
            } => {
                let mut interest = self.0.interest.lock();
                let Some(channel) = interest.take(channel) else {
                    return;
                };
                channel
            }
            _ => return,
        };
        let _ = self.0.interest_changes.send(channel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::test_support::{TestNode, frames};

    fn delivery(text: &'static str) -> Delivery {
        Delivery::from_raw_json(Bytes::from_static(text.as_bytes()))
    }

    #[test]
    fn nothing_is_queued_while_down_and_a_full_queue_is_reported() {
        let (backplane, mut receivers) = Backplane::new("a".into(), "t");
        let node = TestNode::new(Arc::new(super::super::SingleNode::new("a")));
        backplane.attach(Inbound::new("a", &node.hub));
        assert_eq!(
            backplane.publish(&Target::Everyone, &delivery("1")),
            Relay::BackplaneDown
        );
        assert!(receivers.queue.try_recv().is_err());
        // Nobody to reach: nothing to relay, so nothing lost.
        assert_eq!(
            backplane.publish(&Target::Users(vec![]), &delivery("1")),
            Relay::Relayed
        );
        backplane.set_writer_up(true);
        backplane.set_reader_up(true);
        for _ in 0..QUEUE_MESSAGES {
            assert_eq!(
                backplane.publish(&Target::Everyone, &delivery("1")),
                Relay::Relayed
            );
        }
        assert_eq!(
            backplane.publish(&Target::Everyone, &delivery("1")),
            Relay::QueueFull
        );
        let metrics = node.hub.metrics();
        assert_eq!(metrics.backplane_not_relayed.get(), 1);
        assert_eq!(metrics.backplane_dropped.get(), 1);
    }

    #[test]
    fn a_multi_channel_send_heard_twice_is_delivered_once_and_own_echo_never() {
        let node = TestNode::new(Arc::new(super::super::SingleNode::new("b")));
        let (backplane, _receivers) = Backplane::new("b".into(), "t");
        backplane.attach(Inbound::new("b", &node.hub));
        let member = node.connect(&["x", "y"]);
        let target = Target::Channels(vec!["x".into(), "y".into()]);
        let sent = wire::encode("a", 5, &target, &delivery("\"once\""));
        backplane.receive(sent.clone());
        backplane.receive(sent);
        backplane.receive(wire::encode("b", 6, &target, &delivery("\"own\"")));
        backplane.receive(Bytes::from_static(b"\x01garbage"));
        assert_eq!(frames(&member), vec!["\"once\""]);
        assert_eq!(node.hub.metrics().backplane_malformed.get(), 1);
    }

    #[test]
    fn a_namespace_send_from_another_node_reaches_that_namespace_only() {
        let node = TestNode::new(Arc::new(super::super::SingleNode::new("b")));
        let (backplane, _receivers) = Backplane::new("b".into(), "t");
        backplane.attach(Inbound::new("b", &node.hub));
        let register = |namespace: &str| {
            node.hub
                .register(crate::hub::Registration {
                    client_id: Arc::from(crate::ids::new_client_id()),
                    dialect: crate::hub::Hub::dialect_id(0),
                    identity: crate::identity::Identity::public(),
                    channels: Vec::new(),
                    namespace: Some(Arc::from(namespace)),
                    greeting: Vec::new(),
                    shared_client_id: false,
                })
                .expect("registered")
        };
        let (chat, other) = (register("chat"), register("other"));
        let target = Target::Namespace("chat".into());
        backplane.receive(wire::encode("a", 1, &target, &delivery("\"hi\"")));
        assert_eq!(frames(&chat), vec!["\"hi\""]);
        assert!(frames(&other).is_empty());
    }
}
