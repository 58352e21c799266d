//! Liveness: one sweep task for every connection, instead of a timer per connection.
//!
//! Each sweep pings the connections that have been silent for the ping interval (and were not
//! pinged since) and closes with 4001 those silent for the interval plus the timeout. Any frame
//! from the peer, a pong included, counts as a sign of life (see `session::io_loop::drive`).

use std::sync::Weak;
use std::time::Duration;

use crate::close_code;
use crate::config::HeartbeatConfig;
use crate::hub::Hub;

/// Run sweeps until the hub is dropped.
pub(crate) async fn run(hub: Weak<Hub>, config: HeartbeatConfig) {
    let interval = config.interval();
    let timeout = config.timeout();
    // Sweep often enough that detection is at most a fraction of the timeout late.
    let period = (interval.min(timeout.max(Duration::from_millis(1))) / 4)
        .clamp(Duration::from_millis(20), Duration::from_secs(1));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(hub) = hub.upgrade() else {
            return;
        };
        sweep(
            &hub,
            interval.as_millis() as u64,
            timeout.as_millis() as u64,
        );
    }
}

fn sweep(hub: &Hub, interval_ms: u64, timeout_ms: u64) {
    let now = hub.now_ms();
    let mut timed_out = 0u64;
    hub.for_each_connection(|conn| {
        let silent = now.saturating_sub(conn.last_seen_ms());
        if silent >= interval_ms + timeout_ms {
            if conn.outbound.close(close_code::HEARTBEAT_TIMEOUT) {
                timed_out += 1;
            }
        } else if silent >= interval_ms && conn.last_ping_ms() <= conn.last_seen_ms() {
            conn.mark_pinged(now);
            conn.outbound.request_ping();
        }
    });
    if timed_out > 0 {
        hub.metrics().heartbeat_timeouts.inc_by(timed_out);
        tracing::info!(timed_out, "closed silent connections");
    }
}
