//! Usernames: optional at registration (`[A-Za-z0-9_.-]{1,32}`, unique in any letter case),
//! the email otherwise; carried by the login response and every namespace envelope. And the
//! login's `switchboard_token` cookie. The PostgreSQL variant is in `accounts_postgres.rs`.

mod common;

use common::TestServer;
use serde_json::{Value, json};
use sqlx::Connection;
use switchboard::dialect::namespace::{Namespace, Relay};
use switchboard_client::{NamespaceClient, NamespaceOptions, http};

async fn register(server: &TestServer, body: Value) -> http::Response {
    http::post_json(&server.addr, "/user/register", &body, None)
        .await
        .expect("register")
}

async fn login(server: &TestServer, email: &str, headers: &[(&str, &str)]) -> http::Response {
    let body = json!({"email": email, "password": "correct horse"}).to_string();
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    http::request(&server.addr, "POST", "/user/login", &all, body.as_bytes())
        .await
        .expect("login")
}

async fn server_with_chat() -> TestServer {
    TestServer::start_with_builder(
        |_| {},
        |builder| {
            builder
                .namespace(Namespace::new("chat").relay(Relay::Broadcast))
                .expect("chat");
        },
    )
    .await
}

#[tokio::test]
async fn a_registered_username_is_shown_on_login_and_in_namespace_envelopes() {
    let server = server_with_chat().await;
    let created = register(
        &server,
        json!({"email": "ada@example.com", "password": "correct horse", "username": "Ada.L"}),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let response = login(&server, "ada@example.com", &[]).await;
    assert_eq!(response.status, 200);
    let body = response.json();
    assert_eq!(body["user"]["username"], "Ada.L");
    let token = body["token"].as_str().expect("token").to_string();

    let options = NamespaceOptions::default().bearer(token);
    let mut ada = NamespaceClient::connect(&server.ws, "chat", &options)
        .await
        .expect("connect");
    assert_eq!(ada.welcome["username"], "Ada.L");
    ada.send_json(&json!({"type": "chat", "username": "someone else"}))
        .await
        .expect("send");
    assert_eq!(
        ada.recv_json().await.expect("relay")["data"]["username"],
        "Ada.L"
    );

    // Without a username, the email is the username.
    let (_token, user) = server.user("grace@example.com").await;
    assert_eq!(user["username"], "grace@example.com");
}

#[tokio::test]
async fn a_taken_username_is_409_in_any_case_and_a_malformed_one_400() {
    let server = TestServer::start().await;
    let first = json!({"email": "a@example.com", "password": "correct horse", "username": "ada"});
    assert_eq!(register(&server, first).await.status, 201);
    let clash = register(
        &server,
        json!({"email": "b@example.com", "password": "correct horse", "username": "ADA"}),
    )
    .await;
    assert_eq!(clash.status, 409, "{}", clash.text());
    assert_eq!(clash.json()["code"], "username_taken");
    for bad in ["", "has space", "a@b.c", "ünï", &"x".repeat(33)] {
        let refused = register(
            &server,
            json!({"email": "c@example.com", "password": "correct horse", "username": bad}),
        )
        .await;
        assert_eq!(refused.status, 400, "{bad:?}: {}", refused.text());
        assert_eq!(refused.json()["code"], "invalid_username");
    }
    // Nothing was created by the refusals: the email is still free.
    let later =
        json!({"email": "c@example.com", "password": "correct horse", "username": "c_1-2.3"});
    assert_eq!(register(&server, later).await.status, 201);
}

#[tokio::test]
async fn login_sets_an_http_only_same_site_token_cookie() {
    let server = server_with_chat().await;
    let (_token, _user) = server.user("ada@example.com").await;
    let response = login(&server, "ada@example.com", &[]).await;
    let cookie = response
        .header("set-cookie")
        .expect("set-cookie")
        .to_string();
    let token = response.json()["token"]
        .as_str()
        .expect("token")
        .to_string();
    assert!(
        cookie.starts_with(&format!("switchboard_token={token};")),
        "{cookie}"
    );
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");

    let behind_tls = login(
        &server,
        "ada@example.com",
        &[("X-Forwarded-Proto", "https")],
    )
    .await;
    assert!(
        behind_tls
            .header("set-cookie")
            .expect("cookie")
            .contains("; Secure")
    );

    // The cookie alone opens an authenticated namespace socket.
    let options = NamespaceOptions {
        cookie_token: Some(token),
        ..NamespaceOptions::default()
    };
    let client = NamespaceClient::connect(&server.ws, "chat", &options)
        .await
        .expect("connect");
    assert_eq!(client.welcome["username"], "ada@example.com");
    // A failed login sets no cookie.
    let body = json!({"email": "ada@example.com", "password": "wrong wrong"}).to_string();
    let failed = http::request(
        &server.addr,
        "POST",
        "/user/login",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
    .await
    .expect("login");
    assert_ne!(failed.status, 200);
    assert!(failed.header("set-cookie").is_none());
}

#[tokio::test]
async fn a_sqlite_store_from_before_usernames_is_migrated_in_place() {
    let data_dir = tempfile::tempdir().expect("tempdir");
    let path = data_dir.path().join("old.sqlite3");
    let url = format!("sqlite://{}", path.display());
    {
        let mut conn = sqlx::SqliteConnection::connect(&format!("{url}?mode=rwc"))
            .await
            .expect("sqlite");
        sqlx::query(
            "CREATE TABLE users (id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE,
             password_hash TEXT NOT NULL, root_id TEXT NOT NULL UNIQUE,
             token_version BIGINT NOT NULL DEFAULT 0, created_at BIGINT NOT NULL)",
        )
        .execute(&mut conn)
        .await
        .expect("old schema");
        sqlx::query(
            "INSERT INTO users VALUES ('0123456789abcdef01234567', 'old@example.com', 'x',
             '0123456789abcdef01234567', 0, 0)",
        )
        .execute(&mut conn)
        .await
        .expect("old account");
    }
    for _ in 0..2 {
        // Twice: the migration is idempotent.
        let store = switchboard::store::AccountStore::open(&url)
            .await
            .expect("open");
        let old = store
            .user_by_email("old@example.com")
            .await
            .expect("lookup")
            .expect("kept");
        assert_eq!(old.username, None);
        assert_eq!(
            switchboard::auth::identity_of(old).username(),
            Some("old@example.com")
        );
    }
}
