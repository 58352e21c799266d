//! The server's own WebSocket reader (`ws::WsStream`, RFC 6455 framing, fragmentation, control
//! frames, UTF-8 checks, the size limit) on arbitrary client bytes, echoing each message as the
//! echo endpoint does. The first bytes choose the message size limit, how the bytes arrive
//! (chunk size) and how many of them were read along with the HTTP upgrade (leftover).
//!
//! Nothing may panic; every text message is valid UTF-8; no message is over the limit or longer
//! than the input; reading always ends.
#![no_main]

use std::io;
use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use switchboard::ws::{Message, OpCode, ReadEnd, WsStream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
});

const LIMITS: [usize; 8] = [0, 1, 16, 125, 126, 1000, 65_535, 1 << 20];

/// The client side: delivers `input` in chunks of `chunk` bytes, then end of stream; swallows
/// whatever the server writes.
struct Client {
    input: Vec<u8>,
    at: usize,
    chunk: usize,
}

impl AsyncRead for Client {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let n = this
            .chunk
            .min(buf.remaining())
            .min(this.input.len() - this.at);
        buf.put_slice(&this.input[this.at..this.at + n]);
        this.at += n;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Client {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fuzz_target!(|input: &[u8]| {
    let [limit, chunk, leftover, rest @ ..] = input else {
        return;
    };
    // The high bit of the first byte turns permessage-deflate on (compressed messages allowed).
    let deflate = limit & 0x80 != 0;
    let max_message = LIMITS[usize::from(limit & 0x7f) % LIMITS.len()];
    let chunk = 1 + usize::from(*chunk);
    let split = usize::from(*leftover).min(rest.len());
    let client = Client {
        input: rest[split..].to_vec(),
        at: 0,
        chunk,
    };
    let leftover = Bytes::copy_from_slice(&rest[..split]);
    RUNTIME.block_on(async move {
        let mut ws = WsStream::new(client, leftover, max_message, deflate);
        let mut received = 0usize;
        // Each message consumes at least two bytes of input, so this bound is never reached by
        // a reader that makes progress.
        for _ in 0..rest.len() + 2 {
            match ws.next_message().await {
                Ok(message) => {
                    let (opcode, payload) = match &message {
                        Message::Text(payload) => {
                            assert!(message.as_text().is_some(), "text is not UTF-8");
                            (OpCode::Text, payload.as_bytes().clone())
                        }
                        Message::Binary(payload) => (OpCode::Binary, payload.clone()),
                        Message::Ping | Message::Pong => continue,
                    };
                    assert!(payload.len() <= max_message, "message over the limit");
                    received += payload.len();
                    // Uncompressed, every payload byte came from the input; inflated messages
                    // may be larger than what carried them (each is bounded by the limit above).
                    assert!(deflate || received <= rest.len(), "more payload than input");
                    if ws.write_message(opcode, &payload).await.is_err() {
                        break;
                    }
                }
                Err(end) => {
                    if let ReadEnd::ProtocolError(code) | ReadEnd::Closed(Some(code)) = end {
                        assert!((1000..5000).contains(&code), "close code {code}");
                    }
                    ws.finish(Duration::from_millis(10)).await;
                    return;
                }
            }
        }
        panic!("the reader did not end after {} messages", rest.len() + 2);
    });
});
