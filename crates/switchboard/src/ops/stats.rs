//! The statistics snapshot: what `Switchboard::stats()` returns and `GET /admin/api/stats`
//! serializes. Field names are a wire contract (seed 003's stats, extended to every dialect), so
//! they are spelled out here with serde and nowhere else.
//!
//! With a backplane the snapshot covers the cluster. The node asked builds its own
//! [`NodeReport`], asks every other live node for theirs over the backplane (a broker
//! *question*, see [`crate::broker::Broker::ask`]), and merges them: counts add up, client ids,
//! usernames and channel names are unioned so nothing is counted twice, the activity logs are
//! interleaved by time. A node that does not answer within a second is still listed (from its
//! last alive announcement) with `reported: false`, and its figures are missing from the totals.
//! A single node merges its one report, so both cases take the same path.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::Operations;
use super::activity::LogEntry;
use super::connections::ConnectionList;
use super::dropped::Dropped;
use super::tap::TapFilter;
use crate::app::Switchboard;
use crate::config::StatsConfig;
use crate::dialect::namespace::{NamespaceCensus, NamespaceHandle, NamespaceStats};

/// How many channels `channels.top` lists.
const TOP_CHANNELS: usize = 10;

/// The cluster's statistics at one moment.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Seconds since this node (the one asked) started; every node's is in `nodes`.
    pub uptime: u64,
    /// Connections open now, on every node of the cluster.
    pub total_connections: usize,
    /// Client messages received since each node started, every dialect, every node that
    /// reported.
    pub total_messages: u64,
    /// Client messages refused plus frames dropped for slow consumers, every dialect, every
    /// node that reported.
    pub total_dropped: u64,
    pub nodes: Vec<NodeStats>,
    pub namespaces: Vec<NamespaceStats>,
    pub channels: ChannelStats,
    /// The last `[stats] activity_log_secs` seconds of messages, oldest first, every node's
    /// interleaved (at most `[stats] activity_log_max` entries, the newest kept).
    pub activity_log: Vec<LogEntry>,
    /// Activity-log events lost because a log's queue was full (the counts above include
    /// them; only the log misses them).
    pub activity_log_dropped: u64,
}

/// One node of the cluster: this one first, then every other live node by id (a single node
/// lists itself).
#[derive(Debug, Clone, Serialize)]
pub struct NodeStats {
    pub node_id: String,
    /// Connections open on the node now.
    pub connections: usize,
    /// Seconds since the node started.
    pub uptime: u64,
    /// `up`, `down`, or `none` for a node without a backplane.
    pub backplane: &'static str,
    /// Whether the node's report is in the figures. A live node that did not answer in time
    /// is listed from its last alive announcement (at most a second old) with `false`.
    pub reported: bool,
}

/// Channels with members anywhere in the cluster.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelStats {
    pub count: usize,
    /// The busiest channels by members, then by messages in the last minute.
    pub top: Vec<ChannelFigures>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelFigures {
    pub name: String,
    pub members: usize,
    /// Messages sent to the channel in the last 60 seconds.
    pub messages_per_minute: u64,
}

/// What one node asks the others (serialized as the broker's question bytes).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "ask", rename_all = "camelCase")]
enum Question {
    /// Each node's [`NodeReport`].
    #[serde(rename_all = "camelCase")]
    Report {
        /// Include the activity log (the dashboard streams it from the tap instead).
        #[serde(default)]
        activity_log: bool,
        /// Include the connections matching this search (the dashboard's list).
        #[serde(default)]
        connections: Option<String>,
        /// Include the log entries a remote tap viewer has not seen yet.
        #[serde(default)]
        tap: Option<TapPull>,
    },
    /// Node `node` closes its connection `key` and answers [`Closed`]; the others answer
    /// nothing.
    Close { node: String, key: u64 },
}

/// A dashboard viewer's tap, pulled from the other nodes with each snapshot: every node but
/// the viewer's (whose tap streams) sends the entries `filter` matches that it logged after the
/// viewer's cursor for it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct TapPull {
    /// The viewer's node.
    pub asker: String,
    pub filter: TapFilter,
    /// Per node, the `until_ms` of its last batch. A node without one starts from now.
    pub cursors: HashMap<String, u64>,
}

/// One node's entries for a remote tap viewer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct TapBatch {
    /// The viewer's next cursor for this node: entries up to here were considered.
    pub until_ms: u64,
    /// Oldest first, at most [`TAP_BATCH`].
    pub entries: Vec<LogEntry>,
    /// Matching entries past [`TAP_BATCH`], not sent.
    pub dropped: u64,
}

