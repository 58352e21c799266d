//! Limits a client can hit: message rate, connections in total, per address and per user,
//! browser origins and slow handshakes. Each is refused clearly and nothing else changes.

mod common;

use std::time::Duration;

use common::{TestServer, assert_alive, assert_error};
use serde_json::json;
use switchboard::metrics::HandshakeFailure;
use switchboard_client::{ClientError, ConnectOptions, JacClient, http};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn assert_refused_with(result: Result<JacClient, ClientError>, code: u16, reason_part: &str) {
    match result {
        Err(ClientError::Closed { code: got, reason }) => {
            assert_eq!(got, Some(code), "{reason}");
            assert!(reason.contains(reason_part), "{reason}");
        }
        Err(other) => panic!("expected close {code}, got {other}"),
        Ok(_) => panic!("expected close {code}, got a connection"),
    }
}

#[tokio::test]
async fn messages_over_the_rate_get_a_retry_hint_and_abuse_closes_with_1008() {
    let server = TestServer::start_with(|c| {
        c.limits.messages_per_sec = 5;
        c.limits.message_burst = 5;
        c.limits.max_rate_limited_in_a_row = 20;
    })
    .await;
    let mut client = server.connect().await;
    for _ in 0..8 {
        client.send_json(&json!({"type": "ping"})).await.unwrap();
    }
    let mut pongs = 0;
    let mut limited = 0;
    for _ in 0..8 {
        let frame = client.recv_json().await.unwrap();
        if frame == json!({"type": "pong"}) {
            pongs += 1;
        } else {
            assert_error(&frame, "rate_limited");
            assert!(frame["retry_after_ms"].as_u64().unwrap() > 0, "{frame}");
            limited += 1;
        }
    }
    assert_eq!((pongs, limited), (5, 3));
    // A refused walker call is answered as that call, with its id.
    for id in 0..6 {
        client
            .send_json(&json!({"type": "walker", "walker": "echo", "response": true, "context": {"message": "m"}, "id": id}))
            .await
            .unwrap();
    }
    let mut refused_ids = Vec::new();
    for _ in 0..6 {
        let frame = client.recv_json().await.unwrap();
        if frame["code"] == "rate_limited" {
            assert_eq!(frame["type"], "walker");
            assert_eq!(frame["walker"], "echo");
            refused_ids.push(frame["id"].as_u64().unwrap());
        }
    }
    assert!(!refused_ids.is_empty());
    // After a pause the budget is back.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_alive(&mut client).await;

    // Flooding on regardless is abuse.
    for _ in 0..40 {
        if client.send_json(&json!({"type": "ping"})).await.is_err() {
            break;
        }
    }
    let closed = loop {
        match client.recv(Duration::from_secs(5)).await.unwrap() {
            switchboard_client::Incoming::Json(_) => continue,
            switchboard_client::Incoming::Closed { code, .. } => break code,
        }
    };
    assert_eq!(closed, Some(1008));
    assert_eq!(server.metric(|m| m.rate_limit_closes.get()), 1);
    // Others are fine.
    let mut other = server.connect().await;
    assert_alive(&mut other).await;
}

