//! Reading request bodies within the size limit, with errors in the one JSON shape.

use axum::body::Body;
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

/// A JSON object body; an empty body is `{}`.
pub async fn read_object(body: Body, limit: usize) -> Result<Box<RawValue>, ApiError> {
    let bytes = read_bytes(body, limit).await?;
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

/// A JSON body deserialized into `T`, naming the offending field on failure.
pub async fn read_json<T: DeserializeOwned>(body: Body, limit: usize) -> Result<T, ApiError> {
    let raw = read_object(body, limit).await?;
    json::deserialize_named(raw.get())
        .map_err(|message| ApiError::bad_request("invalid_field", message))
}
