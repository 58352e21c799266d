//! The HTTP surface: every dialect's routes, REST walkers, accounts, metrics, probes and the admin
//! API, as one axum [`axum::Router`] an app can serve alone or merge into its own.

mod accounts;
mod admin;
mod admin_view;
pub(crate) mod api;
mod body;
mod cors;
mod echo;
mod error;
pub(crate) mod probes;
pub(crate) mod upgrade;
mod walkers;

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};

pub use error::ApiError;

use crate::app::Switchboard;

/// Every Switchboard route.
pub fn router(app: Switchboard) -> Router {
    let mut router = Router::new();
    if let Some(path) = &app.config().echo_path {
        router = router.route(path, get(echo::echo));
    }
    for (id, dialect) in app.dialects() {
        router = router.merge(dialect.clone().routes(&app, id));
    }
    // The API a browser page may call, behind the origin policy (WebSocket upgrades check
    // their origin themselves, against `allowed_origins`).
    let api = Router::new()
        .route(
            "/walker/{name}",
            post(walkers::post_walker).get(walkers::get_walker),
        )
        .route("/user/register", post(accounts::register))
        .route("/user/login", post(accounts::login))
        .route("/user/revoke", post(accounts::revoke))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            cors::cors,
        ));
    // Server-to-server calls from the team's backend, behind API keys; no browser origin policy.
    let backend = Router::new()
        .route("/api/publish", post(api::publish))
        .route("/api/disconnect", post(api::disconnect))
        .route("/api/presence", get(api::presence))
        .route("/api/info", get(api::info));
    router
        .merge(api)
        .merge(backend)
        .route("/admin/api/stats", get(admin::stats))
        .route("/admin/", get(admin_view::page))
        .route(
            "/admin",
            get(|| async { axum::response::Redirect::permanent("/admin/") }),
        )
        .route("/admin/ws", get(admin_view::feed))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/health", get(probes::health))
        .route("/ready", get(probes::ready))
        .fallback(not_found)
        .with_state(app)
}

/// Every metric in the Prometheus text format.
async fn metrics(State(app): State<Switchboard>) -> impl axum::response::IntoResponse {
    (
        [(http::header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        app.metrics().render(),
    )
}

async fn not_found() -> ApiError {
    ApiError::new(http::StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}
