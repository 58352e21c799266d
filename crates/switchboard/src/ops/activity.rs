//! The activity log: the last `[stats] activity_log_secs` seconds (at most `activity_log_max`
//! entries) of messages across every dialect, received, sent and rejected, each cut to 500
//! characters. Seed 003's admin view shows it; `Switchboard::stats()` returns it.
//!
//! A session must never wait for the log, so recording is split in two. On the session's task,
//! [`ActivityRecorder::record`] builds a small [`ActivityEvent`] from handles it already holds
//! (shared bytes, an identity, a target) and offers it to a bounded queue; when the queue is full
//! the event is dropped and counted. A background task takes events in batches and appends
//! them to the log as they are (a message longer than an entry shows is cut to a private copy
//! first, so the log never holds a large payload alive). Formatting them as [`LogEntry`]s (the
//! target text, the username, the cut to 500 characters, the timestamp text) waits until someone
//! reads the log, or happens at once only while a live tap viewer watches: the log is written on
//! every message and read by an operator now and then.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::clock::{Clock, iso8601};
use super::tap::{Tap, TapFilter};
use crate::config::StatsConfig;
use crate::dialect::namespace::handle::NamespaceState;
use crate::hub::Target;
use crate::identity::Identity;

/// Longest message text an entry keeps, in characters.
pub const MESSAGE_CHARS: usize = 500;
/// Events waiting for the background task before new ones are dropped.
const QUEUE_EVENTS: usize = 8192;

/// Which way a message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// From a client, accepted.
    Received,
    /// Published from this node (a client's relay or a server send).
    Sent,
    /// From a client, refused; the reason is an error code the client was told, or why the
    /// message was dropped.
    Rejected(&'static str),
}

/// What a message was for.
#[derive(Debug, Clone)]
pub(crate) enum Subject {
    /// Hub recipients (users, channels, clients, a namespace, everyone).
    Target(Target),
    /// A namespace's clients.
    Namespace(Arc<NamespaceState>),
    /// A walker call.
    Walker(String),
    /// The endpoint a frame came in on, when the frame named nothing usable (it was invalid).
    Endpoint(&'static str),
}

impl Subject {
    fn describe(&self) -> String {
        match self {
            Subject::Target(Target::Channels(ids)) => ids.join(","),
            Subject::Target(Target::Users(ids)) => format!("user:{}", ids.join(",")),
            Subject::Target(Target::Clients(ids)) => format!("client:{}", ids.join(",")),
            Subject::Target(Target::Namespace(name)) => {
                format!("{}{name}", crate::dialect::namespace::PATH_PREFIX)
            }
            Subject::Target(Target::Everyone) => "*".to_string(),
            Subject::Namespace(state) => state.path.clone(),
            Subject::Walker(name) => format!("walker:{name}"),
            Subject::Endpoint(path) => (*path).to_string(),
        }
    }
}

/// Who sent a message.
#[derive(Debug, Clone)]
pub(crate) enum Sender {
    /// A client, as it was identified when it sent.
    Client(Identity),
    /// A server send speaking under a name.
    Named(Arc<str>),
    /// A server send under no name.
    Server,
}

impl Sender {
    fn username(&self) -> String {
        match self {
            Sender::Client(identity) if identity.is_authenticated() => {
                identity.username().unwrap_or_default().to_string()
            }
            Sender::Named(name) => name.to_string(),
            Sender::Client(_) | Sender::Server => String::new(),
        }
    }
}

/// One message as a session reports it: only cheap clones of what it already holds. The log
/// keeps these, and formats them when read.
#[derive(Debug)]
pub(crate) struct ActivityEvent {
    pub(crate) at_ms: u64,
    pub(crate) dialect: &'static str,
    pub(crate) subject: Subject,
    pub(crate) direction: Direction,
    pub(crate) sender: Sender,
    /// The message as sent (shared bytes, not a copy).
    pub(crate) message: Bytes,
}

/// One line of the activity log, as the stats API and the tap send it. Nodes of a cluster send
/// each other theirs (for the merged log), hence `Deserialize` and the owned-or-static texts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogEntry {
    /// ISO 8601 UTC.
    pub timestamp: String,
    /// The node that saw it.
    pub node: Arc<str>,
    pub dialect: Cow<'static, str>,
    /// The namespace path, channel(s), users, clients or walker it was for.
    pub target: String,
    /// `received`, `sent` or `rejected`.
    pub direction: Cow<'static, str>,
    /// The sender's username; empty for anonymous clients and nameless server sends.
    pub username: String,
    /// The message text, cut to 500 characters.
    pub message: String,
    /// Why a rejected message was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Cow<'static, str>>,
    /// When, in Unix milliseconds: orders a merged log. Not part of the stats API (the
    /// timestamp says it).
    #[serde(skip)]
    pub at_ms: u64,
}

impl LogEntry {
    fn new(event: &ActivityEvent, node: &Arc<str>) -> Self {
        let (direction, reason) = match event.direction {
            Direction::Received => (Cow::Borrowed("received"), None),
            Direction::Sent => (Cow::Borrowed("sent"), None),
            Direction::Rejected(reason) => (Cow::Borrowed("rejected"), Some(Cow::Borrowed(reason))),
        };
        Self {
            timestamp: iso8601(event.at_ms),
            node: node.clone(),
            dialect: Cow::Borrowed(event.dialect),
            target: event.subject.describe(),
            direction,
            username: event.sender.username(),
            message: cut(&event.message),
            reason,
            at_ms: event.at_ms,
        }
    }
}

