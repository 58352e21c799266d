//! The Jac Cloud dialect on `GET /websocket` (seeds 000-002; the contract is
//! `docs/protocol-jac.md`).
//!
//! - [`connect`]: the connect parameters, client id and first frames.
//! - [`events`]: a client frame to a [`events::ClientEvent`], or a coded error.
//! - [`frames`]: the frames the server sends (connection info, walker replies, errors).
//! - [`session`]: one connection's handler, turning events into hub operations and walker runs.
//!
//! A delivery reaches a Jac connection verbatim: the payload is the whole frame.

pub mod connect;
pub mod events;
pub mod frames;
pub mod session;

use std::sync::Arc;

use axum::Router;
use bytes::Bytes;

use crate::app::Switchboard;
use crate::dialect::Dialect;
use crate::hub::{Delivery, DialectId, FrameEncoder, Route};

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
}

/// Jac Cloud sends a notification's payload as the whole frame.
#[derive(Debug)]
struct Verbatim;

impl FrameEncoder for Verbatim {
    fn encode(&self, delivery: &Delivery, _route: &Route<'_>) -> Bytes {
        delivery.payload().clone()
    }
}
