//! One server-side WebSocket over any byte stream, built for many idle connections.
//!
//! While no frame is in progress the stream holds no read buffer at all: it waits for the socket
//! to become readable, reads into a buffer on the worker thread's stack, and keeps only the bytes
//! of an incomplete frame. Outgoing text frames are shared `Bytes` written with vectored writes
//! beside their small headers, so a payload sent to N connections is never copied per connection.
//!
//! Reading never writes: answers the protocol requires (pong, the close reply, the close that
//! reports a protocol error) are queued and go out with the next write, so
//! [`WsStream::next_message`] is cancel-safe and can sit in a `select!` beside the writer.
//!
//! Writes are not cancel-safe: a write dropped part-way through a frame leaves the peer with half
//! a frame, so the stream refuses to write anything after it (the socket is "poisoned"). To stop
//! a write early without that, [`WsStream::write_text_batch_until`] takes a stop flag: once set,
//! the write finishes the frame it is in the middle of and writes nothing after it, so the peer
//! only ever sees whole frames and a close frame can still follow (the slow-consumer rule in
//! `docs/close-codes.md`).
//!
//! Over 500 lines because reading (frames, fragments, UTF-8, close handshake) and writing (batches
//! that stop at a frame boundary) share one stream state; the frame codec itself is `frame.rs`.

use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use bytestring::ByteString;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use super::deflate::{self, InflateError};
use super::frame::{self, Header, OpCode};
use crate::close_code::{CloseCode, INVALID_PAYLOAD, MESSAGE_TOO_BIG, PROTOCOL_ERROR};

/// Bytes read per call while waiting between frames; they live on the stack, not in the stream.
const STACK_READ: usize = 4096;
/// Most slices handed to one vectored write.
const MAX_IOVECS: usize = 64;

/// A complete message from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message: validated as UTF-8 once, here, and shared bytes from then on.
    Text(ByteString),
    Binary(Bytes),
    /// A ping (already answered with a pong) or a pong: only signs of life.
    Ping,
    Pong,
}

impl Message {
    /// The text of a text message.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Message::Text(text) => Some(text),
            _ => None,
        }
    }
}

/// Why reading stopped. After any of these the stream is done reading; call
/// [`WsStream::finish`] to send what is queued (a close reply or error close) and hang up.
#[derive(Debug)]
pub enum ReadEnd {
    /// The client sent a close frame (with this code, if any); the reply is queued.
    Closed(Option<u16>),
    /// The client broke the protocol; a close frame with this code is queued.
    ProtocolError(u16),
    /// The TCP stream ended without a close frame.
    Eof,
    Io(io::Error),
}

/// A fragmented message so far.
#[derive(Debug)]
struct Fragment {
    opcode: OpCode,
    payload: BytesMut,
    /// Compressed (permessage-deflate); validated only once inflated.
    compressed: bool,
    /// For text: the prefix already known to be valid UTF-8, so invalid text fails at the
    /// fragment that breaks it rather than at the end of the message.
    utf8_checked: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// We sent a close frame and wait for the client's.
    CloseSent,
    /// The close handshake is over (or the protocol failed); nothing more is read.
    Closed,
}

