//! `GET /ws/<channel>`: how a channel-dialect connection opens. The channel name and the
//! metadata are checked before the upgrade (HTTP 400). The connection joins its path's channel
//! as it is registered, before the 101 answer, so it is a member when its handshake completes.
//! A refusal by the channel's rule is answered after the upgrade, so a refused client reads an
//! error frame and a close code rather than a bare HTTP status (browsers hide those). A rule
//! with `on_connect = "upstream"` asks the team's backend before the upgrade is answered; its
//! refusal is a `forbidden` error frame with the backend's reason and close 4403, a failed call
//! an `upstream_*` error frame and close 1011 or 1013 (fail closed). The rest of the connect
//! path is [`crate::session`]'s.

use std::sync::Arc;

use axum::body::Body;
use http::Request;

use super::rules::Refusal;
use super::session::ChannelSession;
use super::{ChannelState, Metadata, frames, is_valid_channel_name};
use crate::app::Switchboard;
use crate::close_code;
use crate::dialect::{Connect, Opening};
use crate::error_code;
use crate::http::ApiError;
use crate::hub::Connection;
use crate::metrics::HandshakeFailure;
use crate::session::Credentials;
use crate::upstream::{self, Admission};

/// Most metadata entries (query parameters besides `auth`).
pub const MAX_METADATA_KEYS: usize = 16;
/// Longest metadata key, in bytes.
pub const MAX_METADATA_KEY_BYTES: usize = 64;
/// Longest metadata value, in bytes.
pub const MAX_METADATA_VALUE_BYTES: usize = 256;

/// The query parameter that carries a token; never metadata.
const TOKEN_PARAM: &str = "auth";

/// What the request said: the channel to join and the connection's metadata.
#[derive(Debug)]
pub struct ChannelParams {
    channel: Arc<str>,
    metadata: Metadata,
    /// The client id, chosen before the upgrade so the `on_connect` upstream is told it.
    client_id: Arc<str>,
    /// The rule's `on_connect` upstream's verdict; `Allowed` when the rule has none.
    admission: Admission,
}

/// The channel dialect's connect side.
#[derive(Debug)]
pub struct ChannelConnect {
    state: Arc<ChannelState>,
}

impl ChannelConnect {
    pub fn new(state: Arc<ChannelState>) -> Self {
        Self { state }
    }
}

impl Connect for ChannelConnect {
    type Params = ChannelParams;
    type Session = ChannelSession;

