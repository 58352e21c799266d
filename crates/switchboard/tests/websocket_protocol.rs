//! The WebSocket protocol at the frame level, over a raw TCP socket: fragmentation, control
//! frames, the close handshake and every way a client can break the framing.

mod common;

use std::time::Duration;

use common::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

/// Open `path` with a hand-written handshake and return the socket after the 101.
async fn raw_connect(addr: &str, path: &str) -> TcpStream {
    raw_connect_with(addr, path, "").await.0
}

/// The same with extra header lines (each ending in `\r\n`); also returns the response head.
async fn raw_connect_with(addr: &str, path: &str, extra: &str) -> (TcpStream, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
    (stream, head)
}

/// A client frame, masked unless `masked` is false.
fn frame(fin: bool, opcode: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
    let mask_bit = if masked { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n <= 0xFFFF => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    if masked {
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

/// Read one server frame: (fin, opcode, payload). `None` at end of stream.
async fn read_frame(stream: &mut TcpStream) -> Option<(bool, u8, Vec<u8>)> {
    let read = async {
        let mut head = [0u8; 2];
        stream.read_exact(&mut head).await.ok()?;
        assert_eq!(head[1] & 0x80, 0, "server frames are never masked");
        let len = match head[1] & 0x7F {
            126 => {
                let mut b = [0u8; 2];
                stream.read_exact(&mut b).await.ok()?;
                u64::from(u16::from_be_bytes(b))
            }
            127 => {
                let mut b = [0u8; 8];
                stream.read_exact(&mut b).await.ok()?;
                u64::from_be_bytes(b)
            }
            n => u64::from(n),
        };
        let mut payload = vec![0u8; len as usize];
        stream.read_exact(&mut payload).await.ok()?;
        Some((head[0] & 0x80 != 0, head[0] & 0x0F, payload))
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .expect("server answered in time")
}

/// Expect a close frame with `code`, then the end of the stream.
async fn expect_close(stream: &mut TcpStream, code: u16) {
    let (_, opcode, payload) = read_frame(stream).await.expect("a close frame");
    assert_eq!(opcode, CLOSE);
    assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), code);
    assert!(
        read_frame(stream).await.is_none(),
        "server hangs up after the close"
    );
}

async fn echo_server() -> TestServer {
    TestServer::start_with(|c| c.echo_path = Some("/echo".into())).await
}

#[tokio::test]
async fn fragmented_message_with_a_ping_in_between_is_reassembled() {
    let server = echo_server().await;
    let mut s = raw_connect(&server.addr, "/echo").await;
    s.write_all(&frame(false, TEXT, b"Hel", true))
        .await
        .unwrap();
    s.write_all(&frame(true, PING, b"mid", true)).await.unwrap();
    s.write_all(&frame(false, 0x0, b"lo, ", true))
        .await
        .unwrap();
    s.write_all(&frame(true, 0x0, "wörld".as_bytes(), true))
        .await
        .unwrap();
    assert_eq!(
        read_frame(&mut s).await,
        Some((true, PONG, b"mid".to_vec()))
    );
    assert_eq!(
        read_frame(&mut s).await,
        Some((true, TEXT, "Hello, wörld".as_bytes().to_vec()))
    );
}

#[tokio::test]
async fn large_binary_message_round_trips_with_the_64_bit_length() {
    let server = echo_server().await;
    let mut s = raw_connect(&server.addr, "/echo").await;
    let payload: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    s.write_all(&frame(true, BINARY, &payload, true))
        .await
        .unwrap();
    assert_eq!(read_frame(&mut s).await, Some((true, BINARY, payload)));
}

#[tokio::test]
async fn close_handshake_echoes_the_code_and_hangs_up() {
    let server = echo_server().await;
    let mut s = raw_connect(&server.addr, "/echo").await;
    let mut close = 1000u16.to_be_bytes().to_vec();
    close.extend_from_slice(b"bye");
    s.write_all(&frame(true, CLOSE, &close, true))
        .await
        .unwrap();
    expect_close(&mut s, 1000).await;
}

#[tokio::test]
async fn framing_violations_close_with_1002_or_1007() {
    let server = echo_server().await;
    let invalid_utf8 = [
        0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5, 0xed, 0xa0, 0x80,
    ];
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("unmasked frame", frame(true, TEXT, b"hi", false), 1002),
        ("reserved opcode", frame(true, 0x3, b"", true), 1002),
        (
            "reserved bits",
            {
                let mut f = frame(true, TEXT, b"x", true);
                f[0] |= 0x40;
                f
            },
            1002,
        ),
        ("continuation first", frame(true, 0x0, b"x", true), 1002),
        ("fragmented ping", frame(false, PING, b"x", true), 1002),
        (
            "control frame over 125 bytes",
            frame(true, PING, &[0u8; 126], true),
            1002,
        ),
        (
            "one-byte close payload",
            frame(true, CLOSE, &[3], true),
            1002,
        ),
        (
            "reserved close code",
            frame(true, CLOSE, &1005u16.to_be_bytes(), true),
            1002,
        ),
        (
            "invalid UTF-8 text",
            frame(true, TEXT, &invalid_utf8, true),
            1007,
        ),
        (
            "invalid UTF-8 close reason",
            frame(true, CLOSE, &[0x03, 0xe8, 0xff], true),
            1007,
        ),
    ];
    for (name, bytes, code) in cases {
        let mut s = raw_connect(&server.addr, "/echo").await;
        s.write_all(&bytes).await.unwrap();
        let (_, opcode, payload) = read_frame(&mut s)
            .await
            .unwrap_or_else(|| panic!("{name}: no close"));
        assert_eq!(opcode, CLOSE, "{name}");
        assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), code, "{name}");
    }
    // A new message while a fragmented one is open is also a violation.
    let mut s = raw_connect(&server.addr, "/echo").await;
    s.write_all(&frame(false, TEXT, b"a", true)).await.unwrap();
    s.write_all(&frame(true, TEXT, b"b", true)).await.unwrap();
    expect_close(&mut s, 1002).await;
}

