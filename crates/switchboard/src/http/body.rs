//! Reading request bodies within the size limit, with errors in the one JSON shape.
//!
//! A JSON endpoint reads a body only when the request says it is JSON
//! (`Content-Type: application/json`, parameters such as `charset` allowed): a browser sends
//! `text/plain`, form and multipart bodies cross-site without asking (no CORS preflight), and
//! no JSON endpoint may act on one. A request with no body at all needs no content type.

use axum::body::Body;
use http::{HeaderMap, Request, header};
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use super::error::ApiError;
use crate::json::{self, ObjectError};

/// The whole body, or 413 past `limit` bytes.
pub async fn read_bytes(body: Body, limit: usize) -> Result<bytes::Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            http::StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("request body over {limit} bytes"),
        )
    })
}

/// `Ok(true)` when the request declares a JSON body, `Ok(false)` when it declares nothing,
/// 415 when it declares anything else.
fn declares_json(headers: &HeaderMap) -> Result<bool, ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(false);
    };
    let media_type = value
        .to_str()
        .ok()
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    if media_type.is_some_and(|t| t.eq_ignore_ascii_case("application/json")) {
        Ok(true)
    } else {
        Err(unsupported_media_type())
    }
}

fn unsupported_media_type() -> ApiError {
    ApiError::new(
        http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "the body must be JSON sent with `Content-Type: application/json`",
    )
}

/// A request's JSON object body; an empty body is `{}`. 415 unless a non-empty body is
/// declared `application/json`.
pub async fn read_object(request: Request<Body>, limit: usize) -> Result<Box<RawValue>, ApiError> {
    let declared = declares_json(request.headers())?;
    let bytes = read_bytes(request.into_body(), limit).await?;
    if !declared && !bytes.is_empty() {
        return Err(unsupported_media_type());
    }
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| ApiError::bad_request("invalid_json", "body is not UTF-8"))?;
    if text.trim().is_empty() {
        return RawValue::from_string("{}".into()).map_err(ApiError::internal);
    }
    let raw = json::parse_object(text).map_err(|err| match err {
        ObjectError::NotJson(reason) => {
            ApiError::bad_request("invalid_json", format!("body is not valid JSON: {reason}"))
        }
        ObjectError::NotAnObject => {
            ApiError::bad_request("not_an_object", "body must be a JSON object")
        }
    })?;
    Ok(raw)
}

/// A request's JSON body deserialized into `T`, naming the offending field on failure.
pub async fn read_json<T: DeserializeOwned>(
    request: Request<Body>,
    limit: usize,
) -> Result<T, ApiError> {
    let raw = read_object(request, limit).await?;
    json::deserialize_named(raw.get())
        .map_err(|message| ApiError::bad_request("invalid_field", message))
}