/// A server-side WebSocket.
#[derive(Debug)]
pub struct WsStream<S> {
    io: S,
    /// Bytes of an incomplete frame; empty and unallocated between frames.
    inbuf: BytesMut,
    /// Total bytes the frame at the start of `inbuf` needs (header included), once known.
    frame_needs: usize,
    /// A fragmented message being assembled.
    fragment: Option<Fragment>,
    max_message: usize,
    /// permessage-deflate was negotiated: messages with RSV1 set are compressed.
    deflate: bool,
    /// Encoded control frames waiting to be written (pongs, close).
    control_out: Vec<u8>,
    state: State,
    /// A write was interrupted midway: the stream's framing is broken, write nothing more.
    write_poisoned: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsStream<S> {
    /// Wrap `io`, whose first bytes may already have been read (`leftover`), accepting messages
    /// of at most `max_message` bytes (more closes with 1009), compressed ones too if
    /// permessage-deflate was negotiated (`deflate`).
    pub fn new(io: S, leftover: Bytes, max_message: usize, deflate: bool) -> Self {
        Self {
            io,
            inbuf: if leftover.is_empty() {
                BytesMut::new()
            } else {
                BytesMut::from(&leftover[..])
            },
            frame_needs: 0,
            fragment: None,
            max_message,
            deflate,
            control_out: Vec::new(),
            state: State::Open,
            write_poisoned: false,
        }
    }

    /// The next complete message. Cancel-safe: dropping the future loses no data.
    pub async fn next_message(&mut self) -> Result<Message, ReadEnd> {
        loop {
            if self.state == State::Closed {
                return Err(ReadEnd::Eof);
            }
            if let Some(message) = self.parse_buffered()? {
                return Ok(message);
            }
            if self.state == State::Closed {
                continue;
            }
            self.fill().await?;
        }
    }

    /// Whether control frames wait to be written.
    pub fn has_queued_control(&self) -> bool {
        !self.control_out.is_empty()
    }

    /// Write text frames (and a ping, if asked), after any queued control frames, and flush.
    /// Not cancel-safe: if the future is dropped midway the stream writes nothing more.
    pub async fn write_text_batch(&mut self, frames: &[Bytes], ping: bool) -> io::Result<()> {
        self.write_text_batch_until(frames, ping, &NEVER_STOP)
            .await
            .map(|_| ())
    }

    /// [`Self::write_text_batch`], stopping early at a frame boundary once `stop` is set: the
    /// frame being written when the flag is seen is completed, nothing after it is started.
    /// The flag is checked whenever the socket accepts more bytes, so a caller that sets it while
    /// the write waits on a full socket keeps polling the future (bounded by its own deadline)
    /// until it resolves. Resolves to [`Written::All`] or [`Written::Stopped`]; either way the
    /// stream is left at a frame boundary and can still write a close frame.
    pub async fn write_text_batch_until(
        &mut self,
        frames: &[Bytes],
        ping: bool,
        stop: &AtomicBool,
    ) -> io::Result<Written> {
        self.write_frames(OpCode::Text, frames, ping, stop).await
    }

    /// Write one message of any data opcode (used by the echo endpoint), after queued control.
    pub async fn write_message(&mut self, opcode: OpCode, payload: &Bytes) -> io::Result<()> {
        self.write_frames(opcode, std::slice::from_ref(payload), false, &NEVER_STOP)
            .await
            .map(|_| ())
    }

    async fn write_frames(
        &mut self,
        opcode: OpCode,
        frames: &[Bytes],
        ping: bool,
        stop: &AtomicBool,
    ) -> io::Result<Written> {
        let batch = BatchChunks {
            control: &self.control_out,
            opcode,
            frames,
            ping,
        };
        let written = write_batch(&mut self.io, &mut self.write_poisoned, &batch, stop).await?;
        self.clear_control();
        Ok(written)
    }

    /// Close with `code` and `reason`: send the close frame, wait (at most `grace`) for the
    /// client's, then hang up. Returns whether the close frame was written (false: the peer
    /// did not take it within `grace`, or the socket failed, and the TCP connection was dropped
    /// without it).
    pub async fn close(&mut self, code: u16, reason: &str, grace: Duration) -> bool {
        let mut sent = false;
        let _ = tokio::time::timeout(grace, async {
            if self.state == State::Open {
                self.queue_close(code, reason);
                self.state = State::CloseSent;
            }
            if self.write_text_batch(&[], false).await.is_err() {
                return;
            }
            sent = true;
            // Read until the client's close frame (or the end).
            while self.state == State::CloseSent {
                if self.next_message().await.is_err() {
                    break;
                }
            }
            let _ = self.write_text_batch(&[], false).await;
            let _ = self.io.shutdown().await;
        })
        .await;
        sent
    }

    /// After reading ended: send what is queued (the close reply, or the close reporting a
    /// protocol error), within `grace`, and hang up.
    pub async fn finish(&mut self, grace: Duration) {
        let _ = tokio::time::timeout(grace, async {
            if self.has_queued_control() && self.write_text_batch(&[], false).await.is_err() {
                return;
            }
            let _ = self.io.shutdown().await;
        })
        .await;
    }

    fn clear_control(&mut self) {
        self.control_out.clear();
        if self.control_out.capacity() > 256 {
            self.control_out = Vec::new();
        }
    }

    /// Read more bytes. Between frames, read into the stack so an idle stream keeps no buffer.
    async fn fill(&mut self) -> Result<(), ReadEnd> {
        let missing = self.frame_needs.saturating_sub(self.inbuf.len());
        let read = if missing > STACK_READ {
            // Mid-way through a large frame whose size is known and within the limit.
            self.inbuf.reserve(missing);
            self.io.read_buf(&mut self.inbuf).await
        } else {
            let Self { io, inbuf, .. } = self;
            poll_fn(|cx| {
                let mut stack = [0u8; STACK_READ];
                let mut buf = ReadBuf::new(&mut stack);
                match Pin::new(&mut *io).poll_read(cx, &mut buf) {
                    Poll::Ready(Ok(())) => {
                        inbuf.extend_from_slice(buf.filled());
                        Poll::Ready(Ok(buf.filled().len()))
                    }
                    Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
                    Poll::Pending => Poll::Pending,
                }
            })
            .await
        };
        match read {
            Ok(0) => {
                self.state = State::Closed;
                Err(ReadEnd::Eof)
            }
            Ok(_) => Ok(()),
            Err(err) => {
                self.state = State::Closed;
                Err(ReadEnd::Io(err))
            }
        }
    }

    /// Take complete frames off `inbuf` until one completes a message. `Ok(None)`: need more.
    fn parse_buffered(&mut self) -> Result<Option<Message>, ReadEnd> {
        loop {
            let header = match frame::parse_header(&self.inbuf) {
                Ok(Some(header)) => header,
                Ok(None) => return Ok(None),
                Err(err) => return Err(self.fail(PROTOCOL_ERROR, err.reason())),
            };
            let assembled = self.fragment.as_ref().map_or(0, |f| f.payload.len() as u64);
            if !header.opcode.is_control()
                && header.payload_len + assembled > self.max_message as u64
            {
                return Err(self.fail(MESSAGE_TOO_BIG, "message too big"));
            }
            let total = header.header_len + header.payload_len as usize;
            if self.inbuf.len() < total {
                self.frame_needs = total;
                return Ok(None);
            }
            self.frame_needs = 0;
            let mut payload = self.inbuf.split_to(total);
            payload.advance(header.header_len);
            if self.inbuf.is_empty() {
                // Let the allocation go with the payload: idle streams hold no buffer.
                self.inbuf = BytesMut::new();
            }
            frame::unmask(&mut payload, header.mask);
            if let Some(message) = self.on_frame(header, payload)? {
                return Ok(Some(message));
            }
            if self.state == State::Closed {
                return Ok(None);
            }
        }
    }

    fn on_frame(&mut self, header: Header, payload: BytesMut) -> Result<Option<Message>, ReadEnd> {
        let Header {
            opcode, fin, rsv1, ..
        } = header;
        if rsv1 && (!self.deflate || opcode == OpCode::Continuation) {
            return Err(self.fail(PROTOCOL_ERROR, "reserved bit set"));
        }
        match opcode {
            OpCode::Ping => {
                if self.state == State::Open {
                    self.queue_control(OpCode::Pong, &payload);
                }
                Ok(Some(Message::Ping))
            }
            OpCode::Pong => Ok(Some(Message::Pong)),
            OpCode::Close => Err(self.on_close(&payload)),
            OpCode::Text | OpCode::Binary => {
                if self.fragment.is_some() {
                    return Err(self.fail(PROTOCOL_ERROR, "new message inside a fragmented one"));
                }
                if fin {
                    return self.complete(opcode, payload, rsv1);
                }
                let mut fragment = Fragment {
                    opcode,
                    payload,
                    compressed: rsv1,
                    utf8_checked: 0,
                };
                if !fragment.check_utf8() {
                    return Err(self.fail(INVALID_PAYLOAD, "text message is not valid UTF-8"));
                }
                self.fragment = Some(fragment);
                Ok(None)
            }
            OpCode::Continuation => {
                let Some(fragment) = self.fragment.as_mut() else {
                    return Err(self.fail(PROTOCOL_ERROR, "continuation without a message"));
                };
                fragment.payload.extend_from_slice(&payload);
                if !fragment.check_utf8() {
                    return Err(self.fail(INVALID_PAYLOAD, "text message is not valid UTF-8"));
                }
                if !fin {
                    return Ok(None);
                }
                match self.fragment.take() {
                    Some(whole) => self.complete(whole.opcode, whole.payload, whole.compressed),
                    None => Ok(None),
                }
            }
        }
    }

    fn complete(
        &mut self,
        opcode: OpCode,
        payload: BytesMut,
        compressed: bool,
    ) -> Result<Option<Message>, ReadEnd> {
        if self.state != State::Open {
            return Ok(None); // closing: data is discarded
        }
        let payload = if compressed {
            match deflate::inflate(&payload, self.max_message) {
                Ok(inflated) => Bytes::from(inflated),
                Err(InflateError::TooBig) => {
                    return Err(self.fail(MESSAGE_TOO_BIG, "message too big"));
                }
                Err(InflateError::Corrupt) => {
                    return Err(self.fail(INVALID_PAYLOAD, "compressed message is corrupt"));
                }
            }
        } else {
            payload.freeze()
        };
        if opcode == OpCode::Text {
            return match ByteString::try_from(payload) {
                Ok(text) => Ok(Some(Message::Text(text))),
                Err(_) => Err(self.fail(INVALID_PAYLOAD, "text message is not valid UTF-8")),
            };
        }
        Ok(Some(Message::Binary(payload)))
    }

    fn on_close(&mut self, payload: &[u8]) -> ReadEnd {
        let code = match payload {
            [] => None,
            [_] => return self.fail(PROTOCOL_ERROR, "close frame with a one-byte payload"),
            [hi, lo, reason @ ..] => {
                let code = u16::from_be_bytes([*hi, *lo]);
                if !is_valid_close_code(code) {
                    return self.fail(PROTOCOL_ERROR, "invalid close code");
                }
                if std::str::from_utf8(reason).is_err() {
                    return self.fail(INVALID_PAYLOAD, "close reason is not valid UTF-8");
                }
                Some(code)
            }
        };
        if self.state == State::Open {
            // Echo the code, as the protocol asks.
            match code {
                Some(code) => self.queue_close(code, ""),
                None => self.queue_control(OpCode::Close, &[]),
            }
        }
        self.state = State::Closed;
        ReadEnd::Closed(code)
    }

    /// Queue a close frame reporting a protocol error and stop reading.
    fn fail(&mut self, code: CloseCode, reason: &str) -> ReadEnd {
        let code = code.code;
        if self.state == State::Open {
            self.queue_close(code, reason);
        }
        self.state = State::Closed;
        self.fragment = None;
        self.inbuf = BytesMut::new();
        ReadEnd::ProtocolError(code)
    }

    fn queue_close(&mut self, code: u16, reason: &str) {
        let mut payload = Vec::with_capacity(2 + reason.len());
        payload.extend_from_slice(&code.to_be_bytes());
        payload.extend_from_slice(&reason.as_bytes()[..reason.len().min(123)]);
        self.queue_control(OpCode::Close, &payload);
    }

    fn queue_control(&mut self, opcode: OpCode, payload: &[u8]) {
        let (header, len) = frame::encode_header(opcode, payload.len());
        self.control_out.extend_from_slice(&header[..len]);
        self.control_out.extend_from_slice(payload);
    }
}

impl Fragment {
    /// Validate the newly arrived text; an incomplete character at the end is fine for now.
    fn check_utf8(&mut self) -> bool {
        if self.opcode != OpCode::Text || self.compressed {
            return true;
        }
        match std::str::from_utf8(&self.payload[self.utf8_checked..]) {
            Ok(_) => {
                self.utf8_checked = self.payload.len();
                true
            }
            Err(err) if err.error_len().is_none() => {
                self.utf8_checked += err.valid_up_to();
                true
            }
            Err(_) => false,
        }
    }
}

/// Close codes a client may send (RFC 6455 section 7.4 and the registry as of the RFC).
fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999)
}

