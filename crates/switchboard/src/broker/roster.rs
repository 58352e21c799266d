//! Cluster presence without shared state: which nodes are alive, and `members` answered by
//! asking each of them.
//!
//! Every node announces itself on `all` every [`ALIVE_EVERY`]; a node not heard from for
//! [`PEER_TIMEOUT`] is gone. `members(channel)` sends one request on `all`, every live node
//! answers on the asker's own subject with its local members, and the asker returns once every
//! node it counted on answered (or after [`ASK_TIMEOUT`], with the answers it has). Nothing is
//! stored per member anywhere, so a node killed with SIGKILL leaves nothing stale behind: its
//! members vanish as soon as it stops answering, and it is no longer waited for after
//! [`PEER_TIMEOUT`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::presence::{Member, MembersFuture, Presence};

use super::backplane::Backplane;
use super::wire::NodeFigures;

/// How often a node says it is alive.
pub const ALIVE_EVERY: Duration = Duration::from_secs(1);
/// A node silent this long is gone (within the default heartbeat timeout of 5 s).
pub const PEER_TIMEOUT: Duration = Duration::from_secs(3);
/// The longest `members` waits for the other nodes.
pub const ASK_TIMEOUT: Duration = Duration::from_secs(1);

/// Live peers, and the `members` requests and questions waiting for their answers.
#[derive(Debug, Default)]
pub struct Roster {
    peers: Mutex<HashMap<Arc<str>, Peer>>,
    members: Requests<Vec<Member>>,
    questions: Requests<Bytes>,
    parts: Mutex<PartialAnswers>,
}

/// Answers to questions still arriving in parts, by question id and answering node: a slot per
/// part, filled as they come.
type PartialAnswers = HashMap<(u64, Arc<str>), Vec<Option<Bytes>>>;

/// Most parts one answer may have: 256 MiB at 256 KiB a part. A node claiming more is not
/// believed (its answer is dropped rather than a huge table allocated).
const MAX_ANSWER_PARTS: u32 = 1024;

/// When a peer was last heard, and the figures of its last alive announcement.
#[derive(Debug, Clone, Copy)]
struct Peer {
    seen: Instant,
    figures: Option<NodeFigures>,
}

/// Each node's answer to a request, in the order they came.
pub type Answers<A> = Vec<(Arc<str>, A)>;

/// Requests sent to every live peer, each waiting until every one of them answered.
#[derive(Debug)]
struct Requests<A> {
    pending: Mutex<HashMap<u64, Pending<A>>>,
}

impl<A> Default for Requests<A> {
    fn default() -> Self {
        Self {
            pending: Mutex::new(HashMap::new()),
        }
    }
}

#[derive(Debug)]
struct Pending<A> {
    waiting: HashSet<Arc<str>>,
    answers: Answers<A>,
    done: Option<oneshot::Sender<Answers<A>>>,
}

impl<A> Requests<A> {
    fn expect(&self, id: u64, peers: HashSet<Arc<str>>) -> oneshot::Receiver<Answers<A>> {
        let (done, answered) = oneshot::channel();
        self.pending.lock().insert(
            id,
            Pending {
                waiting: peers,
                answers: Vec::new(),
                done: Some(done),
            },
        );
        answered
    }

    fn is_waiting_for(&self, id: u64, node: &Arc<str>) -> bool {
        self.pending
            .lock()
            .get(&id)
            .is_some_and(|request| request.waiting.contains(node))
    }

    /// `node` answered request `id` (a second answer from it, or one to a request no longer
    /// waited for, is ignored).
    fn answer(&self, node: &Arc<str>, id: u64, answer: A) {
        let mut pending = self.pending.lock();
        let Some(request) = pending.get_mut(&id) else {
            return;
        };
        if !request.waiting.remove(node) {
            return;
        }
        request.answers.push((node.clone(), answer));
        if request.waiting.is_empty()
            && let Some(request) = pending.remove(&id)
            && let Some(done) = request.done
        {
            let _ = done.send(request.answers);
        }
    }

