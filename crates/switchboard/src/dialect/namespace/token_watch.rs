//! Ends authenticated sessions whose token no longer holds, on namespaces that require a login:
//! tokens that expired, and tokens revoked where this process could not see it happen (by another
//! node, or by `switchboard user revoke` against a shared database). One task for every such
//! namespace, no timer per connection; it runs every half heartbeat interval, so a client is told
//! (error 401) and closed (4401) within one heartbeat interval. A revocation through this process
//! acts at once instead (`credentials_revoked`).
//!
//! The revocation check reads one indexed row per distinct logged-in user per run, and only for
//! users connected to such namespaces.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::envelope;
use super::handle::{NamespaceState, unix_ms};
use crate::close_code;
use crate::hub::{Connection, Hub};
use crate::store::AccountStore;

/// Run until the hub is dropped.
pub(crate) async fn run(
    hub: Weak<Hub>,
    store: AccountStore,
    namespaces: Vec<Arc<NamespaceState>>,
    interval: Duration,
) {
    let period = (interval / 2).max(Duration::from_millis(50));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        // The members are collected without holding the hub across the store's awaits.
        let by_user = {
            let Some(hub) = hub.upgrade() else {
                return;
            };
            expire(&hub, &namespaces, unix_ms() / 1000)
        };
        for (user_id, (version, connections)) in by_user {
            let current = match store.token_version(&user_id).await {
                Ok(current) => current,
                Err(err) => {
                    tracing::warn!(%err, "cannot check token revocation; will retry");
                    continue;
                }
            };
            if current.is_none_or(|current| current > version) {
                let Some(hub) = hub.upgrade() else {
                    return;
                };
                for conn in connections {
                    refuse(&hub, &conn, "the token has been revoked; log in again");
                }
            }
        }
    }
}

/// Close every expired session; return the live ones by user (with the oldest token version
/// seen, which is the one to compare).
fn expire(
    hub: &Hub,
    namespaces: &[Arc<NamespaceState>],
    now_secs: u64,
) -> HashMap<String, (i64, Vec<Arc<Connection>>)> {
    let mut by_user: HashMap<String, (i64, Vec<Arc<Connection>>)> = HashMap::new();
    for state in namespaces {
        for conn in hub.namespace_members(state.name()) {
            let identity = conn.identity();
            let (Some(user_id), Some(token)) = (identity.account_id(), identity.token()) else {
                continue;
            };
            if token.expires_at <= now_secs {
                refuse(hub, &conn, "the token has expired; log in again");
                continue;
            }
            // An external token has no account here to be revoked in; it only expires.
            let Some(version) = token.version else {
                continue;
            };
            let entry = by_user
                .entry(user_id.to_string())
                .or_insert((version, Vec::new()));
            entry.0 = entry.0.min(version);
            entry.1.push(conn);
        }
    }
    by_user
}

fn refuse(hub: &Hub, conn: &Connection, message: &str) {
    if conn.outbound.is_closing() {
        return;
    }
    hub.metrics().client_errors.inc();
    hub.push_frame(conn, envelope::error(401, message, None));
    conn.outbound.close(close_code::UNAUTHORIZED);
}