/// A stop flag that is never raised, for writes that always run to the end.
static NEVER_STOP: AtomicBool = AtomicBool::new(false);

/// The byte chunks of one batch, in order: the queued control bytes (chunk 0), each frame's
/// header and payload (frame `k` is chunks `2k + 1` and `2k + 2`), then an optional ping. A
/// frame boundary is the start of every odd chunk. Headers are encoded on the fly, so a batch
/// needs no allocation.
struct BatchChunks<'a> {
    control: &'a [u8],
    opcode: OpCode,
    frames: &'a [Bytes],
    ping: bool,
}

const PING: &[u8] = &[0x89, 0x00];

/// Frames whose headers one vectored write can reach: two chunks each, plus a partial one.
const HEADER_WINDOW: usize = MAX_IOVECS / 2 + 1;

impl BatchChunks<'_> {
    fn count(&self) -> usize {
        1 + 2 * self.frames.len() + usize::from(self.ping)
    }

    /// The header of frame `k`.
    fn header(&self, k: usize) -> ([u8; 10], usize) {
        frame::encode_header(self.opcode, self.frames[k].len())
    }

    fn len(&self, chunk: usize) -> usize {
        match chunk {
            0 => self.control.len(),
            c if c == self.count() - 1 && self.ping => PING.len(),
            c if c % 2 == 1 => self.header((c - 1) / 2).1,
            c => self.frames[(c - 1) / 2].len(),
        }
    }
}

