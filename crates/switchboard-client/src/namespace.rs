//! A connection speaking the namespace dialect (`/api/1/ws/<name>`, seed 003): connect with a
//! uuid, a token or a cookie, read the `connected` envelope, send messages, receive envelopes.

use ::http::{HeaderName, HeaderValue};
use serde_json::Value;
use tokio_websockets::ClientBuilder;

use crate::{ClientError, Socket, encode};

/// How to connect to a namespace.
#[derive(Debug, Clone, Default)]
pub struct NamespaceOptions {
    /// The `uuid` query parameter: the client id to keep.
    pub uuid: Option<String>,
    /// Sent as `Authorization: Bearer <token>`.
    pub bearer: Option<String>,
    /// Sent as the `auth` query parameter.
    pub auth_query: Option<String>,
    /// Sent as the `switchboard_token` cookie.
    pub cookie_token: Option<String>,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
}

impl NamespaceOptions {
    pub fn uuid(mut self, uuid: impl Into<String>) -> Self {
        self.uuid = Some(uuid.into());
        self
    }

    pub fn bearer(mut self, token: impl Into<String>) -> Self {
        self.bearer = Some(token.into());
        self
    }
}

/// A namespace dialect connection.
pub struct NamespaceClient {
    socket: Socket,
    /// The `data` of the `connected` envelope (`clientId`, `namespace`, `username`).
    pub welcome: Value,
}

impl NamespaceClient {
    /// Connect to `/api/1/ws/<name>` on `base` (`ws://host:port`) and read the `connected`
    /// envelope; a refusal (an error envelope first) is an error.
    pub async fn connect(
        base: &str,
        name: &str,
        options: &NamespaceOptions,
    ) -> Result<Self, ClientError> {
        let mut client = Self::open(base, name, options).await?;
        let first = client.recv_json().await?;
        if first["success"] != true || first["data"]["type"] != "connected" {
            return Err(ClientError::Unexpected(first.to_string()));
        }
        client.welcome = first["data"].clone();
        Ok(client)
    }

    /// Open the socket without reading anything (`welcome` stays null).
    pub async fn open(
        base: &str,
        name: &str,
        options: &NamespaceOptions,
    ) -> Result<Self, ClientError> {
        let mut query = Vec::new();
        if let Some(uuid) = &options.uuid {
            query.push(format!("uuid={}", encode(uuid)));
        }
        if let Some(auth) = &options.auth_query {
            query.push(format!("auth={}", encode(auth)));
        }
        let mut url = format!("{base}/api/1/ws/{name}");
        if !query.is_empty() {
            url.push('?');
            url.push_str(&query.join("&"));
        }
        let mut headers = options.headers.clone();
        if let Some(token) = &options.bearer {
            headers.push(("authorization".into(), format!("Bearer {token}")));
        }
        if let Some(token) = &options.cookie_token {
            headers.push(("cookie".into(), format!("switchboard_token={token}")));
        }
        let mut builder = ClientBuilder::new().uri(&url)?;
        for (name, value) in &headers {
            let name = HeaderName::try_from(name.as_str())
                .map_err(|e| ClientError::Unexpected(e.to_string()))?;
            let value =
                HeaderValue::from_str(value).map_err(|e| ClientError::Unexpected(e.to_string()))?;
            builder = builder.add_header(name, value)?;
        }
        let (socket, _response) = builder.connect().await?;
        Ok(Self {
            socket: Socket::new(socket),
            welcome: Value::Null,
        })
    }

    /// The client id the server gave this socket.
    pub fn client_id(&self) -> &str {
        self.welcome["clientId"].as_str().unwrap_or_default()
    }

    /// Close politely.
    pub async fn close(self) -> Result<(), ClientError> {
        self.socket.close().await
    }
}

crate::socket::dereference_to_socket!(NamespaceClient);
