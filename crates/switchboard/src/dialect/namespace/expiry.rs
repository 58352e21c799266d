//! Ends authenticated sessions whose token has expired: one sweep task for every namespace that
//! requires a login (no timer per connection), run every half heartbeat interval, so a client is
//! told (error 401) and closed (4401) within one heartbeat interval of its token's expiry.
//! Revocation is immediate instead (see [`super::NamespaceDialect`]'s `credentials_revoked`).

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::envelope;
use super::handle::{NamespaceState, unix_ms};
use crate::close_code;
use crate::hub::Hub;
use crate::stats::Metrics;

/// Run until the hub is dropped.
pub(crate) async fn run(hub: Weak<Hub>, namespaces: Vec<Arc<NamespaceState>>, interval: Duration) {
    let period = (interval / 2).max(Duration::from_millis(50));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(hub) = hub.upgrade() else {
            return;
        };
        let now_secs = unix_ms() / 1000;
        for state in &namespaces {
            sweep(&hub, state, now_secs);
        }
    }
}

fn sweep(hub: &Hub, state: &NamespaceState, now_secs: u64) {
    for conn in hub.namespace_members(state.name()) {
        let expired = conn
            .identity()
            .token_expires_at()
            .is_some_and(|expires| expires <= now_secs);
        if expired && !conn.outbound.is_closing() {
            Metrics::inc(&hub.metrics().client_errors);
            hub.push_frame(
                &conn,
                envelope::error(401, "the token has expired; log in again", None),
            );
            conn.outbound.close(close_code::UNAUTHORIZED);
        }
    }
}