    fn params(
        &self,
        _app: &Switchboard,
        request: &Request<Body>,
    ) -> Result<ChannelParams, ApiError> {
        let channel = request
            .uri()
            .path()
            .strip_prefix("/ws/")
            .filter(|name| is_valid_channel_name(name))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_channel",
                    "a channel name is 1 to 128 characters of A-Z a-z 0-9 _ . : -",
                )
            })?;
        Ok(ChannelParams {
            channel: Arc::from(channel),
            metadata: metadata(request.uri())?,
            client_id: Arc::from(uuid::Uuid::new_v4().to_string()),
            admission: Admission::Allowed,
        })
    }

    async fn admit(
        &self,
        app: &Switchboard,
        params: &mut ChannelParams,
        credentials: &Credentials,
    ) {
        let rule = self.state.rules.rule_for(&params.channel);
        let Some(url) = rule.admission_upstream() else {
            return;
        };
        if rule.admits(&credentials.identity).is_err() {
            return;
        }
        let request = upstream::connect_request(
            app,
            "channel",
            &params.channel,
            &credentials.identity,
            &params.client_id,
        );
        params.admission = Admission::ask(&app.shared.upstreams, url, &request).await;
    }

    /// Join the path's channel, unless its rule refuses the connection: then join nothing and
    /// say why (the session closes it right after).
    fn open(
        &self,
        app: &Switchboard,
        params: &ChannelParams,
        credentials: &Credentials,
    ) -> Opening {
        let client_id = params.client_id.clone();
        let rule = self.state.rules.rule_for(&params.channel);
        let (channels, greeting) = match rule.admits(&credentials.identity) {
            Ok(()) => match upstream_refusal(&params.admission, &params.channel) {
                None => (vec![params.channel.clone()], Vec::new()),
                Some(frame) => {
                    let metrics = app.metrics();
                    metrics.client_errors.inc();
                    if let Some(reason) = params.admission.handshake_failure() {
                        metrics.handshake_failures(reason).inc();
                    }
                    (Vec::new(), vec![frame])
                }
            },
            Err(refusal) => {
                let metrics = app.metrics();
                metrics.client_errors.inc();
                let reason = match refusal {
                    Refusal::AuthRequired => {
                        HandshakeFailure::login_needed(credentials.refused.is_some())
                    }
                    Refusal::MissingRole(_) => HandshakeFailure::Forbidden,
                };
                metrics.handshake_failures(reason).inc();
                let mut message = refusal.message(&params.channel);
                if let Some(err) = &credentials.refused {
                    message.push_str(&format!(" (the token presented was refused: {err})"));
                }
                let frame = frames::error(refusal.code(), &message, Some(&params.channel));
                (Vec::new(), vec![frame])
            }
        };
        Opening {
            client_id,
            channels,
            namespace: None,
            greeting,
        }
    }

    fn session(
        &self,
        app: &Switchboard,
        conn: Arc<Connection>,
        params: ChannelParams,
    ) -> ChannelSession {
        // The same check as `open`, on the same identity: a refused connection has its error
        // frame queued and closes after it.
        let rule = self.state.rules.rule_for(&params.channel);
        if let Err(refusal) = rule.admits(&conn.identity()) {
            conn.outbound.close(refusal.close_code());
            return ChannelSession::new(app.clone(), conn, self.state.clone(), false);
        }
        match &params.admission {
            Admission::Allowed => {}
            Admission::Refused(reason) => {
                conn.outbound
                    .close_with_reason(close_code::FORBIDDEN, upstream::close_reason(reason));
                return ChannelSession::new(app.clone(), conn, self.state.clone(), false);
            }
            Admission::Failed(err) => {
                conn.outbound.close(upstream::failure_close_code(err));
                return ChannelSession::new(app.clone(), conn, self.state.clone(), false);
            }
        }
        let has_metadata = !params.metadata.is_empty();
        if has_metadata {
            self.state
                .metadata
                .insert(conn.client_id().clone(), Arc::new(params.metadata));
        }
        ChannelSession::new(app.clone(), conn, self.state.clone(), has_metadata)
    }
}

/// The error frame of a connection the `on_connect` upstream did not admit to its channel.
fn upstream_refusal(admission: &Admission, channel: &str) -> Option<bytes::Bytes> {
    match admission {
        Admission::Allowed => None,
        Admission::Refused(reason) => {
            Some(frames::error(error_code::FORBIDDEN, reason, Some(channel)))
        }
        Admission::Failed(err) => Some(frames::error(err.code(), &err.to_string(), Some(channel))),
    }
}

/// Every query parameter but `auth`, within the metadata limits.
fn metadata(uri: &http::Uri) -> Result<Metadata, ApiError> {
    let pairs = axum::extract::Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map(|q| q.0)
        .map_err(|_| ApiError::bad_request("invalid_query", "query string is malformed"))?;
    let mut metadata = Metadata::new();
    for (key, value) in pairs.into_iter().filter(|(key, _)| key != TOKEN_PARAM) {
        if key.len() > MAX_METADATA_KEY_BYTES || value.len() > MAX_METADATA_VALUE_BYTES {
            return Err(ApiError::bad_request(
                "metadata_too_large",
                format!(
                    "a metadata key is at most {MAX_METADATA_KEY_BYTES} bytes and a value at \
                     most {MAX_METADATA_VALUE_BYTES} bytes"
                ),
            ));
        }
        metadata.insert(key, value);
        if metadata.len() > MAX_METADATA_KEYS {
            return Err(ApiError::bad_request(
                "metadata_too_large",
                format!("at most {MAX_METADATA_KEYS} metadata parameters are allowed"),
            ));
        }
    }
    Ok(metadata)
}
