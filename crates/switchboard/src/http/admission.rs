//! Who may open a WebSocket: the origin check (cross-site WebSocket hijacking) and the
//! connection limits (total, per IP address, per user).

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use http::{HeaderMap, Request, StatusCode, header};

use super::error::ApiError;
use crate::app::Switchboard;
use crate::close_code::{self, CloseCode};
use crate::identity::Identity;
use crate::stats::Metrics;

/// Refuse a browser upgrade from an origin that is neither the server's own nor allowed.
pub fn check_origin(app: &Switchboard, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(()); // not a browser
    };
    let origin = origin.to_str().unwrap_or_default();
    if is_same_origin(origin, headers) || is_listed(origin, &app.config().allowed_origins) {
        return Ok(());
    }
    Metrics::inc(&app.metrics().origins_refused);
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

/// Whether `identity` is a user who already has `limits.max_connections_per_user` connections
/// (the public user is many people and has no limit). Checked on connect and on `change_user`.
pub fn user_is_full(app: &Switchboard, identity: &Identity) -> bool {
    identity.is_authenticated()
        && app.hub().user_connection_count(identity.root_id())
            >= app.config().limits.max_connections_per_user
}

/// Check the connection limits for a new connection as `identity` from `ip`. On success the
/// returned slot keeps the address counted for as long as it lives.
pub fn admit(
    app: &Switchboard,
    ip: Option<IpAddr>,
    identity: &Identity,
) -> Result<Option<AddressSlot>, CloseCode> {
    let limits = &app.config().limits;
    let refuse = |code: CloseCode| {
        Metrics::inc(&app.metrics().connections_refused_limit);
        Err(code)
    };
    if app.hub().connection_count() >= limits.max_connections {
        return refuse(close_code::TRY_AGAIN_LATER);
    }
    if user_is_full(app, identity) {
        return refuse(close_code::TOO_MANY_FOR_USER);
    }
    let Some(ip) = ip else {
        return Ok(None);
    };
    let mut count = app.shared.connections_per_ip.entry(ip).or_insert(0);
    if *count >= limits.max_connections_per_ip {
        drop(count);
        return refuse(close_code::TOO_MANY_FROM_ADDRESS);
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
