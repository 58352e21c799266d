//! An echo WebSocket endpoint for protocol conformance runs (Autobahn|Testsuite). Enabled only by
//! configuration (`echo_path`); it echoes every text and binary message and touches nothing else.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use http::Request;

use super::upgrade::PendingUpgrade;

/// Largest message echoed, in bytes; the conformance suite sends messages of up to 16 MiB.
pub const ECHO_MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

pub async fn echo(mut request: Request<Body>) -> Response {
    let pending = match PendingUpgrade::from_request(&mut request) {
        Ok(pending) => pending,
        Err(err) => return err.into_response(),
    };
    let (response, socket) = pending.accept(ECHO_MAX_MESSAGE_BYTES);
    tokio::spawn(async move {
        let Some(mut socket) = socket.await else {
            return;
        };
        while let Some(Ok(message)) = socket.next().await {
            if (message.is_text() || message.is_binary()) && socket.send(message).await.is_err() {
                break;
            }
        }
    });
    response
}
