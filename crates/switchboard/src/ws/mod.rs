//! The WebSocket protocol (RFC 6455), server side, built for many mostly idle connections:
//! no read buffer while idle, shared payloads written with vectored I/O.
//!
//! - [`frame`]: frame headers, masking.
//! - [`deflate`]: permessage-deflate negotiation and inflating compressed client messages.
//! - [`stream`]: [`WsStream`], messages in, frames out, the close handshake.
//!
//! The opening handshake is HTTP and lives in `http/upgrade.rs`.

pub mod deflate;
pub mod frame;
pub mod stream;

pub use frame::OpCode;
pub use stream::{Message, ReadEnd, Written, WsStream};
