//! The live tap: activity-log entries as they happen, for admins watching the dashboard. Each
//! viewer has its own bounded queue and filter; a viewer that reads too slowly loses entries
//! (counted for it) rather than slow the log, and sessions never see viewers at all (entries
//! reach the tap from the log's background task).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::activity::LogEntry;

/// Entries waiting for one viewer before new ones are dropped for it.
const VIEWER_QUEUE: usize = 256;

/// Which entries a viewer wants; an empty field matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TapFilter {
    /// A dialect name (`jac`, `channel`, `namespace`).
    pub dialect: String,
    /// A channel, namespace path or other target, matched as a substring of the entry's target.
    pub channel: String,
    /// A username, matched exactly.
    pub user: String,
}

impl TapFilter {
    pub(crate) fn matches(&self, entry: &LogEntry) -> bool {
        (self.dialect.is_empty() || entry.dialect == self.dialect)
            && (self.channel.is_empty() || entry.target.contains(&self.channel))
            && (self.user.is_empty() || entry.username == self.user)
    }
}

#[derive(Debug)]
struct Viewer {
    filter: TapFilter,
    queue: mpsc::Sender<Arc<LogEntry>>,
    dropped: Arc<AtomicU64>,
}

/// Every viewer of the tap.
#[derive(Debug, Default)]
pub struct Tap {
    viewers: Mutex<Vec<Viewer>>,
}

/// One viewer's end of the tap; dropping it leaves the tap.
#[derive(Debug)]
pub struct TapSubscription {
    pub entries: mpsc::Receiver<Arc<LogEntry>>,
    /// Entries this viewer missed because it read too slowly.
    pub dropped: Arc<AtomicU64>,
}

impl Tap {
    /// Start watching the entries `filter` matches.
    pub fn subscribe(&self, filter: TapFilter) -> TapSubscription {
        let (queue, entries) = mpsc::channel(VIEWER_QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        self.viewers.lock().push(Viewer {
            filter,
            queue,
            dropped: dropped.clone(),
        });
        TapSubscription { entries, dropped }
    }

    /// Whether anyone watches (entries are formatted for the tap only then).
    pub(crate) fn is_watched(&self) -> bool {
        let mut viewers = self.viewers.lock();
        viewers.retain(|viewer| !viewer.queue.is_closed());
        !viewers.is_empty()
    }

    /// Hand `entry` to every viewer that wants it; forget viewers that left.
    pub(crate) fn offer(&self, entry: &Arc<LogEntry>) {
        let mut viewers = self.viewers.lock();
        viewers.retain(|viewer| !viewer.queue.is_closed());
        for viewer in viewers.iter().filter(|v| v.filter.matches(entry)) {
            if viewer.queue.try_send(entry.clone()).is_err() {
                viewer.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