    fn give_up(&self, id: u64) -> Answers<A> {
        self.pending
            .lock()
            .remove(&id)
            .map(|request| request.answers)
            .unwrap_or_default()
    }
}

impl Roster {
    /// `node` is alive now (it answered something).
    pub fn heard(&self, node: &Arc<str>) {
        self.peers
            .lock()
            .entry(node.clone())
            .and_modify(|peer| peer.seen = Instant::now())
            .or_insert(Peer {
                seen: Instant::now(),
                figures: None,
            });
    }

    /// `node` announced itself alive, with its figures if it sent them.
    pub fn alive(&self, node: &Arc<str>, figures: Option<NodeFigures>) {
        let seen = Instant::now();
        self.peers
            .lock()
            .insert(node.clone(), Peer { seen, figures });
    }

    /// Peers heard from within [`PEER_TIMEOUT`]; the others are forgotten.
    pub fn live_peers(&self) -> HashSet<Arc<str>> {
        self.live_figures()
            .into_iter()
            .map(|(node, _)| node)
            .collect()
    }

    /// Each live peer and its latest figures (`None`: it has not announced any yet).
    pub fn live_figures(&self) -> Vec<(Arc<str>, Option<NodeFigures>)> {
        let mut peers = self.peers.lock();
        peers.retain(|_, peer| peer.seen.elapsed() < PEER_TIMEOUT);
        peers
            .iter()
            .map(|(node, peer)| (node.clone(), peer.figures))
            .collect()
    }

    /// Wait for answers from `peers` to members request `id`.
    pub fn expect_members(
        &self,
        id: u64,
        peers: HashSet<Arc<str>>,
    ) -> oneshot::Receiver<Answers<Vec<Member>>> {
        self.members.expect(id, peers)
    }

    /// `node` answered members request `id`.
    pub fn answer_members(&self, node: &Arc<str>, id: u64, members: Vec<Member>) {
        self.heard(node);
        self.members.answer(node, id, members);
    }

    /// Give up on members request `id`: the answers so far.
    pub fn give_up_members(&self, id: u64) -> Answers<Vec<Member>> {
        self.members.give_up(id)
    }

    /// Wait for answers from `peers` to question `id`.
    pub fn expect_answers(
        &self,
        id: u64,
        peers: HashSet<Arc<str>>,
    ) -> oneshot::Receiver<Answers<Bytes>> {
        self.questions.expect(id, peers)
    }

    /// Part `index` of `count` of `node`'s answer to question `id`; the answer counts once its
    /// last part is in.
    pub fn answer_part(&self, node: &Arc<str>, id: u64, index: u32, count: u32, bytes: Bytes) {
        self.heard(node);
        if count > MAX_ANSWER_PARTS || !self.questions.is_waiting_for(id, node) {
            return;
        }
        if count == 1 {
            self.questions.answer(node, id, bytes);
            return;
        }
        let complete = {
            let mut parts = self.parts.lock();
            let key = (id, node.clone());
            let slots = parts
                .entry(key.clone())
                .or_insert_with(|| vec![None; count as usize]);
            if slots.len() != count as usize {
                // The node changed its mind about the count: not an answer to trust.
                parts.remove(&key);
                return;
            }
            slots[index as usize] = Some(bytes);
            if slots.iter().all(Option::is_some) {
                parts.remove(&key)
            } else {
                None
            }
        };
        if let Some(slots) = complete {
            let mut joined = BytesMut::new();
            for part in slots.into_iter().flatten() {
                joined.extend_from_slice(&part);
            }
            self.questions.answer(node, id, joined.freeze());
        }
    }

    /// Give up on question `id`: the answers complete so far.
    pub fn give_up_question(&self, id: u64) -> Answers<Bytes> {
        self.parts.lock().retain(|(question, _), _| *question != id);
        self.questions.give_up(id)
    }
}

