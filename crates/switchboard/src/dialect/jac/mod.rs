//! The Jac Cloud dialect on `GET /websocket` (seeds 000-002; the contract is
//! `docs/protocol-jac.md`).
//!
//! - [`events`]: a client frame to a [`events::ClientEvent`], or a coded error.
//! - [`frames`]: the frames the server sends (connection info, walker replies, errors).
//! - [`session`]: one connection's handler, turning events into hub operations and walker runs.

pub mod events;
pub mod frames;
pub mod session;
