//! Graceful shutdown: wait for SIGINT or SIGTERM, stop accepting, let in-flight walkers finish
//! within a deadline, close every socket with 1001 (reconnect), then return.

use std::future::{Future, IntoFuture};

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::app::Switchboard;

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM.
pub async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received");
}

/// Serve `router` (which should include [`crate::http::router`]) on `listener` until `stop`
/// resolves, then shut down gracefully.
pub async fn serve(
    app: Switchboard,
    router: Router,
    listener: TcpListener,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stop_accepting = CancellationToken::new();
    let server = axum::serve(listener, router)
        .with_graceful_shutdown(stop_accepting.clone().cancelled_owned())
        .into_future();
    let server = tokio::spawn(server);
    stop.await;
    stop_accepting.cancel();
    app.shutdown().await;
    match server.await {
        Ok(result) => result,
        Err(join) => Err(std::io::Error::other(join)),
    }
}
