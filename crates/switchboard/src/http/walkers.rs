//! `POST /walker/<name>` (context as the JSON body) and `GET /walker/<name>` (context as query
//! parameters, string values). The reply is `{"status":200,"reports":[...]}`; `notify_self` is a
//! no-op here because there is no socket to notify.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use http::{Request, header};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::body::read_object;
use super::error::ApiError;
use crate::app::Switchboard;
use crate::identity::Identity;
use crate::notify::Notifier;
use crate::stats::Metrics;
use crate::walker::Method;

pub async fn post_walker(
    State(app): State<Switchboard>,
    Path(name): Path<String>,
    request: Request<Body>,
) -> Result<Json<Value>, ApiError> {
    let caller = caller_of(&app, request.headers()).await?;
    // Resolve first so an unknown or forbidden walker is refused before the body is read.
    app.shared.walkers.resolve(&name, Method::Post, &caller)?;
    let limit = app.config().limits.max_http_body_bytes;
    let context = read_object(request, limit).await?;
    invoke(&app, &name, Method::Post, &context, caller).await
}

pub async fn get_walker(
    State(app): State<Switchboard>,
    Path(name): Path<String>,
    request: Request<Body>,
) -> Result<Json<Value>, ApiError> {
    let caller = caller_of(&app, request.headers()).await?;
    app.shared.walkers.resolve(&name, Method::Get, &caller)?;
    let params = Query::<BTreeMap<String, String>>::try_from_uri(request.uri())
        .map_err(|_| ApiError::bad_request("invalid_query", "query string is malformed"))?;
    let context =
        RawValue::from_string(serde_json::to_string(&params.0).map_err(ApiError::internal)?)
            .map_err(ApiError::internal)?;
    invoke(&app, &name, Method::Get, &context, caller).await
}

async fn invoke(
    app: &Switchboard,
    name: &str,
    method: Method,
    context: &RawValue,
    caller: Identity,
) -> Result<Json<Value>, ApiError> {
    let walker = app.shared.walkers.resolve(name, method, &caller)?;
    Metrics::inc(&app.metrics().walker_calls);
    let notifier = Notifier::new(app.shared.publisher.clone(), None);
    let run = walker.run(context, caller, notifier);
    // Run as a tracked task so graceful shutdown waits for it like for WebSocket calls.
    let outcome = app.shared.walker_runs.spawn(run).await;
    match outcome {
        Ok(Ok(reports)) => Ok(Json(json!({"status": 200, "reports": reports}))),
        Ok(Err(err)) => {
            Metrics::inc(&app.metrics().walker_failures);
            Err(err.into())
        }
        Err(join) => {
            Metrics::inc(&app.metrics().walker_failures);
            Err(ApiError::internal(join))
        }
    }
}

/// The public user without an `Authorization` header; 401 with a token that is refused.
pub(crate) async fn caller_of(
    app: &Switchboard,
    headers: &http::HeaderMap,
) -> Result<Identity, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(Identity::public());
    };
    let token = value
        .to_str()
        .map_err(|_| ApiError::from(crate::auth::AuthError::Invalid))?;
    app.authenticator()
        .authenticate(token)
        .await
        .map_err(|err| {
            Metrics::inc(&app.metrics().tokens_refused);
            ApiError::from(err)
        })
}
