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
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
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
        (
            self.status,
            Json(json!({"error": self.message, "code": self.code})),
        )
            .into_response()
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
            | AccountError::PasswordTooLong => StatusCode::BAD_REQUEST,
            AccountError::EmailTaken => StatusCode::CONFLICT,
            AccountError::InvalidCredentials => StatusCode::UNAUTHORIZED,
            AccountError::NotFound => StatusCode::NOT_FOUND,
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
