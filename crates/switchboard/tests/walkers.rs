//! Walkers over WebSocket and REST: replies, notifications, auth, typed contexts and failures.

mod common;

use std::time::Duration;

use common::{JSON, TestServer, assert_alive, assert_error};
use serde_json::json;
use switchboard_client::{ConnectOptions, http};

const QUIET: Duration = Duration::from_millis(300);

#[tokio::test]
async fn walker_with_response_replies_with_status_and_reports() {
    let server = TestServer::start().await;
    let mut client = server.connect().await;
    client
        .send_json(&json!({"type": "walker", "walker": "echo", "response": true, "context": {"message": "hi"}, "id": 7}))
        .await
        .unwrap();
    assert_eq!(
        client.recv_json().await.unwrap(),
        json!({"status": 200, "reports": ["Received: hi"], "walker": "echo", "id": 7})
    );
}

#[tokio::test]
async fn walker_without_response_runs_silently() {
    let server = TestServer::start().await;
    let mut client = server.connect().await;
    client
        .send_json(&json!({"type": "walker", "walker": "notify_all_ways", "context": {}}))
        .await
        .unwrap();
    for n in 1..=3 {
        assert_eq!(
            client.recv_json().await.unwrap(),
            json!({"type": "self", "n": n})
        );
    }
    assert!(
        client.is_silent_for(QUIET).await,
        "no reply without response:true"
    );
}

#[tokio::test]
async fn notifications_arrive_in_call_order_and_before_the_reply() {
    let server = TestServer::start().await;
    let (token, user) = server.user("notify@example.com").await;
    let root = format!("n::{}", user["root_id"].as_str().unwrap());
    let mut caller = server
        .connect_with(ConnectOptions::default().channel("lobby"))
        .await;
    let mut as_user = server.connect_with(ConnectOptions::bearer(&token)).await;
    let mut in_channel = server
        .connect_with(ConnectOptions::default().channel("lobby"))
        .await;
    let mut by_id = server.connect().await;
    caller
        .send_json(&json!({
            "type": "walker", "walker": "notify_all_ways", "response": true,
            "context": {"root_ids": [root], "channel_ids": ["lobby"], "client_ids": [by_id.info.client_id.clone()]}
        }))
        .await
        .unwrap();
    // The caller is in "lobby" too, so it sees the channel notification in sequence.
    let expected = [
        json!({"type": "self", "n": 1}),
        json!({"type": "self", "n": 2}),
        json!({"type": "to_channel"}),
        json!({"type": "self", "n": 3}),
        json!({"status": 200, "reports": ["notified"], "walker": "notify_all_ways"}),
    ];
    for frame in expected {
        assert_eq!(caller.recv_json().await.unwrap(), frame);
    }
    assert_eq!(
        as_user.recv_json().await.unwrap(),
        json!({"type": "to_user"})
    );
    assert_eq!(
        in_channel.recv_json().await.unwrap(),
        json!({"type": "to_channel"})
    );
    assert_eq!(
        by_id.recv_json().await.unwrap(),
        json!({"type": "to_client"})
    );
}

#[tokio::test]
async fn walkers_need_a_login_unless_public() {
    let server = TestServer::start().await;
    let (token, user) = server.user("walker@example.com").await;
    let mut public = server.connect().await;
    public
        .send_json(&json!({"type": "walker", "walker": "whoami", "response": true, "id": "a"}))
        .await
        .unwrap();
    let frame = public.recv_json().await.unwrap();
    assert_eq!(frame["type"], "walker");
    assert_eq!(frame["walker"], "whoami");
    assert_eq!(frame["id"], "a");
    assert_error(&frame, "auth_required");

    let mut logged_in = server.connect_with(ConnectOptions::bearer(&token)).await;
    let reply = logged_in.call_walker("whoami", json!({})).await.unwrap();
    assert_eq!(reply["reports"][0]["email"], "walker@example.com");
    // A public walker serves logged-in users too (the reference refuses them).
    let reply = logged_in
        .call_walker("public_whoami", json!({}))
        .await
        .unwrap();
    assert_eq!(
        reply["reports"][0]["root_id"],
        format!("n::{}", user["root_id"].as_str().unwrap())
    );
}

#[tokio::test]
async fn walker_errors_are_coded_and_leave_the_connection_open() {
    let server = TestServer::start().await;
    let mut client = server.connect().await;
    let cases = [
        ("nonexistent", json!({}), "unknown_walker"),
        ("typed", json!({"name": "x"}), "invalid_context"),
        (
            "typed",
            json!({"name": "x", "count": "three"}),
            "invalid_context",
        ),
        (
            "typed",
            json!({"name": "x", "count": -1}),
            "invalid_context",
        ),
        ("fails", json!({}), "out_of_stock"),
        ("panics", json!({}), "walker_failed"),
        ("admin_only", json!({}), "auth_required"),
    ];
    for (walker, context, code) in cases {
        let frame = client.call_walker(walker, context).await.unwrap();
        assert_eq!(frame["walker"], walker);
        assert_error(&frame, code);
        let message = frame["error"].as_str().unwrap();
        assert!(!message.contains("boom"), "panic detail leaked: {message}");
    }
    let missing = client
        .call_walker("typed", json!({"name": "x"}))
        .await
        .unwrap();
    assert!(
        missing["error"].as_str().unwrap().contains("`count`"),
        "{missing}"
    );
    let ill_typed = client
        .call_walker("typed", json!({"name": "x", "count": "three"}))
        .await
        .unwrap();
    assert!(
        ill_typed["error"].as_str().unwrap().contains("`count`"),
        "{ill_typed}"
    );
    let ok = client
        .call_walker("typed", json!({"name": "x", "count": 3}))
        .await
        .unwrap();
    assert_eq!(ok["reports"], json!([{"name": "x", "count": 3}]));
    assert_alive(&mut client).await;
}

