//! The channel dialect on `/ws/<channel>` (seed 004): connecting, metadata, rules, join and
//! leave with presence, relay, and every kind of bad input a client can send.

mod common;

use std::time::Duration;

use common::{TestServer, read_http_response, upgrade_request};
use serde_json::{Value, json};
use switchboard::config::{ChannelRuleConfig, OnMessageConfig};
use switchboard_client::Incoming;
use switchboard_client::channel::ChannelClient;
use tokio::io::AsyncWriteExt;

const QUIET: Duration = Duration::from_millis(300);

async fn connect(server: &TestServer, path: &str) -> ChannelClient {
    ChannelClient::connect(&server.ws, path, None)
        .await
        .expect("connect")
}

async fn connect_as(server: &TestServer, path: &str, token: &str) -> ChannelClient {
    ChannelClient::connect(&server.ws, path, Some(token))
        .await
        .expect("connect")
}

/// This connection's id, read from the members of a channel it is alone in.
async fn own_id(client: &mut ChannelClient, channel: &str) -> String {
    let reply = client.members(channel).await.expect("members");
    let members = reply["param"]["members"].as_array().expect("list").clone();
    assert_eq!(members.len(), 1, "{reply}");
    members[0]["id"].as_str().expect("id").to_string()
}

fn assert_error(frame: &Value, code: &str, channel: Option<&str>) {
    assert_eq!(frame["cmd"], "error", "{frame}");
    assert_eq!(frame["param"]["code"], code, "{frame}");
    assert!(
        frame["param"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{frame}"
    );
    match channel {
        Some(channel) => assert_eq!(frame["channel"], channel, "{frame}"),
        None => assert!(frame.get("channel").is_none(), "{frame}"),
    }
}

/// The connection still answers: `ping` gets `pong`.
async fn assert_alive(client: &mut ChannelClient) {
    let pong = client
        .request(&json!({"cmd": "ping"}), "pong")
        .await
        .expect("pong");
    assert_eq!(pong["cmd"], "pong", "{pong}");
}

/// The status and body of a refused upgrade.
async fn upgrade_status(server: &TestServer, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(&server.addr)
        .await
        .expect("tcp");
    stream
        .write_all(upgrade_request(&server.addr, path).as_bytes())
        .await
        .expect("write");
    read_http_response(&mut stream).await
}

async fn expect_close(client: &mut ChannelClient, code: u16) {
    match client.recv(Duration::from_secs(5)).await.expect("a frame") {
        Incoming::Closed { code: got, .. } => assert_eq!(got, Some(code)),
        Incoming::Json(frame) => panic!("expected close {code}, got {frame}"),
    }
}

#[tokio::test]
async fn connecting_joins_the_path_channel_and_sends_no_first_frame() {
    let server = TestServer::start().await;
    let mut client = connect(&server, "/ws/room1").await;
    assert!(client.is_silent_for(QUIET).await, "no first frame");
    let id = own_id(&mut client, "room1").await;
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "a UUID: {id}");
    let members = client.members("room1").await.unwrap();
    assert_eq!(
        members,
        json!({"channel": "room1", "cmd": "members",
               "param": {"members": [{"id": id, "userID": id, "username": ""}]}})
    );
}

#[tokio::test]
async fn ping_answers_pong_with_a_millisecond_timestamp() {
    let server = TestServer::start().await;
    let mut client = connect(&server, "/ws/room1").await;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    client.send_json(&json!({"cmd": "ping"})).await.unwrap();
    let pong = client.recv_json().await.unwrap();
    assert_eq!(pong["cmd"], "pong");
    let timestamp = pong["param"]["timestamp"].as_u64().expect("ms");
    assert!(
        timestamp + 1000 >= before && timestamp < before + 60_000,
        "{pong}"
    );
}

#[tokio::test]
async fn bad_channel_names_are_refused_before_the_upgrade() {
    let server = TestServer::start().await;
    let long = format!("/ws/{}", "x".repeat(129));
    for path in ["/ws/a%20b", "/ws/caf%C3%A9", "/ws/a$b", long.as_str()] {
        let (status, body) = upgrade_status(&server, path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.contains("invalid_channel"), "{path}: {body}");
    }
    let ok = format!("/ws/{}", "x".repeat(128));
    let mut client = connect(&server, &ok).await;
    assert_alive(&mut client).await;
}

