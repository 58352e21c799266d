//! One hub, three ways to address a channel: the channel dialect's server API, the cross-dialect
//! mapping between Jac and channel-dialect members (both ways), and handler rules in code.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::TestServer;
use parking_lot::Mutex;
use serde_json::{Value, json};
use switchboard::dialect::channel::api::Message;
use switchboard::dialect::channel::rules::ChannelRule;
use switchboard_client::channel::ChannelClient;
use switchboard_client::{ConnectOptions, Incoming};

const QUIET: Duration = Duration::from_millis(300);

async fn connect(server: &TestServer, path: &str) -> ChannelClient {
    ChannelClient::connect(&server.ws, path, None)
        .await
        .expect("connect")
}

async fn own_id(client: &mut ChannelClient, channel: &str) -> String {
    let reply = client.members(channel).await.expect("members");
    let me = reply["param"]["members"]
        .as_array()
        .and_then(|m| m.first())
        .cloned()
        .expect("a member");
    me["id"].as_str().expect("id").to_string()
}

#[tokio::test]
async fn a_jac_payload_reaches_channel_members_as_cmd_and_param() {
    let server = TestServer::start().await;
    let mut member = connect(&server, "/ws/room1").await;
    let mut jac = server
        .connect_with(ConnectOptions::default().channel("room1"))
        .await;
    jac.send_json(&json!({"type": "channel", "channel_ids": ["room1"],
                          "data": {"type": "chat", "data": {"text": "hi"}}}))
        .await
        .unwrap();
    assert_eq!(
        member.recv_cmd(&["chat"]).await.unwrap(),
        json!({"channel": "room1", "cmd": "chat", "param": {"text": "hi"}})
    );
    // The Jac sender receives its own payload verbatim, as Jac Cloud does.
    assert_eq!(
        jac.recv_json().await.unwrap(),
        json!({"type": "chat", "data": {"text": "hi"}})
    );
    jac.send_json(&json!({"type": "channel", "channel_ids": ["room1"],
                          "data": {"score": 3, "type": "goal", "extra": true}}))
        .await
        .unwrap();
    assert_eq!(
        member.recv_cmd(&["message"]).await.unwrap(),
        json!({"channel": "room1", "cmd": "message",
               "param": {"score": 3, "type": "goal", "extra": true}}),
        "another shape travels whole"
    );
}

#[tokio::test]
async fn a_channel_frame_reaches_jac_members_as_type_and_data_without_presence() {
    let server = TestServer::start().await;
    let mut jac = server
        .connect_with(ConnectOptions::default().channel("room1"))
        .await;
    let mut member = connect(&server, "/ws/room1").await;
    member
        .send_json(&json!({"channel": "room1", "cmd": "chat", "param": {"text": "yo"}}))
        .await
        .unwrap();
    assert_eq!(
        jac.recv_json().await.unwrap(),
        json!({"type": "chat", "data": {"text": "yo"}}),
        "no online-update before it: Jac has no presence"
    );
    member.close().await.unwrap();
    assert!(jac.is_silent_for(QUIET).await, "nor on disconnect");
}