/// Most entries one node sends a remote tap viewer per snapshot.
const TAP_BATCH: usize = 256;
/// How far behind its clock a node answers a tap pull: an event is stamped when it happens and
/// reaches the log a moment later, so the newest milliseconds wait for the next pull.
const TAP_SETTLE_MS: u64 = 100;

/// The dashboard's view of the cluster at one moment.
#[derive(Debug)]
pub(crate) struct ClusterSnapshot {
    pub stats: Stats,
    /// The connections matching the search, when one was given.
    pub connections: Option<ConnectionList>,
    /// Each other node's tap batch, when a tap was pulled.
    pub tap: Vec<(String, TapBatch)>,
}

/// A node's answer to [`Question::Close`].
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Closed {
    found: bool,
}

/// One node's figures, as it sends them to the node merging the cluster's.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NodeReport {
    node_id: String,
    connections: usize,
    uptime: u64,
    backplane_up: Option<bool>,
    total_messages: u64,
    dropped: Dropped,
    namespaces: Vec<NamespaceCensus>,
    /// Every channel with local members or messages in the last minute.
    channels: Vec<ChannelFigures>,
    activity_log: Vec<TimedEntry>,
    activity_log_dropped: u64,
    /// The connections matching the asker's search, when it asked.
    #[serde(default)]
    connection_list: Option<ConnectionList>,
    /// Entries for the asker's tap viewer, when it asked (never from the asker itself).
    #[serde(default)]
    tap: Option<TapBatch>,
}

/// A log entry with the instant that orders it (the API shows only the timestamp).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TimedEntry {
    at_ms: u64,
    entry: LogEntry,
}

impl Switchboard {
    /// The cluster's statistics (this node's alone without a backplane): uptime,
    /// connections, messages and drops, every node, every namespace with its status colour and
    /// rates, the busiest channels and the activity log. Waits at most a second for the other
    /// nodes.
    pub async fn stats(&self) -> Stats {
        self.cluster_snapshot(true, None, None).await.stats
    }

    /// The connections of every node whose client id, dialect, username, namespace, channels
    /// or metadata contain `query` (see [`Switchboard::connection_list`]), oldest first.
    pub async fn cluster_connection_list(&self, query: &str) -> ConnectionList {
        self.cluster_snapshot(false, Some(query), None)
            .await
            .connections
            .unwrap_or_default()
    }

    /// The cluster's statistics, with the activity log when `activity_log`, the connections
    /// matching `connections` when given, and the other nodes' entries for a tap viewer when
    /// `tap` is given: one question to the other nodes for all (the dashboard's snapshot).
    pub(crate) async fn cluster_snapshot(
        &self,
        activity_log: bool,
        connections: Option<&str>,
        tap: Option<&TapPull>,
    ) -> ClusterSnapshot {
        let question = Question::Report {
            activity_log,
            connections: connections.map(str::to_string),
            tap: tap.cloned(),
        };
        let local = self.node_report(&question);
        let asked = serde_json::to_vec(&question).expect("a question serializes");
        let mut reports = vec![local];
        for (node, answer) in self.broker().ask(&asked).await {
            match serde_json::from_slice::<NodeReport>(&answer) {
                Ok(report) => reports.push(report),
                Err(err) => tracing::warn!(%node, %err, "unreadable stats report from a node"),
            }
        }
        let ops = self.ops();
        let tap = reports
            .iter_mut()
            .filter_map(|report| Some((report.node_id.clone(), report.tap.take()?)))
            .collect();
        let (mut stats, connections) = merge(reports, ops.clock.now_ms(), &ops.config);
        // Live nodes that did not answer: listed from their alive announcements.
        for (node_id, figures) in self.broker().peers() {
            if stats.nodes.iter().any(|n| *n.node_id == *node_id) {
                continue;
            }
            let figures = figures.unwrap_or_default();
            stats.nodes.push(NodeStats {
                node_id: node_id.to_string(),
                connections: usize::try_from(figures.connections).unwrap_or(usize::MAX),
                uptime: figures.uptime_secs,
                backplane: "up",
                reported: false,
            });
        }
        stats.nodes[1..].sort_by(|a, b| a.node_id.cmp(&b.node_id));
        stats.total_connections = stats.nodes.iter().map(|node| node.connections).sum();
        ClusterSnapshot {
            stats,
            connections,
            tap,
        }
    }

