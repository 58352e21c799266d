//! The admin view's connection list: every live connection of this node, whatever its dialect,
//! with who it is, where it listens and how old it is; and closing one by its key.
//!
//! A node may hold many thousands of connections, so the list is searched on the server and cut
//! to [`LIST_LIMIT`] entries; the total and the number matching are always given.

use std::sync::Arc;

use serde::Serialize;

use crate::app::Switchboard;
use crate::close_code;
use crate::dialect::channel::Metadata;
use crate::hub::Connection;

/// Most connections one listing returns.
pub const LIST_LIMIT: usize = 200;

/// One live connection.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionSummary {
    /// The node-unique key that [`Switchboard::close_connection`] takes.
    pub key: u64,
    pub client_id: Arc<str>,
    pub dialect: &'static str,
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
            || hit(self.dialect)
            || hit(&self.username)
            || self.namespace.as_deref().is_some_and(hit)
            || self.channels.iter().any(|c| hit(c))
            || self.metadata.iter().any(|(k, v)| hit(k) || hit(v))
    }
}

/// A search of the connection list.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionList {
    /// Connections on this node.
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
        let mut matching: Vec<ConnectionSummary> = connections
            .iter()
            .map(|conn| self.summary(conn))
            .filter(|summary| summary.matches(&query))
            .collect();
        matching.sort_by(|a, b| b.age_secs.cmp(&a.age_secs).then(a.key.cmp(&b.key)));
        let count = matching.len();
        matching.truncate(LIST_LIMIT);
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

    fn summary(&self, conn: &Connection) -> ConnectionSummary {
        let identity = conn.identity();
        let username = if identity.is_authenticated() {
            identity.username().unwrap_or_default().to_string()
        } else {
            String::new()
        };
        ConnectionSummary {
            key: conn.key(),
            client_id: conn.client_id().clone(),
            dialect: self
                .shared
                .dialects
                .get(conn.dialect().index())
                .map_or("unknown", |d| d.name()),
            username,
            channels: conn.channels(),
            namespace: conn.namespace(),
            metadata: self.shared.channels.metadata(conn.client_id()),
            age_secs: self.hub().now_ms().saturating_sub(conn.connected_ms()) / 1000,
        }
    }
}
