//! The channel dialect on `GET /ws/<channel>` (seed 004, Project Forge; the contract is
//! `docs/protocol-channel.md`): `{"channel","cmd","param"}` frames both ways, join and leave
//! with presence, connection metadata from the query string, and channels shared with the other
//! dialects (a Jac connection with `channel_id=room1` is a member of `room1` here too).
//!
//! - [`connect`]: the channel from the path, metadata from the query, the rule check on connect.
//! - [`events`]: a client frame to a [`events::Command`], or a coded error.
//! - [`frames`]: the frames the server sends.
//! - [`encoder`]: how any delivery, whatever dialect sent it, looks here.
//! - [`rules`]: per-prefix channel rules (auth, roles, relay or handler, channel limit).
//! - [`session`]: one connection's handler.
//! - [`presence`]: `online-update` frames from the hub's channel observer.
//! - [`api`]: the server-side API ([`api::Channels`], from [`crate::Switchboard::channels`]).

pub mod api;
pub mod connect;
pub mod encoder;
pub mod events;
pub mod frames;
pub mod presence;
pub mod rules;
pub mod session;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use dashmap::DashMap;

use crate::app::Switchboard;
use crate::dialect::Dialect;
use crate::hub::{Connection, DialectId, FrameEncoder};
use crate::identity::Identity;
use rules::ChannelRules;

/// The dialect's name, also the audience of its presence deliveries.
pub const NAME: &str = "channel";

/// The endpoint path; `{channel}` is the channel joined on connect.
pub const PATH: &str = "/ws/{channel}";

/// Longest channel name, in bytes.
pub const MAX_CHANNEL_NAME_BYTES: usize = 128;

/// A channel name: 1 to 128 of `A-Z a-z 0-9 _ . : -`.
pub fn is_valid_channel_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_CHANNEL_NAME_BYTES
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

/// The `userID` this dialect shows for a connection: the account's user id, or the connection
/// id of an anonymous connection.
pub fn user_id_of(conn: &Connection, identity: &Identity) -> Arc<str> {
    match identity.account_id() {
        Some(_) => identity.user_id().clone(),
        None => conn.client_id().clone(),
    }
}

/// A connection's metadata: its query parameters other than `auth`.
pub type Metadata = BTreeMap<String, String>;

/// What the dialect keeps beside the hub, shared by its sessions, its presence task and the API.
#[derive(Debug)]
pub struct ChannelState {
    id: DialectId,
    rules: ChannelRules,
    /// Metadata by client id, for connections that brought any (most keep no entry).
    metadata: DashMap<Arc<str>, Arc<Metadata>>,
}

impl ChannelState {
    /// The state of the dialect registered at `id`.
    pub fn new(id: DialectId, rules: ChannelRules) -> Self {
        Self {
            id,
            rules,
            metadata: DashMap::new(),
        }
    }

    pub fn dialect_id(&self) -> DialectId {
        self.id
    }

    pub fn rules(&self) -> &ChannelRules {
        &self.rules
    }

    /// The metadata a connection of this dialect opened with (empty if none).
    pub fn metadata(&self, client_id: &str) -> Arc<Metadata> {
        self.metadata
            .get(client_id)
            .map(|m| m.clone())
            .unwrap_or_default()
    }
}

/// The channel dialect.
#[derive(Debug)]
pub struct ChannelDialect {
    state: Arc<ChannelState>,
}

impl ChannelDialect {
    pub fn new(state: Arc<ChannelState>) -> Self {
        Self { state }
    }
}

impl Dialect for ChannelDialect {
    fn name(&self) -> &'static str {
        NAME
    }

    fn encoder(&self) -> Arc<dyn FrameEncoder> {
        Arc::new(encoder::ChannelFrames)
    }

    fn routes(self: Arc<Self>, _app: &Switchboard, id: DialectId) -> Router<Switchboard> {
        debug_assert_eq!(id, self.state.id, "registered where the state says");
        Router::new().route(
            PATH,
            crate::session::endpoint(
                Arc::new(connect::ChannelConnect::new(self.state.clone())),
                id,
            ),
        )
    }

    /// A connection whose channels are all open to the public user stays, as that user; one in
    /// a channel that needs a login closes with 4401.
    fn credentials_revoked(&self, app: &Switchboard, conn: &Arc<Connection>) {
        let public = Identity::public();
        let still_admitted = conn
            .channels()
            .iter()
            .all(|channel| self.state.rules.rule_for(channel).admits(&public).is_ok());
        if still_admitted {
            // The public user has no connection limit, so the switch cannot be refused.
            let _ = app.hub().set_identity(conn, public);
            app.metrics().client_errors.inc();
            app.hub().push_frame(
                conn,
                frames::error(
                    "token_revoked",
                    "the token has been revoked; continuing as an anonymous connection",
                    None,
                ),
            );
        } else {
            conn.outbound.close(crate::close_code::UNAUTHORIZED);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names() {
        assert!(is_valid_channel_name("room1"));
        assert!(is_valid_channel_name("a_b.c:d-E9"));
        assert!(is_valid_channel_name(&"x".repeat(128)));
        assert!(!is_valid_channel_name(&"x".repeat(129)));
        assert!(!is_valid_channel_name(""));
        assert!(!is_valid_channel_name("a/b"));
        assert!(!is_valid_channel_name("é"));
        assert!(!is_valid_channel_name("a b"));
    }
}
