//! The dialect contract: the ways a client can speak to the hub. Each endpoint speaks one dialect;
//! a dialect turns client frames into hub operations and deliveries into frames. The hub and the
//! session core import no dialect; a dialect is one folder here plus one registration line in
//! [`crate::app`]'s builder.
//!
//! A dialect supplies:
//! - [`Dialect`]: its name, its [`FrameEncoder`] (how a delivery looks on its wire; the hub calls
//!   it once per distinct frame) and its routes (each built with [`crate::session::endpoint`]).
//! - [`Connect`]: what happens around the shared connect path: reading its connect parameters
//!   from the request, the client id and first frames of a new connection, and its [`Session`].
//! - [`Session`]: one connection's handler: frames in, hub operations out.
//!
//! Dialects:
//! - [`jac`]: the Jac Cloud protocol on `GET /websocket` (seeds 000-002).
//! - [`channel`]: `{channel, cmd, param}` frames on `GET /ws/<channel>` (seed 004).
//! - [`namespace`]: the jPulse protocol on `GET /api/1/ws/<name>` (seed 003).

pub mod channel;
pub mod jac;
pub mod namespace;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use bytestring::ByteString;
use http::Request;

use crate::app::Switchboard;
use crate::http::ApiError;
use crate::hub::{Connection, DialectId, FrameEncoder};
use crate::session::Credentials;

/// One connection's handler: what a dialect does with client messages. Replies go through the
/// connection's outbound queue; [`crate::session::io_loop::drive`] calls it.
pub trait Session: Send {
    /// A text message, already checked as UTF-8; a dialect that relays part of it verbatim can
    /// slice its bytes instead of copying them.
    fn on_text(&mut self, text: &ByteString) -> impl std::future::Future<Output = ()> + Send;
    /// A binary message.
    fn on_binary(&mut self, data: &[u8]) -> impl std::future::Future<Output = ()> + Send;
    /// A message refused by the rate limit (its text, if it was a text message); the next one is
    /// allowed after `retry_after_ms`.
    fn on_rate_limited(&mut self, text: Option<&str>, retry_after_ms: u64);
}

/// A wire protocol, as the app registers it.
pub trait Dialect: Send + Sync + std::fmt::Debug + 'static {
    /// A short name for logs and metrics (`jac`, `namespace`, `channel`).
    fn name(&self) -> &'static str;

    /// How a delivery is framed for this dialect's connections.
    fn encoder(&self) -> Arc<dyn FrameEncoder>;

    /// This dialect's HTTP routes. `id` is what its connections register under.
    fn routes(self: Arc<Self>, app: &Switchboard, id: DialectId) -> Router<Switchboard>;

    /// The token a live connection authenticated with was revoked. By default the connection
    /// closes with 4401 (do not reconnect with the same token); a dialect whose connections may
    /// be public downgrades instead.
    fn credentials_revoked(&self, app: &Switchboard, conn: &Arc<Connection>) {
        let _ = app;
        conn.outbound.close(crate::close_code::UNAUTHORIZED);
    }
}

/// A new connection as a dialect wants it registered.
#[derive(Debug)]
pub struct Opening {
    pub client_id: Arc<str>,
    pub channels: Vec<Arc<str>>,
    pub namespace: Option<Arc<str>>,
    /// Queued before the connection is reachable, so nothing overtakes them.
    pub greeting: Vec<Bytes>,
}

/// A dialect's part of the one connect path ([`crate::session::endpoint`]): everything else
/// (draining, handshake, origin, credentials, admission, registration, rate budget, the I/O loop)
/// is shared.
pub trait Connect: Send + Sync + 'static {
    /// What the dialect reads from the upgrade request.
    type Params: Send + 'static;
    type Session: Session + 'static;

    /// Read the connect parameters; an error is the HTTP answer, before any upgrade.
    fn params(&self, app: &Switchboard, request: &Request<Body>) -> Result<Self::Params, ApiError>;

    /// The largest client message accepted (bigger closes with 1009).
    fn max_message_bytes(&self, app: &Switchboard) -> usize {
        app.config().limits.max_frame_bytes
    }

    /// Whether several sockets may share one client id (a client that chooses its own id, as
    /// the namespace dialect's `?uuid=`); by default every socket's id is its own.
    fn shares_client_ids(&self) -> bool {
        false
    }

    /// Decide what needs a round trip before the upgrade is answered (an `on_connect`
    /// upstream's verdict), recording it in `params` for [`Connect::open`]. By default nothing.
    fn admit(
        &self,
        app: &Switchboard,
        params: &mut Self::Params,
        credentials: &Credentials,
    ) -> impl std::future::Future<Output = ()> + Send {
        let _ = (app, params, credentials);
        async {}
    }

    /// The client id, channels and first frames of a connection about to be registered (before
    /// the 101 answer is sent).
    fn open(&self, app: &Switchboard, params: &Self::Params, credentials: &Credentials) -> Opening;

    /// The handler of a registered connection, built before the 101 answer is sent.
    fn session(
        &self,
        app: &Switchboard,
        conn: Arc<Connection>,
        params: Self::Params,
    ) -> Self::Session;
}
