//! Drives one upgraded WebSocket: writes the connection's outbound queue to the socket, reads
//! client messages into a dialect's [`MessageHandler`], and closes with a code from
//! [`crate::close_code`]. Every dialect's session runs on this loop.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite};

use crate::close_code::{self, CloseCode};
use crate::hub::{Connection, Hub};
use crate::rate_limit::{MessageBudget, Verdict};
use crate::stats::Metrics;
use crate::ws::{Message, ReadEnd, WsStream};

/// What a dialect does with client messages. Replies go through the connection's outbound queue.
pub trait MessageHandler: Send {
    /// A text message.
    fn on_text(&mut self, text: &str) -> impl std::future::Future<Output = ()> + Send;
    /// A binary message.
    fn on_binary(&mut self, data: &[u8]) -> impl std::future::Future<Output = ()> + Send;
    /// A message refused by the rate limit (its text, if it was a text message); the next one is
    /// allowed after `retry_after_ms`.
    fn on_rate_limited(&mut self, text: Option<&str>, retry_after_ms: u64);
}

/// Run `socket` for `conn` until either side closes, then unregister it from `hub`.
pub async fn drive<S, H>(
    mut socket: WsStream<S>,
    hub: Arc<Hub>,
    conn: Arc<Connection>,
    mut handler: H,
    mut budget: MessageBudget,
    close_grace: Duration,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    H: MessageHandler,
{
    let metrics = hub.metrics().clone();
    let close = loop {
        if socket.has_queued_control() {
            // A pong the reader queued; it goes out with the next batch.
            conn.outbound.wake();
        }
        tokio::select! {
            () = conn.outbound.ready() => {
                let batch = conn.outbound.drain();
                Metrics::sub(&metrics.outbound_queued_bytes, batch.bytes as u64);
                if !batch.frames.is_empty() || batch.ping || socket.has_queued_control() {
                    let outcome = tokio::select! {
                        result = socket.write_text_batch(&batch.frames, batch.ping) => {
                            if result.is_ok() { Written::All } else { Written::Failed }
                        }
                        // The peer stopped reading and the queue overflowed meanwhile.
                        () = conn.outbound.overflowed() => Written::Overflowed,
                    };
                    match outcome {
                        Written::All => {}
                        Written::Failed => break Ending::Hangup,
                        Written::Overflowed => break Ending::Close(close_code::SLOW_CONSUMER),
                    }
                }
                if let Some(code) = batch.close {
                    break Ending::Close(code);
                }
            }
            message = socket.next_message() => {
                let message = match message {
                    Ok(message) => message,
                    Err(end) => {
                        if let ReadEnd::Io(err) = &end {
                            tracing::debug!(client_id = %conn.client_id(), %err, "websocket read failed");
                        }
                        break Ending::Finish;
                    }
                };
                Metrics::inc(&metrics.frames_received);
                conn.mark_seen(hub.now_ms());
                // Pings (answered by the stream) and pongs only count as signs of life.
                let (Message::Text(_) | Message::Binary(_)) = &message else {
                    continue;
                };
                match budget.check(Instant::now()) {
                    Verdict::Allowed => {}
                    Verdict::Refused { retry_after_ms } => {
                        Metrics::inc(&metrics.messages_rate_limited);
                        handler.on_rate_limited(message.as_text(), retry_after_ms);
                        continue;
                    }
                    Verdict::Abusive => {
                        Metrics::inc(&metrics.rate_limit_closes);
                        break Ending::Close(close_code::POLICY_VIOLATION);
                    }
                }
                match &message {
                    Message::Text(_) => {
                        if let Some(text) = message.as_text() {
                            handler.on_text(text).await;
                        }
                    }
                    Message::Binary(data) => handler.on_binary(data).await,
                    Message::Ping | Message::Pong => {}
                }
            }
        }
    };
    hub.unregister(&conn);
    match close {
        Ending::Close(code) => socket.close(code.code, code.reason, close_grace).await,
        Ending::Finish => socket.finish(close_grace).await,
        Ending::Hangup => {}
    }
}

/// How the loop ended.
enum Ending {
    /// We close, with this code.
    Close(CloseCode),
    /// The client closed or broke the protocol: send the queued reply and hang up.
    Finish,
    /// Writing failed: nothing more can be sent.
    Hangup,
}

enum Written {
    All,
    Failed,
    Overflowed,
}

/// Refuse a just-upgraded socket with `code` (e.g. over a connection limit).
pub async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(
    socket: &mut WsStream<S>,
    code: CloseCode,
    grace: Duration,
) {
    socket.close(code.code, code.reason, grace).await;
}
