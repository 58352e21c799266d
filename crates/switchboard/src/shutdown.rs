//! Graceful shutdown: wait for SIGINT or SIGTERM, answer `GET /ready` with 503 for
//! `shutdown.ready_grace_ms` while still serving (so a load balancer stops sending first), stop
//! accepting, let in-flight walkers finish within a deadline, close every socket with 1001
//! (reconnect), then return.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::app::Switchboard;
use crate::tls::Tls;

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM. On Unix the handlers are installed when this
/// is called, not when the future is first polled, so a signal sent as soon as the server says it
/// is listening already shuts it down gracefully. Call it inside the runtime.
pub fn signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (interrupt, terminate) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let received = |stream: Option<tokio::signal::unix::Signal>| async move {
                match stream {
                    Some(mut stream) => {
                        stream.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = received(interrupt) => {},
                () = received(terminate) => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutdown signal received");
    }
}

/// Resolves `ready_grace_ms` after `stop` does; meanwhile `GET /ready` answers 503.
async fn unready_then(app: Switchboard, stop: impl Future<Output = ()>) {
    stop.await;
    app.readiness().stopping();
    let grace = app.config().shutdown.ready_grace();
    if !grace.is_zero() {
        tracing::info!(
            grace_ms = grace.as_millis() as u64,
            "not ready; still serving until the load balancer notices"
        );
        tokio::time::sleep(grace).await;
    }
}

/// Serve `router` (which should include [`crate::http::router`]) on `listener` until `stop`
/// resolves, then shut down gracefully. `GET /ready` answers 200 from the first accept on, and
/// 503 from `stop` on: for `shutdown.ready_grace_ms` the listener still accepts and serves.
///
/// The accept loop gives every connection `limits.handshake_timeout_ms` to send its request head
/// (a slow-loris connection is dropped), records the peer address for the per-address connection
/// limit, and lets WebSocket upgrades through.
pub async fn serve(
    app: Switchboard,
    router: Router,
    listener: TcpListener,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    accept_until_stopped(app, router, listener, None, stop).await
}

/// [`serve`] over TLS: every connection first completes a TLS handshake with `tls`'s current
/// certificate (within `limits.handshake_timeout_ms`); a peer speaking plain HTTP fails the
/// handshake and is disconnected. Graceful shutdown is the same as [`serve`]'s.
pub async fn serve_tls(
    app: Switchboard,
    router: Router,
    listener: TcpListener,
    tls: Tls,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    accept_until_stopped(app, router, listener, Some(tls), stop).await
}

async fn accept_until_stopped(
    app: Switchboard,
    router: Router,
    listener: TcpListener,
    tls: Option<Tls>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let handshake_timeout = Duration::from_millis(app.config().limits.handshake_timeout_ms.max(1));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(handshake_timeout)
        .keep_alive(true);
    // HTTP connections (not yet upgraded) and the signal that asks them to finish.
    let connections = TaskTracker::new();
    let closing = CancellationToken::new();
    let stop = unready_then(app.clone(), stop);
    tokio::pin!(stop);
    app.readiness().serving();
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors or similar: back off instead of spinning.
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            http: http.clone(),
            router: router.clone(),
            peer,
            closing: closing.clone(),
        };
        match &tls {
            None => connections.spawn(connection.serve(stream, false)),
            Some(tls) => {
                let tls = tls.clone();
                connections.spawn(async move {
                    match tls.accept(stream, handshake_timeout).await {
                        Ok(stream) => connection.serve(stream, true).await,
                        Err(err) => tracing::debug!(%peer, %err, "TLS handshake failed"),
                    }
                })
            }
        };
    }
    drop(listener);
    app.shutdown().await;
    // Idle keep-alive HTTP connections close now; requests in flight get the close grace.
    closing.cancel();
    connections.close();
    let _ = tokio::time::timeout(app.config().shutdown.close_grace(), connections.wait()).await;
    Ok(())
}

/// One accepted connection, plain or after its TLS handshake: HTTP/1.1 with upgrades, until it
/// ends or `closing` asks it to finish its request in flight.
struct Connection {
    http: hyper::server::conn::http1::Builder,
    router: Router,
    peer: SocketAddr,
    closing: CancellationToken,
}

/// In a request's extensions when it came over this server's own TLS (`[tls]`), so a handler
/// knows the client spoke HTTPS without a proxy saying so.
#[derive(Debug, Clone, Copy)]
pub struct ServedOverTls;

impl Connection {
    async fn serve<Io>(self, io: Io, over_tls: bool)
    where
        Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let peer = self.peer;
        let service = self
            .router
            .map_request(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                if over_tls {
                    request.extensions_mut().insert(ServedOverTls);
                }
                request
            });
        let connection = self
            .http
            .serve_connection(TokioIo::new(io), TowerToHyperService::new(service))
            .with_upgrades();
        tokio::pin!(connection);
        let result = tokio::select! {
            result = connection.as_mut() => result,
            () = self.closing.cancelled() => {
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        };
        if let Err(err) = result {
            tracing::debug!(%peer, %err, "http connection ended with an error");
        }
    }
}