#[tokio::test]
async fn query_parameters_become_metadata_within_limits() {
    let server = TestServer::start().await;
    let (token, _) = server.user("meta@example.com").await;
    let mut client = connect(
        &server,
        &format!("/ws/room1?device=phone&lang=fr%20FR&auth={token}"),
    )
    .await;
    let id = own_id(&mut client, "room1").await;
    let info = server.app.channels().connection(&id).expect("listed");
    assert_eq!(
        serde_json::to_value(&*info.metadata).unwrap(),
        json!({"device": "phone", "lang": "fr FR"}),
        "every parameter but `auth`"
    );
    assert_eq!(info.username, "meta@example.com");
    let listed = server.app.channels().connections();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].channels.len(), 1);
    assert_eq!(&*listed[0].channels[0], "room1");

    let sixteen: Vec<String> = (0..16).map(|i| format!("k{i}=v")).collect();
    let mut full = connect(&server, &format!("/ws/room1?{}", sixteen.join("&"))).await;
    assert_alive(&mut full).await;

    let seventeen: Vec<String> = (0..17).map(|i| format!("k{i}=v")).collect();
    let too_many = format!("/ws/room1?{}", seventeen.join("&"));
    let long_key = format!("/ws/room1?{}=v", "k".repeat(65));
    let long_value = format!("/ws/room1?k={}", "v".repeat(257));
    for path in [too_many, long_key, long_value] {
        let (status, body) = upgrade_status(&server, &path).await;
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("metadata_too_large"), "{body}");
    }
}

#[tokio::test]
async fn a_logged_in_connection_is_known_by_its_user_id_and_username_with_any_token_form() {
    let server = TestServer::start().await;
    let (token, user) = server.user("ada@example.com").await;
    let user_id = user["id"].as_str().unwrap();
    // Header and `?auth=` both work, as on every endpoint.
    let mut by_header = connect_as(&server, "/ws/solo", &token).await;
    let reply = by_header.members("solo").await.unwrap();
    let member = &reply["param"]["members"][0];
    assert_eq!(member["userID"], user_id);
    assert_eq!(member["username"], "ada@example.com");
    assert_ne!(member["id"], user_id, "the id is the connection's");
    let mut by_query = connect(&server, &format!("/ws/solo2?auth=Bearer%20{token}")).await;
    let reply = by_query.members("solo2").await.unwrap();
    assert_eq!(reply["param"]["members"][0]["userID"], user_id);
    let cookie = format!("switchboard_token={token}");
    let mut by_cookie =
        ChannelClient::connect_with_headers(&server.ws, "/ws/solo3", &[("cookie", &cookie)])
            .await
            .expect("connect");
    let reply = by_cookie.members("solo3").await.unwrap();
    assert_eq!(reply["param"]["members"][0]["userID"], user_id);
}

fn rules(config: &mut switchboard::Config) {
    config.channel = vec![
        ChannelRuleConfig {
            prefix: "private.".into(),
            require_auth: true,
            ..ChannelRuleConfig::default()
        },
        ChannelRuleConfig {
            prefix: "staff.".into(),
            require_roles: vec!["staff".into()],
            ..ChannelRuleConfig::default()
        },
        ChannelRuleConfig {
            prefix: "news.".into(),
            on_message: OnMessageConfig::None,
            ..ChannelRuleConfig::default()
        },
        ChannelRuleConfig {
            prefix: "few.".into(),
            max_channels_per_connection: 2,
            ..ChannelRuleConfig::default()
        },
    ];
}

#[tokio::test]
async fn a_rule_refusal_on_connect_is_an_error_frame_then_4401_or_4403() {
    let server = TestServer::start_with(rules).await;
    let mut anonymous = connect(&server, "/ws/private.room").await;
    let frame = anonymous.recv_json().await.unwrap();
    assert_error(&frame, "auth_required", Some("private.room"));
    expect_close(&mut anonymous, 4401).await;

    let (token, _) = server.user("norole@example.com").await;
    let mut no_role = connect_as(&server, "/ws/staff.room", &token).await;
    let frame = no_role.recv_json().await.unwrap();
    assert_error(&frame, "forbidden", Some("staff.room"));
    expect_close(&mut no_role, 4403).await;

    let mut logged_in = connect_as(&server, "/ws/private.room", &token).await;
    assert!(logged_in.is_silent_for(QUIET).await);
    assert_alive(&mut logged_in).await;
    assert_eq!(
        server.app.hub().channel_size("staff.room"),
        0,
        "never joined"
    );
}

