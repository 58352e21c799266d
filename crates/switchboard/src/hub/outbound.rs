//! The bounded outbound queue every connection has.
//!
//! Producers (fan-out, walker replies, error frames) push shared `Bytes` without awaiting; the
//! connection's own task drains the queue into its socket. A queue that would exceed its message
//! or byte bound is emptied and marked closing with [`close_code::SLOW_CONSUMER`]: a slow reader
//! costs at most its bound, never stalls a publisher, and never slows other recipients.

use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::close_code::{self, CloseCode};

/// The largest frame buffer kept between batches, in frames.
const RECYCLED_CAPACITY: usize = 64;

/// What happened to a pushed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    Queued,
    /// The queue overflowed: this frame and everything queued were dropped and the connection is
    /// closing as a slow consumer. Carries how many frames were dropped.
    Overflowed {
        dropped: usize,
        bytes: usize,
    },
    /// The connection is already closing; the frame was not queued.
    Closing,
}

#[derive(Debug, Default)]
struct QueueState {
    frames: Vec<Bytes>,
    /// The second buffer of a busy connection, swapped in at each drain (see `recycle`).
    spare: Vec<Bytes>,
    bytes: usize,
    /// A WebSocket ping is due (set by the heartbeat sweep).
    ping: bool,
    close: Option<CloseCode>,
    /// A reason chosen at run time (a backend's `/api/disconnect`), sent instead of the code's.
    close_reason: Option<Arc<str>>,
}

/// A bounded multi-producer, single-consumer queue of text frames plus a pending close.
#[derive(Debug)]
pub struct OutboundQueue {
    state: Mutex<QueueState>,
    /// Wakes the connection task when there is something to write.
    ready: Notify,
    /// Wakes the connection task out of a blocked write when the queue overflowed.
    overflowed: Notify,
    max_messages: usize,
    max_bytes: usize,
}

/// A drained batch: frames to write in order, then an optional close.
#[derive(Debug, Default)]
pub struct Batch {
    pub frames: Vec<Bytes>,
    pub bytes: usize,
    /// Send a WebSocket ping after the frames.
    pub ping: bool,
    pub close: Option<CloseCode>,
    /// The reason to send with `close` instead of its own, when one was given.
    pub close_reason: Option<Arc<str>>,
}

impl OutboundQueue {
    pub fn new(max_messages: usize, max_bytes: usize) -> Self {
        Self {
            state: Mutex::new(QueueState::default()),
            ready: Notify::new(),
            overflowed: Notify::new(),
            max_messages: max_messages.max(1),
            max_bytes: max_bytes.max(1),
        }
    }

    /// Queue one frame. Never blocks beyond a short uncontended lock.
    pub fn push(&self, frame: Bytes) -> PushOutcome {
        let mut state = self.state.lock();
        if state.close.is_some() {
            return PushOutcome::Closing;
        }
        if state.frames.len() + 1 > self.max_messages || state.bytes + frame.len() > self.max_bytes
        {
            let dropped = state.frames.len() + 1;
            let bytes = state.bytes;
            state.frames = Vec::new();
            state.bytes = 0;
            state.close = Some(close_code::SLOW_CONSUMER);
            drop(state);
            self.ready.notify_one();
            self.overflowed.notify_one();
            return PushOutcome::Overflowed { dropped, bytes };
        }
        // Only the push that makes the queue non-empty wakes the task: until it drains, the
        // wake-up it owes covers every frame queued after (a fan-out to busy connections then
        // costs one lock and one vector push per recipient, no notification).
        let was_empty = state.frames.is_empty();
        state.bytes += frame.len();
        state.frames.push(frame);
        drop(state);
        if was_empty {
            self.ready.notify_one();
        }
        PushOutcome::Queued
    }

    /// Ask the connection to close with `code` after writing what is queued. The first close wins.
    /// Returns whether this call set it.
    pub fn close(&self, code: CloseCode) -> bool {
        let mut state = self.state.lock();
        if state.close.is_some() {
            return false;
        }
        state.close = Some(code);
        drop(state);
        self.ready.notify_one();
        true
    }

    /// Like [`OutboundQueue::close`], with a reason chosen at run time (at most 123 bytes are
    /// sent).
    pub fn close_with_reason(&self, code: CloseCode, reason: Arc<str>) -> bool {
        let mut state = self.state.lock();
        if state.close.is_some() {
            return false;
        }
        state.close = Some(code);
        state.close_reason = Some(reason);
        drop(state);
        self.ready.notify_one();
        true
    }

    /// Ask the connection to send a WebSocket ping.
    pub fn request_ping(&self) {
        let mut state = self.state.lock();
        if state.close.is_some() || state.ping {
            return;
        }
        state.ping = true;
        drop(state);
        self.ready.notify_one();
    }

    /// Wake the connection's task without queuing anything (it has its own writes to make).
    pub fn wake(&self) {
        self.ready.notify_one();
    }

    pub fn is_closing(&self) -> bool {
        self.state.lock().close.is_some()
    }

    /// Bytes waiting now.
    pub fn queued_bytes(&self) -> usize {
        self.state.lock().bytes
    }

