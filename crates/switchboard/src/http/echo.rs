//! An echo WebSocket endpoint for protocol conformance runs (Autobahn|Testsuite). Enabled only by
//! configuration (`echo_path`); it echoes every text and binary message and touches nothing else.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::Request;
use tokio::io::{AsyncRead, AsyncWrite};

use super::upgrade::{PendingUpgrade, ServerSocket};
use crate::ws::{Message, OpCode, WsStream};

/// Largest message echoed, in bytes; the conformance suite sends messages of up to 16 MiB.
pub const ECHO_MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

pub async fn echo(mut request: Request<Body>) -> Response {
    let pending = match PendingUpgrade::from_request(&mut request) {
        Ok(pending) => pending,
        Err(err) => return err.into_response(),
    };
    let (response, socket) = pending.accept(ECHO_MAX_MESSAGE_BYTES, true);
    tokio::spawn(async move {
        match socket.await {
            Some(ServerSocket::Tcp(stream)) => echo_until_closed(stream).await,
            Some(ServerSocket::Upgraded(stream)) => echo_until_closed(stream).await,
            None => {}
        }
    });
    response
}

async fn echo_until_closed<S: AsyncRead + AsyncWrite + Unpin>(mut stream: WsStream<S>) {
    let grace = std::time::Duration::from_secs(2);
    loop {
        let written = match stream.next_message().await {
            Ok(Message::Text(payload)) => {
                stream.write_message(OpCode::Text, payload.as_bytes()).await
            }
            Ok(Message::Binary(payload)) => stream.write_message(OpCode::Binary, &payload).await,
            Ok(Message::Ping | Message::Pong) if stream.has_queued_control() => {
                stream.write_text_batch(&[], false).await
            }
            Ok(Message::Ping | Message::Pong) => Ok(()),
            Err(_) => return stream.finish(grace).await,
        };
        if written.is_err() {
            return;
        }
    }
}