    /// This node's answer to another node's question: its report, or the outcome of a close
    /// addressed to it (nothing for a close addressed to another node, or a question it cannot
    /// read).
    pub(crate) fn answer_question(&self, question: &[u8]) -> Bytes {
        match serde_json::from_slice::<Question>(question) {
            Ok(question @ Question::Report { .. }) => json_bytes(&self.node_report(&question)),
            Ok(Question::Close { node, key }) if node == self.node_id() => json_bytes(&Closed {
                found: self.close_connection(key),
            }),
            Ok(Question::Close { .. }) => Bytes::new(),
            Err(err) => {
                tracing::warn!(%err, "unreadable question from another node");
                Bytes::new()
            }
        }
    }

    fn node_report(&self, question: &Question) -> NodeReport {
        let (activity_log, search, tap) = match question {
            Question::Report {
                activity_log,
                connections,
                tap,
            } => (*activity_log, connections.as_deref(), tap.as_ref()),
            Question::Close { .. } => (false, None, None),
        };
        let ops = self.ops();
        let now = ops.clock.now_ms();
        let activity_log = if activity_log {
            ops.log
                .snapshot()
                .into_iter()
                .map(|entry| TimedEntry {
                    at_ms: entry.at_ms,
                    entry,
                })
                .collect()
        } else {
            Vec::new()
        };
        NodeReport {
            node_id: self.node_id().to_string(),
            connections: self.hub().connection_count(),
            uptime: now.saturating_sub(ops.started_ms) / 1000,
            backplane_up: self.backplane_up(),
            total_messages: ops.messages.load(std::sync::atomic::Ordering::Relaxed),
            dropped: ops.dropped.snapshot(),
            namespaces: ops
                .namespaces
                .values()
                .map(|state| NamespaceHandle::from(state.clone()).census())
                .collect(),
            channels: local_channels(ops, self.hub().channel_sizes(), now),
            activity_log,
            activity_log_dropped: ops.recorder.dropped(),
            connection_list: search.map(|query| self.connection_list(query)),
            tap: tap
                .filter(|pull| pull.asker != self.node_id())
                .map(|pull| self.tap_batch(pull, now)),
        }
    }

    /// The entries of this node's log for a remote tap viewer.
    fn tap_batch(&self, pull: &TapPull, now: u64) -> TapBatch {
        let until_ms = now.saturating_sub(TAP_SETTLE_MS);
        let Some(&after_ms) = pull.cursors.get(self.node_id()) else {
            return TapBatch {
                until_ms,
                ..TapBatch::default()
            };
        };
        let mut entries = self
            .ops()
            .log
            .entries_between(after_ms, until_ms, &pull.filter);
        let dropped = entries.len().saturating_sub(TAP_BATCH);
        entries.drain(..dropped);
        TapBatch {
            until_ms,
            entries,
            dropped: dropped as u64,
        }
    }
}

fn json_bytes<T: Serialize>(value: &T) -> Bytes {
    Bytes::from(serde_json::to_vec(value).expect("serializes"))
}

/// Ask node `node` to close its connection `key`: whether it had it.
pub(super) async fn close_remote_connection(app: &Switchboard, node: &str, key: u64) -> bool {
    let question = Question::Close {
        node: node.to_string(),
        key,
    };
    let asked = serde_json::to_vec(&question).expect("a question serializes");
    app.broker()
        .ask(&asked)
        .await
        .into_iter()
        .filter(|(answering, _)| **answering == *node)
        .filter_map(|(_, answer)| serde_json::from_slice::<Closed>(&answer).ok())
        .any(|closed| closed.found)
}

/// Every channel with members on this node or messages in the last minute from it; forgets the
/// rates of channels idle for a minute.
fn local_channels(
    ops: &Operations,
    sizes: Vec<(Arc<str>, usize)>,
    now: u64,
) -> Vec<ChannelFigures> {
    ops.channel_rates.retain(|_, rate| !rate.is_idle(now));
    let mut channels: HashMap<Arc<str>, ChannelFigures> = sizes
        .into_iter()
        .map(|(name, members)| {
            let figures = ChannelFigures {
                name: name.to_string(),
                members,
                messages_per_minute: 0,
            };
            (name, figures)
        })
        .collect();
    for rate in ops.channel_rates.iter() {
        let count = rate.count(now, 60);
        if count == 0 {
            continue;
        }
        channels
            .entry(rate.key().clone())
            .or_insert_with(|| ChannelFigures {
                name: rate.key().to_string(),
                members: 0,
                messages_per_minute: 0,
            })
            .messages_per_minute = count;
    }
    channels.into_values().collect()
}

