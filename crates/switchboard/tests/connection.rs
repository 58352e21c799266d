//! Connecting to `/websocket`: the connection frame, channels, tokens and user switches.

mod common;

use common::{TestServer, assert_alive, assert_error};
use serde_json::json;
use switchboard_client::{ConnectOptions, Incoming, JacClient};
use tokio::io::AsyncWriteExt;

fn is_client_id_form(id: &str) -> bool {
    let Some((secs, hex)) = id.split_once(':') else {
        return false;
    };
    secs.parse::<u64>().is_ok() && hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit())
}

#[tokio::test]
async fn public_connection_gets_reference_id_formats() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    assert!(
        is_client_id_form(&client.info.client_id),
        "{:?}",
        client.info
    );
    assert!(
        is_client_id_form(&client.info.channel_id),
        "{:?}",
        client.info
    );
    assert_eq!(client.info.root_id, "n::000000000000000000000001");
    let other = server.connect().await;
    assert_ne!(client.info.client_id, other.info.client_id);
    assert_ne!(client.info.channel_id, other.info.channel_id);
}

#[tokio::test]
async fn channel_id_query_sets_the_channel() {
    let server = TestServer::start().await;
    let client = server
        .connect_with(ConnectOptions::default().channel("room 1/ü"))
        .await;
    assert_eq!(client.info.channel_id, "room 1/ü");
}

#[tokio::test]
async fn bearer_header_and_auth_query_authenticate() {
    let server = TestServer::start().await;
    let (token, user) = server.user("ada@example.com").await;
    let expected_root = format!("n::{}", user["root_id"].as_str().unwrap());
    assert_eq!(expected_root.len(), 3 + 24);

    let by_header = server.connect_with(ConnectOptions::bearer(&token)).await;
    assert_eq!(by_header.info.root_id, expected_root);

    for auth in [token.clone(), format!("Bearer {token}")] {
        let by_query = server
            .connect_with(ConnectOptions {
                auth_query: Some(auth),
                ..ConnectOptions::default()
            })
            .await;
        assert_eq!(by_query.info.root_id, expected_root);
    }
}

#[tokio::test]
async fn refused_tokens_connect_as_public_with_a_coded_error() {
    let server = TestServer::start().await;
    let (token, user) = server.user("bob@example.com").await;
    let record = server
        .app
        .accounts()
        .user_by_email("bob@example.com")
        .await
        .unwrap()
        .unwrap();
    let expired = server
        .app
        .authenticator()
        .issue_with_lifetime(&record, -3600);
    let mut forged = token.clone();
    // Flip a character of the signature.
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let cases = [
        ("not-a-jwt".to_string(), "token_invalid"),
        (forged, "token_invalid"),
        (expired, "token_expired"),
    ];
    for (bad, code) in cases {
        let mut client = server.connect_with(ConnectOptions::bearer(&bad)).await;
        assert_eq!(client.info.root_id, "n::000000000000000000000001");
        assert_error(&client.recv_json().await.unwrap(), code);
        assert_alive(&mut client).await;
    }
    assert!(user["id"].is_string());
}

#[tokio::test]
async fn change_user_moves_connection_between_user_indexes() {
    let server = TestServer::start().await;
    let (token, user) = server.user("carol@example.com").await;
    let root = format!("n::{}", user["root_id"].as_str().unwrap());
    let mut switching = server.connect().await;
    let mut sender = server.connect().await;
    let client_id = switching.info.client_id.clone();

    let info = switching
        .change_user(Some(&format!("Bearer {token}")))
        .await
        .unwrap();
    assert_eq!(info.root_id, root);
    assert_eq!(info.client_id, client_id, "same client id after the switch");

    // Now reachable as the user...
    sender
        .send_json(&json!({"type": "user", "root_ids": [root], "data": {"n": 1}}))
        .await
        .unwrap();
    assert_eq!(switching.recv_json().await.unwrap(), json!({"n": 1}));
    // ...and no longer as the public user.
    sender
        .send_json(
            &json!({"type": "user", "root_ids": ["n::000000000000000000000001"], "data": {"n": 2}}),
        )
        .await
        .unwrap();
    // The sender is public, so it receives its own message; the switched one must not.
    assert_eq!(sender.recv_json().await.unwrap(), json!({"n": 2}));
    assert!(
        switching
            .is_silent_for(std::time::Duration::from_millis(300))
            .await
    );

    // A bare token works too, and no token switches back to public.
    let info = switching.change_user(Some(&token)).await.unwrap();
    assert_eq!(info.root_id, root);
    let info = switching.change_user(None).await.unwrap();
    assert_eq!(info.root_id, "n::000000000000000000000001");
    sender
        .send_json(&json!({"type": "user", "root_ids": [root], "data": {"n": 3}}))
        .await
        .unwrap();
    assert!(
        switching
            .is_silent_for(std::time::Duration::from_millis(300))
            .await
    );
}