#[tokio::test]
async fn jac_members_are_channel_members_and_their_arrival_is_presence() {
    let server = TestServer::start().await;
    let mut member = connect(&server, "/ws/room1").await;
    let member_id = own_id(&mut member, "room1").await;
    let jac = server
        .connect_with(ConnectOptions::default().channel("room1"))
        .await;
    let update = member.recv_cmd(&["online-update"]).await.unwrap();
    assert_eq!(update["from"], jac.info.client_id.as_str());
    assert_eq!(update["param"]["connected"], true);
    let listed = member.members("room1").await.unwrap();
    let mut ids: Vec<&str> = listed["param"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    let mut expected = vec![member_id.as_str(), jac.info.client_id.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected);
}

#[tokio::test]
async fn notify_channels_reaches_every_dialect_in_its_own_shape() {
    let server = TestServer::start().await;
    let mut member = connect(&server, "/ws/room1").await;
    let mut jac = server
        .connect_with(ConnectOptions::default().channel("room1"))
        .await;
    let _ = member.recv_cmd(&["online-update"]).await.unwrap();
    server
        .app
        .notify_channels(&["room1"], &json!({"type": "tick", "data": 5}));
    assert_eq!(
        member.recv_json().await.unwrap(),
        json!({"channel": "room1", "cmd": "tick", "param": 5})
    );
    assert_eq!(
        jac.recv_json().await.unwrap(),
        json!({"type": "tick", "data": 5})
    );
}

#[tokio::test]
async fn send_channel_and_broadcast_skip_the_connections_in_except() {
    let server = TestServer::start().await;
    let mut a = connect(&server, "/ws/room1").await;
    let a_id = own_id(&mut a, "room1").await;
    let mut b = connect(&server, "/ws/room1").await;
    let mut elsewhere = connect(&server, "/ws/hall").await;
    let mut jac = server
        .connect_with(ConnectOptions::default().channel("room1"))
        .await;
    let _ = a.recv_cmd(&["online-update"]).await.unwrap();
    let _ = a.recv_cmd(&["online-update"]).await.unwrap();
    let _ = b.recv_cmd(&["online-update"]).await.unwrap();
    let api = server.app.channels();
    let note = Message::new("ignored", "notification", json!({"title": "t"}));
    assert_eq!(api.send_channel("room1", &note, &[a_id.as_str()]), 2);
    assert_eq!(
        b.recv_json().await.unwrap(),
        json!({"channel": "room1", "cmd": "notification", "param": {"title": "t"}})
    );
    assert_eq!(
        jac.recv_json().await.unwrap(),
        json!({"type": "notification", "data": {"title": "t"}})
    );
    assert!(a.is_silent_for(QUIET).await);
    assert!(elsewhere.is_silent_for(QUIET).await);

    let system = Message::new("system", "system-update", json!(1));
    assert_eq!(api.broadcast(&system, &[a_id.as_str()]), 3);
    for client in [&mut b, &mut elsewhere] {
        assert_eq!(
            client.recv_json().await.unwrap(),
            json!({"channel": "system", "cmd": "system-update", "param": 1})
        );
    }
    assert_eq!(
        jac.recv_json().await.unwrap(),
        json!({"type": "system-update", "data": 1})
    );
    assert!(a.is_silent_for(QUIET).await);
}

#[tokio::test]
async fn send_connection_reaches_one_connection() {
    let server = TestServer::start().await;
    let mut a = connect(&server, "/ws/room1").await;
    let a_id = own_id(&mut a, "room1").await;
    let mut b = connect(&server, "/ws/room1").await;
    let _ = a.recv_cmd(&["online-update"]).await.unwrap();
    let api = server.app.channels();
    assert!(api.send_connection(&a_id, &Message::new("user-7", "dm", json!({"x": 1}))));
    assert_eq!(
        a.recv_json().await.unwrap(),
        json!({"channel": "user-7", "cmd": "dm", "param": {"x": 1}})
    );
    assert!(b.is_silent_for(QUIET).await);
    assert!(!api.send_connection("no-such-id", &Message::new("c", "dm", Value::Null)));
}

#[tokio::test]
async fn the_server_can_join_and_leave_a_connection_and_list_members() {
    let server = TestServer::start().await;
    let mut a = connect(&server, "/ws/room1").await;
    let a_id = own_id(&mut a, "room1").await;
    let mut b = connect(&server, "/ws/lobby").await;
    let b_id = own_id(&mut b, "lobby").await;
    let api = server.app.channels();
    assert_eq!(api.join(&b_id, "room1"), Some(2));
    assert_eq!(
        b.recv_json().await.unwrap(),
        json!({"channel": "room1", "cmd": "joined", "param": {"members": 2}})
    );
    let update = a.recv_cmd(&["online-update"]).await.unwrap();
    assert_eq!(update["from"], b_id.as_str());
    let members = api.members("room1").await;
    let mut ids: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
    ids.sort_unstable();
    let mut expected = vec![a_id.as_str(), b_id.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected);
    assert_eq!(api.leave(&b_id, "room1"), Some(1));
    assert_eq!(b.recv_json().await.unwrap()["cmd"], "left");
    assert_eq!(api.leave(&b_id, "room1"), None, "not a member any more");
    assert_eq!(api.join("no-such-id", "room1"), None);
    let mut listed: Vec<(String, Vec<String>)> = api
        .connections()
        .into_iter()
        .map(|c| {
            (
                c.id.to_string(),
                c.channels.iter().map(|c| c.to_string()).collect(),
            )
        })
        .collect();
    listed.sort();
    let mut expected = vec![
        (a_id.clone(), vec!["room1".to_string()]),
        (b_id.clone(), vec!["lobby".to_string()]),
    ];
    expected.sort();
    assert_eq!(listed, expected);
}

#[tokio::test]
async fn close_request_sends_close_connection_then_closes_4400() {
    let server = TestServer::start().await;
    let mut a = connect(&server, "/ws/room1").await;
    let a_id = own_id(&mut a, "room1").await;
    assert!(server.app.channels().close_request(&a_id));
    assert_eq!(
        a.recv_json().await.unwrap(),
        json!({"cmd": "close-connection"})
    );
    match a.recv(Duration::from_secs(5)).await.unwrap() {
        Incoming::Closed { code, .. } => assert_eq!(code, Some(4400)),
        other => panic!("{other:?}"),
    }
    assert!(!server.app.channels().close_request("no-such-id"));
}

#[tokio::test]
async fn a_handler_rule_in_code_receives_messages_with_the_sender_and_metadata() {
    let seen: Arc<Mutex<Vec<(String, Message, String)>>> = Arc::default();
    let record = seen.clone();
    let server = TestServer::start_built(
        |_| {},
        move |builder| {
            builder.channel(
                ChannelRule::new("bot.").handler(move |api, sender, message| {
                    record.lock().push((
                        sender.id.to_string(),
                        message.clone(),
                        sender.metadata.get("name").cloned().unwrap_or_default(),
                    ));
                    let reply =
                        Message::new(message.channel.clone(), "echo", message.param.clone());
                    api.send_connection(&sender.id, &reply);
                }),
            )
        },
    )
    .await;
    let mut client = connect(&server, "/ws/bot.one?name=zed").await;
    let id = own_id(&mut client, "bot.one").await;
    client
        .send_json(&json!({"channel": "bot.one", "cmd": "ask", "param": {"q": 1}}))
        .await
        .unwrap();
    assert_eq!(
        client.recv_json().await.unwrap(),
        json!({"channel": "bot.one", "cmd": "echo", "param": {"q": 1}})
    );
    let seen = seen.lock().clone();
    assert_eq!(seen.len(), 1);
    let (sender, message, name) = &seen[0];
    assert_eq!(sender, &id);
    assert_eq!(name, "zed");
    assert_eq!(message.from.as_deref(), Some(id.as_str()));
    assert_eq!(
        (message.channel.as_str(), message.cmd.as_str()),
        ("bot.one", "ask")
    );
}
