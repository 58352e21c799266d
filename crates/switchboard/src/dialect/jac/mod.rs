//! The Jac Cloud dialect on `GET /websocket` (seeds 000-002; the contract is
//! `docs/protocol-jac.md`).
//!
//! - [`connect`]: the connect parameters, client id and first frames.
//! - [`events`]: a client frame to a [`events::ClientEvent`], or a coded error.
//! - [`frames`]: the frames the server sends (connection info, walker replies, errors).
//! - [`session`]: one connection's handler, turning events into hub operations and walker runs.
//!
//! A delivery reaches a Jac connection verbatim: the payload is the whole frame. A delivery that
//! names an event (a channel-dialect message, see `docs/protocol-channel.md`) arrives as
//! `{"type":EVENT,"data":PAYLOAD}`, the shape Jac clients already branch on.

pub mod connect;
pub mod events;
pub mod frames;
pub mod session;

use std::sync::Arc;

use axum::Router;
use bytes::Bytes;

use crate::app::Switchboard;
use crate::dialect::Dialect;
use crate::hub::{Connection, Delivery, DialectId, FrameEncoder, Route};
use crate::identity::Identity;

/// The endpoint path.
pub const PATH: &str = "/websocket";

/// The Jac Cloud dialect.
#[derive(Debug, Default)]
pub struct JacDialect;

impl Dialect for JacDialect {
    fn name(&self) -> &'static str {
        "jac"
    }

    fn encoder(&self) -> Arc<dyn FrameEncoder> {
        Arc::new(Verbatim)
    }

    fn routes(self: Arc<Self>, _app: &Switchboard, id: DialectId) -> Router<Switchboard> {
        Router::new().route(
            PATH,
            crate::session::endpoint(Arc::new(connect::JacConnect), id),
        )
    }

    /// A Jac connection stays open as the public user, told why, then shown its new identity.
    fn credentials_revoked(&self, app: &Switchboard, conn: &Arc<Connection>) {
        // The public user has no connection limit, so the switch cannot be refused.
        let _ = app.hub().set_identity(conn, Identity::public());
        app.metrics().client_errors.inc();
        app.hub().push_frame(
            conn,
            frames::error(
                "token_revoked",
                "the token has been revoked; switched to the public user",
            ),
        );
        app.hub().push_frame(conn, frames::connection(conn));
    }
}

/// Jac Cloud sends a notification's payload as the whole frame; an event-named delivery (from
/// another dialect, or a backend's publish item) is wrapped as `{"type":EVENT,"data":PAYLOAD}`.
#[derive(Debug)]
struct Verbatim;

impl FrameEncoder for Verbatim {
    fn dialect(&self) -> &'static str {
        "jac"
    }

    fn encode(&self, delivery: &Delivery, _route: &Route<'_>) -> Bytes {
        match delivery.event() {
            None => delivery.payload().clone(),
            Some(event) => frames::typed(event, delivery.payload()),
        }
    }
}
