//! Who may open a WebSocket: the origin check (cross-site WebSocket hijacking) and the per-address
//! connection limit. The total and per-user limits are taken by the hub as it registers the
//! connection (see [`crate::hub::Hub::register`]), atomically with the insertion.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use http::{HeaderMap, Request, StatusCode, header};

use crate::app::Switchboard;
use crate::close_code::{self, CloseCode};
use crate::http::ApiError;
use crate::metrics::HandshakeFailure;

/// Refuse a browser upgrade from an origin that is neither the server's own nor allowed.
pub fn check_origin(app: &Switchboard, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(()); // not a browser
    };
    let origin = origin.to_str().unwrap_or_default();
    if is_same_origin(origin, headers) || is_listed(origin, &app.config().allowed_origins) {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "origin_not_allowed",
        "this origin may not open WebSockets here (see allowed_origins)",
    ))
}

/// Whether `origin` names this server as the request reached it (its host equals `Host`).
pub(crate) fn is_same_origin(origin: &str, headers: &HeaderMap) -> bool {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|host| origin_host(origin).eq_ignore_ascii_case(host))
}

/// Whether `origin` is in `allowed` (`"*"` allows every origin; a trailing `/` is ignored).
pub(crate) fn is_listed(origin: &str, allowed: &[String]) -> bool {
    allowed
        .iter()
        .any(|a| a == "*" || a.trim_end_matches('/').eq_ignore_ascii_case(origin))
}

/// `https://host:port/...` -> `host:port`.
fn origin_host(origin: &str) -> &str {
    let without_scheme = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    without_scheme.split('/').next().unwrap_or_default()
}

/// The peer's address, when the server was started with [`crate::serve`] (which records it).
pub fn peer_ip<B>(request: &Request<B>) -> Option<IpAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip())
}

/// A counted connection from one address; releases its count when dropped.
#[derive(Debug)]
pub struct AddressSlot {
    app: Switchboard,
    ip: IpAddr,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let now_empty = match self.app.shared.connections_per_ip.get_mut(&self.ip) {
            Some(mut count) => {
                *count = count.saturating_sub(1);
                *count == 0
            }
            None => false,
        };
        if now_empty {
            self.app
                .shared
                .connections_per_ip
                .remove_if(&self.ip, |_, count| *count == 0);
        }
    }
}

/// Count a new connection from `ip` unless the address is at `limits.max_connections_per_ip`.
/// The returned slot keeps the address counted for as long as it lives.
pub fn address_slot(
    app: &Switchboard,
    ip: Option<IpAddr>,
) -> Result<Option<AddressSlot>, CloseCode> {
    let Some(ip) = ip else {
        return Ok(None);
    };
    let mut count = app.shared.connections_per_ip.entry(ip).or_insert(0);
    if *count >= app.config().limits.max_connections_per_ip {
        drop(count);
        app.metrics()
            .handshake_failures(HandshakeFailure::ConnectionLimit)
            .inc();
        return Err(close_code::TOO_MANY_FROM_ADDRESS);
    }
    *count += 1;
    Ok(Some(AddressSlot {
        app: app.clone(),
        ip,
    }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn origin_host_strips_scheme_and_path() {
        assert_eq!(
            super::origin_host("https://a.example:8443/x"),
            "a.example:8443"
        );
        assert_eq!(
            super::origin_host("http://localhost:8000"),
            "localhost:8000"
        );
        assert_eq!(super::origin_host("null"), "null");
    }
}
