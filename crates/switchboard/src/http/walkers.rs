//! `POST /walker/<name>` (context as the JSON body) and `GET /walker/<name>` (context as query
//! parameters, string values). The reply is `{"status":200,"reports":[...]}`; `notify_self` is a
//! no-op here because there is no socket to notify. Both run [`crate::walker::call`].

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use http::Request;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::body::read_object;
use super::error::ApiError;
use crate::app::Switchboard;
use crate::session::credentials;
use crate::walker::{Method, call};

pub async fn post_walker(
    State(app): State<Switchboard>,
    Path(name): Path<String>,
    request: Request<Body>,
) -> Result<Json<Value>, ApiError> {
    let caller = credentials::strict(&app, request.headers(), request.uri()).await?;
    // Admit first so an unknown or forbidden walker is refused before the body is read.
    let admitted = call::admit(&app, &name, Method::Post, caller, None)?;
    let limit = app.config().limits.max_http_body_bytes;
    let context = read_object(request, limit).await?;
    run(&app, admitted, &context).await
}

pub async fn get_walker(
    State(app): State<Switchboard>,
    Path(name): Path<String>,
    request: Request<Body>,
) -> Result<Json<Value>, ApiError> {
    let caller = credentials::strict(&app, request.headers(), request.uri()).await?;
    let admitted = call::admit(&app, &name, Method::Get, caller, None)?;
    let params = Query::<BTreeMap<String, String>>::try_from_uri(request.uri())
        .map_err(|_| ApiError::bad_request("invalid_query", "query string is malformed"))?;
    let context =
        RawValue::from_string(serde_json::to_string(&params.0).map_err(ApiError::internal)?)
            .map_err(ApiError::internal)?;
    run(&app, admitted, &context).await
}

async fn run(
    app: &Switchboard,
    admitted: call::Admitted,
    context: &RawValue,
) -> Result<Json<Value>, ApiError> {
    match app.shared.walker_runs.spawn(admitted.run(context)).await {
        Ok(Ok(reports)) => Ok(Json(json!({"status": 200, "reports": reports}))),
        Ok(Err(err)) => Err(err.into()),
        Err(join) => Err(ApiError::internal(join)),
    }
}
