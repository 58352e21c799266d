//! Revoking tokens and granting roles reach live sockets at once, not only the next connect.

mod common;

use common::{TestServer, assert_error};
use serde_json::json;
use switchboard_client::{ConnectOptions, http};

#[tokio::test]
async fn revoke_turns_live_jac_connections_public_with_a_token_revoked_error() {
    let server = TestServer::start().await;
    let (token, user) = server.user("revoked@example.com").await;
    let root = format!("n::{}", user["root_id"].as_str().expect("root_id"));
    let mut first = server
        .connect_with(ConnectOptions::bearer(token.clone()))
        .await;
    let mut second = server
        .connect_with(ConnectOptions::bearer(token.clone()).channel("room"))
        .await;
    let mut bystander = server
        .connect_with(ConnectOptions::default().channel("room"))
        .await;
    assert_eq!(first.info.root_id, root);

    let revoked = http::post_json(&server.addr, "/user/revoke", &json!({}), Some(&token))
        .await
        .expect("revoke");
    assert_eq!(revoked.status, 200, "{}", revoked.text());

    for client in [&mut first, &mut second] {
        let error = client.recv_json().await.expect("error frame");
        assert_error(&error, "token_revoked");
        let again = client.recv_json().await.expect("connection frame");
        assert_eq!(again["type"], "connection");
        assert_eq!(again["data"]["root_id"], "n::000000000000000000000001");
        assert_eq!(again["data"]["client_id"], client.info.client_id.as_str());
    }
    // The downgraded connection acts as the public user: a walker needing a login refuses it.
    let reply = first.call_walker("whoami", json!({})).await.expect("reply");
    assert_error(&reply, "auth_required");
    // It left the user's index: a message to the user reaches nobody now.
    bystander
        .send_json(&json!({"type": "user", "root_ids": [root], "data": {"n": 1}}))
        .await
        .expect("send");
    bystander
        .send_json(&json!({"type": "channel", "channel_ids": ["room"], "data": {"n": 2}}))
        .await
        .expect("send");
    assert_eq!(
        second.recv_json().await.expect("channel message"),
        json!({"n": 2})
    );
    // Other connections were not touched.
    assert_eq!(
        bystander.recv_json().await.expect("own channel message"),
        json!({"n": 2})
    );
}

#[tokio::test]
async fn granting_a_role_applies_to_live_connections() {
    let server = TestServer::start().await;
    let (token, _user) = server.user("promoted@example.com").await;
    let mut client = server.connect_with(ConnectOptions::bearer(token)).await;
    let before = client
        .call_walker("admin_only", json!({}))
        .await
        .expect("reply");
    assert_error(&before, "forbidden");
    server
        .app
        .grant_role("promoted@example.com", "admin")
        .await
        .expect("grant");
    let after = client
        .call_walker("admin_only", json!({}))
        .await
        .expect("reply");
    assert_eq!(after["status"], 200, "{after}");
}
