//! Graceful shutdown: walkers in flight finish, then every socket closes with 1001.

mod common;

use std::time::Duration;

use common::TestServer;
use serde_json::json;
use switchboard_client::{ClientError, Incoming};

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
