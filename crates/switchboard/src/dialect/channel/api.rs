//! The server side of the channel dialect, for application code: send to a channel, a
//! connection or everyone (each recipient in its own dialect), move connections between
//! channels, ask a client to stop reconnecting, list members and connections.
//!
//! Sends go through the broker like every other send, so they reach every node. `join`,
//! `leave`, `close_request` and [`Channels::connections`] act on this node's connections.

use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ChannelState, Metadata, frames, user_id_of};
use crate::app::Switchboard;
use crate::close_code;
use crate::hub::{Connection, Delivery, Target};
use crate::presence::Member;

/// A channel-dialect message: seed 004's `{channel, cmd, param}`, plus the sender's connection
/// id in `from` when a client sent it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default)]
    pub channel: String,
    pub cmd: String,
    #[serde(default)]
    pub param: Value,
}

impl Message {
    pub fn new(channel: impl Into<String>, cmd: impl Into<String>, param: Value) -> Self {
        Self {
            from: None,
            channel: channel.into(),
            cmd: cmd.into(),
            param,
        }
    }

    /// The delivery that carries it: `param` as the payload, `cmd` as the event.
    fn delivery(&self) -> Delivery {
        // Serializing a `Value` cannot fail.
        let payload = Bytes::from(serde_json::to_vec(&self.param).unwrap_or_default());
        let mut delivery = Delivery::from_raw_json(payload).with_event(self.cmd.as_str());
        if !self.channel.is_empty() {
            delivery = delivery.on_channel(self.channel.as_str());
        }
        if let Some(from) = &self.from {
            delivery = delivery.with_sender(Arc::from(from.as_str()), None);
        }
        delivery
    }
}

/// One member of a channel, as the `members` reply lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    /// The connection id.
    pub id: String,
    /// The account's user id; the connection id for an anonymous connection.
    #[serde(rename = "userID")]
    pub user_id: String,
    /// The account's username; `""` for an anonymous connection.
    pub username: String,
}

impl From<Member> for MemberInfo {
    fn from(member: Member) -> Self {
        let user_id = if member.authenticated {
            member.user_id.to_string()
        } else {
            member.client_id.to_string()
        };
        Self {
            id: member.client_id.to_string(),
            user_id,
            username: member.username.unwrap_or_default(),
        }
    }
}

/// A live channel-dialect connection, for handlers and the admin view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectionInfo {
    pub id: Arc<str>,
    #[serde(rename = "userID")]
    pub user_id: Arc<str>,
    pub username: String,
    pub channels: Vec<Arc<str>>,
    pub metadata: Arc<Metadata>,
}

/// The API handle ([`crate::Switchboard::channels`]). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Channels {
    app: Switchboard,
    state: Arc<ChannelState>,
}

impl Channels {
    pub(crate) fn new(app: Switchboard, state: Arc<ChannelState>) -> Self {
        Self { app, state }
    }

    /// Send `message` to every member of `channel` (its `channel` field becomes `channel`),
    /// except the connections in `except`. Returns the recipients on this node.
    pub fn send_channel<S: AsRef<str>>(
        &self,
        channel: &str,
        message: &Message,
        except: &[S],
    ) -> usize {
        let delivery = message.delivery().excluding_clients(owned(except));
        self.publish(&Target::Channels(vec![channel.to_string()]), &delivery)
    }

    /// Send `message` to one connection, of any dialect. Returns whether it was queued on this
    /// node (a connection on another node is reached through the broker).
    pub fn send_connection(&self, id: &str, message: &Message) -> bool {
        self.publish(&Target::Clients(vec![id.to_string()]), &message.delivery()) > 0
    }

    /// Send `message` to every connection, except those in `except`. Returns the recipients on
    /// this node.
    pub fn broadcast<S: AsRef<str>>(&self, message: &Message, except: &[S]) -> usize {
        let delivery = message.delivery().excluding_clients(owned(except));
        self.publish(&Target::Everyone, &delivery)
    }

    /// Add the connection `id` of this node to `channel`, bypassing the channel's rule (the
    /// server decides). A channel-dialect connection is told with a `joined` frame. Returns the
    /// channel's member count here, or `None` if no such connection is on this node.
    pub fn join(&self, id: &str, channel: &str) -> Option<usize> {
        let conn = self.app.hub().connection(id)?;
        let members = self.app.hub().subscribe(&conn, Arc::from(channel));
        self.tell(&conn, frames::membership(channel, "joined", members));
        Some(members)
    }

    /// Remove the connection `id` of this node from `channel`; a channel-dialect connection is
    /// told with a `left` frame. `None` if no such connection is on this node or it is not a
    /// member.
    pub fn leave(&self, id: &str, channel: &str) -> Option<usize> {
        let conn = self.app.hub().connection(id)?;
        if !conn.is_in_channel(channel) {
            return None;
        }
        let members = self.app.hub().unsubscribe(&conn, channel);
        self.tell(&conn, frames::membership(channel, "left", members));
        Some(members)
    }

    /// Ask the connection `id` of this node to go away for good: seed 004's
    /// `{"cmd":"close-connection"}` (its client stops reconnecting), then close 4400. Returns
    /// whether the connection was found.
    pub fn close_request(&self, id: &str) -> bool {
        let Some(conn) = self.app.hub().connection(id) else {
            return false;
        };
        self.tell(&conn, frames::close_connection());
        conn.outbound.close(close_code::CLOSED_BY_SERVER);
        true
    }

    /// Every member of `channel`, of any dialect, on every node the presence backend knows.
    pub async fn members(&self, channel: &str) -> Vec<MemberInfo> {
        let mut members: Vec<MemberInfo> = self
            .app
            .presence()
            .members(channel)
            .await
            .into_iter()
            .map(MemberInfo::from)
            .collect();
        members.sort_by(|a, b| a.id.cmp(&b.id));
        members
    }

    /// This node's channel-dialect connections with their channels and metadata.
    pub fn connections(&self) -> Vec<ConnectionInfo> {
        let mut found = Vec::new();
        self.app.hub().for_each_connection(|conn| {
            if conn.dialect() == self.state.dialect_id() {
                found.push(conn.clone());
            }
        });
        found.iter().map(|conn| self.describe(conn)).collect()
    }

    /// One connection of this node, as [`Channels::connections`] lists it.
    pub fn connection(&self, id: &str) -> Option<ConnectionInfo> {
        self.app
            .hub()
            .connection(id)
            .map(|conn| self.describe(&conn))
    }

    pub(crate) fn describe(&self, conn: &Connection) -> ConnectionInfo {
        let identity = conn.identity();
        let user_id = user_id_of(conn, &identity);
        ConnectionInfo {
            id: conn.client_id().clone(),
            user_id,
            username: identity.username().unwrap_or_default().to_string(),
            channels: conn.channels(),
            metadata: self.state.metadata(conn.client_id()),
        }
    }

    fn publish(&self, target: &Target, delivery: &Delivery) -> usize {
        self.app.shared.publisher.publish(target, delivery).local
    }

    /// A frame for a channel-dialect connection only (other dialects have no such frames).
    fn tell(&self, conn: &Connection, frame: Bytes) {
        if conn.dialect() == self.state.dialect_id() {
            self.app.hub().push_frame(conn, frame);
        }
    }
}

fn owned<S: AsRef<str>>(ids: &[S]) -> Vec<Arc<str>> {
    ids.iter().map(|id| Arc::from(id.as_ref())).collect()
}
