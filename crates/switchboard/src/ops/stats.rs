//! The statistics snapshot: what `Switchboard::stats()` returns and `GET /admin/api/stats`
//! serializes. Field names are a wire contract (seed 003's stats, extended to every dialect), so
//! they are spelled out here with serde and nowhere else.

use std::sync::Arc;

use serde::Serialize;

use super::Operations;
use super::activity::LogEntry;
use crate::app::Switchboard;
use crate::dialect::namespace::{NamespaceHandle, NamespaceStats};

/// How many channels `channels.top` lists.
const TOP_CHANNELS: usize = 10;

/// A node's statistics at one moment.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Seconds since this node started.
    pub uptime: u64,
    /// Connections open now, on every node of the cluster.
    pub total_connections: usize,
    /// Client messages received since start, every dialect.
    pub total_messages: u64,
    /// Client messages refused plus frames dropped for slow consumers, every dialect.
    pub total_dropped: u64,
    pub nodes: Vec<NodeStats>,
    pub namespaces: Vec<NamespaceStats>,
    pub channels: ChannelStats,
    /// The last `[stats] activity_log_secs` seconds of messages, oldest first.
    pub activity_log: Vec<LogEntry>,
    /// Activity-log events lost because the log's queue was full (the counts above include
    /// them; only the log misses them).
    pub activity_log_dropped: u64,
}

/// One node of the cluster: this one first, then every other live node (a single node lists
/// itself).
#[derive(Debug, Clone, Serialize)]
pub struct NodeStats {
    pub node_id: String,
    /// Connections open on the node now.
    pub connections: usize,
    /// Seconds since the node started.
    pub uptime: u64,
    /// `up`, `down`, or `none` for a node without a backplane.
    pub backplane: &'static str,
}

/// Channels with members on this node.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelStats {
    pub count: usize,
    /// The busiest channels by members, then by messages in the last minute.
    pub top: Vec<ChannelFigures>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelFigures {
    pub name: String,
    pub members: usize,
    /// Messages sent to the channel in the last 60 seconds.
    pub messages_per_minute: u64,
}

impl Switchboard {
    /// This node's statistics: uptime, connections, messages and drops, every namespace with
    /// its status colour and rates, and the busiest channels.
    pub fn stats(&self) -> Stats {
        let ops = self.ops();
        let now = ops.clock.now_ms();
        let uptime = now.saturating_sub(ops.started_ms) / 1000;
        let connections = self.hub().connection_count();
        let mut namespaces: Vec<NamespaceStats> = ops
            .namespaces
            .values()
            .map(|state| NamespaceHandle::from(state.clone()).stats())
            .collect();
        namespaces.sort_by(|a, b| a.path.cmp(&b.path));
        let backplane = match self.backplane_up() {
            None => "none",
            Some(true) => "up",
            Some(false) => "down",
        };
        let mut nodes = vec![NodeStats {
            node_id: self.node_id().to_string(),
            connections,
            uptime,
            backplane,
        }];
        // The other nodes as their last alive announcement (at most a second old) says; a node
        // heard over the backplane has its link up.
        for (node_id, figures) in self.broker().peers() {
            let figures = figures.unwrap_or_default();
            nodes.push(NodeStats {
                node_id: node_id.to_string(),
                connections: usize::try_from(figures.connections).unwrap_or(usize::MAX),
                uptime: figures.uptime_secs,
                backplane: "up",
            });
        }
        Stats {
            uptime,
            total_connections: nodes.iter().map(|node| node.connections).sum(),
            total_messages: ops.messages.load(std::sync::atomic::Ordering::Relaxed),
            total_dropped: ops.dropped.snapshot().total(),
            nodes,
            namespaces,
            channels: channel_stats(ops, self.hub().channel_sizes(), now),
            activity_log: ops.log.snapshot(),
            activity_log_dropped: ops.recorder.dropped(),
        }
    }
}

/// The channel count and the busiest channels; forgets the rates of channels idle for a minute.
fn channel_stats(ops: &Operations, sizes: Vec<(Arc<str>, usize)>, now: u64) -> ChannelStats {
    ops.channel_rates.retain(|_, rate| !rate.is_idle(now));
    let mut top: Vec<ChannelFigures> = sizes
        .iter()
        .map(|(name, members)| ChannelFigures {
            name: name.to_string(),
            members: *members,
            messages_per_minute: ops
                .channel_rates
                .get(name)
                .map_or(0, |rate| rate.count(now, 60)),
        })
        .collect();
    top.sort_by(|a, b| {
        (b.members, b.messages_per_minute, &a.name).cmp(&(
            a.members,
            a.messages_per_minute,
            &b.name,
        ))
    });
    top.truncate(TOP_CHANNELS);
    ChannelStats {
        count: sizes.len(),
        top,
    }
}
