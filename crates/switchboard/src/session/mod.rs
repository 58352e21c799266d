//! The one connect path every dialect's WebSocket endpoint runs: draining check, handshake, origin
//! check, the dialect's connect parameters, credentials, admission (per address here; total and
//! per user atomically in the hub), registration, the rate budget and the I/O loop.
//!
//! A connection is registered (in its channels, reachable, counted) before the 101 answer is
//! sent, so a client whose handshake has completed is "in": everything addressed to it from then
//! on reaches it, queued in its outbound queue until the socket is live. If the upgrade then
//! fails, the connection is unregistered as if it had closed at once.
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
    // Registered before the 101 goes out, so a client whose handshake has completed is already
    // in its channels and hears of everyone who joins after it; frames sent to it meanwhile wait
    // in its outbound queue. No `.await` between here and the spawn: the registration cannot be
    // dropped with this request's future, and the task unregisters it if the upgrade fails.
    let opened = Connecting {
        app,
        connect,
        dialect,
        params,
        credentials,
        address,
    }
    .register();
    opened.app.shared.sessions.clone().spawn(async move {
        match socket.await {
            Some(ServerSocket::Tcp(stream)) => opened.run(stream).await,
            Some(ServerSocket::Upgraded(stream)) => opened.run(stream).await,
            None => opened.abandon(),
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

/// Everything decided before the upgrade, ready to register.
struct Connecting<C: Connect> {
    app: Switchboard,
    connect: Arc<C>,
    dialect: DialectId,
    params: C::Params,
    credentials: Credentials,
    address: Result<Option<AddressSlot>, CloseCode>,
}

/// A connection registered (or refused) before its 101 answer, waiting for its socket.
struct Opened<C: Connect> {
    app: Switchboard,
    /// `Err(Some(code))`: refuse the socket with that close code, `Err(None)`: drop it.
    registered: Result<Registered<C>, Option<CloseCode>>,
}

struct Registered<C: Connect> {
    conn: Arc<Connection>,
    session: C::Session,
    /// Keeps the peer's address counted while the connection lives.
    _address_slot: Option<AddressSlot>,
}

impl<C: Connect> Connecting<C> {
    /// Admit and register the connection and build its session.
    fn register(self) -> Opened<C> {
        let Connecting {
            app,
            connect,
            dialect,
            params,
            credentials,
            address,
        } = self;
        let address_slot = match address {
            Ok(slot) => slot,
            Err(code) => {
                return Opened {
                    app,
                    registered: Err(Some(code)),
                };
            }
        };
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
        let registered = match registered {
            Ok(conn) => {
                let session = connect.session(&app, conn.clone(), params);
                Ok(Registered {
                    conn,
                    session,
                    _address_slot: address_slot,
                })
            }
            Err(RegisterError::Full(code)) => {
                app.metrics()
                    .handshake_failures(HandshakeFailure::ConnectionLimit)
                    .inc();
                Err(Some(code))
            }
            Err(RegisterError::ClientIdInUse) => {
                tracing::error!("generated client id collided; dropping the connection");
                Err(None)
            }
        };
        Opened { app, registered }
    }
}

impl<C: Connect> Opened<C> {
    /// Run the connection on its socket. Only what the I/O loop needs lives across its
    /// `.await`: every idle connection's task carries this future, so it is kept small.
    async fn run<S: AsyncRead + AsyncWrite + Unpin + Send>(self, mut socket: WsStream<S>) {
        let grace = self.app.config().shutdown.close_grace();
        let registered = match self.registered {
            Ok(registered) => registered,
            Err(Some(code)) => return Box::pin(io_loop::refuse(&mut socket, code, grace)).await,
            Err(None) => return,
        };
        let hub = self.app.hub().clone();
        let limits = &self.app.config().limits;
        let budget = MessageBudget::new(
            limits.messages_per_sec,
            limits.message_burst,
            limits.max_rate_limited_in_a_row,
            Instant::now(),
        );
        let slow_grace = limits.slow_consumer_grace();
        let Registered {
            conn,
            session,
            _address_slot,
        } = registered;
        hub.metrics().dialect(conn.dialect()).accepted.inc();
        io_loop::drive(socket, hub, conn, session, budget, grace, slow_grace).await;
    }

    /// The upgrade failed after the connection was registered (the client went away before
    /// the 101 reached it): unregister it as if its socket had closed at once.
    fn abandon(self) {
        if let Ok(Registered { conn, session, .. }) = self.registered {
            self.app.hub().unregister(&conn);
            drop(session);
        }
    }
}