/// The first [`MESSAGE_CHARS`] characters of a message.
fn cut(message: &[u8]) -> String {
    let text = String::from_utf8_lossy(message);
    match text.char_indices().nth(MESSAGE_CHARS) {
        Some((end, _)) => text[..end].to_string(),
        None => text.into_owned(),
    }
}

/// The start of `text`, copied, long enough for a log entry: for messages a session holds only
/// as `&str` (a refused message), so no more than an entry keeps is copied.
pub(crate) fn excerpt(text: &str) -> Bytes {
    let mut end = text.len().min(MESSAGE_CHARS * 4);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Bytes::copy_from_slice(&text.as_bytes()[..end])
}

/// The session side: offers events to the background task, never waits.
#[derive(Debug)]
pub struct ActivityRecorder {
    queue: mpsc::Sender<ActivityEvent>,
    /// Events dropped because the queue was full.
    dropped: AtomicU64,
}

impl ActivityRecorder {
    /// A recorder and the task that fills `log` and feeds `tap` (spawned on the current runtime;
    /// it ends when the recorder is dropped).
    pub fn start(log: Arc<ActivityLog>, tap: Arc<Tap>) -> Self {
        let (queue, events) = mpsc::channel(QUEUE_EVENTS);
        tokio::spawn(consume(events, log, tap));
        Self {
            queue,
            dropped: AtomicU64::new(0),
        }
    }

    pub(crate) fn record(&self, event: ActivityEvent) {
        if self.queue.try_send(event).is_err() {
            // Logged at the first drop and every 10,000th after, not at every one.
            if self.dropped.fetch_add(1, Ordering::Relaxed) % 10_000 == 0 {
                tracing::warn!(
                    dropped = self.dropped(),
                    "activity log queue full; events dropped (the log misses them, counts do not)"
                );
            }
        }
    }

    /// Events the log missed because its queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Most events the background task takes from the queue at once.
const BATCH_EVENTS: usize = 256;

async fn consume(mut events: mpsc::Receiver<ActivityEvent>, log: Arc<ActivityLog>, tap: Arc<Tap>) {
    let mut batch = Vec::with_capacity(BATCH_EVENTS);
    while events.recv_many(&mut batch, BATCH_EVENTS).await > 0 {
        for event in &mut batch {
            if event.message.len() > MESSAGE_BYTES {
                event.message = Bytes::copy_from_slice(&event.message[..MESSAGE_BYTES]);
            }
        }
        if tap.is_watched() {
            for event in &batch {
                tap.offer(&Arc::new(LogEntry::new(event, &log.node)));
            }
        }
        log.push(batch.drain(..));
    }
}

/// Bytes of a message the log keeps: enough for [`MESSAGE_CHARS`] characters of any UTF-8.
const MESSAGE_BYTES: usize = MESSAGE_CHARS * 4;

/// The entries of the last `activity_log_secs` seconds, at most `activity_log_max`.
#[derive(Debug)]
pub struct ActivityLog {
    node: Arc<str>,
    clock: Clock,
    max_entries: usize,
    max_age_ms: u64,
    entries: Mutex<VecDeque<ActivityEvent>>,
}

impl ActivityLog {
    pub fn new(node: &str, clock: Clock, config: &StatsConfig) -> Self {
        Self {
            node: Arc::from(node),
            clock,
            max_entries: config.activity_log_max,
            max_age_ms: config.activity_log_secs.saturating_mul(1000),
            entries: Mutex::new(VecDeque::new()),
        }
    }

    fn push(&self, events: impl Iterator<Item = ActivityEvent>) {
        let now = self.clock.now_ms();
        let mut entries = self.entries.lock();
        entries.extend(events);
        self.expire(&mut entries, now);
    }

    /// The entries still in the window, oldest first.
    pub fn snapshot(&self) -> Vec<LogEntry> {
        let now = self.clock.now_ms();
        let mut entries = self.entries.lock();
        self.expire(&mut entries, now);
        entries
            .iter()
            .map(|event| LogEntry::new(event, &self.node))
            .collect()
    }

    /// The entries logged after `after_ms` up to `until_ms` that `filter` matches, oldest
    /// first.
    pub(crate) fn entries_between(
        &self,
        after_ms: u64,
        until_ms: u64,
        filter: &TapFilter,
    ) -> Vec<LogEntry> {
        let entries = self.entries.lock();
        entries
            .iter()
            .filter(|event| event.at_ms > after_ms && event.at_ms <= until_ms)
            .map(|event| LogEntry::new(event, &self.node))
            .filter(|entry| filter.matches(entry))
            .collect()
    }

    fn expire(&self, entries: &mut VecDeque<ActivityEvent>, now: u64) {
        let oldest = now.saturating_sub(self.max_age_ms);
        while entries
            .front()
            .is_some_and(|entry| entry.at_ms < oldest || entries.len() > self.max_entries)
        {
            entries.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_cut_by_characters_not_bytes() {
        let long = "é".repeat(MESSAGE_CHARS + 10);
        let cut = cut(long.as_bytes());
        assert_eq!(cut.chars().count(), MESSAGE_CHARS);
        assert_eq!(super::cut(b"short"), "short");
    }
}
