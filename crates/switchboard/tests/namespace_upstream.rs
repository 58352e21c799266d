//! A namespace whose client messages go to the team's backend (`on_message = "upstream"`): the
//! signed request, the reply to the sender (with its `requestId`), the backend's notifications,
//! and each upstream failure as an error envelope that leaves the connection open.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::TestServer;
use serde_json::{Value, json};
use switchboard::dialect::namespace::{Namespace, NamespaceConfig, Relay};
use switchboard_client::{NamespaceClient, NamespaceOptions};

const SECRET: &str = "namespace upstream secret";

/// The backend: `/chat` answers a reply and notifies the namespace; `/fail` answers 500;
/// `/slow` answers too late; `/bad` answers a body of the wrong shape.
async fn backend() -> String {
    let app = axum::Router::new().route(
        "/chat",
        axum::routing::post(
            |headers: axum::http::HeaderMap, body: axum::body::Bytes| async move {
                if !common::backend::signed(&headers, &body, SECRET) {
                    return (StatusCode::UNAUTHORIZED, String::new());
                }
                let request: Value = serde_json::from_slice(&body).expect("json");
                let answer = json!({
                    "reply": {"echo": request["data"], "caller": request["caller"],
                              "namespace": request["namespace"]},
                    "notify": [{"target": {"namespace": "chat"}, "event": "said",
                                "data": {"text": request["data"]["text"]}}],
                });
                (StatusCode::OK, answer.to_string())
            },
        ),
    );
    common::backend::serve(common::backend::with_failures(
        app,
        "{}",
        r#"{"notify": 3}"#,
    ))
    .await
}

async fn server(base: &str) -> TestServer {
    let base = base.to_owned();
    TestServer::start_with_builder(
        |config| {
            config.upstream.secret = Some(SECRET.into());
            config.upstream.timeout_ms = 500;
        },
        move |builder| {
            builder
                .namespace(Namespace::new("chat").upstream(format!("{base}/chat")))
                .expect("chat");
            // From a config table, as the binary reads it.
            let config: NamespaceConfig = serde_json::from_value(json!({
                "name": "failing", "on_message": "upstream", "upstream": format!("{base}/fail"),
            }))
            .expect("table");
            assert_eq!(config.on_message, Relay::Upstream);
            builder
                .namespace(Namespace::from_config(&config))
                .expect("failing");
            builder
                .namespace(Namespace::new("slow").upstream(format!("{base}/slow")))
                .expect("slow");
            builder
                .namespace(Namespace::new("bad").upstream(format!("{base}/bad")))
                .expect("bad");
        },
    )
    .await
}

#[tokio::test]
async fn the_backend_replies_to_the_sender_and_notifies_the_namespace() {
    let base = backend().await;
    let server = server(&base).await;
    let none = NamespaceOptions::default();
    let mut sender = NamespaceClient::connect(&server.ws, "chat", &none)
        .await
        .expect("sender");
    let mut other = NamespaceClient::connect(&server.ws, "chat", &none)
        .await
        .expect("other");
    let client_id = sender.welcome["clientId"].as_str().expect("id").to_owned();
    sender
        .send_json(&json!({"text": "hi", "requestId": "r1"}))
        .await
        .expect("send");
    // The notification reaches every client of the namespace, the sender included.
    let said = json!({"success": true, "data": {"type": "said", "text": "hi", "username": ""}});
    assert_eq!(other.recv_json().await.expect("notify"), said);
    assert_eq!(sender.recv_json().await.expect("notify"), said);
    let reply = sender.recv_json().await.expect("reply");
    assert_eq!(reply["success"], true, "{reply}");
    assert_eq!(reply["requestId"], "r1", "{reply}");
    assert_eq!(reply["data"]["namespace"], "chat");
    assert_eq!(reply["data"]["echo"]["text"], "hi");
    assert_eq!(
        reply["data"]["caller"],
        json!({"user_id": null, "username": "", "roles": [], "client_id": client_id})
    );
    // Nothing was relayed as is.
    assert!(other.is_silent_for(Duration::from_millis(300)).await);
}

#[tokio::test]
async fn each_upstream_failure_is_an_error_envelope_and_the_connection_stays() {
    let base = backend().await;
    let server = server(&base).await;
    for (namespace, status, code) in [
        ("failing", 502, "upstream_error"),
        ("slow", 504, "upstream_timeout"),
        ("bad", 502, "upstream_error"),
    ] {
        let mut client =
            NamespaceClient::connect(&server.ws, namespace, &NamespaceOptions::default())
                .await
                .expect("client");
        client
            .send_json(&json!({"text": "x", "requestId": 7}))
            .await
            .expect("send");
        let error = client.recv_json().await.expect("error");
        assert_eq!(error["success"], false, "{error}");
        assert_eq!(error["code"], status, "{namespace}: {error}");
        assert_eq!(error["requestId"], 7, "{error}");
        assert!(
            error["error"].as_str().is_some_and(|e| e.starts_with(code)),
            "{namespace}: {error}"
        );
        assert!(!error.to_string().contains("boom"), "{error}");
        // Still connected: an app-level ping is answered.
        client
            .send_json(&json!({"type": "ping"}))
            .await
            .expect("ping");
        assert_eq!(
            client.recv_json().await.expect("pong")["data"]["type"],
            "pong"
        );
    }
}

#[tokio::test]
async fn an_upstream_namespace_needs_a_url_and_a_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = switchboard::Config {
        data_dir: dir.path().to_path_buf(),
        ..switchboard::Config::default()
    };
    let mut builder = switchboard::Switchboard::builder(config.clone());
    let err = builder
        .namespace(Namespace::new("x").relay(Relay::Upstream))
        .expect_err("no url");
    assert!(err.to_string().contains("upstream"), "{err}");
    let mut builder = switchboard::Switchboard::builder(config);
    builder
        .namespace(Namespace::new("x").upstream("http://127.0.0.1:9/"))
        .expect("registered");
    let err = builder.build().await.expect_err("no secret");
    assert!(err.to_string().contains("upstream.secret"), "{err}");
}
