//! The WebSocket opening handshake (RFC 6455 section 4.2) on top of hyper's upgrade mechanism.
//! Validation happens before any upgrade, so a bad request gets an HTTP error, never a reset.

use axum::body::Body;
use axum::response::Response;
use base64::Engine;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::error::ApiError;
use crate::ws::WsStream;

/// An upgraded socket. Over our own accept loop it is the bare TCP stream (the lean path); when
/// an app serves the router some other way (TLS, a custom listener) it stays hyper's `Upgraded`.
pub enum ServerSocket {
    Tcp(WsStream<TcpStream>),
    Upgraded(WsStream<TokioIo<Upgraded>>),
}

const ACCEPT_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// A validated upgrade request, ready to answer with 101.
pub struct PendingUpgrade {
    accept: String,
    /// The permessage-deflate response, when the client offered it and we accept.
    deflate: Option<String>,
    on_upgrade: OnUpgrade,
}

impl PendingUpgrade {
    /// Check the handshake headers of `request` and take its upgrade handle.
    pub fn from_request(request: &mut http::Request<Body>) -> Result<Self, ApiError> {
        let headers = request.headers();
        if request.method() != http::Method::GET {
            return Err(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "WebSocket upgrades use GET",
            ));
        }
        if !header_has_token(headers, header::CONNECTION, "upgrade")
            || !header_has_token(headers, header::UPGRADE, "websocket")
        {
            return Err(ApiError::new(
                StatusCode::UPGRADE_REQUIRED,
                "upgrade_required",
                "this endpoint speaks WebSocket only",
            ));
        }
        if headers
            .get(header::SEC_WEBSOCKET_VERSION)
            .is_none_or(|v| v.as_bytes() != b"13")
        {
            return Err(ApiError::bad_request(
                "unsupported_version",
                "Sec-WebSocket-Version must be 13",
            ));
        }
        let key = headers
            .get(header::SEC_WEBSOCKET_KEY)
            .filter(|k| {
                base64::engine::general_purpose::STANDARD
                    .decode(k.as_bytes())
                    .is_ok_and(|raw| raw.len() == 16)
            })
            .ok_or_else(|| {
                ApiError::bad_request("invalid_key", "Sec-WebSocket-Key is missing or malformed")
            })?;
        let accept = accept_key(key.as_bytes());
        let deflate = crate::ws::deflate::negotiate(
            headers
                .get_all(header::SEC_WEBSOCKET_EXTENSIONS)
                .iter()
                .filter_map(|v| v.to_str().ok()),
        );
        let on_upgrade = request
            .extensions_mut()
            .remove::<OnUpgrade>()
            .ok_or_else(|| ApiError::internal("connection cannot be upgraded"))?;
        Ok(Self {
            accept,
            deflate,
            on_upgrade,
        })
    }

    /// The 101 response, and the future that yields the socket once hyper hands it over.
    /// `allow_deflate`: accept a permessage-deflate offer (config `permessage_deflate`).
    pub fn accept(
        self,
        max_message_bytes: usize,
        allow_deflate: bool,
    ) -> (
        Response,
        impl Future<Output = Option<ServerSocket>> + Send + 'static,
    ) {
        let deflate = self.deflate.filter(|_| allow_deflate);
        let mut response = Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(header::CONNECTION, "upgrade")
            .header(header::UPGRADE, "websocket")
            .header(
                header::SEC_WEBSOCKET_ACCEPT,
                HeaderValue::from_str(&self.accept).unwrap_or(HeaderValue::from_static("")),
            )
            .body(Body::empty())
            .unwrap_or_default();
        let compressed = deflate.is_some();
        if let Some(value) = deflate.and_then(|v| HeaderValue::from_str(&v).ok()) {
            response
                .headers_mut()
                .insert(header::SEC_WEBSOCKET_EXTENSIONS, value);
        }
        let on_upgrade = self.on_upgrade;
        let socket = async move {
            match on_upgrade.await {
                Ok(upgraded) => Some(match upgraded.downcast::<TokioIo<TcpStream>>() {
                    Ok(parts) => ServerSocket::Tcp(WsStream::new(
                        parts.io.into_inner(),
                        parts.read_buf,
                        max_message_bytes,
                        compressed,
                    )),
                    Err(upgraded) => ServerSocket::Upgraded(WsStream::new(
                        TokioIo::new(upgraded),
                        bytes::Bytes::new(),
                        max_message_bytes,
                        compressed,
                    )),
                }),
                Err(err) => {
                    tracing::debug!(%err, "upgrade failed after the handshake");
                    None
                }
            }
        };
        (response, socket)
    }
}

fn header_has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value
            .to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

fn accept_key(key: &[u8]) -> String {
    let mut sha = sha1_smol::Sha1::new();
    sha.update(key);
    sha.update(ACCEPT_GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha.digest().bytes())
}

#[cfg(test)]
mod tests {
    #[test]
    fn accept_key_matches_the_rfc_example() {
        assert_eq!(
            super::accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
