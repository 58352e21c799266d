//! [`Socket`]: one WebSocket connection's frames, as every dialect client sends and reads them:
//! JSON or raw text out, JSON frames or the close in, each read bounded by a wait. The dialect
//! clients dereference to it, so each adds only what its protocol says.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_websockets::Message;

use crate::{ClientError, DEFAULT_WAIT, Incoming, Stream};

/// A connection's frames, for any dialect.
pub struct Socket {
    stream: Stream,
}

impl Socket {
    pub(crate) fn new(stream: Stream) -> Self {
        Self { stream }
    }

    pub async fn send_json(&mut self, value: &Value) -> Result<(), ClientError> {
        self.send_text(&value.to_string()).await
    }

    pub async fn send_text(&mut self, text: &str) -> Result<(), ClientError> {
        self.stream.send(Message::text(text.to_string())).await?;
        Ok(())
    }

    pub async fn send_binary(&mut self, data: Vec<u8>) -> Result<(), ClientError> {
        self.stream.send(Message::binary(data)).await?;
        Ok(())
    }

    /// The next JSON frame, within [`DEFAULT_WAIT`]; the close is an error.
    pub async fn recv_json(&mut self) -> Result<Value, ClientError> {
        match self.recv(DEFAULT_WAIT).await? {
            Incoming::Json(value) => Ok(value),
            Incoming::Closed { code, reason } => Err(ClientError::Closed { code, reason }),
        }
    }

    /// The next JSON frame or the close, within `wait` (pings and pongs are skipped).
    pub async fn recv(&mut self, wait: Duration) -> Result<Incoming, ClientError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let next = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .map_err(|_| ClientError::Timeout)?;
            match next {
                None => {
                    return Ok(Incoming::Closed {
                        code: None,
                        reason: String::new(),
                    });
                }
                Some(Err(err)) => return Err(err.into()),
                Some(Ok(message)) => {
                    if let Some(text) = message.as_text() {
                        let value = serde_json::from_str(text)
                            .map_err(|_| ClientError::NotJson(text.to_string()))?;
                        return Ok(Incoming::Json(value));
                    }
                    if let Some((code, reason)) = message.as_close() {
                        return Ok(Incoming::Closed {
                            code: Some(u16::from(code)),
                            reason: reason.to_string(),
                        });
                    }
                }
            }
        }
    }

    /// `true` if nothing arrives within `wait`.
    pub async fn is_silent_for(&mut self, wait: Duration) -> bool {
        matches!(self.recv(wait).await, Err(ClientError::Timeout))
    }

    /// The underlying stream, for tests that need raw control.
    pub fn socket_mut(&mut self) -> &mut Stream {
        &mut self.stream
    }

    /// Close politely.
    pub async fn close(mut self) -> Result<(), ClientError> {
        self.stream.close().await?;
        Ok(())
    }
}

/// `impl Deref<Target = Socket>` (and `DerefMut`) for a client holding its socket in `socket`.
macro_rules! dereference_to_socket {
    ($client:ty) => {
        impl std::ops::Deref for $client {
            type Target = $crate::Socket;
            fn deref(&self) -> &$crate::Socket {
                &self.socket
            }
        }

        impl std::ops::DerefMut for $client {
            fn deref_mut(&mut self) -> &mut $crate::Socket {
                &mut self.socket
            }
        }
    };
}
pub(crate) use dereference_to_socket;