#[tokio::test]
async fn change_user_with_a_bad_token_becomes_public_and_says_why() {
    let server = TestServer::start().await;
    let (token, _) = server.user("dan@example.com").await;
    let mut client = server.connect_with(ConnectOptions::bearer(&token)).await;
    client
        .send_json(&json!({"type": "change_user", "token": "Bearer garbage"}))
        .await
        .unwrap();
    assert_error(&client.recv_json().await.unwrap(), "token_invalid");
    let frame = client.recv_json().await.unwrap();
    assert_eq!(frame["type"], "connection");
    assert_eq!(frame["data"]["root_id"], "n::000000000000000000000001");
}

#[tokio::test]
async fn connection_event_resends_the_frame_and_with_token_switches_user() {
    let server = TestServer::start().await;
    let (token, user) = server.user("eve@example.com").await;
    let mut client = server.connect().await;
    client
        .send_json(&json!({"type": "connection"}))
        .await
        .unwrap();
    let again = client.recv_json().await.unwrap();
    assert_eq!(again["data"]["client_id"], client.info.client_id.as_str());
    assert_eq!(again["data"]["channel_id"], client.info.channel_id.as_str());

    client
        .send_json(&json!({"type": "connection", "token": format!("Bearer {token}")}))
        .await
        .unwrap();
    let switched = client.recv_json().await.unwrap();
    assert_eq!(
        switched["data"]["root_id"],
        format!("n::{}", user["root_id"].as_str().unwrap())
    );
}

#[tokio::test]
async fn upgrade_without_websocket_headers_is_an_http_error() {
    let server = TestServer::start().await;
    let response = switchboard_client::http::get(&server.addr, "/websocket", None)
        .await
        .unwrap();
    assert_eq!(response.status, 426);
    assert_eq!(response.json()["code"], "upgrade_required");
    let unknown = switchboard_client::http::get(&server.addr, "/nope", None)
        .await
        .unwrap();
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json()["code"], "not_found");
}

#[tokio::test]
async fn overlong_channel_id_is_refused_before_the_upgrade() {
    let server = TestServer::start().await;
    // docs/protocol-jac.md: a channel_id over 256 bytes gets HTTP 400, not an upgrade.
    let mut stream = tokio::net::TcpStream::connect(&server.addr).await.unwrap();
    let path = format!("/websocket?channel_id={}", "x".repeat(300));
    stream
        .write_all(common::upgrade_request(&server.addr, &path).as_bytes())
        .await
        .unwrap();
    let (status, body) = common::read_http_response(&mut stream).await;
    assert_eq!(status, 400, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["code"], "invalid_field", "{body}");
    // The client library sees a refused handshake too.
    let result = JacClient::connect(
        &server.ws,
        ConnectOptions::default().channel("x".repeat(300)),
    )
    .await;
    assert!(result.is_err());
    // The server is fine.
    let mut client = server.connect().await;
    assert_alive(&mut client).await;
    let _ = Incoming::Json(json!(null));
}

#[tokio::test]
async fn connection_frame_comes_first_even_while_the_channel_is_busy() {
    let server = TestServer::start().await;
    let app = server.app.clone();
    let flooding = tokio::spawn(async move {
        for n in 0..20_000u32 {
            app.notify_channels(&["busy"], &json!({"n": n}));
            if n % 50 == 0 {
                tokio::task::yield_now().await;
            }
        }
    });
    for _ in 0..40 {
        // connect() fails unless the first frame is the connection frame.
        let client = JacClient::connect(&server.ws, ConnectOptions::default().channel("busy"))
            .await
            .expect("connection frame first");
        assert_eq!(client.info.channel_id, "busy");
    }
    flooding.await.unwrap();
}