/// Presence across a cluster: this node's members plus every live node's answer.
#[derive(Debug)]
pub struct ClusterPresence {
    backplane: Arc<Backplane>,
}

impl ClusterPresence {
    pub fn new(backplane: Arc<Backplane>) -> Self {
        Self { backplane }
    }
}

impl Presence for ClusterPresence {
    // Nothing to record: members are asked for when wanted.
    fn join(&self, _channel: &str, _member: Member) {}

    fn leave(&self, _channel: &str, _client_id: &str) {}

    fn members<'a>(&'a self, channel: &'a str) -> MembersFuture<'a> {
        Box::pin(self.backplane.members(channel))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(client: &str) -> Member {
        Member {
            client_id: client.into(),
            user_id: "u".into(),
            username: None,
            authenticated: false,
            dialect: "channel".into(),
        }
    }

    #[tokio::test]
    async fn a_request_completes_when_every_peer_answered_once() {
        let roster = Roster::default();
        let (b, c): (Arc<str>, Arc<str>) = ("b".into(), "c".into());
        roster.heard(&b);
        roster.heard(&c);
        assert_eq!(roster.live_peers().len(), 2);
        let answered = roster.expect_members(1, roster.live_peers());
        roster.answer_members(&b, 1, vec![member("b1")]);
        roster.answer_members(&b, 1, vec![member("b1")]);
        roster.answer_members(&c, 1, vec![member("c1"), member("c2")]);
        let answers = answered.await.expect("answered");
        let mut members: Vec<Member> = answers.into_iter().flat_map(|(_, m)| m).collect();
        members.sort_by(|x, y| x.client_id.cmp(&y.client_id));
        let ids: Vec<&str> = members.iter().map(|m| &*m.client_id).collect();
        assert_eq!(ids, vec!["b1", "c1", "c2"]);
    }

    #[test]
    fn giving_up_returns_the_answers_so_far() {
        let roster = Roster::default();
        let b: Arc<str> = "b".into();
        let _answered = roster.expect_members(2, HashSet::from([b.clone(), "gone".into()]));
        roster.answer_members(&b, 2, vec![member("b1")]);
        assert_eq!(roster.give_up_members(2).len(), 1);
        assert!(roster.give_up_members(2).is_empty());
    }

    #[tokio::test]
    async fn an_answer_in_parts_counts_once_every_part_is_in_whatever_their_order() {
        let roster = Roster::default();
        let (b, c): (Arc<str>, Arc<str>) = ("b".into(), "c".into());
        let answered = roster.expect_answers(3, HashSet::from([b.clone(), c.clone()]));
        roster.answer_part(&b, 3, 1, 2, Bytes::from_static(b"world"));
        roster.answer_part(&c, 3, 0, 1, Bytes::from_static(b"c's"));
        // Not waited for: another question, a node not asked, a count past the limit.
        roster.answer_part(&b, 4, 0, 1, Bytes::from_static(b"other"));
        roster.answer_part(&"x".into(), 3, 0, 1, Bytes::from_static(b"x"));
        roster.answer_part(&b, 3, 0, MAX_ANSWER_PARTS + 1, Bytes::from_static(b"huge"));
        roster.answer_part(&b, 3, 0, 2, Bytes::from_static(b"hello "));
        let mut answers = answered.await.expect("answered");
        answers.sort();
        assert_eq!(
            answers,
            vec![
                (b.clone(), Bytes::from_static(b"hello world")),
                (c.clone(), Bytes::from_static(b"c's")),
            ]
        );
        assert!(roster.parts.lock().is_empty(), "no parts left behind");
    }

    #[test]
    fn giving_up_a_question_forgets_its_partial_answers() {
        let roster = Roster::default();
        let b: Arc<str> = "b".into();
        let _answered = roster.expect_answers(5, HashSet::from([b.clone()]));
        roster.answer_part(&b, 5, 0, 3, Bytes::from_static(b"part"));
        assert!(roster.give_up_question(5).is_empty());
        assert!(roster.parts.lock().is_empty());
    }
}