    /// Take everything queued. An empty batch without a close means "nothing to do yet". The
    /// frames move out with the queue's buffer and the spare buffer, if any, takes its place;
    /// give the batch's buffer back with [`OutboundQueue::recycle`] once written.
    pub fn drain(&self) -> Batch {
        let mut state = self.state.lock();
        let spare = std::mem::take(&mut state.spare);
        Batch {
            frames: std::mem::replace(&mut state.frames, spare),
            bytes: std::mem::take(&mut state.bytes),
            ping: std::mem::take(&mut state.ping),
            close: state.close,
            close_reason: state.close_reason.clone(),
        }
    }

    /// Take back a written batch's buffer. While frames are waiting it becomes the spare for the
    /// next drain (a busy connection alternates two buffers and allocates none per batch); when
    /// none are, only one buffer is kept (an idle connection holds one small buffer). A buffer
    /// a burst grew is freed.
    pub fn recycle(&self, mut frames: Vec<Bytes>) {
        frames.clear();
        if frames.capacity() > RECYCLED_CAPACITY {
            return;
        }
        let mut state = self.state.lock();
        if !state.frames.is_empty() {
            state.spare = frames;
        } else if state.frames.capacity() < frames.capacity() {
            state.frames = frames;
        }
    }

    /// Resolves when something was pushed or a close was requested since the last drain.
    pub async fn ready(&self) {
        self.ready.notified().await;
    }

    /// Resolves when the queue overflowed; used to abandon a write stuck on a peer that stopped
    /// reading.
    pub async fn overflowed(&self) {
        self.overflowed.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_by_count_drops_everything_and_closes_as_slow_consumer() {
        let queue = OutboundQueue::new(2, 1000);
        assert_eq!(queue.push(Bytes::from_static(b"a")), PushOutcome::Queued);
        assert_eq!(queue.push(Bytes::from_static(b"b")), PushOutcome::Queued);
        assert_eq!(
            queue.push(Bytes::from_static(b"c")),
            PushOutcome::Overflowed {
                dropped: 3,
                bytes: 2
            }
        );
        assert_eq!(queue.push(Bytes::from_static(b"d")), PushOutcome::Closing);
        let batch = queue.drain();
        assert!(batch.frames.is_empty());
        assert_eq!(batch.close, Some(close_code::SLOW_CONSUMER));
    }

    #[test]
    fn overflow_by_bytes() {
        let queue = OutboundQueue::new(100, 4);
        assert_eq!(queue.push(Bytes::from_static(b"abc")), PushOutcome::Queued);
        assert!(matches!(
            queue.push(Bytes::from_static(b"de")),
            PushOutcome::Overflowed { .. }
        ));
    }

    #[test]
    fn drain_keeps_order_and_first_close_wins() {
        let queue = OutboundQueue::new(10, 100);
        queue.push(Bytes::from_static(b"1"));
        queue.push(Bytes::from_static(b"2"));
        assert!(queue.close(close_code::GOING_AWAY));
        assert!(!queue.close(close_code::NORMAL));
        let batch = queue.drain();
        assert_eq!(
            batch.frames,
            vec![Bytes::from_static(b"1"), Bytes::from_static(b"2")]
        );
        assert_eq!(batch.close, Some(close_code::GOING_AWAY));
    }

    #[test]
    fn only_the_push_that_fills_an_empty_queue_wakes_the_task() {
        use futures_util::FutureExt;
        let queue = OutboundQueue::new(10, 1000);
        queue.push(Bytes::from_static(b"1"));
        queue.push(Bytes::from_static(b"2"));
        assert!(
            queue.ready().now_or_never().is_some(),
            "the first push woke it"
        );
        assert!(
            queue.ready().now_or_never().is_none(),
            "the second owed no wake-up"
        );
        assert_eq!(queue.drain().frames.len(), 2, "one drain takes both");
        queue.push(Bytes::from_static(b"3"));
        assert!(
            queue.ready().now_or_never().is_some(),
            "empty again: the next push wakes"
        );
    }

    #[test]
    fn a_busy_connection_alternates_two_buffers_and_an_idle_one_keeps_one() {
        let queue = OutboundQueue::new(10, 1000);
        queue.push(Bytes::from_static(b"a"));
        let first = queue.drain();
        // Frames arrive while the batch is written: the connection is busy.
        queue.push(Bytes::from_static(b"b"));
        let first_buffer = first.frames.as_ptr();
        queue.recycle(first.frames);
        let second = queue.drain();
        assert_eq!(second.frames, vec![Bytes::from_static(b"b")]);
        queue.recycle(second.frames);
        queue.push(Bytes::from_static(b"c"));
        let third = queue.drain();
        assert_eq!(
            third.frames.as_ptr(),
            first_buffer,
            "busy: the first buffer came back as the spare"
        );
        queue.recycle(third.frames);
        let state = queue.state.lock();
        assert_eq!(state.spare.capacity(), 0, "idle: no spare is kept");
        assert!(
            state.frames.capacity() > 0,
            "idle: one buffer, in the queue"
        );
    }
}
