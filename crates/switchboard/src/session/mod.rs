//! The one connect path every dialect's WebSocket endpoint runs: draining check, handshake, origin
//! check, the dialect's connect parameters, credentials, admission (per address here; total and
//! per user atomically in the hub), registration, the rate budget and the I/O loop.
//!
//! - [`admission`]: origin check and per-address limit.
//! - [`credentials`]: the token a request presents and the identity it resolves to.
//! - [`io_loop`]: one connection's I/O loop: outbound queue to socket, messages to the dialect.
//! - [`endpoint`]: the axum handler a dialect mounts for its route.

pub mod admission;
pub mod credentials;
pub mod io_loop;

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use http::{Request, StatusCode};
use tokio::io::{AsyncRead, AsyncWrite};

pub use credentials::Credentials;

use crate::app::Switchboard;
use crate::close_code::CloseCode;
use crate::dialect::{Connect, Opening};
use crate::http::ApiError;
use crate::http::upgrade::{PendingUpgrade, ServerSocket};
use crate::hub::{Connection, DialectId, RegisterError, Registration};
use crate::metrics::HandshakeFailure;
use crate::rate_limit::MessageBudget;
use crate::ws::WsStream;
use admission::AddressSlot;

/// The `GET` handler of a dialect's WebSocket route.
pub fn endpoint<C: Connect>(connect: Arc<C>, dialect: DialectId) -> MethodRouter<Switchboard> {
    get(
        move |State(app): State<Switchboard>, request: Request<Body>| async move {
            match upgrade(app, connect, dialect, request).await {
                Ok(response) => response,
                Err(err) => err.into_response(),
            }
        },
    )
}

async fn upgrade<C: Connect>(
    app: Switchboard,
    connect: Arc<C>,
    dialect: DialectId,
    mut request: Request<Body>,
) -> Result<Response, ApiError> {
    if app.is_draining() {
        return Err(refused(&app, HandshakeFailure::ShuttingDown)(
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "the server is shutting down",
            ),
        ));
    }
    let mut params = connect.params(&app, &request).map_err(|err| {
        let reason = if err.code == crate::error_code::NOT_FOUND {
            HandshakeFailure::UnknownNamespace
        } else {
            HandshakeFailure::InvalidRequest
        };
        refused(&app, reason)(err)
    })?;
    let pending = PendingUpgrade::from_request(&mut request)
        .map_err(refused(&app, HandshakeFailure::NotWebSocket))?;
    admission::check_origin(&app, request.headers())
        .map_err(refused(&app, HandshakeFailure::OriginRefused))?;
    let peer_ip = admission::peer_ip(&request);
    let credentials = credentials::lenient(&app, request.headers(), request.uri()).await;
    let address = admission::address_slot(&app, peer_ip);
    if address.is_ok() {
        // Before the 101 answer: the upstream's round trip is bounded by its timeout, and the
        // connection does not hold a hub slot while it waits.
        connect.admit(&app, &mut params, &credentials).await;
    }
    let (response, socket) = pending.accept(
        connect.max_message_bytes(&app),
        app.config().permessage_deflate,
    );
    let sessions = app.shared.sessions.clone();
    let connecting = Connecting {
        app,
        connect,
        dialect,
        params,
        credentials,
        address,
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

/// Count a handshake refused for `reason`, passing its error on.
fn refused(app: &Switchboard, reason: HandshakeFailure) -> impl FnOnce(ApiError) -> ApiError + '_ {
    move |err| {
        app.metrics().handshake_failures(reason).inc();
        err
    }
}

/// Everything decided before the upgrade, waiting for the socket.
struct Connecting<C: Connect> {
    app: Switchboard,
    connect: Arc<C>,
    dialect: DialectId,
    params: C::Params,
    credentials: Credentials,
    address: Result<Option<AddressSlot>, CloseCode>,
}

impl<C: Connect> Connecting<C> {
    /// Register the connection and run it. Only what the I/O loop needs lives across its
    /// `.await`: every idle connection's task carries this future, so it is kept small.
    async fn run<S: AsyncRead + AsyncWrite + Unpin + Send>(self, mut socket: WsStream<S>) {
        let grace = self.app.config().shutdown.close_grace();
        let hub = self.app.hub().clone();
        let limits = &self.app.config().limits;
        let budget = MessageBudget::new(
            limits.messages_per_sec,
            limits.message_burst,
            limits.max_rate_limited_in_a_row,
            Instant::now(),
        );
        let slow_grace = limits.slow_consumer_grace();
        let (conn, session, _address_slot) = match self.register() {
            Ok(registered) => registered,
            Err(Some(code)) => return Box::pin(io_loop::refuse(&mut socket, code, grace)).await,
            Err(None) => return,
        };
        io_loop::drive(socket, hub, conn, session, budget, grace, slow_grace).await;
    }

    /// Admit and register the connection and build its session; `Err(Some(code))`: refuse the
    /// socket with that close code, `Err(None)`: drop it.
    #[allow(clippy::type_complexity)]
    fn register(
        self,
    ) -> Result<(Arc<Connection>, C::Session, Option<AddressSlot>), Option<CloseCode>> {
        let Connecting {
            app,
            connect,
            dialect,
            params,
            credentials,
            address,
        } = self;
        let address_slot = address.map_err(Some)?;
        let Opening {
            client_id,
            channels,
            namespace,
            greeting,
        } = connect.open(&app, &params, &credentials);
        let registered = app.hub().register(Registration {
            client_id,
            dialect,
            identity: credentials.identity,
            channels,
            namespace,
            greeting,
            shared_client_id: connect.shares_client_ids(),
        });
        let conn = match registered {
            Ok(conn) => conn,
            Err(RegisterError::Full(code)) => {
                app.metrics()
                    .handshake_failures(HandshakeFailure::ConnectionLimit)
                    .inc();
                return Err(Some(code));
            }
            Err(RegisterError::ClientIdInUse) => {
                tracing::error!("generated client id collided; dropping the connection");
                return Err(None);
            }
        };
        let session = connect.session(&app, conn.clone(), params);
        Ok((conn, session, address_slot))
    }
}
