//! A connection speaking the channel dialect (`/ws/<channel>`): `{"channel","cmd","param"}`
//! frames both ways. The server sends no first frame, so connecting reads nothing.

use ::http::{HeaderName, HeaderValue};
use serde_json::{Value, json};
use tokio_websockets::ClientBuilder;

use crate::{ClientError, Socket};

/// A channel-dialect connection.
pub struct ChannelClient {
    socket: Socket,
}

impl ChannelClient {
    /// Connect to `base` (`ws://host:port`) + `path` (`/ws/room1?key=value`), with an optional
    /// `Authorization: Bearer` token.
    pub async fn connect(
        base: &str,
        path: &str,
        bearer: Option<&str>,
    ) -> Result<Self, ClientError> {
        let authorization = bearer.map(|token| format!("Bearer {token}"));
        let headers: Vec<(&str, &str)> = authorization
            .as_deref()
            .map(|value| ("authorization", value))
            .into_iter()
            .collect();
        Self::connect_with_headers(base, path, &headers).await
    }

    /// Connect with extra request headers (a `Cookie`, an `Origin`).
    pub async fn connect_with_headers(
        base: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Self, ClientError> {
        let mut builder = ClientBuilder::new().uri(&format!("{base}{path}"))?;
        for (name, value) in headers {
            let name =
                HeaderName::try_from(*name).map_err(|e| ClientError::Unexpected(e.to_string()))?;
            let value =
                HeaderValue::from_str(value).map_err(|e| ClientError::Unexpected(e.to_string()))?;
            builder = builder.add_header(name, value)?;
        }
        let (socket, _response) = builder.connect().await?;
        Ok(Self {
            socket: Socket::new(socket),
        })
    }

    /// Send a command and return the next frame whose `cmd` is `reply` or `error`, skipping
    /// others (presence, relayed messages).
    pub async fn request(&mut self, frame: &Value, reply: &str) -> Result<Value, ClientError> {
        self.send_json(frame).await?;
        self.recv_cmd(&[reply, "error"]).await
    }

    /// The next frame whose `cmd` is one of `cmds`, skipping others.
    pub async fn recv_cmd(&mut self, cmds: &[&str]) -> Result<Value, ClientError> {
        loop {
            let frame = self.recv_json().await?;
            if frame["cmd"].as_str().is_some_and(|cmd| cmds.contains(&cmd)) {
                return Ok(frame);
            }
        }
    }

    /// `join` and its reply (`joined` or an error frame).
    pub async fn join(&mut self, channel: &str) -> Result<Value, ClientError> {
        self.request(&json!({"cmd": "join", "channel": channel}), "joined")
            .await
    }

    /// `leave` and its reply (`left` or an error frame).
    pub async fn leave(&mut self, channel: &str) -> Result<Value, ClientError> {
        self.request(&json!({"cmd": "leave", "channel": channel}), "left")
            .await
    }

    /// `members` and its reply.
    pub async fn members(&mut self, channel: &str) -> Result<Value, ClientError> {
        self.request(&json!({"cmd": "members", "channel": channel}), "members")
            .await
    }

    /// Close politely.
    pub async fn close(self) -> Result<(), ClientError> {
        self.socket.close().await
    }
}

crate::socket::dereference_to_socket!(ChannelClient);