#[tokio::test]
async fn roles_gate_walkers() {
    let server = TestServer::start().await;
    let (plain_token, _) = server.user("plain@example.com").await;
    let (admin_token, _) = server.user("admin@example.com").await;
    server
        .app
        .accounts()
        .grant_role("admin@example.com", "admin")
        .await
        .unwrap();
    let mut plain = server
        .connect_with(ConnectOptions::bearer(&plain_token))
        .await;
    assert_error(
        &plain.call_walker("admin_only", json!({})).await.unwrap(),
        "forbidden",
    );
    let mut admin = server
        .connect_with(ConnectOptions::bearer(&admin_token))
        .await;
    let reply = admin.call_walker("admin_only", json!({})).await.unwrap();
    assert_eq!(reply["reports"], json!(["welcome, admin"]));
}

#[tokio::test]
async fn too_many_walkers_in_flight_are_refused() {
    let server = TestServer::start_with(|c| c.limits.max_inflight_walkers = 2).await;
    let mut client = server.connect().await;
    for _ in 0..3 {
        client
            .send_json(&json!({"type": "walker", "walker": "sleep", "context": {"millis": 500}, "response": true}))
            .await
            .unwrap();
    }
    assert_error(&client.recv_json().await.unwrap(), "too_many_inflight");
    for _ in 0..2 {
        assert_eq!(
            client.recv_json().await.unwrap()["reports"],
            json!(["slept"])
        );
    }
}

#[tokio::test]
async fn rest_post_walker_runs_with_the_context_as_body() {
    let server = TestServer::start().await;
    let (token, _) = server.user("rest@example.com").await;
    let ok = http::post_json(
        &server.addr,
        "/walker/echo",
        &json!({"message": "over http"}),
        None,
    )
    .await
    .unwrap();
    assert_eq!(ok.status, 200);
    assert_eq!(
        ok.json(),
        json!({"status": 200, "reports": ["Received: over http"]})
    );

    // notify_self is a no-op over REST: nothing is delivered, to anyone.
    let mut bystander = server.connect().await;
    let delivered_before = server.metric(|m| m.deliveries.get());
    let notified = http::post_json(&server.addr, "/walker/notify_all_ways", &json!({}), None)
        .await
        .unwrap();
    assert_eq!(notified.status, 200);
    assert_eq!(
        notified.json(),
        json!({"status": 200, "reports": ["notified"]})
    );
    assert_eq!(
        server.metric(|m| m.deliveries.get()),
        delivered_before,
        "notify_self over REST queued a frame"
    );
    assert_alive(&mut bystander).await; // its next frame is the pong, nothing before

    let cases = [
        ("/walker/whoami", None, json!({}), 401, "auth_required"),
        (
            "/walker/whoami",
            Some("garbage"),
            json!({}),
            401,
            "token_invalid",
        ),
        ("/walker/nope", None, json!({}), 404, "unknown_walker"),
        (
            "/walker/ws_only",
            None,
            json!({}),
            405,
            "method_not_allowed",
        ),
        (
            "/walker/typed",
            None,
            json!({"name": 1, "count": 1}),
            422,
            "invalid_context",
        ),
        (
            "/walker/admin_only",
            Some(token.as_str()),
            json!({}),
            403,
            "forbidden",
        ),
    ];
    for (path, bearer, body, status, code) in cases {
        let response = http::post_json(&server.addr, path, &body, bearer)
            .await
            .unwrap();
        assert_eq!(response.status, status, "{path}: {}", response.text());
        assert_eq!(response.json()["code"], code, "{path}");
    }
    let who = http::post_json(&server.addr, "/walker/whoami", &json!({}), Some(&token))
        .await
        .unwrap();
    assert_eq!(who.json()["reports"][0]["email"], "rest@example.com");

    let not_json = http::request(&server.addr, "POST", "/walker/echo", JSON, b"{oops")
        .await
        .unwrap();
    assert_eq!(not_json.status, 400);
    assert_eq!(not_json.json()["code"], "invalid_json");
    let array = http::request(&server.addr, "POST", "/walker/echo", JSON, b"[1]")
        .await
        .unwrap();
    assert_eq!(array.json()["code"], "not_an_object");
}

#[tokio::test]
async fn rest_get_walker_takes_query_parameters() {
    let server = TestServer::start().await;
    let ok = http::get(&server.addr, "/walker/echo?message=hello%20there", None)
        .await
        .unwrap();
    assert_eq!(
        ok.json(),
        json!({"status": 200, "reports": ["Received: hello there"]})
    );
    let not_get = http::get(&server.addr, "/walker/typed?name=x&count=1", None)
        .await
        .unwrap();
    assert_eq!(not_get.status, 405);
}

#[tokio::test]
async fn oversize_rest_body_is_refused() {
    let server = TestServer::start_with(|c| c.limits.max_http_body_bytes = 100).await;
    let response = http::post_json(
        &server.addr,
        "/walker/echo",
        &json!({"message": "x".repeat(200)}),
        None,
    )
    .await
    .unwrap();
    assert_eq!(response.status, 413);
    assert_eq!(response.json()["code"], "body_too_large");
}
