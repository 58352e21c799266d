//! Accounts in PostgreSQL (`DATABASE_URL`, default postgres://postgres@127.0.0.1:5432/test) over a
//! real connection, each test run in a schema of its own. Skips when PostgreSQL is unreachable,
//! unless SWITCHBOARD_REQUIRE_SERVICES=1.

mod common;

use common::TestServer;
use serde_json::json;
use sqlx::Connection;
use switchboard_client::{ConnectOptions, http};

/// A fresh schema; dropped when the guard is.
struct Schema {
    base_url: String,
    name: String,
}

impl Schema {
    async fn create() -> Option<Schema> {
        let base_url = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let mut conn = match sqlx::PgConnection::connect(&base_url).await {
            Ok(conn) => conn,
            Err(err) => {
                common::skip::skip(&format!("PostgreSQL at {base_url} unreachable: {err}"));
                return None;
            }
        };
        let name = format!("sb_test_{}", switchboard::ids::new_object_id());
        sqlx::query(&format!("CREATE SCHEMA {name}"))
            .execute(&mut conn)
            .await
            .expect("create schema");
        Some(Schema { base_url, name })
    }

    fn url(&self) -> String {
        let separator = if self.base_url.contains('?') {
            '&'
        } else {
            '?'
        };
        format!(
            "{}{separator}options[search_path]={}",
            self.base_url, self.name
        )
    }

    async fn drop_now(self) {
        if let Ok(mut conn) = sqlx::PgConnection::connect(&self.base_url).await {
            let _ = sqlx::query(&format!("DROP SCHEMA {} CASCADE", self.name))
                .execute(&mut conn)
                .await;
        }
    }
}

#[tokio::test]
async fn accounts_work_the_same_in_postgres() {
    let Some(schema) = Schema::create().await else {
        return;
    };
    let url = schema.url();
    let server = TestServer::start_with(|c| c.database_url = Some(url)).await;

    let (token, user) = server.user("pg@example.com").await;
    let duplicate = http::post_json(
        &server.addr,
        "/user/register",
        &json!({"email": "PG@example.com", "password": "correct horse"}),
        None,
    )
    .await
    .unwrap();
    assert_eq!(duplicate.status, 409);

    let client = server.connect_with(ConnectOptions::bearer(&token)).await;
    assert_eq!(
        client.info.root_id,
        format!("n::{}", user["root_id"].as_str().unwrap())
    );
    server
        .app
        .accounts()
        .grant_role("pg@example.com", "admin")
        .await
        .unwrap();
    let record = server
        .app
        .accounts()
        .user_by_email("pg@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.roles, vec!["admin".to_string()]);

    let revoked = http::post_json(&server.addr, "/user/revoke", &json!({}), Some(&token))
        .await
        .unwrap();
    assert_eq!(revoked.status, 200);
    let refused = http::post_json(&server.addr, "/user/revoke", &json!({}), Some(&token))
        .await
        .unwrap();
    assert_eq!(refused.json()["code"], "token_revoked");

    // The tables really are in PostgreSQL, in this schema.
    let mut conn = sqlx::PgConnection::connect(&schema.base_url).await.unwrap();
    let count: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {}.users", schema.name))
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(count, 1);
    schema.drop_now().await;
}

#[tokio::test]
async fn usernames_migrate_and_stay_unique_in_postgres() {
    let Some(schema) = Schema::create().await else {
        return;
    };
    // A store from before usernames, with one account.
    let mut conn = sqlx::PgConnection::connect(&schema.base_url).await.unwrap();
    sqlx::query(&format!(
        "CREATE TABLE {}.users (id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE,
         password_hash TEXT NOT NULL, root_id TEXT NOT NULL UNIQUE,
         token_version BIGINT NOT NULL DEFAULT 0, created_at BIGINT NOT NULL)",
        schema.name
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::query(&format!(
        "INSERT INTO {}.users VALUES ('0123456789abcdef01234567', 'old@example.com', 'x',
         '0123456789abcdef01234567', 0, 0)",
        schema.name
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    let url = schema.url();
    let server = TestServer::start_with(|c| c.database_url = Some(url)).await;
    let old = server
        .app
        .accounts()
        .user_by_email("old@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old.username, None);

    let register = |email: &str, username: &str| json!({"email": email, "password": "correct horse", "username": username});
    let created = http::post_json(
        &server.addr,
        "/user/register",
        &register("a@example.com", "ada"),
        None,
    )
    .await
    .unwrap();
    assert_eq!(created.status, 201, "{}", created.text());
    let clash = http::post_json(
        &server.addr,
        "/user/register",
        &register("b@example.com", "Ada"),
        None,
    )
    .await
    .unwrap();
    assert_eq!(clash.status, 409);
    assert_eq!(clash.json()["code"], "username_taken");
    let same_email = http::post_json(
        &server.addr,
        "/user/register",
        &register("a@example.com", "other"),
        None,
    )
    .await
    .unwrap();
    assert_eq!(same_email.json()["code"], "email_taken");
    let login = http::post_json(
        &server.addr,
        "/user/login",
        &json!({"email": "a@example.com", "password": "correct horse"}),
        None,
    )
    .await
    .unwrap();
    assert_eq!(login.json()["user"]["username"], "ada");
    schema.drop_now().await;
}
