//! The one error shape of every HTTP endpoint: a status and `{"error": MSG, "code": CODE}`.
//! Internal causes are logged here and never sent.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;

use crate::accounts::AccountError;
use crate::auth::AuthError;
use crate::walker::InvokeError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds for a `Retry-After` header (503 busy, 429 throttled): when to try again.
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    /// The same error, telling the client to retry after `secs` seconds (at least 1).
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs.max(1));
        self
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "internal error",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(json!({"error": self.message, "code": self.code})),
        )
            .into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
        }
        response
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::Store(cause) => ApiError::internal(cause),
            other => ApiError::new(StatusCode::UNAUTHORIZED, other.code(), other.to_string()),
        }
    }
}

impl From<AccountError> for ApiError {
    fn from(err: AccountError) -> Self {
        let status = match &err {
            AccountError::InvalidEmail
            | AccountError::WeakPassword(_)
            | AccountError::PasswordTooLong
            | AccountError::InvalidUsername => StatusCode::BAD_REQUEST,
            AccountError::EmailTaken | AccountError::UsernameTaken => StatusCode::CONFLICT,
            AccountError::InvalidCredentials => StatusCode::UNAUTHORIZED,
            AccountError::NotFound => StatusCode::NOT_FOUND,
            AccountError::Busy => {
                return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, err.code(), err.to_string())
                    .retry_after(1);
            }
            AccountError::Internal(cause) => return ApiError::internal(cause),
        };
        ApiError::new(status, err.code(), err.to_string())
    }
}

impl From<InvokeError> for ApiError {
    fn from(err: InvokeError) -> Self {
        ApiError::new(err.http_status(), err.code(), err.message())
    }
}
