//! Graceful shutdown: walkers in flight finish, then every socket closes with 1001; meanwhile new
//! walker calls and new upgrades are refused with `shutting_down`.

mod common;

use std::time::Duration;

use common::TestServer;
use serde_json::json;
use switchboard_client::{ClientError, Incoming};
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn in_flight_walkers_finish_then_sockets_close_with_1001() {
    let mut server = TestServer::start().await;
    let mut busy = server.connect().await;
    let mut idle = server.connect().await;
    busy.send_json(
        &json!({"type": "walker", "walker": "sleep", "context": {"millis": 400}, "response": true}),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let ws = server.ws.clone();
    let shutting = tokio::spawn(async move {
        server.shutdown().await;
        server
    });
    let reply = busy.recv_json().await.unwrap();
    assert_eq!(reply["reports"], json!(["slept"]));
    for client in [&mut busy, &mut idle] {
        match client.recv(Duration::from_secs(5)).await.unwrap() {
            Incoming::Closed { code, .. } => assert_eq!(code, Some(1001)),
            other => panic!("expected close 1001, got {other:?}"),
        }
    }
    let _server = shutting.await.unwrap();
    // The listener is gone.
    let refused = switchboard_client::JacClient::connect(&ws, Default::default()).await;
    assert!(
        matches!(refused, Err(ClientError::WebSocket(_))),
        "listener still accepting"
    );
}

#[tokio::test]
async fn while_draining_walker_calls_and_upgrades_are_refused_with_shutting_down() {
    let mut server = TestServer::start().await;
    let addr = server.addr.clone();
    let mut busy = server.connect().await;
    let mut idle = server.connect().await;
    // An HTTP connection accepted before the shutdown, kept alive for an upgrade during it.
    let mut http = tokio::net::TcpStream::connect(&addr).await.unwrap();
    http.write_all(format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    assert_eq!(common::read_http_response(&mut http).await.0, 200);

    // A walker in flight keeps the server draining for a while.
    busy.send_json(
        &json!({"type": "walker", "walker": "sleep", "context": {"millis": 3000}, "response": true}),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let shutting = tokio::spawn(async move {
        server.shutdown().await;
        server
    });

    // Until the drain begins a call may still succeed; once it has, calls are refused.
    let guard = tokio::time::Instant::now() + Duration::from_secs(2);
    let refused = loop {
        let reply = idle
            .call_walker("echo", json!({"message": "hi"}))
            .await
            .unwrap();
        if reply.get("error").is_some() {
            break reply;
        }
        assert!(
            tokio::time::Instant::now() < guard,
            "walker calls never refused: {reply}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(refused["type"], "walker", "{refused}");
    assert_eq!(refused["walker"], "echo", "{refused}");
    assert_eq!(refused["code"], "shutting_down", "{refused}");

    // An upgrade while draining: HTTP 503 `shutting_down`.
    http.write_all(common::upgrade_request(&addr, "/websocket").as_bytes())
        .await
        .unwrap();
    let (status, body) = common::read_http_response(&mut http).await;
    assert_eq!(status, 503, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["code"], "shutting_down", "{body}");

    // The walker in flight still finishes.
    let reply = busy.recv_json().await.unwrap();
    assert_eq!(reply["reports"], json!(["slept"]));
    let _server = shutting.await.unwrap();
}
