//! The server API for backends in any language: `POST /api/publish` (one item or a batch) and
//! `GET /api/info`, behind API keys, with idempotency keys.

mod common;

use common::TestServer;
use serde_json::{Value, json};
use switchboard::config::ApiKeyConfig;
use switchboard_client::{ConnectOptions, JacClient, http};

const BACKEND_KEY: &str = "backend-key-0123456789";
const OTHER_KEY: &str = "other-key-0123456789ab";

async fn server() -> TestServer {
    TestServer::start_with(|config| {
        config.api_keys = vec![
            ApiKeyConfig {
                name: "backend".into(),
                key: Some(BACKEND_KEY.into()),
                key_env: None,
            },
            ApiKeyConfig {
                name: "other".into(),
                key: Some(OTHER_KEY.into()),
                key_env: None,
            },
        ];
        config.limits.max_http_body_bytes = 4096;
    })
    .await
}

async fn publish(server: &TestServer, key: Option<&str>, body: &Value) -> (u16, Value) {
    let response = http::post_json(&server.addr, "/api/publish", body, key)
        .await
        .expect("request");
    (response.status, response.json())
}

async fn raw_publish(server: &TestServer, body: &str) -> (u16, Value) {
    let response = http::request(
        &server.addr,
        "POST",
        "/api/publish",
        &[
            ("Authorization", &format!("Bearer {BACKEND_KEY}")),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    )
    .await
    .expect("request");
    (response.status, response.json())
}

async fn quiet(client: &mut JacClient) {
    assert!(
        client
            .is_silent_for(std::time::Duration::from_millis(200))
            .await,
        "no other frame"
    );
}

#[tokio::test]
async fn a_missing_or_wrong_key_gets_one_answer() {
    let server = server().await;
    let item = json!({"target": {"all": true}, "event": "e", "data": 1});
    let (missing, missing_body) = publish(&server, None, &item).await;
    let (wrong, wrong_body) = publish(&server, Some("backend-key-0123456788"), &item).await;
    let (short, short_body) = publish(&server, Some("b"), &item).await;
    assert_eq!((missing, wrong, short), (401, 401, 401));
    assert_eq!(missing_body, wrong_body);
    assert_eq!(missing_body, short_body);
    assert_eq!(missing_body["code"], "invalid_api_key");
    let info = http::get(&server.addr, "/api/info", None)
        .await
        .expect("info");
    assert_eq!(info.status, 401);
}

#[tokio::test]
async fn an_item_reaches_each_target_form_in_the_jac_shape() {
    let server = server().await;
    let (token, user) = server.user("pub@example.com").await;
    let user_id = user["id"].as_str().expect("id").to_owned();
    let root_id = format!("n::{}", user["root_id"].as_str().expect("root id"));
    let mut member = server
        .connect_with(ConnectOptions::bearer(token).channel("room"))
        .await;
    let mut other = server.connect().await;

    let (status, body) = publish(
        &server,
        Some(BACKEND_KEY),
        &json!({"target": {"channels": ["room"]}, "event": "greeting", "data": {"hi": 1}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"delivered": 1, "relayed": true}));
    assert_eq!(
        member.recv_json().await.expect("frame"),
        json!({"type": "greeting", "data": {"hi": 1}})
    );

    for target in [json!({"users": [user_id]}), json!({"users": [root_id]})] {
        let (_, body) = publish(
            &server,
            Some(BACKEND_KEY),
            &json!({"target": target, "event": "direct", "data": "x"}),
        )
        .await;
        assert_eq!(body["delivered"], 1, "{body}");
        assert_eq!(
            member.recv_json().await.expect("frame"),
            json!({"type": "direct", "data": "x"})
        );
    }
    let (_, body) = publish(
        &server,
        Some(BACKEND_KEY),
        &json!({"target": {"clients": [other.info.client_id]}, "event": "only", "data": null}),
    )
    .await;
    assert_eq!(body["delivered"], 1, "{body}");
    assert_eq!(
        other.recv_json().await.expect("frame"),
        json!({"type": "only", "data": null})
    );
    let (_, body) = publish(
        &server,
        Some(BACKEND_KEY),
        &json!({"target": {"all": true}, "event": "everyone", "data": [1, 2]}),
    )
    .await;
    assert_eq!(body["delivered"], 2, "{body}");
    for client in [&mut member, &mut other] {
        assert_eq!(
            client.recv_json().await.expect("frame"),
            json!({"type": "everyone", "data": [1, 2]})
        );
        quiet(client).await;
    }
}

#[tokio::test]
async fn a_batch_answers_each_item_in_order_and_a_bad_item_does_not_stop_the_others() {
    let server = server().await;
    let mut member = server
        .connect_with(ConnectOptions::default().channel("room"))
        .await;
    let (status, body) = publish(
        &server,
        Some(BACKEND_KEY),
        &json!([
            {"target": {"channels": ["room"]}, "event": "first", "data": 1},
            {"target": {"rooms": ["room"]}, "event": "bad", "data": 2},
            {"event": "no target"},
            "not an item",
            {"target": {"channels": ["room"]}, "event": "second", "data": 3},
        ]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().expect("results");
    assert_eq!(results.len(), 5);
    assert_eq!(results[0], json!({"delivered": 1, "relayed": true}));
    assert_eq!(results[1]["code"], "invalid_field");
    assert_eq!(results[2]["code"], "missing_field");
    assert_eq!(results[3]["code"], "not_an_object");
    assert!(results[1]["error"].as_str().is_some_and(|e| !e.is_empty()));
    assert_eq!(results[4], json!({"delivered": 1, "relayed": true}));
    assert_eq!(member.recv_json().await.expect("1")["type"], "first");
    assert_eq!(member.recv_json().await.expect("2")["type"], "second");
    quiet(&mut member).await;
}

#[tokio::test]
async fn bad_bodies_are_refused_whole() {
    let server = server().await;
    let (status, body) = raw_publish(&server, "{not json").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "invalid_json");
    for scalar in ["3", "\"x\"", "null", "true"] {
        let (status, body) = raw_publish(&server, scalar).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["code"], "not_an_object");
    }
    let huge = json!({"target": {"all": true}, "event": "e", "data": "x".repeat(5000)});
    let (status, body) = publish(&server, Some(BACKEND_KEY), &huge).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["code"], "body_too_large");
    // The server is fine afterwards.
    let (status, _) = publish(
        &server,
        Some(BACKEND_KEY),
        &json!({"target": {"all": true}, "event": "e"}),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn an_idempotency_key_delivers_once_per_api_key() {
    let server = server().await;
    let mut member = server
        .connect_with(ConnectOptions::default().channel("room"))
        .await;
    let item =
        json!({"target": {"channels": ["room"]}, "event": "once", "data": 1, "id": "order-17"});
    let (_, first) = publish(&server, Some(BACKEND_KEY), &item).await;
    assert_eq!(first, json!({"delivered": 1, "relayed": true}));
    let (_, again) = publish(&server, Some(BACKEND_KEY), &item).await;
    assert_eq!(again, json!({"delivered": 0, "duplicate": true}));
    // In a batch too.
    let (_, batch) = publish(&server, Some(BACKEND_KEY), &json!([item.clone()])).await;
    assert_eq!(
        batch["results"][0],
        json!({"delivered": 0, "duplicate": true})
    );
    assert_eq!(member.recv_json().await.expect("once")["type"], "once");
    quiet(&mut member).await;
    // Keys are per API key: another backend's "order-17" is its own.
    let (_, other) = publish(&server, Some(OTHER_KEY), &item).await;
    assert_eq!(other["delivered"], 1, "{other}");
}

#[tokio::test]
async fn info_lists_this_node() {
    let server = server().await;
    let _a = server.connect().await;
    let _b = server.connect().await;
    let info = http::get(&server.addr, "/api/info", Some(BACKEND_KEY))
        .await
        .expect("info");
    assert_eq!(info.status, 200, "{}", info.text());
    let body = info.json();
    assert_eq!(body["connections"], 2);
    assert_eq!(body["nodes"][0]["node_id"], server.app.node_id());
    assert_eq!(body["nodes"][0]["connections"], 2);
    assert!(body["nodes"][0]["uptime"].is_u64());
}

#[tokio::test]
async fn a_key_from_the_environment_and_bad_key_configs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = |keys: Vec<ApiKeyConfig>| {
        let mut config = switchboard::Config {
            data_dir: dir.path().to_path_buf(),
            ..switchboard::Config::default()
        };
        config.api_keys = keys;
        config
    };
    let key = |key: Option<&str>, env: Option<&str>| ApiKeyConfig {
        name: "k".into(),
        key: key.map(str::to_owned),
        key_env: env.map(str::to_owned),
    };
    for bad in [
        key(None, None),
        key(Some("0123456789abcdef"), Some("X")),
        key(Some("short"), None),
        key(None, Some("SWITCHBOARD_TEST_UNSET_API_KEY")),
    ] {
        let err = switchboard::Switchboard::builder(config(vec![bad]))
            .build()
            .await
            .expect_err("refused");
        assert!(err.to_string().contains("api_key"), "{err}");
    }
}

#[tokio::test]
async fn each_dialect_receives_an_item_in_its_own_shape() {
    use switchboard::dialect::namespace::Namespace;
    use switchboard_client::channel::ChannelClient;
    use switchboard_client::{NamespaceClient, NamespaceOptions};

    let server = TestServer::start_with_builder(
        |config| {
            config.api_keys = vec![ApiKeyConfig {
                name: "backend".into(),
                key: Some(BACKEND_KEY.into()),
                key_env: None,
            }];
        },
        |builder| {
            builder
                .namespace(Namespace::new("chat"))
                .expect("namespace");
        },
    )
    .await;
    let mut jac = server
        .connect_with(ConnectOptions::default().channel("room"))
        .await;
    let mut member = ChannelClient::connect(&server.ws, "/ws/room", None)
        .await
        .expect("channel client");
    let mut chat = NamespaceClient::connect(&server.ws, "chat", &NamespaceOptions::default())
        .await
        .expect("namespace client");
    // `recv_cmd` below skips any presence frame the channel member gets meanwhile.
    let (_, body) = publish(
        &server,
        Some(BACKEND_KEY),
        &json!({"target": {"channels": ["room"]}, "event": "score", "data": {"home": 2}}),
    )
    .await;
    assert_eq!(body["delivered"], 2, "{body}");
    assert_eq!(
        jac.recv_json().await.expect("jac"),
        json!({"type": "score", "data": {"home": 2}})
    );
    let frame = member.recv_cmd(&["score"]).await.expect("channel frame");
    assert_eq!(
        frame,
        json!({"channel": "room", "cmd": "score", "param": {"home": 2}})
    );

    for (data, expected) in [
        (
            json!({"text": "hi", "type": "ignored"}),
            json!({"type": "news", "text": "hi", "username": ""}),
        ),
        (
            json!([1, 2]),
            json!({"type": "news", "data": [1, 2], "username": ""}),
        ),
    ] {
        let (_, body) = publish(
            &server,
            Some(BACKEND_KEY),
            &json!({"target": {"namespace": "chat"}, "event": "news", "data": data}),
        )
        .await;
        assert_eq!(body["delivered"], 1, "{body}");
        let frame = chat.recv_json().await.expect("namespace frame");
        assert_eq!(frame, json!({"success": true, "data": expected}));
    }
}

#[tokio::test]
async fn disconnect_closes_a_users_or_a_clients_connections_with_the_given_code() {
    use switchboard_client::Incoming;
    let server = server().await;
    let (token, user) = server.user("kick@example.com").await;
    let user_id = user["id"].as_str().expect("id").to_owned();
    let mut first = server
        .connect_with(ConnectOptions::bearer(token.clone()))
        .await;
    let mut second = server.connect_with(ConnectOptions::bearer(token)).await;
    let mut bystander = server.connect().await;
    let disconnect = |body: Value| {
        let addr = server.addr.clone();
        async move {
            let response = http::post_json(&addr, "/api/disconnect", &body, Some(BACKEND_KEY))
                .await
                .expect("request");
            (response.status, response.json())
        }
    };
    let (status, body) = disconnect(
        json!({"target": {"users": [user_id]}, "code": 4403, "reason": "banned for spam"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"disconnected": 2}));
    for client in [&mut first, &mut second] {
        match client.recv(std::time::Duration::from_secs(5)).await {
            Ok(Incoming::Closed { code, reason }) => {
                assert_eq!(code, Some(4403));
                assert_eq!(reason, "banned for spam");
            }
            other => panic!("expected a close, got {other:?}"),
        }
    }
    // By client id, with the default code.
    let (_, body) = disconnect(json!({"target": {"clients": [bystander.info.client_id]}})).await;
    assert_eq!(body, json!({"disconnected": 1}));
    assert!(matches!(
        bystander.recv(std::time::Duration::from_secs(5)).await,
        Ok(Incoming::Closed {
            code: Some(4000),
            ..
        })
    ));

    // Bad requests change nothing.
    let mut untouched = server.connect().await;
    for (bad, code) in [
        (json!({"target": {"all": true}}), "invalid_field"),
        (
            json!({"target": {"clients": ["x"]}, "code": 1000}),
            "invalid_field",
        ),
        (
            json!({"target": {"clients": ["x"]}, "code": "4000"}),
            "invalid_field",
        ),
        (
            json!({"target": {"clients": ["x"]}, "reason": "r".repeat(124)}),
            "invalid_field",
        ),
        (json!({"target": {"clients": []}}), "empty_ids"),
        (json!({"code": 4000}), "missing_field"),
        (json!([1]), "not_an_object"),
    ] {
        let (status, body) = disconnect(bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["code"], code, "{bad}: {body}");
    }
    let unauthorized = http::post_json(
        &server.addr,
        "/api/disconnect",
        &json!({"target": {"clients": [untouched.info.client_id]}}),
        Some("wrong-key-0123456789"),
    )
    .await
    .expect("request");
    assert_eq!(unauthorized.status, 401);
    common::assert_alive(&mut untouched).await;
}

#[tokio::test]
async fn presence_lists_a_channels_members_of_every_dialect() {
    use switchboard_client::channel::ChannelClient;
    let server = server().await;
    let (token, user) = server.user("here@example.com").await;
    let jac = server
        .connect_with(ConnectOptions::bearer(token).channel("lobby"))
        .await;
    let member = ChannelClient::connect(&server.ws, "/ws/lobby?team=blue", None)
        .await
        .expect("channel client");
    let _elsewhere = server
        .connect_with(ConnectOptions::default().channel("other"))
        .await;
    let response = http::get(
        &server.addr,
        "/api/presence?channel=lobby",
        Some(BACKEND_KEY),
    )
    .await
    .expect("presence");
    assert_eq!(response.status, 200, "{}", response.text());
    let body = response.json();
    assert_eq!(body["channel"], "lobby");
    let mut members = body["members"].as_array().expect("members").clone();
    members.sort_by_key(|m| m["dialect"].as_str().unwrap_or("").to_string());
    assert_eq!(members.len(), 2, "{body}");
    // The channel dialect sends no first frame, so its id is only known from here: a UUID.
    let channel_id = members[0]["client_id"].as_str().expect("id").to_owned();
    assert_eq!(channel_id.len(), 36, "{channel_id}");
    assert_eq!(
        members,
        vec![
            json!({"client_id": channel_id, "user_id": null, "username": "", "dialect": "channel"}),
            json!({"client_id": jac.info.client_id, "user_id": user["id"],
                   "username": "here@example.com", "dialect": "jac"}),
        ]
    );
    drop(member);
    let empty = http::get(
        &server.addr,
        "/api/presence?channel=nobody",
        Some(BACKEND_KEY),
    )
    .await
    .expect("presence");
    assert_eq!(empty.json(), json!({"channel": "nobody", "members": []}));
    for (path, code) in [
        ("/api/presence", "missing_field"),
        ("/api/presence?channel=", "missing_field"),
    ] {
        let bad = http::get(&server.addr, path, Some(BACKEND_KEY))
            .await
            .expect("presence");
        assert_eq!(bad.status, 400, "{path}: {}", bad.text());
        assert_eq!(bad.json()["code"], code, "{path}");
    }
    let unauthorized = http::get(&server.addr, "/api/presence?channel=lobby", None)
        .await
        .expect("presence");
    assert_eq!(unauthorized.status, 401);
}
