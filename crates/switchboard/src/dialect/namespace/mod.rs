//! The namespace dialect (seed 003, jPulse) on `GET /api/1/ws/<name>`; the contract is
//! `docs/protocol-namespace.md`.
//!
//! An application registers namespaces ([`Namespace`]) on the builder and gets a
//! [`NamespaceHandle`] for each; every endpoint shares this one dialect, its encoder and its
//! sweep.
//!
//! - [`definition`]: a namespace as declared (auth, roles, relay, limits, hooks; the binary's
//!   `[[namespace]]` table).
//! - [`connect`]: the connect parameters (namespace, `?uuid=`), admission and first frame.
//! - [`envelope`]: the `{"success":..,"data":{..,"username":U}}` frames and the encoder.
//! - [`events`]: a client frame, parsed once.
//! - [`rate`]: the per-socket sliding-window message rate.
//! - [`session`]: one socket's handler: limits, pings, the hook, the relay.
//! - [`handle`]: the application's handle (broadcast, send_to_client, stats) and a hook's client.
//! - [`token_watch`]: closing sessions whose token expired or was revoked elsewhere.

pub mod connect;
pub mod definition;
pub mod envelope;
pub mod events;
pub mod handle;
pub mod rate;
pub mod session;
mod token_watch;

use std::collections::HashMap;
use std::sync::{Arc, Once};

use axum::Router;

pub use definition::{
    HookError, MessageOutcome, Namespace, NamespaceConfig, NamespaceLimits, OnConnect, Relay,
};
pub use handle::{
    Client, NamespaceCensus, NamespaceHandle, NamespaceStats, NamespaceStatus, PATH_PREFIX,
};

use crate::app::Switchboard;
use crate::dialect::Dialect;
use crate::hub::{Connection, DialectId, FrameEncoder};
use crate::identity::Identity;
use handle::NamespaceState;

/// Every namespace of an app, served by one dialect.
#[derive(Debug)]
pub struct NamespaceDialect {
    namespaces: HashMap<String, Arc<NamespaceState>>,
    started: Once,
}

/// The namespaces registered on a builder, before the app exists.
#[derive(Debug, Default)]
pub struct NamespaceRegistry {
    namespaces: HashMap<String, Arc<NamespaceState>>,
}

impl NamespaceRegistry {
    /// Add a namespace; a name outside `[A-Za-z0-9_-]{1,64}` or one already taken is refused.
    pub fn register(&mut self, namespace: Namespace) -> Result<NamespaceHandle, String> {
        let name = namespace.name().to_string();
        if !definition::is_valid_name(&name) {
            return Err(format!(
                "namespace name {name:?} must match [A-Za-z0-9_-]{{1,64}}"
            ));
        }
        if namespace.relay == Relay::Upstream && namespace.upstream.is_none() {
            return Err(format!(
                "namespace {name:?}: on_message = \"upstream\" needs an `upstream` URL"
            ));
        }
        if namespace.admission == OnConnect::Upstream && namespace.upstream.is_none() {
            return Err(format!(
                "namespace {name:?}: on_connect = \"upstream\" needs an `upstream` URL"
            ));
        }
        if self.namespaces.contains_key(&name) {
            return Err(format!("namespace {name:?} is registered twice"));
        }
        let state = Arc::new(NamespaceState::new(namespace));
        self.namespaces.insert(name, state.clone());
        Ok(NamespaceHandle { state })
    }

    /// Every registered namespace (the statistics list them).
    pub(crate) fn states(&self) -> Vec<Arc<NamespaceState>> {
        self.namespaces.values().cloned().collect()
    }

    /// Whether any namespace sends its messages to an upstream.
    pub(crate) fn uses_upstream(&self) -> bool {
        self.namespaces
            .values()
            .any(|state| state.definition.upstream.is_some())
    }

    /// The dialect serving these namespaces, if there are any.
    pub fn into_dialect(self) -> Option<Arc<dyn Dialect>> {
        (!self.namespaces.is_empty()).then(|| {
            Arc::new(NamespaceDialect {
                namespaces: self.namespaces,
                started: Once::new(),
            }) as Arc<dyn Dialect>
        })
    }
}

impl NamespaceDialect {
    fn namespace(&self, name: &str) -> Option<&Arc<NamespaceState>> {
        self.namespaces.get(name)
    }

    /// Connect the handles to the app and start the token watch (once, however often the
    /// routes are built).
    fn start(&self, app: &Switchboard) {
        self.started.call_once(|| {
            for state in self.namespaces.values() {
                state.attach(
                    &app.shared.publisher,
                    app.ops().clock().clone(),
                    app.config().stats.clone(),
                );
            }
            let guarded: Vec<_> = self
                .namespaces
                .values()
                .filter(|state| state.definition.requires_auth())
                .cloned()
                .collect();
            if !guarded.is_empty() {
                tokio::spawn(token_watch::run(
                    Arc::downgrade(app.hub()),
                    app.authenticator().store().clone(),
                    guarded,
                    app.config().heartbeat.interval(),
                ));
            }
        });
    }
}

impl Dialect for NamespaceDialect {
    fn name(&self) -> &'static str {
        "namespace"
    }

    fn encoder(&self) -> Arc<dyn FrameEncoder> {
        Arc::new(envelope::Envelope)
    }

    fn routes(self: Arc<Self>, app: &Switchboard, id: DialectId) -> Router<Switchboard> {
        self.start(app);
        let connect = Arc::new(connect::NamespaceConnect { dialect: self });
        Router::new().route("/api/1/ws/{name}", crate::session::endpoint(connect, id))
    }

    /// On a namespace that requires a login the socket is told (401) and closed (4401); on an
    /// open one it stays, as an anonymous client, and is told why.
    fn credentials_revoked(&self, app: &Switchboard, conn: &Arc<Connection>) {
        app.metrics().client_errors.inc();
        let guarded = conn
            .namespace()
            .and_then(|name| self.namespace(&name).cloned())
            .is_none_or(|state| state.definition.requires_auth());
        if guarded {
            app.hub().push_frame(
                conn,
                envelope::error(401, "the token has been revoked; log in again", None),
            );
            conn.outbound.close(crate::close_code::UNAUTHORIZED);
            return;
        }
        // The public user has no connection limit, so the switch cannot be refused.
        let _ = app.hub().set_identity(conn, Identity::public());
        app.hub().push_frame(
            conn,
            envelope::error(
                401,
                "the token has been revoked; continuing as an anonymous client",
                None,
            ),
        );
    }
}