#[tokio::test]
async fn joining_a_refused_channel_is_an_error_and_the_connection_stays() {
    let server = TestServer::start_with(rules).await;
    let mut client = connect(&server, "/ws/lobby").await;
    assert_error(
        &client.join("private.x").await.unwrap(),
        "auth_required",
        Some("private.x"),
    );
    let (token, _) = server.user("plain@example.com").await;
    let mut user = connect_as(&server, "/ws/lobby", &token).await;
    assert_error(
        &user.join("staff.x").await.unwrap(),
        "forbidden",
        Some("staff.x"),
    );
    assert_eq!(
        user.join("private.x").await.unwrap(),
        json!({"channel": "private.x", "cmd": "joined", "param": {"members": 1}})
    );
    server
        .app
        .grant_role("plain@example.com", "staff")
        .await
        .unwrap();
    assert_eq!(user.join("staff.x").await.unwrap()["cmd"], "joined");
    assert_alive(&mut client).await;
    assert_eq!(server.app.hub().channel_size("private.x"), 1);
}

#[tokio::test]
async fn join_and_leave_reply_with_the_member_count_and_tell_the_others() {
    let server = TestServer::start().await;
    let mut a = connect(&server, "/ws/room1").await;
    let a_id = own_id(&mut a, "room1").await;
    let mut b = connect(&server, "/ws/hall").await;
    let b_id = own_id(&mut b, "hall").await;

    assert_eq!(
        b.join("room1").await.unwrap(),
        json!({"channel": "room1", "cmd": "joined", "param": {"members": 2}})
    );
    let update = a.recv_cmd(&["online-update"]).await.unwrap();
    assert_eq!(
        update,
        json!({"from": b_id, "channel": "room1", "cmd": "online-update",
               "param": {"userID": b_id, "connected": true}})
    );
    assert_eq!(
        b.join("room1").await.unwrap()["param"]["members"],
        2,
        "joining twice changes nothing"
    );
    assert_eq!(
        b.leave("room1").await.unwrap(),
        json!({"channel": "room1", "cmd": "left", "param": {"members": 1}})
    );
    let update = a.recv_cmd(&["online-update"]).await.unwrap();
    assert_eq!(update["param"], json!({"userID": b_id, "connected": false}));
    assert_eq!(update["from"], b_id);
    // Neither saw its own presence, and the hall heard nothing of room1.
    assert!(b.is_silent_for(QUIET).await);
    assert!(a.is_silent_for(QUIET).await);
    assert_eq!(a.leave("room1").await.unwrap()["param"]["members"], 0);
    assert!(server.app.hub().channel_members("room1").is_empty());
    let _ = a_id;
}

#[tokio::test]
async fn connecting_and_disconnecting_are_presence_too_with_the_user_id() {
    let server = TestServer::start().await;
    let mut watcher = connect(&server, "/ws/room1").await;
    let (token, user) = server.user("bob@example.com").await;
    let user_id = user["id"].as_str().unwrap().to_string();
    let bob = connect_as(&server, "/ws/room1", &token).await;
    let joined = watcher.recv_cmd(&["online-update"]).await.unwrap();
    assert_eq!(
        joined["param"],
        json!({"userID": user_id, "connected": true})
    );
    let bob_id = joined["from"].as_str().unwrap().to_string();
    assert_ne!(bob_id, user_id);
    bob.close().await.unwrap();
    let left = watcher.recv_cmd(&["online-update"]).await.unwrap();
    assert_eq!(
        left["param"],
        json!({"userID": user_id, "connected": false})
    );
    assert_eq!(left["from"], bob_id);
}

#[tokio::test]
async fn messages_are_relayed_to_the_other_members_with_from_stamped() {
    let server = TestServer::start().await;
    let mut a = connect(&server, "/ws/room1").await;
    let a_id = own_id(&mut a, "room1").await;
    let mut b = connect(&server, "/ws/room1").await;
    let mut outsider = connect(&server, "/ws/hall").await;
    let _ = a.recv_cmd(&["online-update"]).await.unwrap();
    a.send_text(
        r#"{"channel":"room1","cmd":"chat","param":{"text":"hi", "n":[1,2]},"from":"forged"}"#,
    )
    .await
    .unwrap();
    let got = b.recv_cmd(&["chat"]).await.unwrap();
    assert_eq!(
        got,
        json!({"from": a_id, "channel": "room1", "cmd": "chat",
               "param": {"text": "hi", "n": [1, 2]}})
    );
    // A message without `param` is relayed with `"param":null`.
    a.send_json(&json!({"channel": "room1", "cmd": "poke"}))
        .await
        .unwrap();
    let got = b.recv_cmd(&["poke"]).await.unwrap();
    assert_eq!(got["param"], Value::Null);
    assert!(a.is_silent_for(QUIET).await, "not echoed to the sender");
    assert!(outsider.is_silent_for(QUIET).await);
}

