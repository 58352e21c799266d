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

/// Live peers and the `members` requests waiting for their answers.
#[derive(Debug, Default)]
pub struct Roster {
    peers: Mutex<HashMap<Arc<str>, Peer>>,
    pending: Mutex<HashMap<u64, Pending>>,
}

/// When a peer was last heard, and the figures of its last alive announcement.
#[derive(Debug, Clone, Copy)]
struct Peer {
    seen: Instant,
    figures: Option<NodeFigures>,
}

#[derive(Debug)]
struct Pending {
    waiting: HashSet<Arc<str>>,
    members: Vec<Member>,
    done: Option<oneshot::Sender<Vec<Member>>>,
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

    /// Wait for answers from `peers` to request `id`.
    pub fn expect(&self, id: u64, peers: HashSet<Arc<str>>) -> oneshot::Receiver<Vec<Member>> {
        let (done, answered) = oneshot::channel();
        self.pending.lock().insert(
            id,
            Pending {
                waiting: peers,
                members: Vec::new(),
                done: Some(done),
            },
        );
        answered
    }

    /// `node` answered request `id`.
    pub fn answer(&self, node: &Arc<str>, id: u64, members: Vec<Member>) {
        self.heard(node);
        let mut pending = self.pending.lock();
        let Some(request) = pending.get_mut(&id) else {
            return;
        };
        if !request.waiting.remove(node) {
            return;
        }
        request.members.extend(members);
        if request.waiting.is_empty()
            && let Some(request) = pending.remove(&id)
            && let Some(done) = request.done
        {
            let _ = done.send(request.members);
        }
    }

    /// Give up on request `id`: what arrived so far.
    pub fn give_up(&self, id: u64) -> Vec<Member> {
        self.pending
            .lock()
            .remove(&id)
            .map(|request| request.members)
            .unwrap_or_default()
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
        let answered = roster.expect(1, roster.live_peers());
        roster.answer(&b, 1, vec![member("b1")]);
        roster.answer(&b, 1, vec![member("b1")]);
        roster.answer(&c, 1, vec![member("c1"), member("c2")]);
        let mut members = answered.await.expect("answered");
        members.sort_by(|x, y| x.client_id.cmp(&y.client_id));
        let ids: Vec<&str> = members.iter().map(|m| &*m.client_id).collect();
        assert_eq!(ids, vec!["b1", "c1", "c2"]);
    }

    #[test]
    fn giving_up_returns_the_answers_so_far() {
        let roster = Roster::default();
        let b: Arc<str> = "b".into();
        let _answered = roster.expect(2, HashSet::from([b.clone(), "gone".into()]));
        roster.answer(&b, 2, vec![member("b1")]);
        assert_eq!(roster.give_up(2).len(), 1);
        assert!(roster.give_up(2).is_empty());
    }
}
