//! Presence: who the members of a channel are, across every node.
//!
//! - [`Presence`]: the seam. `join` and `leave` are told of local membership changes (through
//!   the hub's channel observer, see [`PresenceObserver`]); `members` answers for the cluster.
//! - [`LocalPresence`]: one node. It reads the hub's own channel index, so it costs no memory
//!   per member; `join` and `leave` have nothing to record.
//!
//! In a cluster, the backplane brokers provide `broker::roster::ClusterPresence`, which asks every
//! live node for its members instead of recording joins and leaves in a shared store.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};

use crate::hub::{ChannelEvent, ChannelObserver, Connection, Hub};

/// One member of a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The connection's client id.
    pub client_id: Arc<str>,
    /// The user id (the public user's for anonymous connections).
    pub user_id: Arc<str>,
    /// The username; `None` for an anonymous connection.
    pub username: Option<String>,
    /// Whether the user is logged in.
    pub authenticated: bool,
    /// The dialect the connection speaks (`jac`, `namespace`, `channel`).
    pub dialect: Arc<str>,
}

impl Member {
    /// `conn`, a connection of `hub`, as a member.
    pub fn of(hub: &Hub, conn: &Connection) -> Self {
        let identity = conn.identity();
        Self {
            client_id: conn.client_id().clone(),
            user_id: identity.user_id().clone(),
            username: identity.username().map(str::to_string),
            authenticated: identity.is_authenticated(),
            dialect: Arc::from(hub.dialect_name(conn.dialect())),
        }
    }
}

pub type MembersFuture<'a> = Pin<Box<dyn Future<Output = Vec<Member>> + Send + 'a>>;

/// Members of channels. `join` and `leave` must not block (queue any I/O).
pub trait Presence: Send + Sync + std::fmt::Debug + 'static {
    /// A connection on this node joined `channel`.
    fn join(&self, channel: &str, member: Member);
    /// A connection on this node left `channel` (or disconnected).
    fn leave(&self, channel: &str, client_id: &str);
    /// Every member of `channel`, on every node.
    fn members<'a>(&'a self, channel: &'a str) -> MembersFuture<'a>;
}

/// Feeds a [`Presence`] from the hub's channel observer.
#[derive(Debug)]
pub struct PresenceObserver {
    presence: Arc<dyn Presence>,
    hub: Weak<Hub>,
}

impl PresenceObserver {
    /// Feed `presence` from `hub`'s channel events (register it with `Hub::observe_channels`).
    pub fn new(presence: Arc<dyn Presence>, hub: &Arc<Hub>) -> Self {
        Self {
            presence,
            hub: Arc::downgrade(hub),
        }
    }
}

impl ChannelObserver for PresenceObserver {
    fn on_channel_event(&self, event: &ChannelEvent<'_>) {
        match event {
            ChannelEvent::Joined { channel, conn, .. } => {
                if let Some(hub) = self.hub.upgrade() {
                    self.presence.join(channel, Member::of(&hub, conn));
                }
            }
            ChannelEvent::Left { channel, conn, .. } => {
                self.presence.leave(channel, conn.client_id())
            }
        }
    }
}

/// Presence of a single node, read from its hub.
#[derive(Debug)]
pub struct LocalPresence {
    hub: Weak<Hub>,
}

impl LocalPresence {
    pub fn new(hub: &Arc<Hub>) -> Self {
        Self {
            hub: Arc::downgrade(hub),
        }
    }
}

impl Presence for LocalPresence {
    fn join(&self, _channel: &str, _member: Member) {}

    fn leave(&self, _channel: &str, _client_id: &str) {}

    fn members<'a>(&'a self, channel: &'a str) -> MembersFuture<'a> {
        let members = self.hub.upgrade().map_or_else(Vec::new, |hub| {
            hub.channel_members(channel)
                .iter()
                .map(|conn| Member::of(&hub, conn))
                .collect()
        });
        Box::pin(std::future::ready(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::test_support::{UNLIMITED, connect, hub};
    use crate::identity::Identity;
    use parking_lot::Mutex;

    #[tokio::test]
    async fn local_presence_lists_the_members_of_a_channel() {
        let hub = hub(UNLIMITED);
        let presence = LocalPresence::new(&hub);
        let ada = Identity::user("ada".into(), "ada@example.com".into(), vec![]);
        let a = connect(&hub, 0, ada, &["room"]);
        let b = connect(&hub, 0, Identity::public(), &["room"]);
        let mut members = presence.members("room").await;
        members.sort_by(|x, y| x.client_id.cmp(&y.client_id));
        assert_eq!(members.len(), 2);
        let by_client = |c: &Arc<Connection>| {
            members
                .iter()
                .find(|m| m.client_id == *c.client_id())
                .cloned()
                .expect("listed")
        };
        assert_eq!(by_client(&a).username.as_deref(), Some("ada@example.com"));
        assert!(!by_client(&b).authenticated);
        hub.unregister(&a);
        assert_eq!(presence.members("room").await.len(), 1);
        assert!(presence.members("empty").await.is_empty());
    }

    /// Records joins and leaves, as a cluster presence would.
    #[derive(Debug, Default)]
    struct Recording(Mutex<Vec<(String, String, bool)>>);

    impl Presence for Recording {
        fn join(&self, channel: &str, member: Member) {
            self.0
                .lock()
                .push((channel.into(), member.client_id.to_string(), true));
        }
        fn leave(&self, channel: &str, client_id: &str) {
            self.0
                .lock()
                .push((channel.into(), client_id.into(), false));
        }
        fn members<'a>(&'a self, _channel: &'a str) -> MembersFuture<'a> {
            Box::pin(std::future::ready(Vec::new()))
        }
    }

    #[test]
    fn the_observer_reports_joins_and_leaves_including_disconnects() {
        let hub = hub(UNLIMITED);
        let recording = Arc::new(Recording::default());
        hub.observe_channels(Arc::new(PresenceObserver::new(recording.clone(), &hub)));
        let conn = connect(&hub, 0, Identity::public(), &["a", "b"]);
        hub.unsubscribe(&conn, "a");
        hub.unregister(&conn);
        let id = conn.client_id().to_string();
        assert_eq!(
            *recording.0.lock(),
            vec![
                ("a".to_string(), id.clone(), true),
                ("b".to_string(), id.clone(), true),
                ("a".to_string(), id.clone(), false),
                ("b".to_string(), id, false),
            ]
        );
    }
}
