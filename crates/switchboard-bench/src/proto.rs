//! The wire protocols the generator speaks: each server is driven through its own protocol, the
//! way its real clients would use it.
//!
//! | protocol | subscribe | publish | ready when |
//! | --- | --- | --- | --- |
//! | `jac` (Switchboard, Jac Cloud) | `/websocket?channel_id=R` | client event `channel` | the `connection` frame arrived |
//! | `namespace` (Switchboard, seed 003) | `/api/1/ws/R` | any object, from a socket of the same namespace (relayed by the namespace's `on_message`) | the `connected` envelope arrived |
//! | `pusher` (Sockudo) | `/app/KEY`, then `pusher:subscribe` | HTTP `POST /apps/ID/events` or `batch_events` (signed) | `pusher:connection_established` (and `subscription_succeeded` for a room) |
//! | `sio` (Socket.IO 4) | Engine.IO v4 over WebSocket, `?room=R` joins | `42["pub",R,data]` | the namespace connect reply `40{...}` |
//! | `ws` (bare `ws` floor) | `/?room=R` | `/?pub=R`, any text frame | the 101 response |
//! | `channel` (Switchboard's channel dialect, seed 004) | `/ws/R` | `{"channel":R,"cmd":..,"param":..}` from a member | the 101 response (no first frame) |

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::ValueEnum;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use serde::Serialize;
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::ws::{self, FrameReader, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// Jac Cloud dialect: Switchboard and Jac Cloud.
    Jac,
    /// Namespace dialect (seed 003): Switchboard's `/api/1/ws/<name>`.
    Namespace,
    /// Pusher protocol: Sockudo.
    Pusher,
    /// Engine.IO v4 / Socket.IO 4.
    Sio,
    /// Bare `ws` broadcast server (bench/peers/node/ws-server.js).
    Ws,
    /// Switchboard's channel dialect (`/ws/<channel>`, seed 004).
    Channel,
}

/// Everything needed to reach one server.
#[derive(Debug, Clone)]
pub struct Target {
    pub protocol: Protocol,
    pub addr: SocketAddr,
    pub host: String,
    /// Pusher app id, key and secret.
    pub app_id: String,
    pub app_key: String,
    pub app_secret: String,
    /// Sent as `Authorization: Bearer` on every WebSocket upgrade (Jac dialect).
    pub bearer: Option<String>,
    /// Switchboard's HTTP publish API key (an `[[api_key]]` of the server's config).
    pub api_key: Option<String>,
    /// Source addresses to spread client sockets over (round robin); empty: the kernel's choice.
    pub sources: Vec<IpAddr>,
    /// Offer permessage-deflate on the upgrade, as browsers do. Only the handshake frames are
    /// inflated (enough for `idle` and `connect`); timestamped deliveries are not.
    pub offer_deflate: bool,
}

/// What browsers send (Chrome, Firefox): the default 15-bit windows, context takeover allowed.
const DEFLATE_OFFER: &str = "permessage-deflate; client_max_window_bits";

/// What a subscriber should do with an incoming text frame.
pub enum Reply {
    None,
    Text(&'static [u8]),
}

/// A connected client socket with its frame reader.
pub struct Conn {
    pub stream: TcpStream,
    pub reader: FrameReader,
}

impl Target {
    pub fn source_for(&self, index: usize) -> Option<IpAddr> {
        if self.sources.is_empty() {
            None
        } else {
            Some(self.sources[index % self.sources.len()])
        }
    }

    /// The request path of connection `index`.
    fn path(&self, index: usize, room: Option<&str>, publish_to: Option<&str>) -> String {
        match self.protocol {
            Protocol::Jac => match room {
                Some(room) => format!("/websocket?channel_id={room}"),
                None => "/websocket".to_string(),
            },
            Protocol::Namespace => format!("/api/1/ws/{}", room.or(publish_to).unwrap_or_default()),
            Protocol::Pusher => format!(
                "/app/{}?protocol=7&client=switchboard-bench&version=0.1&flash=false",
                self.app_key
            ),
            Protocol::Sio => match room {
                Some(room) => format!("/socket.io/?EIO=4&transport=websocket&room={room}"),
                None => "/socket.io/?EIO=4&transport=websocket".to_string(),
            },
            // Without a room, a channel of its own (as the Jac dialect gives a random one).
            Protocol::Channel => match publish_to.or(room) {
                Some(channel) => format!("/ws/{channel}"),
                None => format!("/ws/bench-own-{index}"),
            },
            Protocol::Ws => match (room, publish_to) {
                (_, Some(target)) => format!("/?pub={target}"),
                (Some(room), None) => format!("/?room={room}"),
                (None, None) => "/".to_string(),
            },
        }
    }