#[tokio::test]
async fn jac_endpoint_limits_messages_including_fragmented_ones() {
    let server = TestServer::start_with(|c| c.limits.max_frame_bytes = 100).await;
    let mut s = raw_connect(&server.addr, "/websocket").await;
    let (_, opcode, _) = read_frame(&mut s).await.unwrap(); // connection frame
    assert_eq!(opcode, TEXT);
    s.write_all(&frame(false, TEXT, &[b' '; 60], true))
        .await
        .unwrap();
    s.write_all(&frame(true, 0x0, &[b' '; 60], true))
        .await
        .unwrap();
    expect_close(&mut s, 1009).await;
}

#[tokio::test]
async fn bytes_split_at_every_position_still_parse() {
    let server = echo_server().await;
    let mut s = raw_connect(&server.addr, "/echo").await;
    let bytes = frame(true, TEXT, b"split me", true);
    for byte in &bytes {
        s.write_all(&[*byte]).await.unwrap();
        s.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(
        read_frame(&mut s).await,
        Some((true, TEXT, b"split me".to_vec()))
    );
}

#[tokio::test]
async fn invalid_utf8_fails_at_the_fragment_that_breaks_it() {
    let server = echo_server().await;
    let mut s = raw_connect(&server.addr, "/echo").await;
    // A valid start, then a fragment with a byte that can never be UTF-8; no final fragment.
    s.write_all(&frame(false, TEXT, "héllo".as_bytes(), true))
        .await
        .unwrap();
    s.write_all(&frame(false, 0x0, &[0xff], true))
        .await
        .unwrap();
    expect_close(&mut s, 1007).await;
    // A character split across fragments is fine.
    let mut s = raw_connect(&server.addr, "/echo").await;
    let e_acute = "é".as_bytes();
    s.write_all(&frame(false, TEXT, &[b'a', e_acute[0]], true))
        .await
        .unwrap();
    s.write_all(&frame(true, 0x0, &[e_acute[1], b'b'], true))
        .await
        .unwrap();
    assert_eq!(
        read_frame(&mut s).await,
        Some((true, TEXT, "aéb".as_bytes().to_vec()))
    );
}

/// Compress as a permessage-deflate client does: raw DEFLATE, sync flush, trailer removed.
fn deflate(data: &[u8]) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    let mut compressor = Compress::new(Compression::default(), false);
    let mut out = Vec::with_capacity(data.len() + 64);
    compressor
        .compress_vec(data, &mut out, FlushCompress::Sync)
        .unwrap();
    out.truncate(out.len() - 4);
    out
}

const DEFLATE_OFFER: &str =
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";

