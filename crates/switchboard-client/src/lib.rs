//! A Rust client for Switchboard's WebSocket dialects: used by the test suites, the load
//! generator and Rust apps.
//!
//! # Layout
//!
//! - [`JacClient`]: a connection speaking the Jac Cloud dialect (`/websocket`): connect with a
//!   token or channel, read the connection frame, send events, receive JSON frames, observe the
//!   close code.
//! - [`channel::ChannelClient`]: a connection speaking the channel dialect (`/ws/<channel>`).
//! - [`NamespaceClient`]: a connection speaking the namespace dialect (`/api/1/ws/<name>`).
//! - [`Socket`]: the frames of one connection (send, receive with a wait, the close), which
//!   every dialect client dereferences to.
//! - [`http`]: a minimal HTTP/1.1 client for the REST and account endpoints.

pub mod channel;
pub mod http;
mod namespace;
mod socket;

pub use namespace::{NamespaceClient, NamespaceOptions};
pub use socket::Socket;

use std::time::Duration;

use ::http::{HeaderName, HeaderValue};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_websockets::{ClientBuilder, MaybeTlsStream, WebSocketStream};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("websocket: {0}")]
    WebSocket(#[from] tokio_websockets::Error),
    #[error("invalid url: {0}")]
    Url(#[from] ::http::uri::InvalidUri),
    #[error("timed out waiting for a frame")]
    Timeout,
    #[error("the server closed the connection (code {code:?}, reason {reason:?})")]
    Closed { code: Option<u16>, reason: String },
    #[error("frame is not JSON: {0}")]
    NotJson(String),
    #[error("unexpected frame: {0}")]
    Unexpected(String),
}

/// How to connect.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// Sent as `Authorization: Bearer <token>`.
    pub bearer: Option<String>,
    /// Sent as the `auth` query parameter (what browsers do).
    pub auth_query: Option<String>,
    /// The `channel_id` query parameter.
    pub channel_id: Option<String>,
    /// Extra request headers (for example `Origin`).
    pub headers: Vec<(String, String)>,
}

impl ConnectOptions {
    pub fn bearer(token: impl Into<String>) -> Self {
        Self {
            bearer: Some(token.into()),
            ..Self::default()
        }
    }

    pub fn channel(mut self, channel_id: impl Into<String>) -> Self {
        self.channel_id = Some(channel_id.into());
        self
    }
}

/// The ids of the `connection` frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    pub client_id: String,
    pub root_id: String,
    pub channel_id: String,
}

impl ConnectionInfo {
    /// Read the ids out of a `{"type":"connection","data":{...}}` frame.
    pub fn from_frame(frame: &Value) -> Result<Self, ClientError> {
        let data = &frame["data"];
        let field = |name: &str| {
            data[name]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| ClientError::Unexpected(frame.to_string()))
        };
        if frame["type"] != "connection" {
            return Err(ClientError::Unexpected(frame.to_string()));
        }
        Ok(Self {
            client_id: field("client_id")?,
            root_id: field("root_id")?,
            channel_id: field("channel_id")?,
        })
    }
}

/// What arrived.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    Json(Value),
    Closed { code: Option<u16>, reason: String },
}

type Stream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A Jac Cloud dialect connection.
pub struct JacClient {
    socket: Socket,
    /// From the latest `connection` frame.
    pub info: ConnectionInfo,
}

/// How long helpers wait for a frame unless told otherwise.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(5);

impl JacClient {
    /// Connect to `base` (`ws://host:port`) and read the connection frame.
    pub async fn connect(base: &str, options: ConnectOptions) -> Result<Self, ClientError> {
        let mut socket = Socket::new(Self::open(base, &options).await?);
        let first = socket.recv_json().await?;
        let info = ConnectionInfo::from_frame(&first)?;
        Ok(Self { socket, info })
    }

    /// Open the socket without reading anything.
    pub async fn open(base: &str, options: &ConnectOptions) -> Result<Stream, ClientError> {
        let mut query = Vec::new();
        if let Some(channel) = &options.channel_id {
            query.push(format!("channel_id={}", encode(channel)));
        }
        if let Some(auth) = &options.auth_query {
            query.push(format!("auth={}", encode(auth)));
        }
        let mut url = format!("{base}/websocket");
        if !query.is_empty() {
            url.push('?');
            url.push_str(&query.join("&"));
        }
        let mut builder = ClientBuilder::new().uri(&url)?;
        if let Some(token) = &options.bearer {
            builder = builder.add_header(
                ::http::header::AUTHORIZATION,
                HeaderValue::from_str(&format!("Bearer {token}"))
                    .map_err(|e| ClientError::Unexpected(e.to_string()))?,
            )?;
        }
        for (name, value) in &options.headers {
            let name = HeaderName::try_from(name.as_str())
                .map_err(|e| ClientError::Unexpected(e.to_string()))?;
            let value =
                HeaderValue::from_str(value).map_err(|e| ClientError::Unexpected(e.to_string()))?;
            builder = builder.add_header(name, value)?;
        }
        let (socket, _response) = builder.connect().await?;
        Ok(socket)
    }

    /// Call a walker and wait for its reply (or error frame), skipping other frames into `skipped`.
    pub async fn call_walker(
        &mut self,
        walker: &str,
        context: Value,
    ) -> Result<Value, ClientError> {
        self.send_json(
            &json!({"type": "walker", "walker": walker, "context": context, "response": true}),
        )
        .await?;
        loop {
            let frame = self.recv_json().await?;
            if frame.get("status").is_some() || frame.get("error").is_some() {
                return Ok(frame);
            }
        }
    }

    /// Send `change_user` and read until the new connection frame.
    pub async fn change_user(
        &mut self,
        token: Option<&str>,
    ) -> Result<ConnectionInfo, ClientError> {
        let event = match token {
            Some(token) => json!({"type": "change_user", "token": token}),
            None => json!({"type": "change_user"}),
        };
        self.send_json(&event).await?;
        loop {
            let frame = self.recv_json().await?;
            if frame["type"] == "connection" {
                self.info = ConnectionInfo::from_frame(&frame)?;
                return Ok(self.info.clone());
            }
        }
    }

    /// Close politely.
    pub async fn close(self) -> Result<(), ClientError> {
        self.socket.close().await
    }
}

crate::socket::dereference_to_socket!(JacClient);

fn encode(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}
