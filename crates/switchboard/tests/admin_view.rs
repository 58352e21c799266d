//! The admin dashboard's page and live feed (`/admin/`, `/admin/ws`) over real sockets: only
//! admins get the feed; it pushes snapshots, lists and closes connections, and taps messages
//! as they flow, filtered, only while the viewer asks for it.

mod common;

use std::time::Duration;

use common::admin_feed::{command, next_of, open_feed, snapshot_when};
use common::{TestServer, read_http_response, upgrade_request};
use futures_util::SinkExt;
use serde_json::{Value, json};
use switchboard_client::{ConnectOptions, Incoming, http};
use tokio::io::AsyncWriteExt;
use tokio_websockets::Message;

#[tokio::test]
async fn the_page_is_served_and_holds_no_data() {
    let server = TestServer::start().await;
    let page = http::get(&server.addr, "/admin/", None)
        .await
        .expect("page");
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .is_some_and(|t| t.starts_with("text/html"))
    );
    assert!(page.text().contains("Switchboard admin"));
    let bare = http::get(&server.addr, "/admin", None)
        .await
        .expect("redirect");
    assert_eq!(bare.status, 308);
    assert_eq!(bare.header("location"), Some("/admin/"));
}

#[tokio::test]
async fn the_feed_refuses_everyone_but_admins_before_upgrading() {
    let server = TestServer::start().await;
    let (user_token, _) = server.user("ada@example.com").await;
    for (path, status, code) in [
        ("/admin/ws".to_string(), 401, "auth_required"),
        ("/admin/ws?auth=garbage".to_string(), 401, "token_invalid"),
        (format!("/admin/ws?auth={user_token}"), 403, "forbidden"),
    ] {
        let mut stream = tokio::net::TcpStream::connect(&server.addr)
            .await
            .expect("connect");
        stream
            .write_all(upgrade_request(&server.addr, &path).as_bytes())
            .await
            .expect("write");
        let (got, body) = read_http_response(&mut stream).await;
        assert_eq!(got, status, "{path}: {body}");
        let body: Value = serde_json::from_str(&body).expect("json body");
        assert_eq!(body["code"], code, "{path}");
    }
}

#[tokio::test]
async fn the_feed_lists_connections_and_closes_one() {
    let server = TestServer::start().await;
    let admin = server.admin("root@example.com").await;
    let mut feed = open_feed(&server, &admin).await;
    let first = next_of(&mut feed, "snapshot").await;
    assert_eq!(
        first["connections"]["total"], 0,
        "the feed is no connection"
    );
    assert_eq!(first["tap"], json!({"on": false, "dropped": 0}));
    assert!(!first["history"].as_array().expect("history").is_empty());
    assert!(first["stats"]["namespaces"].is_array());

    let mut jac = server
        .connect_with(ConnectOptions::default().channel("lobby"))
        .await;
    let _other = server.connect().await;
    let client_id = jac.info.client_id.clone();
    command(&mut feed, json!({"type": "search", "query": "LOBBY"})).await;
    let listed = snapshot_when(&mut feed, |s| s["connections"]["total"] == 2).await;
    let list = listed["connections"]["list"].as_array().expect("list");
    assert_eq!(listed["connections"]["matching"], 1, "{listed}");
    assert_eq!(list[0]["clientId"], client_id.as_str());
    assert_eq!(list[0]["dialect"], "jac");
    assert_eq!(list[0]["channels"], json!(["lobby"]));
    let node = server.app.node_id();
    assert_eq!(list[0]["node"], node);
    let key = list[0]["key"].as_u64().expect("key");

    // A node that does not exist has nothing to close.
    command(
        &mut feed,
        json!({"type": "close", "key": key, "node": "elsewhere"}),
    )
    .await;
    assert_eq!(
        next_of(&mut feed, "closed").await,
        json!({"type": "closed", "key": key, "node": "elsewhere", "found": false})
    );
    command(
        &mut feed,
        json!({"type": "close", "key": key, "node": node}),
    )
    .await;
    assert_eq!(
        next_of(&mut feed, "closed").await,
        json!({"type": "closed", "key": key, "node": node, "found": true})
    );
    match jac.recv(Duration::from_secs(5)).await.expect("close") {
        Incoming::Closed { code, .. } => assert_eq!(code, Some(4400)),
        other => panic!("expected a close, got {other:?}"),
    }
    command(&mut feed, json!({"type": "close", "key": key})).await;
    assert_eq!(next_of(&mut feed, "closed").await["found"], false);
}

#[tokio::test]
async fn the_tap_is_off_until_asked_and_filters_what_it_shows() {
    let server = TestServer::start().await;
    let admin = server.admin("root@example.com").await;
    let mut feed = open_feed(&server, &admin).await;
    let mut jac = server
        .connect_with(ConnectOptions::default().channel("lobby"))
        .await;
    jac.send_text(r#"{"type":"channel","channel_ids":["lobby"],"data":{"n":1}}"#)
        .await
        .expect("send");
    jac.recv_json().await.expect("own copy");

    command(
        &mut feed,
        json!({"type": "tap", "on": true, "dialect": "jac", "channel": "", "user": ""}),
    )
    .await;
    assert_eq!(
        snapshot_when(&mut feed, |s| s["tap"]["on"] == true).await["tap"]["dropped"],
        0
    );
    jac.send_text(r#"{"type":"channel","channel_ids":["lobby"],"data":{"n":2}}"#)
        .await
        .expect("send");
    let tapped = next_of(&mut feed, "tap").await;
    // Only the jac dialect's entry: the message sent before the tap was on never shows, and
    // the channel dialect's `sent` entry is filtered out.
    assert_eq!(tapped["entry"]["dialect"], "jac");
    assert_eq!(tapped["entry"]["direction"], "received");
    assert!(
        tapped["entry"]["message"]
            .as_str()
            .expect("message")
            .contains(r#""n":2"#)
    );

    command(&mut feed, json!({"type": "tap", "on": false})).await;
    snapshot_when(&mut feed, |s| s["tap"]["on"] == false).await;
    jac.send_text(r#"{"type":"channel","channel_ids":["lobby"],"data":{"n":3}}"#)
        .await
        .expect("send");
    let next = next_of(&mut feed, "snapshot").await;
    assert_eq!(next["tap"]["on"], false);
}

#[tokio::test]
async fn bad_commands_are_answered_and_change_nothing() {
    let server = TestServer::start().await;
    let admin = server.admin("root@example.com").await;
    let mut feed = open_feed(&server, &admin).await;
    feed.send(Message::text("not json")).await.expect("send");
    assert_eq!(next_of(&mut feed, "error").await["code"], "invalid_json");
    for bad in [
        json!({"type": "explode"}),
        json!({"type": "close"}),
        json!({"type": "close", "key": "one"}),
        json!({"type": "tap", "on": "yes"}),
        json!([1, 2]),
    ] {
        command(&mut feed, bad.clone()).await;
        let error = next_of(&mut feed, "error").await;
        assert_eq!(error["code"], "invalid_field", "{bad}: {error}");
        assert!(error["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    feed.send(Message::binary(vec![1u8, 2]))
        .await
        .expect("send");
    assert_eq!(next_of(&mut feed, "error").await["code"], "invalid_json");
    let still = next_of(&mut feed, "snapshot").await;
    assert_eq!(still["tap"]["on"], false);
}