#[tokio::test]
async fn compressed_messages_are_inflated_when_deflate_was_negotiated() {
    let server = echo_server().await;
    let (mut s, head) = raw_connect_with(&server.addr, "/echo", DEFLATE_OFFER).await;
    assert!(
        head.to_ascii_lowercase().contains(
            "sec-websocket-extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        ),
        "{head}"
    );
    let text = "compress me, compress me, compress me";
    let mut compressed = frame(true, TEXT, &deflate(text.as_bytes()), true);
    compressed[0] |= 0x40; // RSV1: compressed
    s.write_all(&compressed).await.unwrap();
    // Answers go out uncompressed (RSV1 clear).
    let (fin, opcode, payload) = read_frame(&mut s).await.unwrap();
    assert!(fin);
    assert_eq!(opcode, TEXT);
    assert_eq!(payload, text.as_bytes());

    // Fragmented: RSV1 on the first frame only.
    let packed = deflate(&[7u8; 5000]);
    let (first, rest) = packed.split_at(packed.len() / 2);
    let mut start = frame(false, BINARY, first, true);
    start[0] |= 0x40;
    s.write_all(&start).await.unwrap();
    s.write_all(&frame(true, 0x0, rest, true)).await.unwrap();
    assert_eq!(
        read_frame(&mut s).await,
        Some((true, BINARY, vec![7u8; 5000]))
    );
}

#[tokio::test]
async fn compressed_frames_without_negotiation_or_over_the_limit_are_refused() {
    let server = TestServer::start_with(|c| {
        c.echo_path = Some("/echo".into());
        c.limits.max_frame_bytes = 1000;
    })
    .await;
    // Not negotiated: RSV1 is a protocol error.
    let mut s = raw_connect(&server.addr, "/echo").await;
    let mut compressed = frame(true, TEXT, &deflate(b"hi"), true);
    compressed[0] |= 0x40;
    s.write_all(&compressed).await.unwrap();
    expect_close(&mut s, 1002).await;

    // Negotiated, but it inflates past the Jac endpoint's message limit: 1009.
    let (mut s, _) = raw_connect_with(&server.addr, "/websocket", DEFLATE_OFFER).await;
    let _connection_frame = read_frame(&mut s).await.unwrap();
    let bomb = format!("{{\"type\":\"ping\",\"pad\":\"{}\"}}", "a".repeat(50_000));
    let mut compressed = frame(true, TEXT, &deflate(bomb.as_bytes()), true);
    compressed[0] |= 0x40;
    s.write_all(&compressed).await.unwrap();
    expect_close(&mut s, 1009).await;

    // A compressed event under the limit works on the Jac endpoint.
    let (mut s, _) = raw_connect_with(&server.addr, "/websocket", DEFLATE_OFFER).await;
    let _connection_frame = read_frame(&mut s).await.unwrap();
    let mut ping = frame(true, TEXT, &deflate(br#"{"type":"ping"}"#), true);
    ping[0] |= 0x40;
    s.write_all(&ping).await.unwrap();
    assert_eq!(
        read_frame(&mut s).await,
        Some((true, TEXT, br#"{"type":"pong"}"#.to_vec()))
    );
}

#[tokio::test]
async fn corrupt_compressed_data_closes_with_1007() {
    let server = echo_server().await;
    let (mut s, _) = raw_connect_with(&server.addr, "/echo", DEFLATE_OFFER).await;
    // 0xff... is no valid DEFLATE block type.
    let mut corrupt = frame(true, TEXT, &[0xff, 0xff, 0xff, 0xff, 0xff], true);
    corrupt[0] |= 0x40;
    s.write_all(&corrupt).await.unwrap();
    expect_close(&mut s, 1007).await;
    // Invalid UTF-8 that only shows once inflated is also 1007.
    let (mut s, _) = raw_connect_with(&server.addr, "/echo", DEFLATE_OFFER).await;
    let mut bad_text = frame(true, TEXT, &deflate(&[0xce, 0xba, 0xff]), true);
    bad_text[0] |= 0x40;
    s.write_all(&bad_text).await.unwrap();
    expect_close(&mut s, 1007).await;
}

#[tokio::test]
async fn deflate_can_be_turned_off_in_the_config() {
    let server = TestServer::start_with(|c| c.permessage_deflate = false).await;
    let (mut s, head) = raw_connect_with(&server.addr, "/websocket", DEFLATE_OFFER).await;
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("sec-websocket-extensions"),
        "declined: {head}"
    );
    let _connection_frame = read_frame(&mut s).await.unwrap();
    let mut ping = frame(true, TEXT, &deflate(br#"{"type":"ping"}"#), true);
    ping[0] |= 0x40;
    s.write_all(&ping).await.unwrap();
    expect_close(&mut s, 1002).await;
}
