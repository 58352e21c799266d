//! A client that stops reading is cut off at its queue bound; everyone else keeps receiving. A
//! client that reads too slowly gets whole frames, then a close frame with 4008.

mod common;

use std::time::Duration;

use common::TestServer;
use futures_util::StreamExt;
use serde_json::json;
use switchboard::metrics::DropReason;
use switchboard_client::{ConnectOptions, Incoming};
use tokio::io::AsyncReadExt;

const QUEUE_BYTES: usize = 2 * 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_reader_is_closed_as_slow_consumer_while_others_keep_receiving() {
    let server = TestServer::start_with(|c| {
        c.limits.outbound_queue_messages = 512;
        c.limits.outbound_queue_bytes = QUEUE_BYTES;
    })
    .await;
    let mut stalled = server
        .connect_with(ConnectOptions::default().channel("firehose"))
        .await;
    let mut healthy = server
        .connect_with(ConnectOptions::default().channel("firehose"))
        .await;

    // The healthy reader counts frames until the end marker.
    let reader = tokio::spawn(async move {
        let mut received = 0u64;
        loop {
            let message =
                tokio::time::timeout(Duration::from_secs(30), healthy.socket_mut().next())
                    .await
                    .expect("healthy reader starved")
                    .expect("stream ended")
                    .expect("read");
            let text = message.as_text().expect("text");
            if text.contains("\"end\"") {
                return (received, healthy);
            }
            received += 1;
        }
    });

    let blob = "x".repeat(8 * 1024);
    let mut published = 0u64;
    let mut max_queued = 0i64;
    while published < 20_000 {
        server
            .app
            .notify_channels(&["firehose"], &json!({"seq": published, "blob": blob}));
        published += 1;
        max_queued = max_queued.max(server.metric(|m| m.outbound_queued_bytes.get()));
        if published % 8 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if server.metric(|m| m.slow_consumer_closes.get()) > 0 && published > 200 {
            break;
        }
    }
    // Keep publishing a little after the cut so we see the others are unaffected.
    for _ in 0..200 {
        server
            .app
            .notify_channels(&["firehose"], &json!({"seq": published, "blob": blob}));
        published += 1;
        if published % 8 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    server.app.notify_channels(&["firehose"], &json!("end"));

    assert_eq!(
        server.metric(|m| m.slow_consumer_closes.get()),
        1,
        "exactly the stalled reader"
    );
    assert!(server.metric(|m| m.dropped(DropReason::SlowConsumer).get()) > 0);
    let (received, _healthy) = reader.await.expect("reader");
    assert_eq!(received, published, "the healthy reader lost nothing");
    // Two queues of at most QUEUE_BYTES each, never more.
    assert!(
        max_queued <= 2 * QUEUE_BYTES as i64,
        "queued bytes peaked at {max_queued}"
    );

    // The stalled reader finds its backlog and then the end of the connection.
    let mut frames = 0u64;
    let ending = loop {
        match stalled.recv(Duration::from_secs(10)).await {
            Ok(Incoming::Json(_)) => frames += 1,
            other => break other,
        }
    };
    assert!(frames < published, "it was cut off before the end");
    // It read nothing for a while, so it either still took the rest of the frame in flight and
    // the close frame within the grace (4008), or it was dropped, and the metric says which.
    let hangups = server.metric(|m| m.slow_consumer_hangups.get());
    match ending {
        Ok(Incoming::Closed { code, .. }) => {
            assert_eq!(code, Some(4008));
            assert_eq!(hangups, 0, "closed with 4008 but counted as dropped");
        }
        Err(switchboard_client::ClientError::WebSocket(_)) => {
            assert_eq!(hangups, 1, "dropped without a close frame but not counted");
        }
        other => panic!("expected the connection to end, got {other:?}"),
    }
    assert_eq!(server.app.hub().channel_size("firehose"), 1);
}

/// A reader that reads, but too slowly, while its queue overflows in the middle of a write: it
/// receives only whole frames, each valid JSON, then a close frame with 4008 (docs/close-codes.md),
/// never a frame cut in half followed by the end of the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_reader_gets_whole_frames_then_close_4008() {
    let server = TestServer::start_with(|c| {
        c.limits.outbound_queue_messages = 1024;
        c.limits.outbound_queue_bytes = 256 * 1024;
        // The reader does read, just slowly: it has as long as it needs (a hang guard) to reach
        // the end of the frame in flight through the backlog in the kernel's buffers.
        c.limits.slow_consumer_grace_ms = 20_000;
    })
    .await;
    let mut raw = raw::connect_small_buffer(&server.addr, "/websocket?channel_id=trickle").await;

    // The reader takes a little at a time, so the server's writes keep stalling mid-frame.
    let reader = tokio::spawn(async move {
        let mut parser = raw::FrameParser::default();
        let mut frames = 0u64;
        let mut chunk = [0u8; 4096];
        loop {
            let n = raw.read(&mut chunk).await.expect("read");
            if n == 0 {
                panic!(
                    "end of stream after {frames} whole frames with {} bytes of a cut-off frame \
                     and no close frame",
                    parser.pending()
                );
            }
            parser.push(&chunk[..n]);
            while let Some((fin, opcode, payload)) = parser.next_frame() {
                assert!(fin, "server frames are not fragmented");
                match opcode {
                    0x1 => {
                        let text = std::str::from_utf8(&payload).expect("utf-8");
                        let _: serde_json::Value = serde_json::from_str(text)
                            .unwrap_or_else(|e| panic!("frame {frames} is not whole JSON: {e}"));
                        frames += 1;
                    }
                    0x9 | 0xA => {}
                    0x8 => {
                        let code = u16::from_be_bytes([payload[0], payload[1]]);
                        return (frames, code);
                    }
                    other => panic!("unexpected opcode {other}"),
                }
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });

    let blob = "y".repeat(16 * 1024);
    let mut published = 0u64;
    let guard = std::time::Instant::now() + Duration::from_secs(30);
    while server.metric(|m| m.slow_consumer_closes.get()) == 0 {
        assert!(
            std::time::Instant::now() < guard,
            "the queue never overflowed"
        );
        server
            .app
            .notify_channels(&["trickle"], &json!({"seq": published, "blob": blob}));
        published += 1;
        if published % 4 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let (frames, code) = tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .expect("the reader saw the end in time")
        .expect("reader");
    assert_eq!(code, 4008, "after {frames} whole frames");
    assert!(frames < published, "it was cut off before the end");
    assert_eq!(server.metric(|m| m.slow_consumer_closes.get()), 1);
    assert_eq!(server.metric(|m| m.slow_consumer_hangups.get()), 0);
}

/// A hand-made WebSocket client with a small receive buffer, parsing server frames itself.
mod raw {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpSocket, TcpStream};

    /// Connect with a small SO_RCVBUF, upgrade `path` by hand and skip the 101 response head.
    pub async fn connect_small_buffer(addr: &str, path: &str) -> TcpStream {
        let socket = TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
        let mut stream = socket
            .connect(addr.parse().expect("addr"))
            .await
            .expect("connect");
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.expect("send");
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            stream.read_exact(&mut byte).await.expect("response head");
            head.push(byte[0]);
        }
        assert!(
            head.starts_with(b"HTTP/1.1 101"),
            "{}",
            String::from_utf8_lossy(&head)
        );
        stream
    }

    /// Server frames (unmasked) parsed out of the bytes read so far.
    #[derive(Default)]
    pub struct FrameParser {
        buf: Vec<u8>,
    }

    impl FrameParser {
        pub fn push(&mut self, bytes: &[u8]) {
            self.buf.extend_from_slice(bytes);
        }

        /// Bytes of an incomplete frame.
        pub fn pending(&self) -> usize {
            self.buf.len()
        }

        /// The next complete frame: (fin, opcode, payload).
        pub fn next_frame(&mut self) -> Option<(bool, u8, Vec<u8>)> {
            let [b0, b1, rest @ ..] = &self.buf[..] else {
                return None;
            };
            assert_eq!(b1 & 0x80, 0, "server frames are never masked");
            let (len, header) = match b1 & 0x7F {
                126 => (
                    u16::from_be_bytes(rest.get(..2)?.try_into().ok()?) as usize,
                    4,
                ),
                127 => (
                    u64::from_be_bytes(rest.get(..8)?.try_into().ok()?) as usize,
                    10,
                ),
                n => (n as usize, 2),
            };
            if self.buf.len() < header + len {
                return None;
            }
            let (fin, opcode) = (b0 & 0x80 != 0, b0 & 0x0F);
            let payload = self.buf[header..header + len].to_vec();
            self.buf.drain(..header + len);
            Some((fin, opcode, payload))
        }
    }
}