/// The cluster's statistics from every report, the asking node's first; `now_ms` and `config`
/// (the asking node's) colour the namespaces and bound the log.
fn merge(
    reports: Vec<NodeReport>,
    now_ms: u64,
    config: &StatsConfig,
) -> (Stats, Option<ConnectionList>) {
    let uptime = reports.first().map_or(0, |report| report.uptime);
    let mut nodes = Vec::with_capacity(reports.len());
    let (mut total_messages, mut dropped, mut activity_log_dropped) = (0, Dropped::default(), 0);
    let mut namespaces: BTreeMap<String, NamespaceCensus> = BTreeMap::new();
    let mut channels: HashMap<String, ChannelFigures> = HashMap::new();
    let mut log = Vec::new();
    let mut connections: Option<ConnectionList> = None;
    for report in reports {
        if let Some(theirs) = report.connection_list {
            match &mut connections {
                Some(merged) => merged.merge(theirs),
                None => connections = Some(theirs),
            }
        }
        nodes.push(NodeStats {
            node_id: report.node_id,
            connections: report.connections,
            uptime: report.uptime,
            backplane: match report.backplane_up {
                None => "none",
                Some(true) => "up",
                Some(false) => "down",
            },
            reported: true,
        });
        total_messages += report.total_messages;
        dropped += report.dropped;
        activity_log_dropped += report.activity_log_dropped;
        for census in report.namespaces {
            match namespaces.get_mut(&census.path) {
                Some(merged) => merged.merge(census),
                None => {
                    namespaces.insert(census.path.clone(), census);
                }
            }
        }
        for channel in report.channels {
            match channels.get_mut(&channel.name) {
                Some(merged) => {
                    merged.members += channel.members;
                    merged.messages_per_minute += channel.messages_per_minute;
                }
                None => {
                    channels.insert(channel.name.clone(), channel);
                }
            }
        }
        log.extend(report.activity_log);
    }
    // Stable: one node's entries of the same millisecond keep their order.
    log.sort_by_key(|timed| timed.at_ms);
    let keep_from = log.len().saturating_sub(config.activity_log_max);
    let activity_log = log
        .into_iter()
        .skip(keep_from)
        .map(|timed| LogEntry {
            at_ms: timed.at_ms,
            ..timed.entry
        })
        .collect();
    let stats = Stats {
        uptime,
        total_connections: nodes.iter().map(|node| node.connections).sum(),
        total_messages,
        total_dropped: dropped.total(),
        nodes,
        namespaces: namespaces
            .into_values()
            .map(|census| census.stats(now_ms, config))
            .collect(),
        channels: channel_stats(channels.into_values().collect()),
        activity_log,
        activity_log_dropped,
    };
    (stats, connections)
}

