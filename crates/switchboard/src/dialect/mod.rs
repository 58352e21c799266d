//! Dialects: the ways a client can speak to the hub. Each endpoint speaks one dialect; a dialect
//! turns client frames into hub operations and hub deliveries into frames.
//!
//! - [`jac`]: the Jac Cloud protocol on `GET /websocket` (seeds 000-002).
//! - The namespace dialect (`/api/1/ws/<name>`, seed 003) and the channel dialect
//!   (`{channel, cmd, param}`, seed 004) will be siblings here: a new variant of [`Dialect`], its
//!   own frame parser and session loop, and a route in [`crate::http`]. See `docs/design.md`.

pub mod jac;

use bytes::Bytes;

/// Which protocol a connection speaks; decides how a delivery is framed for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    Jac,
}

impl Dialect {
    /// Number of dialects: the size of each delivery's per-dialect frame cache.
    pub const COUNT: usize = 1;

    pub(crate) fn index(self) -> usize {
        match self {
            Dialect::Jac => 0,
        }
    }

    /// The frame that carries a notify payload to a connection of this dialect.
    pub(crate) fn encode_notification(self, payload: &Bytes) -> Bytes {
        match self {
            // Jac Cloud delivers the payload verbatim as the whole frame.
            Dialect::Jac => payload.clone(),
        }
    }
}