    /// Open a client connection and wait until it is usable: subscribed to `room` when given,
    /// or set up to publish to `publish_to` (the `ws` floor fixes the target in the URL).
    /// Returns the connection and the time from the TCP connect to usable.
    pub async fn open(
        &self,
        index: usize,
        room: Option<&str>,
        publish_to: Option<&str>,
        timeout: Duration,
    ) -> anyhow::Result<(Conn, Duration)> {
        let started = Instant::now();
        let conn = tokio::time::timeout(timeout, self.open_inner(index, room, publish_to))
            .await
            .context("handshake timed out")??;
        Ok((conn, started.elapsed()))
    }

    async fn open_inner(
        &self,
        index: usize,
        room: Option<&str>,
        publish_to: Option<&str>,
    ) -> anyhow::Result<Conn> {
        let mut stream = ws::tcp_connect(self.addr, self.source_for(index)).await?;
        let mut headers = Vec::new();
        if let (Protocol::Jac | Protocol::Namespace, Some(token)) = (self.protocol, &self.bearer) {
            headers.push(("Authorization".to_string(), format!("Bearer {token}")));
        }
        if self.offer_deflate {
            headers.push((
                "Sec-WebSocket-Extensions".to_string(),
                DEFLATE_OFFER.to_string(),
            ));
        }
        let path = self.path(index, room, publish_to);
        let mut reader = ws::upgrade(&mut stream, &self.host, &path, &headers).await?;
        // One inflater for the connection's life: with context takeover each compressed message
        // refers back to the ones before it.
        let mut inflater = reader
            .permessage_deflate
            .then(|| flate2::Decompress::new(false));
        match self.protocol {
            // Both join on the upgrade and send no first frame.
            Protocol::Ws | Protocol::Channel => {}
            Protocol::Namespace => {
                let text = next_text(&mut stream, &mut reader, &mut inflater).await?;
                if ws::find(&text, b"\"connected\"").is_none() {
                    bail!("expected the connected envelope, got {}", lossy(&text));
                }
            }
            Protocol::Jac => {
                let text = next_text(&mut stream, &mut reader, &mut inflater).await?;
                if ws::find(&text, b"\"connection\"").is_none() {
                    bail!("expected the connection frame, got {}", lossy(&text));
                }
            }
            Protocol::Pusher => {
                let text = next_text(&mut stream, &mut reader, &mut inflater).await?;
                if ws::find(&text, b"pusher:connection_established").is_none() {
                    bail!("expected connection_established, got {}", lossy(&text));
                }
                if let Some(room) = room {
                    let subscribe =
                        format!(r#"{{"event":"pusher:subscribe","data":{{"channel":"{room}"}}}}"#);
                    ws::send_text(&mut stream, subscribe.as_bytes()).await?;
                    loop {
                        let text = next_text(&mut stream, &mut reader, &mut inflater).await?;
                        if ws::find(&text, b"subscription_succeeded").is_some() {
                            break;
                        }
                        if ws::find(&text, b"pusher:error").is_some() {
                            bail!("subscribe refused: {}", lossy(&text));
                        }
                    }
                }
            }
            Protocol::Sio => {
                let open = next_text(&mut stream, &mut reader, &mut inflater).await?;
                if !open.starts_with(b"0") {
                    bail!("expected the Engine.IO open packet, got {}", lossy(&open));
                }
                ws::send_text(&mut stream, b"40").await?;
                loop {
                    let text = next_text(&mut stream, &mut reader, &mut inflater).await?;
                    if text.starts_with(b"40") {
                        break;
                    }
                    if text.starts_with(b"44") {
                        bail!("namespace connect refused: {}", lossy(&text));
                    }
                    if text.as_slice() == b"2" {
                        ws::send_text(&mut stream, b"3").await?;
                    }
                }
            }
        }
        Ok(Conn { stream, reader })
    }

    /// The text frame a WebSocket publisher sends to put `payload` (already a JSON string
    /// literal's contents, no quotes or escapes needed) into `room`. `None` for Pusher, which
    /// publishes over HTTP.
    pub fn publish_frame(&self, room: &str, payload: &str) -> Option<Vec<u8>> {
        let text = match self.protocol {
            Protocol::Jac => format!(
                r#"{{"type":"channel","channel_ids":["{room}"],"data":{{"m":"{payload}"}}}}"#
            ),
            Protocol::Sio => format!(r#"42["pub","{room}",{{"m":"{payload}"}}]"#),
            Protocol::Ws | Protocol::Namespace => format!(r#"{{"m":"{payload}"}}"#),
            Protocol::Channel => {
                format!(r#"{{"channel":"{room}","cmd":"m","param":{{"m":"{payload}"}}}}"#)
            }
            Protocol::Pusher => return None,
        };
        Some(ws::encode(OP_TEXT, text.as_bytes()))
    }

    /// Application-level keep-alive replies.
    pub fn reply_to(&self, text: &[u8]) -> Reply {
        match self.protocol {
            Protocol::Sio if text == b"2" => Reply::Text(b"3"),
            Protocol::Pusher if ws::find(text, b"pusher:ping").is_some() => {
                Reply::Text(br#"{"event":"pusher:pong","data":{}}"#)
            }
            _ => Reply::None,
        }
    }

    /// The HTTP request that publishes `payloads` (each already a JSON string literal's contents)
    /// to `room` as one request: Sockudo's signed Pusher events API (`events` for one item,
    /// `batch_events` for several), or Switchboard's `POST /api/publish` when an API key is set
    /// (one item, or a batch as a JSON array). `None` when the server has no HTTP publish API
    /// the generator knows.
    pub fn http_publish_request(&self, room: &str, payloads: &[String]) -> Option<Vec<u8>> {
        match (self.protocol, &self.api_key) {
            (Protocol::Pusher, _) => Some(self.pusher_publish_request(room, payloads)),
            (_, Some(key)) => {
                let item = |p: &String| {
                    format!(
                        r#"{{"target":{{"channels":["{room}"]}},"event":"m","data":{{"m":"{p}"}}}}"#
                    )
                };
                let body = match payloads {
                    [one] => item(one),
                    many => format!("[{}]", many.iter().map(item).collect::<Vec<_>>().join(",")),
                };
                let auth = format!("Authorization: Bearer {key}\r\n");
                Some(self.post("/api/publish", &auth, &body))
            }
            _ => None,
        }
    }

    /// Pusher's signed request: auth_key, auth_timestamp, auth_version and body_md5 in the query,
    /// auth_signature the hex HMAC-SHA256 of "POST\n<path>\n<sorted query>" under the app secret.
    fn pusher_publish_request(&self, room: &str, payloads: &[String]) -> Vec<u8> {
        let (endpoint, body) = match payloads {
            [one] => (
                "events",
                format!(r#"{{"name":"m","channels":["{room}"],"data":"{one}"}}"#),
            ),
            many => {
                let events: Vec<String> = many
                    .iter()
                    .map(|p| format!(r#"{{"name":"m","channel":"{room}","data":"{p}"}}"#))
                    .collect();
                (
                    "batch_events",
                    format!(r#"{{"batch":[{}]}}"#, events.join(",")),
                )
            }
        };
        let body_md5 = hex::encode(Md5::digest(body.as_bytes()));
        let path = format!("/apps/{}/{endpoint}", self.app_id);
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let query = format!(
            "auth_key={}&auth_timestamp={timestamp}&auth_version=1.0&body_md5={body_md5}",
            self.app_key
        );
        let to_sign = format!("POST\n{path}\n{query}");
        let mut mac = Hmac::<Sha256>::new_from_slice(self.app_secret.as_bytes())
            .expect("hmac accepts any key length");
        mac.update(to_sign.as_bytes());
        let signature = hex::encode(mac.finalize().into_bytes());
        self.post(
            &format!("{path}?{query}&auth_signature={signature}"),
            "",
            &body,
        )
    }

    /// An HTTP/1.1 JSON POST; `headers` are extra header lines, each ending in CRLF.
    fn post(&self, path_and_query: &str, headers: &str, body: &str) -> Vec<u8> {
        format!(
            "POST {path_and_query} HTTP/1.1\r\nHost: {}\r\n{headers}\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.host,
            body.len()
        )
        .into_bytes()
    }
}

/// Read frames until a text frame, answering pings on the way; a compressed one is inflated
/// with `inflater` (present when permessage-deflate was negotiated).
async fn next_text(
    stream: &mut TcpStream,
    reader: &mut FrameReader,
    inflater: &mut Option<flate2::Decompress>,
) -> anyhow::Result<Vec<u8>> {
    loop {
        let Some(frame) = reader.next(stream).await? else {
            bail!("closed before the expected frame");
        };
        match frame.opcode {
            OP_TEXT if frame.compressed => {
                let Some(inflater) = inflater else {
                    bail!("compressed frame without permessage-deflate");
                };
                return inflate(inflater, frame.payload);
            }
            OP_TEXT => return Ok(frame.payload.to_vec()),
            OP_PING => {
                let pong = ws::encode(OP_PONG, frame.payload);
                stream.write_all(&pong).await?;
            }
            OP_CLOSE => bail!("closed by the server: {}", lossy(frame.payload)),
            _ => {}
        }
    }
}

/// Inflate one permessage-deflate message (RFC 7692: the sender dropped the final empty block's
/// `00 00 ff ff`, which the receiver appends).
fn inflate(inflater: &mut flate2::Decompress, payload: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut input = payload.to_vec();
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut out = Vec::with_capacity(payload.len() * 4 + 64);
    let mut consumed = 0;
    loop {
        let before_in = inflater.total_in();
        inflater
            .decompress_vec(&input[consumed..], &mut out, flate2::FlushDecompress::Sync)
            .context("inflating a compressed frame")?;
        consumed += (inflater.total_in() - before_in) as usize;
        if consumed >= input.len() {
            return Ok(out);
        }
        anyhow::ensure!(out.len() < 1 << 20, "inflated frame over 1 MiB");
        out.reserve(out.capacity());
    }
}

fn lossy(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.chars().take(300).collect()
}

/// An HTTP/1.1 client connection for the HTTP publish APIs (Pusher events, `/api/publish`): one request at a time, kept alive
/// unless the server answers `connection: close` (Sockudo 5.2 closes after every API response),
/// in which case the next request opens a new connection.
pub struct HttpConn {
    addr: SocketAddr,
    source: Option<IpAddr>,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    /// Connections opened so far.
    pub connects: u64,
}

impl HttpConn {
    pub async fn connect(addr: SocketAddr, source: Option<IpAddr>) -> io::Result<Self> {
        let mut conn = Self {
            addr,
            source,
            stream: None,
            buf: Vec::with_capacity(4096),
            connects: 0,
        };
        conn.stream = Some(conn.open().await?);
        Ok(conn)
    }

    async fn open(&mut self) -> io::Result<TcpStream> {
        self.connects += 1;
        ws::tcp_connect(self.addr, self.source).await
    }

    /// Send one request and read its response; returns the status code.
    pub async fn roundtrip(&mut self, request: &[u8]) -> io::Result<u16> {
        let mut stream = match self.stream.take() {
            Some(stream) => stream,
            None => self.open().await?,
        };
        stream.write_all(request).await?;
        self.buf.clear();
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(head_end) = ws::find(&self.buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..head_end]).to_ascii_lowercase();
                let status = head
                    .split_whitespace()
                    .nth(1)
                    .and_then(|s| s.parse::<u16>().ok())
                    .unwrap_or(0);
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                let close = head
                    .lines()
                    .any(|l| l.starts_with("connection:") && l.contains("close"));
                if head.contains("transfer-encoding: chunked") {
                    while ws::find(&self.buf[head_end..], b"0\r\n\r\n").is_none() {
                        let n = stream.read(&mut chunk).await?;
                        if n == 0 {
                            return Err(io::ErrorKind::UnexpectedEof.into());
                        }
                        self.buf.extend_from_slice(&chunk[..n]);
                    }
                } else {
                    while self.buf.len() < head_end + 4 + length {
                        let n = stream.read(&mut chunk).await?;
                        if n == 0 {
                            return Err(io::ErrorKind::UnexpectedEof.into());
                        }
                        self.buf.extend_from_slice(&chunk[..n]);
                    }
                }
                if !close {
                    self.stream = Some(stream);
                }
                return Ok(status);
            }
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use hmac::{Hmac, Mac};
    use sha2::Sha256;

    use super::{Protocol, Target, inflate};

    fn target(protocol: Protocol, api_key: Option<&str>) -> Target {
        let addr: SocketAddr = "127.0.0.1:8000".parse().unwrap();
        Target {
            protocol,
            addr,
            host: addr.to_string(),
            app_id: "app".into(),
            app_key: "key".into(),
            app_secret: "secret".into(),
            bearer: None,
            api_key: api_key.map(str::to_string),
            sources: Vec::new(),
            offer_deflate: false,
        }
    }

    /// Splits a request into its request line, head and parsed JSON body.
    fn parts(request: &[u8]) -> (String, String, serde_json::Value) {
        let text = String::from_utf8(request.to_vec()).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let line = head.lines().next().unwrap().to_string();
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        (line, head.to_string(), serde_json::from_str(body).unwrap())
    }

    #[test]
    fn switchboard_publish_is_one_item_or_an_array_with_the_api_key() {
        let t = target(Protocol::Jac, Some("k".repeat(16).as_str()));
        let one = t.http_publish_request("r", &["a".into()]).unwrap();
        let (line, head, body) = parts(&one);
        assert_eq!(line, "POST /api/publish HTTP/1.1");
        assert!(head.contains(&format!("Authorization: Bearer {}", "k".repeat(16))));
        assert_eq!(body["target"]["channels"][0], "r");
        assert_eq!(body["data"]["m"], "a");
        let many = t
            .http_publish_request("r", &["a".into(), "b".into(), "c".into()])
            .unwrap();
        let (_, _, body) = parts(&many);
        assert_eq!(body.as_array().unwrap().len(), 3);
        assert_eq!(body[2]["data"]["m"], "c");
    }

    #[test]
    fn without_an_api_key_switchboard_has_no_http_publish() {
        assert!(
            target(Protocol::Jac, None)
                .http_publish_request("r", &["a".into()])
                .is_none()
        );
    }

    #[test]
    fn pusher_batch_goes_to_batch_events_signed_over_the_sorted_query() {
        let t = target(Protocol::Pusher, None);
        let request = t
            .http_publish_request("r", &["a".into(), "b".into()])
            .unwrap();
        let (line, _, body) = parts(&request);
        assert_eq!(body["batch"][1]["channel"], "r");
        assert_eq!(body["batch"][1]["data"], "b");
        let target = line.split_whitespace().nth(1).unwrap();
        let (path, query) = target.split_once('?').unwrap();
        assert_eq!(path, "/apps/app/batch_events");
        let (signed, signature) = query.split_once("&auth_signature=").unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(b"secret").unwrap();
        mac.update(format!("POST\n{path}\n{signed}").as_bytes());
        assert_eq!(signature, hex::encode(mac.finalize().into_bytes()));
        let single = t.http_publish_request("r", &["a".into()]).unwrap();
        assert!(
            parts(&single)
                .0
                .starts_with("POST /apps/app/events?auth_key=key&")
        );
    }

    /// Compress like a permessage-deflate sender: raw deflate, sync flush, trailing `00 00 ff ff`
    /// dropped.
    fn deflate_message(compressor: &mut flate2::Compress, text: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(text.len() + 64);
        compressor
            .compress_vec(text, &mut out, flate2::FlushCompress::Sync)
            .expect("compress");
        assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
        out.truncate(out.len() - 4);
        out
    }

    #[test]
    fn inflate_reads_consecutive_messages_with_context_takeover() {
        let mut compressor = flate2::Compress::new(flate2::Compression::default(), false);
        let mut inflater = flate2::Decompress::new(false);
        let first = br#"{"type":"connection","data":{"client_id":"1:abc"}}"#;
        let second = br#"{"type":"connection","data":{"client_id":"1:abd"}}"#;
        let a = deflate_message(&mut compressor, first);
        let b = deflate_message(&mut compressor, second);
        assert_eq!(inflate(&mut inflater, &a).unwrap(), first);
        // The second message refers back to the first one's bytes.
        assert_eq!(inflate(&mut inflater, &b).unwrap(), second);
    }
}
