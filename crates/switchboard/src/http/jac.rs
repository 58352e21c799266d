//! `GET /websocket`: the Jac Cloud dialect's endpoint.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use http::{Request, StatusCode, header};
use serde::Deserialize;

use tokio::io::{AsyncRead, AsyncWrite};

use super::admission::{self, AddressSlot};
use super::error::ApiError;
use super::upgrade::{PendingUpgrade, ServerSocket};
use crate::app::Switchboard;
use crate::auth::AuthError;
use crate::close_code::CloseCode;
use crate::dialect::Dialect;
use crate::dialect::jac::session::JacSession;
use crate::identity::Identity;
use crate::ids::new_client_id;
use crate::rate_limit::MessageBudget;
use crate::stats::Metrics;
use crate::ws::WsStream;

/// Longest accepted `channel_id`, in bytes.
const MAX_CHANNEL_ID_BYTES: usize = 256;

#[derive(Debug, Default, Deserialize)]
struct ConnectQuery {
    channel_id: Option<String>,
    auth: Option<String>,
}

pub async fn websocket(State(app): State<Switchboard>, mut request: Request<Body>) -> Response {
    match upgrade(app, &mut request).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn upgrade(app: Switchboard, request: &mut Request<Body>) -> Result<Response, ApiError> {
    if app.is_draining() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the server is shutting down",
        ));
    }
    let query = Query::<ConnectQuery>::try_from_uri(request.uri())
        .map(|q| q.0)
        .map_err(|_| ApiError::bad_request("invalid_query", "query string is malformed"))?;
    let pending = PendingUpgrade::from_request(request)?;
    admission::check_origin(&app, request.headers())?;
    let peer_ip = admission::peer_ip(request);
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
    let header_token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let token = header_token.or(query.auth);
    let (identity, refused) = match token.filter(|t| !t.trim().is_empty()) {
        None => (Identity::public(), None),
        Some(token) => match app.authenticator().authenticate(&token).await {
            Ok(identity) => (identity, None),
            Err(err) => {
                Metrics::inc(&app.metrics().tokens_refused);
                (Identity::public(), Some(err))
            }
        },
    };

    let admitted = admission::admit(&app, peer_ip, &identity);
    let (response, socket) = pending.accept(
        app.config().limits.max_frame_bytes,
        app.config().permessage_deflate,
    );
    let sessions = app.shared.sessions.clone();
    let connecting = Connecting {
        app,
        identity,
        refused,
        channel,
        admitted,
    };
    sessions.spawn(async move {
        match socket.await {
            Some(ServerSocket::Tcp(stream)) => connecting.run(stream).await,
            Some(ServerSocket::Upgraded(stream)) => connecting.run(stream).await,
            None => {}
        }
    });
    Ok(response)
}

/// Everything decided before the upgrade, waiting for the socket.
struct Connecting {
    app: Switchboard,
    identity: Identity,
    refused: Option<AuthError>,
    channel: String,
    admitted: Result<Option<AddressSlot>, CloseCode>,
}

impl Connecting {
    async fn run<S: AsyncRead + AsyncWrite + Unpin + Send>(self, mut socket: WsStream<S>) {
        let app = self.app;
        let grace = app.config().shutdown.close_grace();
        let _address_slot = match self.admitted {
            Ok(slot) => slot,
            Err(code) => return crate::socket::refuse(&mut socket, code, grace).await,
        };
        let hub = app.hub().clone();
        let client_id: Arc<str> = Arc::from(new_client_id());
        let greeting = JacSession::greeting(
            &client_id,
            &self.identity,
            &self.channel,
            self.refused.as_ref(),
        );
        if self.refused.is_some() {
            Metrics::inc(&app.metrics().client_errors);
        }
        let Ok(conn) = hub.register(
            client_id,
            Dialect::Jac,
            self.identity,
            &[Arc::from(self.channel)],
            greeting,
        ) else {
            tracing::error!("generated client id collided; dropping the connection");
            return;
        };
        let session = JacSession::new(app.clone(), conn.clone());
        let limits = &app.config().limits;
        let budget = MessageBudget::new(
            limits.messages_per_sec,
            limits.message_burst,
            limits.max_rate_limited_in_a_row,
            Instant::now(),
        );
        let slow_grace = limits.slow_consumer_grace();
        crate::socket::drive(socket, hub, conn, session, budget, grace, slow_grace).await;
    }
}