/// How far a write went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Everything asked for.
    All,
    /// The stop flag was seen; the write ended at a frame boundary before the end.
    Stopped,
}

/// Write `batch` in order with vectored writes, then flush. Each write's slices and headers are
/// gathered in arrays on the stack of the poll call itself (not in the future, which would make
/// every idle connection's task carry them), so the steady state allocates nothing per batch.
///
/// Once `stop` is set, the loop ends at the first frame boundary it reaches with nothing of the
/// next frame written (no vectored write reaches past that boundary). Checking the flag costs
/// two relaxed loads per vectored write.
async fn write_batch<S: AsyncWrite + Unpin>(
    io: &mut S,
    poisoned: &mut bool,
    batch: &BatchChunks<'_>,
    stop: &AtomicBool,
) -> io::Result<Written> {
    if *poisoned {
        return Err(io::Error::new(
            io::ErrorKind::BrokenPipe,
            "an earlier write was cut off",
        ));
    }
    *poisoned = true;
    let count = batch.count();
    // The next byte to write: chunk `chunk`, `offset` bytes in.
    let (mut chunk, mut offset) = (0usize, 0usize);
    let mut outcome = Written::All;
    while chunk < count {
        if offset == 0 && chunk % 2 == 1 && stop.load(Ordering::Relaxed) {
            outcome = Written::Stopped;
            break;
        }
        let step = poll_fn(|cx| {
            let mut headers = [([0u8; 10], 0usize); HEADER_WINDOW];
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let stopping = stop.load(Ordering::Relaxed);
            let (used, next) = gather(batch, chunk, offset, stopping, &mut headers, &mut slices);
            if used == 0 {
                return Poll::Ready(Ok(Step::Skipped { next }));
            }
            Pin::new(&mut *io)
                .poll_write_vectored(cx, &slices[..used])
                .map_ok(|written| Step::Wrote { written })
        })
        .await?;
        let mut written = match step {
            Step::Skipped { next } => {
                // Only empty chunks were left in this window.
                (chunk, offset) = (next, 0);
                continue;
            }
            Step::Wrote { written: 0 } => return Err(io::ErrorKind::WriteZero.into()),
            Step::Wrote { written } => written,
        };
        while written > 0 || (chunk < count && offset == batch.len(chunk)) {
            let left = batch.len(chunk) - offset;
            if written >= left {
                written -= left;
                (chunk, offset) = (chunk + 1, 0);
            } else {
                offset += written;
                written = 0;
            }
        }
    }
    io.flush().await?;
    *poisoned = false;
    Ok(outcome)
}