#[tokio::test]
async fn total_connection_limit_closes_with_1013() {
    let server = TestServer::start_with(|c| c.limits.max_connections = 2).await;
    let first = server.connect().await;
    let mut second = server.connect().await;
    assert_refused_with(
        JacClient::connect(&server.ws, ConnectOptions::default()).await,
        1013,
        "server full",
    );
    drop(first);
    // Once one leaves, a newcomer fits again.
    let mut admitted = None;
    for _ in 0..50 {
        if let Ok(client) = JacClient::connect(&server.ws, ConnectOptions::default()).await {
            admitted = Some(client);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(admitted.is_some());
    assert_alive(&mut second).await;
}

#[tokio::test]
async fn per_address_limit_closes_with_1013_and_releases_on_close() {
    let server = TestServer::start_with(|c| c.limits.max_connections_per_ip = 2).await;
    let a = server.connect().await;
    let _b = server.connect().await;
    assert_refused_with(
        JacClient::connect(&server.ws, ConnectOptions::default()).await,
        1013,
        "this address",
    );
    a.close().await.unwrap();
    let mut admitted = false;
    for _ in 0..50 {
        if JacClient::connect(&server.ws, ConnectOptions::default())
            .await
            .is_ok()
        {
            admitted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(admitted, "the closed connection's slot was released");
    assert!(
        server.metric(|m| m
            .handshake_failures(HandshakeFailure::ConnectionLimit)
            .get())
            >= 1
    );
}

#[tokio::test]
async fn per_user_limit_applies_to_logged_in_users_only() {
    let server = TestServer::start_with(|c| c.limits.max_connections_per_user = 1).await;
    let (token, _) = server.user("limited@example.com").await;
    let _first = server.connect_with(ConnectOptions::bearer(&token)).await;
    assert_refused_with(
        JacClient::connect(&server.ws, ConnectOptions::bearer(&token)).await,
        1013,
        "this user",
    );
    // Public connections are not one user.
    let _p1 = server.connect().await;
    let mut p2 = server.connect().await;
    assert_alive(&mut p2).await;
}

#[tokio::test]
async fn per_user_limit_holds_for_change_user() {
    let server = TestServer::start_with(|c| c.limits.max_connections_per_user = 1).await;
    let (token, _) = server.user("switcher@example.com").await;
    let first = server.connect_with(ConnectOptions::bearer(&token)).await;
    let mut public = server.connect().await;
    let public_info = public.info.clone();
    public
        .send_json(&json!({"type": "change_user", "token": token}))
        .await
        .unwrap();
    assert_error(&public.recv_json().await.unwrap(), "too_many_connections");
    // It stays what it was: the same connection frame, still public.
    let again = public.recv_json().await.unwrap();
    assert_eq!(again["type"], "connection");
    assert_eq!(again["data"]["client_id"], public_info.client_id.as_str());
    assert_eq!(again["data"]["root_id"], public_info.root_id.as_str());
    assert_alive(&mut public).await;
    assert!(server.metric(|m| m.user_switches_refused.get()) >= 1);

    // The user's own connection may re-authenticate as itself, and once it is gone the switch
    // is allowed.
    let mut first = first;
    let info = first.change_user(Some(&token)).await.unwrap();
    assert_ne!(info.root_id, public_info.root_id);
    first.close().await.unwrap();
    let mut switched = None;
    for _ in 0..50 {
        let info = public.change_user(Some(&token)).await.unwrap();
        if info.root_id != public_info.root_id {
            switched = Some(info);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        switched.is_some(),
        "the slot was released when the first connection closed"
    );
}

fn upgrade_headers(origin: &str) -> Vec<(&str, &str)> {
    vec![
        ("Connection", "Upgrade"),
        ("Upgrade", "websocket"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Origin", origin),
    ]
}

#[tokio::test]
async fn foreign_browser_origins_are_refused_with_403() {
    let server = TestServer::start().await;
    let refused = http::request(
        &server.addr,
        "GET",
        "/websocket",
        &upgrade_headers("http://evil.example"),
        b"",
    )
    .await
    .unwrap();
    assert_eq!(refused.status, 403);
    assert_eq!(refused.json()["code"], "origin_not_allowed");
    assert_eq!(
        server.metric(|m| m.handshake_failures(HandshakeFailure::OriginRefused).get()),
        1
    );

    // Same origin (the page the server itself serves) and non-browser clients are fine.
    let same = ConnectOptions {
        headers: vec![("Origin".into(), format!("http://{}", server.addr))],
        ..ConnectOptions::default()
    };
    let mut client = server.connect_with(same).await;
    assert_alive(&mut client).await;
}

#[tokio::test]
async fn listed_origins_are_allowed() {
    let server =
        TestServer::start_with(|c| c.allowed_origins = vec!["https://app.example".into()]).await;
    let listed = ConnectOptions {
        headers: vec![("Origin".into(), "https://app.example".into())],
        ..ConnectOptions::default()
    };
    let mut client = server.connect_with(listed).await;
    assert_alive(&mut client).await;
    let other = http::request(
        &server.addr,
        "GET",
        "/websocket",
        &upgrade_headers("https://other.example"),
        b"",
    )
    .await
    .unwrap();
    assert_eq!(other.status, 403);
}

#[tokio::test]
async fn slow_loris_handshake_is_dropped() {
    let server = TestServer::start_with(|c| c.limits.handshake_timeout_ms = 300).await;
    let mut stream = tokio::net::TcpStream::connect(&server.addr).await.unwrap();
    stream
        .write_all(b"GET /websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
        .await
        .unwrap();
    // Never finish the head: the server hangs up.
    let mut buf = [0u8; 512];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("server kept a half-sent handshake open");
    // A reset is also a hang-up; data, if any, can only be a 408.
    if let Ok(n) = read {
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(n == 0 || text.starts_with("HTTP/1.1 408"), "{text}");
    }
    let mut client = server.connect().await;
    assert_alive(&mut client).await;
}