/// The channel count and the busiest channels.
fn channel_stats(channels: Vec<ChannelFigures>) -> ChannelStats {
    let mut top: Vec<ChannelFigures> = channels
        .into_iter()
        .filter(|channel| channel.members > 0)
        .collect();
    let count = top.len();
    top.sort_by(|a, b| {
        (b.members, b.messages_per_minute, &a.name).cmp(&(
            a.members,
            a.messages_per_minute,
            &b.name,
        ))
    });
    top.truncate(TOP_CHANNELS);
    ChannelStats { count, top }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::namespace::NamespaceStatus;

    fn census(path: &str, clients: &[&str], users: &[&str], last: Option<u64>) -> NamespaceCensus {
        NamespaceCensus {
            name: path.rsplit('/').next().unwrap_or_default().to_string(),
            path: path.to_string(),
            sockets: clients.len(),
            client_ids: clients.iter().map(|c| c.to_string()).collect(),
            usernames: users.iter().map(|u| u.to_string()).collect(),
            messages_per_minute: 2,
            messages_per_hour: 5,
            messages: 7,
            last_message_unix_ms: last,
            dropped: Dropped {
                oversize: 1,
                ..Dropped::default()
            },
            uptime_secs: 10,
        }
    }

    fn entry(node: &str, at_ms: u64, message: &str) -> TimedEntry {
        TimedEntry {
            at_ms,
            entry: LogEntry {
                timestamp: super::super::clock::iso8601(at_ms),
                node: Arc::from(node),
                dialect: "channel".into(),
                target: "room".into(),
                direction: "received".into(),
                username: String::new(),
                message: message.into(),
                reason: None,
                at_ms: 0,
            },
        }
    }

    fn channel(name: &str, members: usize, per_minute: u64) -> ChannelFigures {
        ChannelFigures {
            name: name.into(),
            members,
            messages_per_minute: per_minute,
        }
    }

    fn report(node: &str) -> NodeReport {
        NodeReport {
            node_id: node.into(),
            connections: 3,
            uptime: 100,
            backplane_up: Some(true),
            total_messages: 10,
            dropped: Dropped {
                invalid: 2,
                ..Dropped::default()
            },
            namespaces: Vec::new(),
            channels: Vec::new(),
            activity_log: Vec::new(),
            activity_log_dropped: 1,
            connection_list: None,
            tap: None,
        }
    }

    /// Every figure of two reports adds up, without counting a client, a user or a channel
    /// twice; the logs interleave by time and keep the newest.
    #[test]
    fn two_nodes_reports_merge_into_one_cluster() {
        let now = 2_000_000;
        let config = StatsConfig {
            activity_log_max: 3,
            ..StatsConfig::default()
        };
        let mut a = report("a");
        a.namespaces = vec![
            census(
                "/api/1/ws/chat",
                &["c1", "c2"],
                &["ann", "bob"],
                Some(now - 400_000),
            ),
            census("/api/1/ws/quiet", &[], &[], None),
        ];
        a.channels = vec![channel("room", 2, 1), channel("solo", 1, 0)];
        a.activity_log = vec![entry("a", 10, "a1"), entry("a", 30, "a2")];
        let mut b = report("b");
        b.uptime = 50;
        b.connections = 4;
        b.namespaces = vec![census(
            "/api/1/ws/chat",
            &["c2", "c3"],
            &["bob", "cy"],
            Some(now - 1_000),
        )];
        b.channels = vec![channel("room", 3, 4), channel("busy", 0, 9)];
        b.activity_log = vec![entry("b", 20, "b1"), entry("b", 40, "b2")];

        let (stats, _) = merge(vec![a, b], now, &config);
        assert_eq!(stats.uptime, 100, "the asking node's");
        assert_eq!(stats.total_connections, 7);
        assert_eq!(stats.total_messages, 20);
        assert_eq!(stats.total_dropped, 4);
        assert_eq!(stats.activity_log_dropped, 2);
        let nodes: Vec<(&str, usize, u64, bool)> = stats
            .nodes
            .iter()
            .map(|n| (n.node_id.as_str(), n.connections, n.uptime, n.reported))
            .collect();
        assert_eq!(nodes, [("a", 3, 100, true), ("b", 4, 50, true)]);

        let chat = &stats.namespaces[0];
        assert_eq!(chat.path, "/api/1/ws/chat");
        assert_eq!((chat.clients, chat.users, chat.sockets), (3, 3, 4));
        assert_eq!((chat.messages_per_minute, chat.messages_per_hour), (4, 10));
        assert_eq!(chat.messages, 14);
        assert_eq!(chat.dropped.oversize, 2);
        // A's last message was yellow-old; B's makes the namespace green.
        assert_eq!(chat.status, NamespaceStatus::Green);
        assert_eq!(chat.last_message_unix_ms, Some(now - 1_000));
        assert_eq!(stats.namespaces[1].status, NamespaceStatus::Red);

        // `busy` has messages but no members anywhere: not counted.
        assert_eq!(stats.channels.count, 2);
        assert_eq!(
            stats.channels.top,
            [channel("room", 5, 5), channel("solo", 1, 0)]
        );

        let log: Vec<&str> = stats
            .activity_log
            .iter()
            .map(|e| e.message.as_str())
            .collect();
        assert_eq!(log, ["b1", "a2", "b2"]);
    }

    #[test]
    fn a_report_survives_the_trip_between_nodes() {
        let mut original = report("a");
        original.namespaces = vec![census("/api/1/ws/chat", &["c1"], &["ann"], Some(5))];
        original.channels = vec![channel("room", 1, 2)];
        original.activity_log = vec![entry("a", 42, "hello")];
        let bytes = serde_json::to_vec(&original).unwrap();
        let back: NodeReport = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back.namespaces, original.namespaces);
        assert_eq!(back.channels, original.channels);
        assert_eq!(back.activity_log[0].at_ms, 42);
        assert_eq!(back.activity_log[0].entry.message, "hello");
        assert_eq!(back.dropped, original.dropped);
    }
}
