//! The admin view's connection list: every live connection, whatever its dialect, with who it
//! is, where it listens, how old it is and which node holds it; and closing one by its node and
//! key.
//!
//! A node may hold many thousands of connections, so the list is searched on the server and cut
//! to [`LIST_LIMIT`] entries; the total and the number matching are always given. With a
//! backplane, each node searches its own and the asking node merges them (see
//! [`super::stats`]); closing a connection on another node is a question to that node.

use std::borrow::Cow;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::app::Switchboard;
use crate::close_code;
use crate::dialect::channel::Metadata;
use crate::hub::Connection;

/// Most connections one listing returns.
pub const LIST_LIMIT: usize = 200;

/// One live connection.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionSummary {
    /// The node that holds it.
    pub node: Arc<str>,
    /// The key, unique on its node, that [`Switchboard::close_connection`] takes.
    pub key: u64,
    pub client_id: Arc<str>,
    pub dialect: Cow<'static, str>,
    /// The account's username; empty for anonymous connections.
    pub username: String,
    pub channels: Vec<Arc<str>>,
    /// The namespace of a namespace-dialect connection.
    pub namespace: Option<Arc<str>>,
    /// The connect metadata of a channel-dialect connection.
    pub metadata: Arc<Metadata>,
    /// Seconds since it connected.
    pub age_secs: u64,
}

impl ConnectionSummary {
    /// Whether `query` (lower case) occurs in any of its identifying fields.
    fn matches(&self, query: &str) -> bool {
        let hit = |text: &str| text.to_lowercase().contains(query);
        query.is_empty()
            || hit(&self.client_id)
            || hit(&self.dialect)
            || hit(&self.username)
            || self.namespace.as_deref().is_some_and(hit)
            || self.channels.iter().any(|c| hit(c))
            || self.metadata.iter().any(|(k, v)| hit(k) || hit(v))
    }
}

/// A search of the connection list.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ConnectionList {
    /// Connections open (on every node that answered).
    pub total: usize,
    /// Connections the query matched (at most [`LIST_LIMIT`] of them are listed).
    pub matching: usize,
    /// The matching connections, oldest first.
    pub list: Vec<ConnectionSummary>,
}

impl Switchboard {
    /// This node's connections whose client id, dialect, username, namespace, channels or
    /// metadata contain `query` (any letter case; empty matches all).
    pub fn connection_list(&self, query: &str) -> ConnectionList {
        let query = query.to_lowercase();
        let mut connections = Vec::new();
        self.hub()
            .for_each_connection(|conn| connections.push(conn.clone()));
        let total = connections.len();
        let node: Arc<str> = Arc::from(self.node_id());
        let mut matching: Vec<ConnectionSummary> = connections
            .iter()
            .map(|conn| self.summary(conn, &node))
            .filter(|summary| summary.matches(&query))
            .collect();
        let count = matching.len();
        sort_and_cut(&mut matching);
        ConnectionList {
            total,
            matching: count,
            list: matching,
        }
    }

    /// Close the connection with `key` (4400: closed by the server, do not reconnect). Returns
    /// whether an open connection had that key.
    pub fn close_connection(&self, key: u64) -> bool {
        let mut found = None;
        self.hub().for_each_connection(|conn| {
            if conn.key() == key {
                found = Some(conn.clone());
            }
        });
        found.is_some_and(|conn| {
            tracing::info!(client_id = %conn.client_id(), "connection closed by an admin");
            conn.outbound.close(close_code::CLOSED_BY_SERVER)
        })
    }

    /// Close connection `key` of node `node` (this node's, or another's over the backplane).
    /// Returns whether that node had an open connection with that key; `false` too when the
    /// node did not answer within a second.
    pub async fn close_connection_on(&self, node: &str, key: u64) -> bool {
        if node == self.node_id() {
            return self.close_connection(key);
        }
        super::stats::close_remote_connection(self, node, key).await
    }

    fn summary(&self, conn: &Connection, node: &Arc<str>) -> ConnectionSummary {
        let identity = conn.identity();
        let username = if identity.is_authenticated() {
            identity.username().unwrap_or_default().to_string()
        } else {
            String::new()
        };
        ConnectionSummary {
            node: node.clone(),
            key: conn.key(),
            client_id: conn.client_id().clone(),
            dialect: self
                .shared
                .dialects
                .get(conn.dialect().index())
                .map_or(Cow::Borrowed("unknown"), |d| Cow::Borrowed(d.name())),
            username,
            channels: conn.channels(),
            namespace: conn.namespace(),
            metadata: self.shared.channels.metadata(conn.client_id()),
            age_secs: self.hub().now_ms().saturating_sub(conn.connected_ms()) / 1000,
        }
    }
}

/// Oldest first (ties by node and key, so a merged list is stable), at most [`LIST_LIMIT`].
fn sort_and_cut(list: &mut Vec<ConnectionSummary>) {
    list.sort_by(|a, b| {
        b.age_secs
            .cmp(&a.age_secs)
            .then_with(|| a.node.cmp(&b.node))
            .then(a.key.cmp(&b.key))
    });
    list.truncate(LIST_LIMIT);
}

impl ConnectionList {
    /// Add another node's search of the same query.
    pub(crate) fn merge(&mut self, other: ConnectionList) {
        self.total += other.total;
        self.matching += other.matching;
        self.list.extend(other.list);
        sort_and_cut(&mut self.list);
    }
}
