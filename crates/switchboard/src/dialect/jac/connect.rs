//! `GET /websocket`: how a Jac Cloud connection opens: its `channel_id` parameter, its client id
//! and its first frames. The rest of the connect path is [`crate::session`]'s.

use std::sync::Arc;

use axum::body::Body;
use http::Request;

use super::session::JacSession;
use crate::app::Switchboard;
use crate::dialect::{Connect, Opening};
use crate::http::ApiError;
use crate::hub::Connection;
use crate::ids::new_client_id;
use crate::session::Credentials;

/// Longest accepted `channel_id`, in bytes.
const MAX_CHANNEL_ID_BYTES: usize = 256;

/// The connection's channel: `channel_id`, or a random one in the client id's form.
#[derive(Debug)]
pub struct JacParams {
    channel: Arc<str>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct ConnectQuery {
    channel_id: Option<String>,
}

/// The Jac Cloud dialect's connect side.
#[derive(Debug, Default)]
pub struct JacConnect;

impl Connect for JacConnect {
    type Params = JacParams;
    type Session = JacSession;

    fn params(&self, _app: &Switchboard, request: &Request<Body>) -> Result<JacParams, ApiError> {
        let query = axum::extract::Query::<ConnectQuery>::try_from_uri(request.uri())
            .map(|q| q.0)
            .map_err(|_| ApiError::bad_request("invalid_query", "query string is malformed"))?;
        let channel = match query.channel_id.filter(|c| !c.is_empty()) {
            Some(channel) if channel.len() > MAX_CHANNEL_ID_BYTES => {
                return Err(ApiError::bad_request(
                    "invalid_field",
                    format!("channel_id is longer than {MAX_CHANNEL_ID_BYTES} bytes"),
                ));
            }
            Some(channel) => channel,
            None => new_client_id(),
        };
        Ok(JacParams {
            channel: Arc::from(channel),
        })
    }

    fn open(&self, app: &Switchboard, params: &JacParams, credentials: &Credentials) -> Opening {
        let client_id: Arc<str> = Arc::from(new_client_id());
        let greeting = JacSession::greeting(
            &client_id,
            &credentials.identity,
            &params.channel,
            credentials.refused.as_ref(),
        );
        if credentials.refused.is_some() {
            app.metrics().client_errors.inc();
        }
        Opening {
            client_id,
            channels: vec![params.channel.clone()],
            namespace: None,
            greeting,
        }
    }

    fn session(&self, app: &Switchboard, conn: Arc<Connection>, _params: JacParams) -> JacSession {
        JacSession::new(app.clone(), conn)
    }
}
