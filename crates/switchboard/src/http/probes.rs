//! What a load balancer or orchestrator asks: `GET /health` (can this node do its work: its
//! backplane and its database) and `GET /ready` (should it be sent new clients now). Both answer
//! JSON, 200 or 503, and need no credentials (they carry no user data).

use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;

use crate::app::Switchboard;
use crate::readiness::Stage;

/// How long the database may take to answer `SELECT 1` before it counts as down: well under a
/// probe's usual timeout, so the probe gets an answer rather than a timeout.
const DATABASE_CHECK: Duration = Duration::from_secs(1);

/// The database check behind `/health`: at most one `SELECT 1` in flight. A probe that comes
/// while a check runs waits for the next one (which starts after it asked, so its answer is never
/// older than the probe) and shares it with every probe that waited meanwhile: a flood of
/// probes costs the database one query at a time, not one per probe.
#[derive(Debug, Default)]
pub(crate) struct DatabaseCheck {
    /// When the last check started, and what it found.
    last: tokio::sync::Mutex<Option<(Instant, &'static str)>>,
}

impl DatabaseCheck {
    async fn run(&self, app: &Switchboard) -> &'static str {
        let asked = Instant::now();
        let mut last = self.last.lock().await;
        if let Some((started, found)) = *last
            && started >= asked
        {
            return found;
        }
        let started = Instant::now();
        let found = ping_database(app).await;
        *last = Some((started, found));
        found
    }
}

async fn ping_database(app: &Switchboard) -> &'static str {
    match tokio::time::timeout(DATABASE_CHECK, app.authenticator().store().ping()).await {
        Ok(Ok(())) => "up",
        Ok(Err(err)) => {
            tracing::warn!(%err, "health check: the accounts database failed");
            "down"
        }
        Err(_) => {
            tracing::warn!(
                timeout_ms = DATABASE_CHECK.as_millis() as u64,
                "health check: the accounts database did not answer in time"
            );
            "down"
        }
    }
}

/// 200 `{"status":"ok","backplane":"up"|"none","database":"up","node_id":...}`; 503 with
/// `"status":"degraded"` while the backplane link or the database is down, naming which. The
/// node keeps serving its own connections either way.
pub async fn health(State(app): State<Switchboard>) -> Response {
    let backplane = match app.backplane_up() {
        None => "none",
        Some(true) => "up",
        Some(false) => "down",
    };
    let database = app.shared.database_check.run(&app).await;
    let healthy = backplane != "down" && database == "up";
    let (status, word) = if healthy {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "degraded")
    };
    let body = json!({
        "status": word,
        "backplane": backplane,
        "database": database,
        "node_id": app.node_id(),
    });
    (status, Json(body)).into_response()
}

/// 200 `{"status":"ready"}` while the node serves; 503 `{"status":"starting"}` before its accept
/// loop runs and `{"status":"stopping"}` from a shutdown signal on (for
/// `shutdown.ready_grace_ms` the node still serves, so a load balancer can stop sending first).
pub async fn ready(State(app): State<Switchboard>) -> Response {
    let stage = app.readiness().stage();
    let status = if stage == Stage::Serving {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({"status": stage.name(), "node_id": app.node_id()});
    (status, Json(body)).into_response()
}
