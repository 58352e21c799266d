//! Client events `user`, `channel`, `client`, and every kind of bad input a client can send.

mod common;

use std::time::Duration;

use common::{TestServer, assert_alive, assert_error};
use futures_util::SinkExt;
use serde_json::json;
use switchboard_client::{ClientError, ConnectOptions, Incoming};

const QUIET: Duration = Duration::from_millis(300);

#[tokio::test]
async fn channel_event_reaches_every_subscriber_including_the_sender_verbatim() {
    let server = TestServer::start().await;
    let mut a = server
        .connect_with(ConnectOptions::default().channel("room"))
        .await;
    let mut b = server
        .connect_with(ConnectOptions::default().channel("room"))
        .await;
    let mut outsider = server
        .connect_with(ConnectOptions::default().channel("hall"))
        .await;
    // Key order and spacing are the sender's own: the payload is delivered as sent.
    a.send_text(
        r#"{"type":"channel","channel_ids":["room","nobody-here"],"data":{"z":1, "a":"ü"}}"#,
    )
    .await
    .unwrap();
    for client in [&mut a, &mut b] {
        match client.recv(Duration::from_secs(5)).await.unwrap() {
            Incoming::Json(value) => assert_eq!(value, json!({"z": 1, "a": "ü"})),
            other => panic!("{other:?}"),
        }
    }
    let raw = {
        // Check the exact bytes on a fresh send.
        a.send_text(r#"{"type":"channel","channel_ids":["room"],"data":{"z":1, "a":[1,2]}}"#)
            .await
            .unwrap();
        let _ = a.recv_json().await.unwrap();
        use futures_util::StreamExt;
        let message = tokio::time::timeout(Duration::from_secs(5), b.socket_mut().next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        message.as_text().unwrap().to_string()
    };
    assert_eq!(raw, r#"{"z":1, "a":[1,2]}"#);
    assert!(outsider.is_silent_for(QUIET).await);
}

#[tokio::test]
async fn user_event_reaches_every_connection_of_the_user_once() {
    let server = TestServer::start().await;
    let (token, user) = server.user("multi@example.com").await;
    let root = format!("n::{}", user["root_id"].as_str().unwrap());
    let mut phone = server.connect_with(ConnectOptions::bearer(&token)).await;
    let mut laptop = server.connect_with(ConnectOptions::bearer(&token)).await;
    let mut sender = server.connect().await;
    sender
        .send_json(&json!({"type": "user", "root_ids": [root, root, "n::ffffffffffffffffffffffff"], "data": {"hi": true}}))
        .await
        .unwrap();
    for client in [&mut phone, &mut laptop] {
        assert_eq!(client.recv_json().await.unwrap(), json!({"hi": true}));
        assert!(
            client.is_silent_for(QUIET).await,
            "delivered once per connection"
        );
    }
    assert!(sender.is_silent_for(QUIET).await);
}

#[tokio::test]
async fn client_event_reaches_exactly_the_named_connections() {
    let server = TestServer::start().await;
    let mut a = server.connect().await;
    let mut b = server.connect().await;
    let mut c = server.connect().await;
    let target = b.info.client_id.clone();
    a.send_json(
        &json!({"type": "client", "client_ids": [target, "0:unknown"], "data": "just a string"}),
    )
    .await
    .unwrap();
    assert_eq!(b.recv_json().await.unwrap(), json!("just a string"));
    assert!(a.is_silent_for(QUIET).await);
    assert!(c.is_silent_for(QUIET).await);
}

#[tokio::test]
async fn bad_frames_get_coded_errors_and_change_nothing() {
    let server = TestServer::start_with(|c| c.limits.max_ids_per_event = 3).await;
    let mut bad = server
        .connect_with(ConnectOptions::default().channel("room"))
        .await;
    let mut bystander = server
        .connect_with(ConnectOptions::default().channel("room"))
        .await;
    let cases: &[(&str, &str)] = &[
        ("hello", "invalid_json"),
        ("{\"type\":", "invalid_json"),
        ("[1,2,3]", "not_an_object"),
        ("42", "not_an_object"),
        ("null", "not_an_object"),
        ("{}", "missing_type"),
        (r#"{"type":7}"#, "invalid_field"),
        (r#"{"type":"explode"}"#, "unknown_type"),
        (r#"{"type":"walker"}"#, "missing_field"),
        (r#"{"type":"walker","walker":["x"]}"#, "invalid_field"),
        (
            r#"{"type":"walker","walker":"echo","context":"msg"}"#,
            "invalid_field",
        ),
        (
            r#"{"type":"walker","walker":"echo","response":1}"#,
            "invalid_field",
        ),
        (
            r#"{"type":"channel","channel_ids":["room"]}"#,
            "missing_field",
        ),
        (
            r#"{"type":"channel","channel_ids":"room","data":1}"#,
            "invalid_field",
        ),
        (
            r#"{"type":"channel","channel_ids":[],"data":1}"#,
            "empty_ids",
        ),
        (
            r#"{"type":"channel","channel_ids":[1],"data":1}"#,
            "invalid_field",
        ),
        (
            r#"{"type":"user","root_ids":["a","b","c","d"],"data":1}"#,
            "too_many_ids",
        ),
        (r#"{"type":"client","data":1}"#, "missing_field"),
        (r#"{"type":"change_user","token":{"a":1}}"#, "invalid_field"),
    ];
    for (text, code) in cases {
        bad.send_text(text).await.unwrap();
        let frame = bad.recv_json().await.unwrap();
        assert_eq!(frame["type"], "error", "{text}: {frame}");
        assert_error(&frame, code);
        let message = frame["error"].as_str().unwrap();
        assert!(
            !message.contains("line 1"),
            "no parser internals: {message}"
        );
    }
    bad.send_binary(vec![0, 1, 2]).await.unwrap();
    assert_error(&bad.recv_json().await.unwrap(), "binary_not_supported");

    // Nothing reached the other member of the channel, and both still work.
    assert!(bystander.is_silent_for(QUIET).await);
    assert_alive(&mut bad).await;
    assert_alive(&mut bystander).await;
    assert_eq!(
        server.metric(|m| m.client_errors.get()),
        cases.len() as u64 + 1
    );
}

#[tokio::test]
async fn missing_field_errors_name_the_field() {
    let server = TestServer::start().await;
    let mut client = server.connect().await;
    client
        .send_json(&json!({"type": "user", "data": 1}))
        .await
        .unwrap();
    let frame = client.recv_json().await.unwrap();
    assert!(
        frame["error"].as_str().unwrap().contains("root_ids"),
        "{frame}"
    );
}

#[tokio::test]
async fn oversize_message_closes_with_1009_and_the_server_stays_up() {
    let server = TestServer::start_with(|c| c.limits.max_frame_bytes = 1024).await;
    let mut big = server.connect().await;
    let mut other = server.connect().await;
    let data = "x".repeat(2048);
    big.send_json(&json!({"type": "channel", "channel_ids": ["a"], "data": data}))
        .await
        .unwrap();
    match big.recv(Duration::from_secs(5)).await {
        Ok(Incoming::Closed { code, .. }) => assert_eq!(code, Some(1009)),
        other => panic!("expected close 1009, got {other:?}"),
    }
    assert_alive(&mut other).await;
    // A message under the limit is fine.
    let mut fresh = server.connect().await;
    let fresh_id = fresh.info.client_id.clone();
    fresh
        .send_json(&json!({"type": "client", "client_ids": [fresh_id], "data": "y".repeat(900)}))
        .await
        .unwrap();
    assert_eq!(fresh.recv_json().await.unwrap(), json!("y".repeat(900)));
}

#[tokio::test]
async fn closing_without_a_handshake_leaves_others_unaffected() {
    let server = TestServer::start().await;
    let mut rude = server
        .connect_with(ConnectOptions::default().channel("r"))
        .await;
    let mut polite = server
        .connect_with(ConnectOptions::default().channel("r"))
        .await;
    // Drop the TCP stream without a close frame.
    let _ = rude.socket_mut().flush().await;
    drop(rude);
    tokio::time::sleep(Duration::from_millis(100)).await;
    polite
        .send_json(&json!({"type": "channel", "channel_ids": ["r"], "data": 1}))
        .await
        .unwrap();
    assert_eq!(polite.recv_json().await.unwrap(), json!(1));
    assert!(matches!(
        polite.recv(QUIET).await,
        Err(ClientError::Timeout)
    ));
    // The hub forgot the closed connection.
    for _ in 0..50 {
        if server.app.hub().channel_size("r") == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(server.app.hub().channel_size("r"), 1);
}

#[tokio::test]
async fn broadcast_reaches_every_connection_once() {
    let server = TestServer::start().await;
    let (token, _) = server.user("everyone@example.com").await;
    let mut clients = vec![
        server
            .connect_with(ConnectOptions::default().channel("one"))
            .await,
        server
            .connect_with(ConnectOptions::default().channel("two"))
            .await,
        server.connect_with(ConnectOptions::bearer(&token)).await,
    ];
    let delivered_before = server.metric(|m| m.deliveries.get());
    server
        .app
        .broadcast(&json!({"type": "announcement", "n": 1}));
    for client in &mut clients {
        assert_eq!(
            client.recv_json().await.unwrap(),
            json!({"type": "announcement", "n": 1})
        );
        assert_alive(client).await; // exactly once: the pong comes next
    }
    assert_eq!(
        server.metric(|m| m.deliveries.get()) - delivered_before,
        3 + 3, // the broadcast, then the three pongs
    );
}
