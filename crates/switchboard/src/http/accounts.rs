//! Account endpoints: `POST /user/register`, `POST /user/login`, `POST /user/revoke`.
//!
//! A login also sets the token as the `switchboard_token` cookie (HttpOnly, SameSite=Lax), so a
//! page on the same origin opens WebSockets without putting the token in a URL.

use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use serde::Deserialize;
use serde_json::{Value, json};

use super::body::read_json;
use super::error::ApiError;
use crate::accounts::{AccountError, normalize_email};
use crate::app::Switchboard;
use crate::session::admission::peer_ip;
use crate::session::credentials::TOKEN_COOKIE;
use crate::shutdown::ServedOverTls;
use crate::store::UserRecord;
use crate::throttle::address_key;

#[derive(Deserialize)]
struct Credentials {
    email: String,
    password: String,
}

#[derive(Deserialize)]
struct Registration {
    email: String,
    password: String,
    /// Optional; without one the account's username is its email.
    username: Option<String>,
}

#[derive(Deserialize, Default)]
struct RevokeRequest {
    /// Another account's email; only an admin may revoke someone else's tokens.
    email: Option<String>,
}

pub async fn register(
    State(app): State<Switchboard>,
    request: Request<Body>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let throttles = &app.shared.account_throttles;
    if let Some(ip) = peer_ip(&request) {
        throttled(
            &app,
            throttles
                .registrations_per_address
                .spend(&address_key(ip), Instant::now()),
        )?;
    }
    let limit = app.config().limits.max_http_body_bytes;
    let body: Registration = read_json(request, limit).await?;
    app.accounts()
        .register_named(
            &body.email,
            &body.password,
            body.username.as_deref(),
            Vec::new(),
        )
        .await
        .map_err(|err| counted(&app, err))?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"message": "Successfully Registered!"})),
    ))
}

/// Log in. Throttled per address (every attempt) and per email (failed attempts): the email's
/// attempt is spent before hashing, so a throttled email costs no hash, and given back unless
/// the login failed on its credentials.
pub async fn login(
    State(app): State<Switchboard>,
    request: Request<Body>,
) -> Result<Response, ApiError> {
    let secure =
        request.extensions().get::<ServedOverTls>().is_some() || is_https(request.headers());
    let throttles = &app.shared.account_throttles;
    if let Some(ip) = peer_ip(&request) {
        throttled(
            &app,
            throttles
                .logins_per_address
                .spend(&address_key(ip), Instant::now()),
        )?;
    }
    let limit = app.config().limits.max_http_body_bytes;
    let body: Credentials = read_json(request, limit).await?;
    // An address that is not valid matches no account; it has no email budget to protect.
    let email_key = normalize_email(&body.email).ok();
    if let Some(key) = &email_key {
        throttled(
            &app,
            throttles.failed_logins_per_email.spend(key, Instant::now()),
        )?;
    }
    let outcome = app.accounts().login(&body.email, &body.password).await;
    if let Some(key) = &email_key
        && !matches!(outcome, Err(AccountError::InvalidCredentials))
    {
        throttles
            .failed_logins_per_email
            .refund(key, Instant::now());
    }
    let (token, user) = outcome.map_err(|err| counted(&app, err))?;
    let cookie = token_cookie(&token, app.config().auth.token_ttl_secs, secure);
    let mut response = Json(json!({"token": token, "user": public_user(&user)})).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// The `Set-Cookie` value carrying a login's token: not readable by scripts (HttpOnly), sent on
/// same-site requests and top-level navigations only (SameSite=Lax), for the token's lifetime,
/// and only over HTTPS when the login came over HTTPS.
fn token_cookie(token: &str, max_age_secs: u64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{TOKEN_COOKIE}={token}; Path=/; Max-Age={max_age_secs}; HttpOnly; SameSite=Lax{secure}"
    )
}

/// Whether a TLS-terminating proxy says the request reached it over HTTPS (`X-Forwarded-Proto`
/// or `Forwarded: proto=`); a request over the server's own `[tls]` carries [`ServedOverTls`]
/// instead. Trusting the headers can only make the cookie stricter.
fn is_https(headers: &HeaderMap) -> bool {
    let forwarded_proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    let forwarded = headers
        .get(header::FORWARDED)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("proto=https"));
    forwarded_proto || forwarded
}

/// 429 `too_many_attempts` with `Retry-After` when a throttle refused, counted.
fn throttled(app: &Switchboard, verdict: Result<(), Duration>) -> Result<(), ApiError> {
    verdict.map_err(|wait| {
        app.metrics().account_attempts_throttled.inc();
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            "too many attempts; try again later",
        )
        .retry_after(wait.as_secs_f64().ceil() as u64)
    })
}

/// Revoke every token of the caller, or (for an admin) of the account named by `email`.
pub async fn revoke(
    State(app): State<Switchboard>,
    request: Request<Body>,
) -> Result<Json<Value>, ApiError> {
    let caller =
        crate::session::credentials::strict(&app, request.headers(), request.uri()).await?;
    let Some(caller_id) = caller.account_id().map(str::to_string) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "auth_required",
            "revoking tokens requires `Authorization: Bearer <token>`",
        ));
    };
    let limit = app.config().limits.max_http_body_bytes;
    let body: RevokeRequest = read_json(request, limit).await?;
    let target = match body.email {
        None => caller_id,
        Some(email) if !caller.has_role("admin") => {
            // Decided before any lookup, so a non-admin learns nothing about which accounts
            // exist: naming anyone but oneself is 403 whether or not the account is there.
            let own = caller
                .email()
                .and_then(|own| normalize_email(own).ok())
                .is_some_and(|own| normalize_email(&email).is_ok_and(|named| named == own));
            if !own {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "only an admin may revoke another account's tokens",
                ));
            }
            caller_id
        }
        Some(email) => {
            let user = app.accounts().user_by_email(&email).await?.ok_or_else(|| {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such account")
            })?;
            user.id
        }
    };
    app.revoke_user_tokens(&target).await?;
    Ok(Json(json!({"message": "All tokens revoked"})))
}

/// The HTTP answer to a refused account operation, counting refusals for lack of capacity.
fn counted(app: &Switchboard, err: AccountError) -> ApiError {
    if matches!(err, AccountError::Busy) {
        app.metrics().hashing_refused.inc();
    }
    err.into()
}

fn public_user(user: &UserRecord) -> Value {
    json!({
        "id": user.id,
        "email": user.email,
        "username": user.username.as_deref().unwrap_or(&user.email),
        "root_id": user.root_id,
        "roles": user.roles,
        "is_activated": true,
    })
}
