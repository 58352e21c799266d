//! The last hour of connections and messages per second, one point every 10 seconds, for the
//! dashboard's charts. A background task samples the hub and the message rate; the dashboard
//! gets the whole series with each update, so a page opened now still shows the past hour.

use std::collections::VecDeque;
use std::sync::Weak;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;

use super::Operations;
use crate::hub::Hub;

/// Seconds between points.
pub const SAMPLE_SECS: u64 = 10;
/// Points kept: one hour.
const POINTS: usize = 360;

/// One point of the charts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryPoint {
    /// Unix milliseconds (statistics clock).
    pub at: u64,
    /// Connections open at that moment.
    pub connections: usize,
    /// Client messages per second over the 10 seconds before it.
    pub messages_per_second: f64,
}

/// The series, oldest first.
#[derive(Debug, Default)]
pub struct History {
    points: Mutex<VecDeque<HistoryPoint>>,
}

impl History {
    pub(crate) fn push(&self, point: HistoryPoint) {
        let mut points = self.points.lock();
        if points.len() == POINTS {
            points.pop_front();
        }
        points.push_back(point);
    }

    pub fn points(&self) -> Vec<HistoryPoint> {
        self.points.lock().iter().copied().collect()
    }
}

/// Sample every [`SAMPLE_SECS`] seconds (the first at once) until the app is gone.
pub(crate) async fn run(hub: Weak<Hub>, ops: Weak<Operations>) {
    let mut every = tokio::time::interval(Duration::from_secs(SAMPLE_SECS));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let (Some(hub), Some(ops)) = (hub.upgrade(), ops.upgrade()) else {
            return;
        };
        ops.sample(hub.connection_count());
    }
}
