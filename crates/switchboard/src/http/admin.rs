//! The admin API: `GET /admin/api/stats`. Every admin endpoint requires Switchboard's own token
//! of an account with the `admin` role: no token is 401 `auth_required`, a refused one 401 with
//! its reason, a token without the role 403 `forbidden`. Tokens from an external identity
//! provider are refused here whatever their roles, since roles granted by another system should
//! not open the operator's view.

use axum::Json;
use axum::extract::State;
use http::{HeaderMap, StatusCode, header};

use super::error::ApiError;
use crate::app::Switchboard;
use crate::identity::Identity;
use crate::ops::stats::Stats;
use crate::session::credentials;

/// The role the admin API requires.
pub const ADMIN_ROLE: &str = "admin";

/// `GET /admin/api/stats`: the cluster's statistics and activity log (this node's alone
/// without a backplane).
pub async fn stats(
    State(app): State<Switchboard>,
    headers: HeaderMap,
) -> Result<Json<Stats>, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .map(|value| value.to_str().unwrap_or_default().to_string());
    require_admin(&app, token.as_deref()).await?;
    Ok(Json(app.stats().await))
}

/// The admin behind `token` (`Bearer <jwt>` or a bare token), or the HTTP error refusing it.
pub(crate) async fn require_admin(
    app: &Switchboard,
    token: Option<&str>,
) -> Result<Identity, ApiError> {
    let Some(token) = token.filter(|t| !t.trim().is_empty()) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "auth_required",
            "the admin API requires `Authorization: Bearer <token>` of an admin account",
        ));
    };
    let resolved = credentials::resolve(app, Some(token)).await;
    if let Some(refused) = resolved.refused {
        return Err(refused.into());
    }
    let identity = resolved.identity;
    let own_token = identity
        .token()
        .is_some_and(|stamp| stamp.version.is_some());
    if !own_token || !identity.has_role(ADMIN_ROLE) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the admin API requires an account with the `admin` role",
        ));
    }
    Ok(identity)
}
