//! Cross-origin HTTP: JSON endpoints take only JSON, and browser pages from other origins may
//! call the API only when configured (`http.cors_origins`), preflight included.

mod common;

use common::TestServer;
use serde_json::json;
use switchboard_client::http;

const CREDS: &[u8] = br#"{"email":"ada@example.com","password":"correct horse"}"#;

async fn post(server: &TestServer, path: &str, headers: &[(&str, &str)]) -> http::Response {
    http::request(&server.addr, "POST", path, headers, CREDS)
        .await
        .unwrap()
}

async fn account_exists(server: &TestServer, email: &str) -> bool {
    server
        .app
        .accounts()
        .user_by_email(email)
        .await
        .unwrap()
        .is_some()
}

#[tokio::test]
async fn json_endpoints_refuse_bodies_not_declared_json_with_415() {
    let server = TestServer::start().await;
    let (token, _) = server.user("owner@example.com").await;
    let bearer = format!("Bearer {token}");
    let refused_types = [
        Some("text/plain"),
        Some("text/plain;charset=UTF-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/jsonp"),
        None,
    ];
    for path in [
        "/user/register",
        "/user/login",
        "/user/revoke",
        "/walker/echo",
    ] {
        for content_type in refused_types {
            let mut headers = vec![("Authorization", bearer.as_str())];
            if let Some(content_type) = content_type {
                headers.push(("Content-Type", content_type));
            }
            let response = post(&server, path, &headers).await;
            assert_eq!(
                response.status,
                415,
                "{path} {content_type:?}: {}",
                response.text()
            );
            assert_eq!(response.json()["code"], "unsupported_media_type");
        }
    }
    // Nothing happened: no account, the token still works.
    assert!(!account_exists(&server, "ada@example.com").await);
    let who = http::post_json(&server.addr, "/walker/whoami", &json!({}), Some(&token))
        .await
        .unwrap();
    assert_eq!(who.status, 200, "{}", who.text());
    // JSON with parameters is JSON.
    let ok = post(
        &server,
        "/user/register",
        &[("Content-Type", "Application/JSON; charset=utf-8")],
    )
    .await;
    assert_eq!(ok.status, 201, "{}", ok.text());
    // A request without a body needs no content type.
    let empty = http::request(
        &server.addr,
        "POST",
        "/walker/public_whoami",
        &[("Authorization", bearer.as_str())],
        b"",
    )
    .await
    .unwrap();
    assert_eq!(empty.status, 200, "{}", empty.text());
}

#[tokio::test]
async fn cross_site_requests_are_refused_by_default() {
    let server = TestServer::start().await;
    let (token, _) = server.user("owner@example.com").await;
    let bearer = format!("Bearer {token}");
    for path in [
        "/user/register",
        "/user/login",
        "/user/revoke",
        "/walker/echo",
    ] {
        let response = post(
            &server,
            path,
            &[
                ("Origin", "https://evil.example"),
                ("Content-Type", "application/json"),
                ("Authorization", &bearer),
            ],
        )
        .await;
        assert_eq!(response.status, 403, "{path}: {}", response.text());
        assert_eq!(response.json()["code"], "origin_not_allowed");
        assert!(response.header("access-control-allow-origin").is_none());
    }
    let get = http::request(
        &server.addr,
        "GET",
        "/walker/echo?message=hi",
        &[("Origin", "null")],
        b"",
    )
    .await
    .unwrap();
    assert_eq!(get.status, 403);
    let preflight = http::request(
        &server.addr,
        "OPTIONS",
        "/user/login",
        &[
            ("Origin", "https://evil.example"),
            ("Access-Control-Request-Method", "POST"),
        ],
        b"",
    )
    .await
    .unwrap();
    assert_eq!(preflight.status, 403);
    assert!(preflight.header("access-control-allow-origin").is_none());
    // Nothing happened.
    assert!(!account_exists(&server, "ada@example.com").await);
    let who = http::post_json(&server.addr, "/walker/whoami", &json!({}), Some(&token))
        .await
        .unwrap();
    assert_eq!(who.status, 200);
}

#[tokio::test]
async fn same_origin_pages_and_non_browsers_are_served() {
    let server = TestServer::start().await;
    let own = format!("http://{}", server.addr);
    let registered = post(
        &server,
        "/user/register",
        &[("Origin", &own), ("Content-Type", "application/json")],
    )
    .await;
    assert_eq!(registered.status, 201, "{}", registered.text());
    let login = post(
        &server,
        "/user/login",
        &[("Content-Type", "application/json")],
    )
    .await;
    assert_eq!(login.status, 200, "{}", login.text());
}

#[tokio::test]
async fn a_listed_origin_gets_preflight_and_cors_headers() {
    let server = TestServer::start_with(|c| {
        c.http.cors_origins = vec!["https://app.example".into()];
        c.http.cors_max_age_secs = 120;
    })
    .await;
    let preflight = http::request(
        &server.addr,
        "OPTIONS",
        "/user/login",
        &[
            ("Origin", "https://app.example"),
            ("Access-Control-Request-Method", "POST"),
            (
                "Access-Control-Request-Headers",
                "content-type, authorization",
            ),
        ],
        b"",
    )
    .await
    .unwrap();
    assert_eq!(preflight.status, 204, "{}", preflight.text());
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    let methods = preflight.header("access-control-allow-methods").unwrap();
    assert!(methods.contains("POST"), "{methods}");
    let headers = preflight
        .header("access-control-allow-headers")
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        headers.contains("authorization") && headers.contains("content-type"),
        "{headers}"
    );
    assert_eq!(preflight.header("access-control-max-age"), Some("120"));

    let registered = post(
        &server,
        "/user/register",
        &[
            ("Origin", "https://app.example"),
            ("Content-Type", "application/json"),
        ],
    )
    .await;
    assert_eq!(registered.status, 201, "{}", registered.text());
    assert_eq!(
        registered.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert!(registered.header("vary").unwrap().contains("Origin"));
    // Another origin is still refused.
    let other = post(
        &server,
        "/user/login",
        &[
            ("Origin", "https://other.example"),
            ("Content-Type", "application/json"),
        ],
    )
    .await;
    assert_eq!(other.status, 403);
}
