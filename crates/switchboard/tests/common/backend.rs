//! A stand-in for the team's backend in upstream tests: a real HTTP server on 127.0.0.1:0 and the
//! signature check a real backend makes.

use axum::http::HeaderMap;

/// Serve `app` on a free loopback port; its base URL (`http://127.0.0.1:PORT`).
pub async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// Whether `headers` carry a valid `X-Switchboard-Signature` of `body` under `secret`.
pub fn signed(headers: &HeaderMap, body: &[u8], secret: &str) -> bool {
    let Some(header) = headers
        .get("x-switchboard-signature")
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(t) = header
        .strip_prefix("t=")
        .and_then(|rest| rest.split(',').next())
        .and_then(|t| t.parse::<u64>().ok())
    else {
        return false;
    };
    header == switchboard::upstream::sign(secret.as_bytes(), t, body)
}

/// The ways a backend fails, as routes added to `app`: `/fail` answers 500 (with a body that
/// must not reach clients), `/slow` answers `slow_body` after 2 s, `/bad` answers `bad_body`
/// (200, the wrong shape).
pub fn with_failures(
    app: axum::Router,
    slow_body: &'static str,
    bad_body: &'static str,
) -> axum::Router {
    use axum::http::StatusCode;
    use axum::routing::post;
    app.route(
        "/fail",
        post(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom") }),
    )
    .route(
        "/slow",
        post(move || async move {
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            slow_body
        }),
    )
    .route("/bad", post(move || async move { bad_body }))
}
