//! Which browser pages may call the HTTP API (REST walkers and accounts), by their `Origin`.
//!
//! Browsers send cross-site "simple" requests (a form post, a `fetch` without custom headers)
//! without asking first, and attach `Origin` to them. So every request to these endpoints that
//! carries an `Origin` that is neither this server's own nor in `http.cors_origins` is refused
//! with 403 `origin_not_allowed` before it reaches a handler, whatever its method. A preflight
//! (`OPTIONS` with `Access-Control-Request-Method`) from an allowed origin is answered here;
//! responses to an allowed cross-origin request carry `Access-Control-Allow-Origin`. Requests
//! without `Origin` are not from a browser page and pass.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, StatusCode, header};

use super::error::ApiError;
use crate::app::Switchboard;
use crate::session::admission::{is_listed, is_same_origin};

const ALLOWED_METHODS: &str = "GET, POST, OPTIONS";
const ALLOWED_HEADERS: &str = "Authorization, Content-Type";
/// Headers a cross-origin page may read besides the basic ones: when to retry after 429/503.
const EXPOSED_HEADERS: &str = "Retry-After";

pub async fn cors(State(app): State<Switchboard>, request: Request<Body>, next: Next) -> Response {
    let Some(origin) = request.headers().get(header::ORIGIN).cloned() else {
        return next.run(request).await; // not a browser page
    };
    let origin_text = origin.to_str().unwrap_or_default();
    let same_origin = is_same_origin(origin_text, request.headers());
    let listed = is_listed(origin_text, &app.config().http.cors_origins);
    if !same_origin && !listed {
        app.metrics().cors_refused.inc();
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            "this origin may not call this server's HTTP API (see http.cors_origins)",
        )
        .into_response();
    }
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = if preflight {
        let mut response = StatusCode::NO_CONTENT.into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOWED_METHODS),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOWED_HEADERS),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from(app.config().http.cors_max_age_secs),
        );
        response
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSED_HEADERS),
    );
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    response
}