#[tokio::test]
async fn a_channel_ruled_none_drops_members_messages() {
    let server = TestServer::start_with(rules).await;
    let mut a = connect(&server, "/ws/news.today").await;
    let mut b = connect(&server, "/ws/news.today").await;
    let _ = a.recv_cmd(&["online-update"]).await.unwrap();
    b.send_json(&json!({"channel": "news.today", "cmd": "chat", "param": 1}))
        .await
        .unwrap();
    assert!(a.is_silent_for(QUIET).await);
    assert_alive(&mut b).await;
}

#[tokio::test]
async fn too_many_channels_is_refused_counting_the_one_joined_on_connect() {
    let server = TestServer::start_with(rules).await;
    let mut client = connect(&server, "/ws/few.a").await;
    assert_eq!(client.join("few.b").await.unwrap()["cmd"], "joined");
    assert_error(
        &client.join("few.c").await.unwrap(),
        "too_many_channels",
        Some("few.c"),
    );
    assert_eq!(server.app.hub().channel_size("few.c"), 0);
    assert_eq!(client.leave("few.a").await.unwrap()["cmd"], "left");
    assert_eq!(client.join("few.c").await.unwrap()["cmd"], "joined");
    // The default rule allows 32.
    let mut open = connect(&server, "/ws/c0").await;
    for i in 1..32 {
        assert_eq!(open.join(&format!("c{i}")).await.unwrap()["cmd"], "joined");
    }
    assert_error(
        &open.join("c32").await.unwrap(),
        "too_many_channels",
        Some("c32"),
    );
}

#[tokio::test]
async fn leaving_or_sending_to_a_channel_not_joined_is_an_error() {
    let server = TestServer::start().await;
    let mut client = connect(&server, "/ws/room1").await;
    let mut other = connect(&server, "/ws/hall").await;
    assert_error(
        &client.leave("hall").await.unwrap(),
        "not_joined",
        Some("hall"),
    );
    client
        .send_json(&json!({"channel": "hall", "cmd": "chat", "param": 1}))
        .await
        .unwrap();
    assert_error(
        &client.recv_json().await.unwrap(),
        "not_joined",
        Some("hall"),
    );
    assert!(other.is_silent_for(QUIET).await, "nothing reached the hall");
    assert_eq!(server.app.hub().channel_size("hall"), 1);
    assert_alive(&mut client).await;
}