/// What one vectored write did.
enum Step {
    Wrote {
        written: usize,
    },
    /// Nothing to write up to chunk `next` (all empty).
    Skipped {
        next: usize,
    },
}

/// Fill `slices` with the batch's bytes from chunk `chunk`, `offset` bytes in, up to a full
/// array, the end of the header window or, when `stopping`, the end of the frame in flight.
/// Returns how many slices were filled and the first chunk not looked at.
fn gather<'a>(
    batch: &'a BatchChunks<'_>,
    chunk: usize,
    offset: usize,
    stopping: bool,
    headers: &'a mut [([u8; 10], usize); HEADER_WINDOW],
    slices: &mut [IoSlice<'a>; MAX_IOVECS],
) -> (usize, usize) {
    let count = batch.count();
    let first_frame = chunk.saturating_sub(1) / 2;
    for (slot, k) in headers
        .iter_mut()
        .zip(first_frame..batch.frames.len().min(first_frame + HEADER_WINDOW))
    {
        *slot = batch.header(k);
    }
    let headers: &'a [([u8; 10], usize)] = headers;
    let mut used = 0;
    let mut next = chunk;
    while next < count && used < MAX_IOVECS && !(stopping && next > chunk && next % 2 == 1) {
        let bytes: &'a [u8] = match next {
            0 => batch.control,
            c if c == count - 1 && batch.ping => PING,
            c if c % 2 == 1 => {
                let Some((header, len)) = headers.get((c - 1) / 2 - first_frame) else {
                    break;
                };
                &header[..*len]
            }
            c => &batch.frames[(c - 1) / 2],
        };
        let bytes = if next == chunk {
            &bytes[offset..]
        } else {
            bytes
        };
        if !bytes.is_empty() {
            slices[used] = IoSlice::new(bytes);
            used += 1;
        }
        next += 1;
    }
    (used, next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn a_stopped_write_finishes_the_frame_in_flight_and_starts_no_other() {
        let stop = Arc::new(AtomicBool::new(false));
        let mut io = Vectored {
            out: Vec::new(),
            max: 5,
            raise_after: Some((2, stop.clone())),
        };
        let mut poisoned = false;
        let (h1, l1) = frame::encode_header(OpCode::Text, 12);
        let pong = [0x8A, 0x00];
        let frames = [
            Bytes::from_static(b"first frame!"),
            Bytes::from_static(b"two"),
        ];
        let batch = BatchChunks {
            control: &pong,
            opcode: OpCode::Text,
            frames: &frames,
            ping: true,
        };
        let written = write_batch(&mut io, &mut poisoned, &batch, &stop)
            .await
            .unwrap();
        assert_eq!(written, Written::Stopped);
        assert!(!poisoned, "a frame boundary: a close frame may follow");
        let mut expected = pong.to_vec();
        expected.extend_from_slice(&h1[..l1]);
        expected.extend_from_slice(b"first frame!");
        assert_eq!(io.out, expected);
    }

    /// Takes up to `max` bytes per call across all the slices it is given, like a socket whose
    /// buffer has room for a few bytes at a time; with `raise_after`, raises the stop flag once
    /// more than that many bytes were taken, like a peer that reads a little while the queue
    /// overflows.
    struct Vectored {
        out: Vec<u8>,
        max: usize,
        raise_after: Option<(usize, Arc<AtomicBool>)>,
    }

    impl Vectored {
        fn took(&mut self, bytes: &[u8]) {
            self.out.extend_from_slice(bytes);
            if let Some((after, stop)) = &self.raise_after
                && self.out.len() > *after
            {
                stop.store(true, Ordering::Relaxed);
            }
        }
    }

    impl AsyncWrite for Vectored {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let n = buf.len().min(self.max);
            self.took(&buf[..n]);
            Poll::Ready(Ok(n))
        }
        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let mut room = self.max;
            let mut taken = 0;
            for buf in bufs {
                let n = buf.len().min(room);
                self.took(&buf[..n]);
                room -= n;
                taken += n;
                if room == 0 {
                    break;
                }
            }
            Poll::Ready(Ok(taken))
        }
        fn is_write_vectored(&self) -> bool {
            true
        }
        fn poll_flush(
            self: Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(
            self: Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn a_batch_longer_than_one_vectored_write_arrives_whole_and_in_order() {
        // More frames than one write's slices can hold, empty payloads among them, written a
        // few bytes at a time and all at once.
        let frames: Vec<Bytes> = (0..100)
            .map(|n| {
                Bytes::from(if n % 7 == 0 {
                    String::new()
                } else {
                    format!("frame {n}")
                })
            })
            .collect();
        let mut expected = b"ctl".to_vec();
        for f in &frames {
            let (header, len) = frame::encode_header(OpCode::Text, f.len());
            expected.extend_from_slice(&header[..len]);
            expected.extend_from_slice(f);
        }
        expected.extend_from_slice(PING);
        for max in [1, 3, 10, 64, usize::MAX] {
            let mut io = Vectored {
                out: Vec::new(),
                max,
                raise_after: None,
            };
            let mut poisoned = false;
            let batch = BatchChunks {
                control: b"ctl",
                opcode: OpCode::Text,
                frames: &frames,
                ping: true,
            };
            let written = write_batch(&mut io, &mut poisoned, &batch, &NEVER_STOP)
                .await
                .unwrap();
            assert_eq!(written, Written::All);
            assert!(!poisoned);
            assert_eq!(io.out, expected, "writes of at most {max} bytes");
        }
    }
}
