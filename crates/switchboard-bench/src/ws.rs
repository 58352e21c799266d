//! A deliberately small WebSocket client for load generation.
//!
//! The generator must spend less CPU per delivery than the server it measures, so this client
//! does the minimum: a raw HTTP/1.1 upgrade, a reusable read buffer, frames parsed in place (server
//! frames are unmasked), no UTF-8 validation, no per-frame allocation. Client frames are masked as
//! RFC 6455 requires.

use std::io;
use std::net::{IpAddr, SocketAddr};

use base64::Engine;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

pub const OP_CONT: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// Open a TCP connection, bound to `source` first when given (to spread ephemeral ports over
/// several loopback addresses). With a source address the generator picks the source port itself,
/// round robin over 10000-59999: letting the kernel pick (port 0) scans the ephemeral range for a
/// free port on every connect, which gets slow, on the generator's core, once thousands are in use.
pub async fn tcp_connect(addr: SocketAddr, source: Option<IpAddr>) -> io::Result<TcpStream> {
    use std::sync::atomic::{AtomicU32, Ordering};
    // Start at a random point so consecutive generator processes do not retrace each other's
    // ports (a server that closed first may still hold them in TIME_WAIT).
    static NEXT_PORT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT_PORT.compare_exchange(
        u32::MAX,
        fastrand::u32(0..50_000),
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    let new_socket = || {
        if addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
    };
    let socket = match source {
        None => new_socket()?,
        Some(ip) => {
            let mut attempt = 0;
            loop {
                let socket = new_socket()?;
                let port = 10_000 + (NEXT_PORT.fetch_add(1, Ordering::Relaxed) % 50_000) as u16;
                match socket.bind(SocketAddr::new(ip, port)) {
                    Ok(()) => break socket,
                    Err(err) if err.kind() == io::ErrorKind::AddrInUse && attempt < 50 => {
                        attempt += 1
                    }
                    Err(err) => return Err(err),
                }
            }
        }
    };
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Perform the HTTP upgrade on `stream`. Returns the reader holding any bytes that followed the
/// response head (frames the server sent at once).
pub async fn upgrade(
    stream: &mut TcpStream,
    host: &str,
    path: &str,
    headers: &[(String, String)],
) -> io::Result<FrameReader> {
    let key = base64::engine::general_purpose::STANDARD.encode(fastrand::u128(..).to_le_bytes());
    let mut request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
    );
    for (name, value) in headers {
        request.push_str(name);
        request.push_str(": ");
        request.push_str(value);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await?;

    let mut reader = FrameReader::new();
    loop {
        if let Some(end) = find(&reader.buf[..reader.end], b"\r\n\r\n") {
            let head = &reader.buf[..end];
            if !(head.starts_with(b"HTTP/1.1 101") || head.starts_with(b"HTTP/1.0 101")) {
                let line =
                    String::from_utf8_lossy(head.split(|b| *b == b'\r').next().unwrap_or(b""))
                        .into_owned();
                return Err(io::Error::other(format!("upgrade refused: {line}")));
            }
            reader.permessage_deflate = String::from_utf8_lossy(head)
                .to_ascii_lowercase()
                .lines()
                .any(|l| {
                    l.starts_with("sec-websocket-extensions:") && l.contains("permessage-deflate")
                });
            reader.start = end + 4;
            return Ok(reader);
        }
        if reader.end == reader.buf.len() {
            if reader.buf.len() > 64 * 1024 {
                return Err(io::Error::other("upgrade response head too long"));
            }
            reader.buf.resize(reader.buf.len() * 2, 0);
        }
        let n = stream.read(&mut reader.buf[reader.end..]).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed during upgrade",
            ));
        }
        reader.end += n;
    }
}

/// One frame, borrowed from the reader's buffer.
pub struct Frame<'a> {
    pub opcode: u8,
    /// RSV1: the payload is compressed (permessage-deflate negotiated).
    pub compressed: bool,
    pub payload: &'a [u8],
}

/// Parses frames out of a growable buffer that is reused for the life of the connection.
pub struct FrameReader {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// The upgrade response accepted permessage-deflate (only when the client offered it).
    pub permessage_deflate: bool,
}

const INITIAL_BUF: usize = 2048;

impl Default for FrameReader {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameReader {
    pub fn new() -> Self {
        Self {
            buf: vec![0; INITIAL_BUF],
            start: 0,
            end: 0,
            permessage_deflate: false,
        }
    }

    /// Bounds of the next complete frame in the buffer: (opcode, RSV1, payload start, payload
    /// end). Fragmented messages are rare from servers; each fragment is returned as it comes.
    fn parse(&mut self) -> Option<(u8, bool, usize, usize)> {
        let data = &self.buf[self.start..self.end];
        if data.len() < 2 {
            return None;
        }
        let opcode = data[0] & 0x0F;
        let compressed = data[0] & 0x40 != 0;
        let masked = data[1] & 0x80 != 0;
        let mut len = u64::from(data[1] & 0x7F);
        let mut header = 2usize;
        if len == 126 {
            if data.len() < 4 {
                return None;
            }
            len = u64::from(u16::from_be_bytes([data[2], data[3]]));
            header = 4;
        } else if len == 127 {
            if data.len() < 10 {
                return None;
            }
            let mut b = [0u8; 8];
            b.copy_from_slice(&data[2..10]);
            len = u64::from_be_bytes(b);
            header = 10;
        }
        let mask_at = header;
        if masked {
            header += 4;
        }
        let total = header + len as usize;
        if data.len() < total {
            return None;
        }
        let payload_start = self.start + header;
        let payload_end = self.start + total;
        if masked {
            let mut key = [0u8; 4];
            key.copy_from_slice(&self.buf[self.start + mask_at..self.start + mask_at + 4]);
            for (i, byte) in self.buf[payload_start..payload_end].iter_mut().enumerate() {
                *byte ^= key[i & 3];
            }
        }
        self.start += total;
        Some((opcode, compressed, payload_start, payload_end))
    }

    /// The next frame, or `None` at end of stream.
    pub async fn next<R: AsyncRead + Unpin>(
        &mut self,
        stream: &mut R,
    ) -> io::Result<Option<Frame<'_>>> {
        let bounds = loop {
            if let Some(bounds) = self.parse() {
                break bounds;
            }
            // Make room: move the partial frame to the front, grow if it fills the buffer.
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.end == self.buf.len() {
                self.buf.resize(self.buf.len() * 2, 0);
            }
            let n = stream.read(&mut self.buf[self.end..]).await?;
            if n == 0 {
                return Ok(None);
            }
            self.end += n;
        };
        let (opcode, compressed, from, to) = bounds;
        if self.start == self.end {
            // Everything consumed: start over at the front next time.
            self.start = 0;
            self.end = 0;
        }
        Ok(Some(Frame {
            opcode,
            compressed,
            payload: &self.buf[from..to],
        }))
    }
}

/// Encode a masked client frame.
pub fn encode(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    encode_into(&mut out, opcode, payload);
    out
}

/// Append a masked client frame to `out`.
pub fn encode_into(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    out.push(0x80 | opcode);
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= u16::MAX as usize {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    let key = fastrand::u32(..).to_ne_bytes();
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i & 3]));
}

pub async fn send_text<W: AsyncWrite + Unpin>(stream: &mut W, text: &[u8]) -> io::Result<()> {
    stream.write_all(&encode(OP_TEXT, text)).await
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}