#[tokio::test]
async fn malformed_frames_get_coded_errors_and_change_nothing() {
    let server = TestServer::start().await;
    let mut client = connect(&server, "/ws/room1").await;
    let mut peer = connect(&server, "/ws/room1").await;
    let _ = client.recv_cmd(&["online-update"]).await.unwrap();
    let cases: &[(&str, &str, Option<&str>)] = &[
        ("{not json", "invalid_json", None),
        ("[1,2]", "not_an_object", None),
        ("\"join\"", "not_an_object", None),
        (r#"{"channel":"room1","param":1}"#, "missing_cmd", None),
        (r#"{"cmd":42,"channel":"room1"}"#, "invalid_field", None),
        (r#"{"cmd":"join"}"#, "missing_field", None),
        (r#"{"cmd":"chat"}"#, "missing_field", None),
        (r#"{"cmd":"join","channel":7}"#, "invalid_field", None),
        (
            r#"{"cmd":"join","channel":"no spaces"}"#,
            "invalid_channel",
            None,
        ),
    ];
    for (text, code, channel) in cases {
        client.send_text(text).await.unwrap();
        let frame = client.recv_json().await.unwrap();
        assert_error(&frame, code, *channel);
    }
    for reserved in ["close-connection", "online-update", "joined", "error"] {
        client
            .send_json(&json!({"channel": "room1", "cmd": reserved, "param": {}}))
            .await
            .unwrap();
        assert_error(
            &client.recv_json().await.unwrap(),
            "invalid_field",
            Some("room1"),
        );
    }
    client.send_binary(vec![1, 2, 3]).await.unwrap();
    assert_error(
        &client.recv_json().await.unwrap(),
        "binary_not_supported",
        None,
    );
    assert_alive(&mut client).await;
    assert!(peer.is_silent_for(QUIET).await, "the peer heard nothing");
    assert_eq!(server.app.hub().channel_size("room1"), 2);
}

#[tokio::test]
async fn over_the_message_rate_a_message_is_dropped_with_rate_limited() {
    let server = TestServer::start_with(|config| {
        config.limits.messages_per_sec = 1;
        config.limits.message_burst = 2;
        config.limits.max_rate_limited_in_a_row = 100;
    })
    .await;
    let mut client = connect(&server, "/ws/room1").await;
    let mut peer = connect(&server, "/ws/room1").await;
    let _ = client.recv_cmd(&["online-update"]).await.unwrap();
    for i in 0..4 {
        client
            .send_json(&json!({"channel": "room1", "cmd": "chat", "param": i}))
            .await
            .unwrap();
    }
    let limited = client.recv_cmd(&["error"]).await.unwrap();
    assert_error(&limited, "rate_limited", None);
    assert!(
        limited["param"]["retry_after_ms"].as_u64().is_some(),
        "{limited}"
    );
    let mut relayed = Vec::new();
    while let Ok(Incoming::Json(frame)) = peer.recv(QUIET).await {
        relayed.push(frame["param"].clone());
    }
    assert_eq!(relayed, vec![json!(0), json!(1)], "the burst only");
}

#[tokio::test]
async fn a_frame_over_max_frame_bytes_closes_with_1009() {
    let server = TestServer::start_with(|config| config.limits.max_frame_bytes = 1024).await;
    let mut client = connect(&server, "/ws/room1").await;
    let big = json!({"channel": "room1", "cmd": "chat", "param": "x".repeat(2000)});
    client.send_json(&big).await.unwrap();
    expect_close(&mut client, 1009).await;
    let mut next = connect(&server, "/ws/room1").await;
    assert_alive(&mut next).await;
}

#[tokio::test]
async fn a_revoked_token_leaves_open_channels_anonymous_and_closes_login_channels_4401() {
    let server = TestServer::start_with(rules).await;
    let (token, user) = server.user("revoked@example.com").await;
    let user_id = user["id"].as_str().unwrap().to_string();
    let mut open = connect_as(&server, "/ws/lobby", &token).await;
    let mut private = connect_as(&server, "/ws/private.room", &token).await;
    assert_eq!(
        open.members("lobby").await.unwrap()["param"]["members"][0]["userID"],
        user_id.as_str()
    );
    server.app.revoke_user_tokens(&user_id).await.unwrap();
    let frame = open.recv_json().await.unwrap();
    assert_error(&frame, "token_revoked", None);
    let me = open.members("lobby").await.unwrap()["param"]["members"][0].clone();
    assert_eq!(me["userID"], me["id"], "anonymous now");
    assert_eq!(me["username"], "");
    expect_close(&mut private, 4401).await;
}

/// A connection is a member of its path's channel when its 101 arrives: a second member that
/// connects right after the first's handshake (no round trip, no sleep) is announced to it.
/// Several pairs at once on a multi-threaded runtime, so the server's tasks race the clients'
/// as they do on a loaded machine; the old race (registration after the 101) showed here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_hears_of_a_joiner_that_connects_right_after_its_handshake() {
    let server = std::sync::Arc::new(TestServer::start().await);
    for round in 0..50 {
        let pairs: Vec<_> = (0..PAIRS)
            .map(|pair| {
                let server = server.clone();
                tokio::spawn(async move { joiner_is_announced(&server, round, pair).await })
            })
            .collect();
        for pair in pairs {
            pair.await.expect("pair");
        }
    }
}

/// Pairs of members connecting at once in each round of the test above.
const PAIRS: usize = 8;

/// A connects to a room of its own, B right after; A hears of B. Both leave, and the room
/// empties. (A room per round: presence is sent by a task after the change, so a room reused
/// at once could still be telling a new member of the last round's leaves.)
async fn joiner_is_announced(server: &TestServer, round: usize, pair: usize) {
    let room = format!("room-{round}-{pair}");
    let path = format!("/ws/{room}");
    let mut a = connect(server, &path).await;
    let mut b = connect(server, &path).await;
    let update = a
        .recv_cmd(&["online-update"])
        .await
        .unwrap_or_else(|err| panic!("round {round}, {room}: no presence for the joiner: {err}"));
    let b_id = update["from"].as_str().expect("from").to_string();
    assert_eq!(
        update,
        json!({"from": b_id, "channel": room, "cmd": "online-update",
               "param": {"userID": b_id, "connected": true}}),
        "round {round}"
    );
    let members = b.members(&room).await.unwrap();
    let ids: Vec<&str> = members["param"]["members"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert_eq!(ids.len(), 2, "round {round}: {members}");
    assert!(ids.contains(&b_id.as_str()), "round {round}: {members}");
    a.close().await.unwrap();
    b.close().await.unwrap();
    wait_until_empty(server, &room).await;
}

/// Wait (bounded) until `channel` has no member on the server.
async fn wait_until_empty(server: &TestServer, channel: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while server.app.hub().channel_size(channel) != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{channel} still has {} members",
            server.app.hub().channel_size(channel)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Clients that write an upgrade request and go away before reading the 101 (closing, or
/// resetting the connection) leave no member behind: the room and the server's connections go
/// back to the one member that stayed, and every `online-update` it heard has its `offline`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_gone_before_its_101_leaves_no_member_behind() {
    let server = TestServer::start().await;
    let mut watcher = connect(&server, "/ws/room").await;
    let watcher_id = own_id(&mut watcher, "room").await;
    for round in 0..40 {
        let mut stream = tokio::net::TcpStream::connect(&server.addr)
            .await
            .expect("tcp");
        stream
            .write_all(upgrade_request(&server.addr, "/ws/room").as_bytes())
            .await
            .expect("write");
        if round % 2 == 1 {
            stream.set_zero_linger().expect("linger");
        }
        drop(stream);
    }
    assert_only_member_left(&server, &mut watcher, &watcher_id).await;
}

/// An upgrade that fails after the 101 was answered (hyper's upgrade error, here on a request
/// that never had a connection to upgrade) unregisters the connection the answer registered:
/// the other member hears it come and go, and the counts go back.
#[tokio::test]
async fn a_failed_upgrade_unregisters_the_connection_it_registered() {
    use tower::ServiceExt;
    let server = TestServer::start().await;
    let mut watcher = connect(&server, "/ws/room").await;
    let watcher_id = own_id(&mut watcher, "room").await;
    let open_before = server.app.hub().connection_count();
    let mut request = http::Request::builder()
        .uri("/ws/room")
        .header("host", &server.addr)
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .body(axum::body::Body::empty())
        .unwrap();
    // An upgrade handle that fails when awaited, as hyper's does when the client goes away.
    let failing = hyper::upgrade::on(http::Request::new(()));
    request.extensions_mut().insert(failing);
    let response = switchboard::http::router(server.app.clone())
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.status(), 101);
    let joined = watcher.recv_cmd(&["online-update"]).await.unwrap();
    assert_eq!(joined["param"]["connected"], true, "{joined}");
    let left = watcher.recv_cmd(&["online-update"]).await.unwrap();
    assert_eq!(left["param"]["connected"], false, "{left}");
    assert_eq!(left["from"], joined["from"], "{left}");
    assert_only_member_left(&server, &mut watcher, &watcher_id).await;
    assert_eq!(server.app.hub().connection_count(), open_before);
}

/// Wait (bounded) until `member` is the only connection on the server and the only member of
/// `room`, as the connection gauge and its `members` command say too; every connection it heard
/// come online (if any) it heard go offline after.
async fn assert_only_member_left(server: &TestServer, member: &mut ChannelClient, id: &str) {
    let hub = server.app.hub();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while hub.connection_count() != 1 || hub.channel_size("room") != 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "still {} connections, {} in room",
            hub.connection_count(),
            hub.channel_size("room")
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let gauge: i64 = server.metric(|m| {
        (0..m.dialect_count())
            .map(|i| {
                m.dialect(switchboard::hub::Hub::dialect_id(i))
                    .connections
                    .get()
            })
            .sum()
    });
    assert_eq!(gauge, 1, "switchboard_connections");
    let mut online = std::collections::HashSet::new();
    while let Ok(Incoming::Json(frame)) = member.recv(QUIET).await {
        assert_eq!(frame["cmd"], "online-update", "{frame}");
        let from = frame["from"].as_str().expect("from").to_string();
        if frame["param"]["connected"] == true {
            assert!(online.insert(from), "online twice: {frame}");
        } else {
            assert!(online.remove(&from), "offline before online: {frame}");
        }
    }
    assert!(online.is_empty(), "never went offline: {online:?}");
    assert_eq!(
        member.members("room").await.unwrap()["param"]["members"],
        json!([{"id": id, "userID": id, "username": ""}])
    );
}
