//! Drives one upgraded WebSocket: writes the connection's outbound queue to the socket, reads
//! client messages into a dialect's [`MessageHandler`], and closes with a code from
//! [`crate::close_code`]. Every dialect's session runs on this loop.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use tokio_websockets::{Message, Payload, WebSocketStream};

use crate::close_code::{self, CloseCode};
use crate::hub::{Connection, Hub};
use crate::rate_limit::{MessageBudget, Verdict};
use crate::stats::Metrics;

/// The upgraded stream every session runs on.
pub type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

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
pub async fn drive<H: MessageHandler>(
    mut socket: Socket,
    hub: Arc<Hub>,
    conn: Arc<Connection>,
    mut handler: H,
    mut budget: MessageBudget,
    close_grace: Duration,
) {
    let metrics = hub.metrics().clone();
    let close = loop {
        tokio::select! {
            () = conn.outbound.ready() => {
                let batch = conn.outbound.drain();
                Metrics::sub(&metrics.outbound_queued_bytes, batch.bytes as u64);
                if !batch.frames.is_empty() || batch.ping {
                    let write = async {
                        for frame in batch.frames {
                            socket.feed(Message::text(Payload::from(frame))).await?;
                        }
                        if batch.ping {
                            socket.feed(Message::ping(Payload::from(&b""[..]))).await?;
                        }
                        socket.flush().await
                    };
                    let outcome = tokio::select! {
                        result = write => if result.is_ok() { Written::All } else { Written::Failed },
                        // The peer stopped reading and the queue overflowed meanwhile.
                        () = conn.outbound.overflowed() => Written::Overflowed,
                    };
                    match outcome {
                        Written::All => {}
                        Written::Failed => break None,
                        Written::Overflowed => break Some(close_code::SLOW_CONSUMER),
                    }
                }
                if let Some(code) = batch.close {
                    break Some(code);
                }
            }
            message = socket.next() => {
                match message {
                    None => break None,
                    Some(Err(err)) => {
                        // A protocol error or an oversize message: the WebSocket layer queued the
                        // close frame (1002, 1007 or 1009); make sure it goes out.
                        tracing::debug!(client_id = %conn.client_id(), %err, "websocket read failed");
                        let _ = tokio::time::timeout(close_grace, socket.flush()).await;
                        break None;
                    }
                    Some(Ok(message)) => {
                        Metrics::inc(&metrics.frames_received);
                        conn.mark_seen(hub.now_ms());
                        // Pings are answered by the WebSocket layer; pongs and closes only count
                        // as signs of life.
                        if !(message.is_text() || message.is_binary()) {
                            continue;
                        }
                        match budget.check(Instant::now()) {
                            Verdict::Allowed => {}
                            Verdict::Refused { retry_after_ms } => {
                                Metrics::inc(&metrics.messages_rate_limited);
                                handler.on_rate_limited(message.as_text(), retry_after_ms);
                                continue;
                            }
                            Verdict::Abusive => {
                                Metrics::inc(&metrics.rate_limit_closes);
                                break Some(close_code::POLICY_VIOLATION);
                            }
                        }
                        if let Some(text) = message.as_text() {
                            handler.on_text(text).await;
                        } else {
                            handler.on_binary(message.as_payload()).await;
                        }
                    }
                }
            }
        }
    };
    hub.unregister(&conn);
    if let Some(code) = close {
        close_socket(&mut socket, code, close_grace).await;
    }
}

enum Written {
    All,
    Failed,
    Overflowed,
}

/// Send a close frame and wait (bounded) for the peer's answer, so the close is clean.
pub(crate) async fn close_socket(socket: &mut Socket, code: CloseCode, grace: Duration) {
    let Ok(ws_code) = tokio_websockets::CloseCode::try_from(code.code) else {
        return;
    };
    let _ = tokio::time::timeout(grace, async {
        if socket
            .send(Message::close(Some(ws_code), code.reason))
            .await
            .is_err()
        {
            return;
        }
        while let Some(Ok(_)) = socket.next().await {}
    })
    .await;
}
