//! Liveness with shortened timers: pings go out, silent peers are closed with 4001, peers that
//! answer stay connected.

mod common;

use std::time::Duration;

use common::{TestServer, assert_alive};
use futures_util::StreamExt;
use switchboard_client::Incoming;

async fn fast_heartbeat() -> TestServer {
    TestServer::start_with(|c| {
        c.heartbeat.interval_ms = 200;
        c.heartbeat.timeout_ms = 200;
    })
    .await
}

#[tokio::test]
async fn server_pings_an_idle_connection() {
    let server = fast_heartbeat().await;
    let mut client = server.connect().await;
    let message = tokio::time::timeout(Duration::from_secs(2), client.socket_mut().next())
        .await
        .expect("a ping within the interval")
        .unwrap()
        .unwrap();
    assert!(message.is_ping(), "{message:?}");
}

#[tokio::test]
async fn silent_peer_is_closed_with_4001() {
    let server = fast_heartbeat().await;
    let mut silent = server.connect().await;
    // Do not read (so no pong goes back) for well over interval + timeout.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    match silent.recv(Duration::from_secs(3)).await {
        Ok(Incoming::Closed { code, reason }) => {
            assert_eq!(code, Some(4001));
            assert_eq!(reason, "heartbeat timeout");
        }
        other => panic!("expected close 4001, got {other:?}"),
    }
    assert_eq!(server.metric(|m| m.heartbeat_timeouts.get()), 1);
}

#[tokio::test]
async fn peer_that_answers_pings_stays_connected() {
    let server = fast_heartbeat().await;
    let mut client = server.connect().await;
    // Keep polling (which answers pings) for several intervals.
    for _ in 0..12 {
        assert!(client.is_silent_for(Duration::from_millis(100)).await);
    }
    assert_alive(&mut client).await;
    assert_eq!(server.metric(|m| m.heartbeat_timeouts.get()), 0);
}

#[tokio::test]
async fn client_pings_are_answered_with_pongs() {
    use futures_util::SinkExt;
    use tokio_websockets::Message;
    let server = TestServer::start().await;
    let mut client = server.connect().await;
    client
        .socket_mut()
        .send(Message::ping(&b"are you there"[..]))
        .await
        .unwrap();
    let pong = tokio::time::timeout(Duration::from_secs(2), client.socket_mut().next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(pong.is_pong());
    assert_eq!(&pong.as_payload()[..], b"are you there");
}
