//! Drives one upgraded WebSocket: writes the connection's outbound queue to the socket, reads
//! client messages into a dialect's [`Session`], and closes with a code from
//! [`crate::close_code`]. Every dialect's session runs on this loop.
//!
//! A slow consumer ends by a fixed rule (docs/close-codes.md, 4008). When a push overflows the
//! connection's outbound queue, the queue refuses further frames and drops the ones waiting
//! (counted); then this loop:
//!
//! 1. if a batch is being written, finishes only the frame it is in the middle of (nothing after
//!    it), within `limits.slow_consumer_grace_ms`;
//! 2. sends the 4008 close frame and waits for the client's close reply, again within
//!    `limits.slow_consumer_grace_ms`, then hangs up.
//!
//! So the client sees whole frames, then the close frame. A peer that does not read the rest of
//! the frame or the close frame within the grace has its TCP connection dropped without a close
//! frame: the only case in which a slow consumer sees an abrupt end (1006), counted in
//! `switchboard_slow_consumer_hangups_total` and logged.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite};

use crate::close_code::{self, CloseCode};
use crate::dialect::Session;
use crate::hub::{Batch, Connection, Hub};
use crate::metrics::{DropReason, Metrics};
use crate::rate_limit::{MessageBudget, Verdict};
use crate::ws::{Message, ReadEnd, Written, WsStream};

/// Run `socket` for `conn` until either side closes, then unregister it from `hub`. A close
/// handshake gets `close_grace`; a slow consumer gets `slow_consumer_grace` for the rest of the
/// frame in flight and again for its close frame (see the module docs).
pub async fn drive<S, H>(
    mut socket: WsStream<S>,
    hub: Arc<Hub>,
    conn: Arc<Connection>,
    mut handler: H,
    mut budget: MessageBudget,
    close_grace: Duration,
    slow_consumer_grace: Duration,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    H: Session,
{
    let metrics = hub.metrics().clone();
    let counters = metrics.dialect(conn.dialect());
    let close = loop {
        if socket.has_queued_control() {
            // A pong the reader queued; it goes out with the next batch.
            conn.outbound.wake();
        }
        tokio::select! {
            () = conn.outbound.ready() => {
                let batch = conn.outbound.drain();
                metrics.outbound_queued_bytes.dec_by(batch.bytes as i64);
                if !batch.frames.is_empty() || batch.ping || socket.has_queued_control() {
                    match write_batch(&mut socket, &conn, &batch, slow_consumer_grace).await {
                        BatchOutcome::Written => {
                            counters.sent.inc_by(batch.frames.len() as u64);
                        }
                        BatchOutcome::Failed => break Ending::Hangup,
                        BatchOutcome::Overflowed => break Ending::Close(close_code::SLOW_CONSUMER, None),
                        BatchOutcome::Stuck => break Ending::SlowConsumerHangup,
                    }
                }
                conn.outbound.recycle(batch.frames);
                if let Some(code) = batch.close {
                    break Ending::Close(code, batch.close_reason);
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
                conn.mark_seen(hub.now_ms());
                // Pings (answered by the stream) and pongs only count as signs of life.
                let (Message::Text(_) | Message::Binary(_)) = &message else {
                    continue;
                };
                counters.received.inc();
                match budget.check(Instant::now()) {
                    Verdict::Allowed => {}
                    Verdict::Refused { retry_after_ms } => {
                        metrics.dropped(DropReason::RateLimited).inc();
                        handler.on_rate_limited(message.as_text(), retry_after_ms);
                        continue;
                    }
                    Verdict::Abusive => {
                        metrics.rate_limit_closes.inc();
                        break Ending::Close(close_code::POLICY_VIOLATION, None);
                    }
                }
                match &message {
                    Message::Text(text) => handler.on_text(text).await,
                    Message::Binary(data) => handler.on_binary(data).await,
                    Message::Ping | Message::Pong => {}
                }
            }
        }
    };
    hub.unregister(&conn);
    close_socket(
        &mut socket,
        close,
        &metrics,
        &conn,
        close_grace,
        slow_consumer_grace,
    )
    .await;
}

/// Write one drained batch. If the queue overflows meanwhile (the peer reads too slowly), finish
/// the frame in flight, and only that, within `slow_consumer_grace`, so a close frame can follow.
async fn write_batch<S: AsyncRead + AsyncWrite + Unpin>(
    socket: &mut WsStream<S>,
    conn: &Connection,
    batch: &Batch,
    slow_consumer_grace: Duration,
) -> BatchOutcome {
    let stop = AtomicBool::new(false);
    let write = socket.write_text_batch_until(&batch.frames, batch.ping, &stop);
    tokio::pin!(write);
    tokio::select! {
        result = &mut write => match result {
            Ok(_) => BatchOutcome::Written,
            Err(_) => BatchOutcome::Failed,
        },
        () = conn.outbound.overflowed() => {
            stop.store(true, Ordering::Relaxed);
            match tokio::time::timeout(slow_consumer_grace, &mut write).await {
                Ok(Ok(Written::All | Written::Stopped)) => BatchOutcome::Overflowed,
                Ok(Err(_)) => BatchOutcome::Failed,
                Err(_) => BatchOutcome::Stuck,
            }
        }
    }
}

/// Send the close that ended the loop (or hang up), each bounded by its grace.
async fn close_socket<S: AsyncRead + AsyncWrite + Unpin>(
    socket: &mut WsStream<S>,
    close: Ending,
    metrics: &Metrics,
    conn: &Connection,
    close_grace: Duration,
    slow_consumer_grace: Duration,
) {
    match close {
        Ending::Close(code, _) if code == close_code::SLOW_CONSUMER => {
            if !socket
                .close(code.code, code.reason, slow_consumer_grace)
                .await
            {
                slow_consumer_hangup(metrics, conn, "the close frame");
            }
        }
        Ending::Close(code, reason) => {
            let reason = reason.as_deref().unwrap_or(code.reason);
            socket.close(code.code, reason, close_grace).await;
        }
        Ending::Finish => socket.finish(close_grace).await,
        Ending::SlowConsumerHangup => {
            slow_consumer_hangup(metrics, conn, "the rest of the frame in flight");
        }
        Ending::Hangup => {}
    }
}

/// Count and log a slow consumer dropped without its 4008 close frame.
fn slow_consumer_hangup(metrics: &Metrics, conn: &Connection, unread: &str) {
    metrics.slow_consumer_hangups.inc();
    tracing::warn!(
        client_id = %conn.client_id(),
        "slow consumer did not read {unread} within the grace period; TCP connection dropped \
         without a close frame"
    );
}

/// How the loop ended.
enum Ending {
    /// We close, with this code (and a reason given at run time, if any).
    Close(CloseCode, Option<Arc<str>>),
    /// The client closed or broke the protocol: send the queued reply and hang up.
    Finish,
    /// Writing failed: nothing more can be sent.
    Hangup,
    /// A slow consumer did not read the rest of the frame in flight within the grace: the
    /// stream is mid-frame, so no close frame can follow.
    SlowConsumerHangup,
}

/// How writing one drained batch went.
enum BatchOutcome {
    Written,
    Failed,
    /// The queue overflowed during the write, which then ended at a frame boundary.
    Overflowed,
    /// The queue overflowed and the frame in flight was not finished within the grace.
    Stuck,
}

/// Refuse a just-upgraded socket with `code` (e.g. over a connection limit).
pub async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(
    socket: &mut WsStream<S>,
    code: CloseCode,
    grace: Duration,
) {
    socket.close(code.code, code.reason, grace).await;
}
