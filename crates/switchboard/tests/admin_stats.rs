//! Statistics and the activity log over real sockets, on a statistics clock the test moves by
//! hand: a known sequence of connects and messages gives known counts, rates and colours, and
//! the admin API refuses everyone but admins.

mod common;

use std::time::Duration;

use common::TestServer;
use serde_json::{Value, json};
use switchboard::dialect::namespace::{Namespace, NamespaceLimits, Relay};
use switchboard::ops::clock::ManualClock;
use switchboard_client::{ConnectOptions, NamespaceClient, NamespaceOptions, http};

/// 2024-05-01T12:00:00.000Z
const T0: u64 = 1_714_564_800_000;
const MINUTE: Duration = Duration::from_secs(60);

async fn server(clock: &ManualClock) -> TestServer {
    server_with(clock, |_| {}).await
}

async fn server_with(
    clock: &ManualClock,
    tweak: impl FnOnce(&mut switchboard::Config),
) -> TestServer {
    let clock = clock.clone();
    TestServer::start_built(tweak, move |mut builder| {
        builder
            .namespace(
                Namespace::new("chat")
                    .relay(Relay::Broadcast)
                    .limits(NamespaceLimits {
                        max_message_bytes: 1024,
                        messages_per_sec: 50,
                    }),
            )
            .expect("chat");
        builder
            .namespace(Namespace::new("tight").limits(NamespaceLimits {
                max_message_bytes: 1024,
                messages_per_sec: 1,
            }))
            .expect("tight");
        builder.clock(clock)
    })
    .await
}

async fn admin_token(server: &TestServer) -> String {
    server.admin("root@example.com").await
}

async fn stats(server: &TestServer, token: &str) -> Value {
    let response = http::get(&server.addr, "/admin/api/stats", Some(token))
        .await
        .expect("stats");
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()
}

/// Poll the stats until `done` holds (the activity log is filled by a background task).
async fn stats_when(server: &TestServer, token: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let stats = stats(server, token).await;
        if done(&stats) {
            return stats;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "stats never matched: {stats:#}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn namespace<'a>(stats: &'a Value, path: &str) -> &'a Value {
    stats["namespaces"]
        .as_array()
        .expect("namespaces")
        .iter()
        .find(|ns| ns["path"] == path)
        .unwrap_or_else(|| panic!("no {path} in {stats}"))
}

async fn join(server: &TestServer, name: &str, options: NamespaceOptions) -> NamespaceClient {
    NamespaceClient::connect(&server.ws, name, &options)
        .await
        .expect("join")
}

#[tokio::test]
async fn the_stats_api_answers_admins_only() {
    let clock = ManualClock::new(T0);
    let server = server(&clock).await;
    let (user_token, _) = server.user("ada@example.com").await;
    let admin = admin_token(&server).await;

    let anonymous = http::get(&server.addr, "/admin/api/stats", None)
        .await
        .expect("get");
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.json()["code"], "auth_required");

    let forged = http::get(&server.addr, "/admin/api/stats", Some("not-a-token"))
        .await
        .expect("get");
    assert_eq!(forged.status, 401);
    assert_eq!(forged.json()["code"], "token_invalid");

    let user = http::get(&server.addr, "/admin/api/stats", Some(&user_token))
        .await
        .expect("get");
    assert_eq!(user.status, 403);
    assert_eq!(user.json()["code"], "forbidden");
    assert!(user.json()["error"].as_str().is_some_and(|e| !e.is_empty()));

    // The login cookie is not enough: the API takes the header only.
    let cookie = http::request(
        &server.addr,
        "GET",
        "/admin/api/stats",
        &[("Cookie", &format!("switchboard_token={admin}"))],
        b"",
    )
    .await
    .expect("get");
    assert_eq!(cookie.status, 401);

    let stats = stats(&server, &admin).await;
    for key in [
        "uptime",
        "totalConnections",
        "totalMessages",
        "totalDropped",
        "nodes",
        "namespaces",
        "channels",
        "activityLog",
    ] {
        assert!(stats.get(key).is_some(), "{key} missing from {stats}");
    }
    assert_eq!(stats["nodes"][0]["node_id"], server.app.node_id());
    assert_eq!(stats["nodes"][0]["backplane"], "none");
}

#[tokio::test]
async fn a_known_sequence_gives_known_counts_rates_and_colours() {
    let clock = ManualClock::new(T0);
    let server = server(&clock).await;
    let admin = admin_token(&server).await;
    let (ada_token, _) = server.user("ada@example.com").await;

    let before = stats(&server, &admin).await;
    let chat = namespace(&before, "/api/1/ws/chat");
    assert_eq!(chat["status"], "red", "no clients: red");
    assert_eq!(chat["lastActivity"], Value::Null);

    let mut ada = join(
        &server,
        "chat",
        NamespaceOptions::default().bearer(ada_token.clone()),
    )
    .await;
    let mut ada_tab = join(
        &server,
        "chat",
        NamespaceOptions::default().bearer(ada_token.clone()),
    )
    .await;
    let mut guest = join(&server, "chat", NamespaceOptions::default()).await;
    let connected = stats(&server, &admin).await;
    let chat = namespace(&connected, "/api/1/ws/chat");
    assert_eq!(chat["clientCount"], 3);
    assert_eq!(chat["activeUsers"], 1, "one user on two tabs");
    assert_eq!(chat["status"], "red", "clients but never a message: red");
    assert_eq!(connected["totalConnections"], 3);

    for n in 0..3 {
        ada.send_json(&json!({"type": "chat", "n": n}))
            .await
            .expect("send");
    }
    guest
        .send_json(&json!({"type": "chat", "n": 3}))
        .await
        .expect("send");
    // Each of the four reaches every socket (broadcast): wait until the guest saw them all.
    for _ in 0..4 {
        guest.recv_json().await.expect("relayed");
    }
    let busy = stats(&server, &admin).await;
    let chat = namespace(&busy, "/api/1/ws/chat");
    assert_eq!(chat["status"], "green");
    assert_eq!(chat["totalMessages"], 4);
    assert_eq!(chat["messagesPerMinute"], 4);
    assert_eq!(chat["messagesPerHour"], 4);
    assert_eq!(chat["lastActivity"], "2024-05-01T12:00:00.000Z");
    assert_eq!(busy["totalMessages"], 4);

    clock.advance(2 * MINUTE);
    ada.send_json(&json!({"type": "chat", "n": 4}))
        .await
        .expect("send");
    guest.recv_json().await.expect("relayed");
    let later = stats(&server, &admin).await;
    let chat = namespace(&later, "/api/1/ws/chat");
    assert_eq!(
        chat["messagesPerMinute"], 1,
        "the first four left the minute"
    );
    assert_eq!(chat["messagesPerHour"], 5);
    assert_eq!(chat["lastActivity"], "2024-05-01T12:02:00.000Z");
    assert_eq!(later["uptime"], 120);

    clock.advance(6 * MINUTE);
    let idle = stats(&server, &admin).await;
    let chat = namespace(&idle, "/api/1/ws/chat");
    assert_eq!(chat["status"], "yellow", "6 quiet minutes with clients");
    assert_eq!(chat["messagesPerMinute"], 0);

    clock.advance(25 * MINUTE);
    let stale = stats(&server, &admin).await;
    let chat = namespace(&stale, "/api/1/ws/chat");
    assert_eq!(chat["status"], "red", "31 quiet minutes");
    assert_eq!(chat["messagesPerHour"], 5);

    clock.advance(30 * MINUTE);
    let hour_later = stats(&server, &admin).await;
    assert_eq!(
        namespace(&hour_later, "/api/1/ws/chat")["messagesPerHour"],
        0
    );

    // A message after the silence turns it green again; with no clients it is red at once.
    ada_tab
        .send_json(&json!({"type": "chat"}))
        .await
        .expect("send");
    ada.recv_json().await.expect("relayed");
    assert_eq!(
        namespace(&stats(&server, &admin).await, "/api/1/ws/chat")["status"],
        "green"
    );
    drop((ada, ada_tab, guest));
    let empty = stats_when(&server, &admin, |s| s["totalConnections"] == 0).await;
    assert_eq!(namespace(&empty, "/api/1/ws/chat")["status"], "red");
}

#[tokio::test]
async fn the_yellow_and_red_thresholds_come_from_the_config() {
    let clock = ManualClock::new(T0);
    let server = server_with(&clock, |config| {
        config.stats.status_idle_secs = 10;
        config.stats.status_stale_secs = 20;
    })
    .await;
    let admin = admin_token(&server).await;
    let mut guest = join(&server, "chat", NamespaceOptions::default()).await;
    guest
        .send_json(&json!({"type": "chat"}))
        .await
        .expect("send");
    guest.recv_json().await.expect("own copy");
    let colour = |stats: Value| namespace(&stats, "/api/1/ws/chat")["status"].clone();
    assert_eq!(colour(stats(&server, &admin).await), "green");
    clock.advance(Duration::from_secs(11));
    assert_eq!(colour(stats(&server, &admin).await), "yellow");
    clock.advance(Duration::from_secs(10));
    assert_eq!(colour(stats(&server, &admin).await), "red");
}

#[tokio::test]
async fn drops_are_counted_by_reason() {
    let clock = ManualClock::new(T0);
    let server = server(&clock).await;
    let admin = admin_token(&server).await;
    let mut chat = join(&server, "chat", NamespaceOptions::default()).await;
    let mut tight = join(&server, "tight", NamespaceOptions::default()).await;

    chat.send_text(&format!("{{\"big\":\"{}\"}}", "x".repeat(2000)))
        .await
        .expect("send");
    assert_eq!(chat.recv_json().await.expect("413")["code"], 413);
    chat.send_text("not json").await.expect("send");
    assert_eq!(chat.recv_json().await.expect("400")["code"], 400);
    tight.send_json(&json!({"n": 1})).await.expect("send");
    tight.send_json(&json!({"n": 2})).await.expect("send");
    assert_eq!(tight.recv_json().await.expect("429")["code"], 429);

    let stats = stats(&server, &admin).await;
    assert_eq!(
        namespace(&stats, "/api/1/ws/chat")["dropped"],
        json!({"oversize": 1, "rateLimit": 0, "invalid": 1, "slowConsumer": 0})
    );
    assert_eq!(
        namespace(&stats, "/api/1/ws/tight")["dropped"],
        json!({"oversize": 0, "rateLimit": 1, "invalid": 0, "slowConsumer": 0})
    );
    assert_eq!(stats["totalDropped"], 3);
    assert_eq!(namespace(&stats, "/api/1/ws/tight")["totalMessages"], 1);
}

#[tokio::test]
async fn channels_list_members_and_their_message_rate() {
    let clock = ManualClock::new(T0);
    let server = server(&clock).await;
    let admin = admin_token(&server).await;
    let jac = |channel: &str| ConnectOptions {
        channel_id: Some(channel.to_string()),
        ..ConnectOptions::default()
    };
    let mut a = server.connect_with(jac("lobby")).await;
    let _b = server.connect_with(jac("lobby")).await;
    let _c = server.connect_with(jac("side")).await;
    for _ in 0..2 {
        a.send_json(&json!({"type": "channel", "channel_ids": ["lobby"], "data": {"hi": 1}}))
            .await
            .expect("send");
        a.recv_json().await.expect("own copy");
    }
    let stats = stats(&server, &admin).await;
    assert_eq!(stats["channels"]["count"], 2);
    assert_eq!(
        stats["channels"]["top"],
        json!([
            {"name": "lobby", "members": 2, "messagesPerMinute": 2},
            {"name": "side", "members": 1, "messagesPerMinute": 0},
        ])
    );
    clock.advance(MINUTE);
    let later = self::stats(&server, &admin).await;
    assert_eq!(later["channels"]["top"][0]["messagesPerMinute"], 0);
}

fn entries(stats: &Value) -> Vec<Value> {
    stats["activityLog"]
        .as_array()
        .expect("activityLog")
        .clone()
}

#[tokio::test]
async fn the_activity_log_records_every_dialect_and_direction() {
    let clock = ManualClock::new(T0);
    let server = server(&clock).await;
    let admin = admin_token(&server).await;
    let (ada_token, _) = server.user("ada@example.com").await;
    let mut ada = join(
        &server,
        "chat",
        NamespaceOptions::default().bearer(ada_token),
    )
    .await;
    let chat_message = r#"{"type":"chat","text":"hello"}"#;
    ada.send_text(chat_message).await.expect("send");
    ada.recv_json().await.expect("own copy");
    ada.send_text("not json").await.expect("send");
    ada.recv_json().await.expect("400");
    let mut jac = server
        .connect_with(ConnectOptions {
            channel_id: Some("lobby".into()),
            ..ConnectOptions::default()
        })
        .await;
    jac.send_text(r#"{"type":"channel","channel_ids":["lobby"],"data":{"hi":1}}"#)
        .await
        .expect("send");
    jac.recv_json().await.expect("own copy");
    jac.send_text("{").await.expect("send");
    jac.recv_json().await.expect("error");

    let stats = stats_when(&server, &admin, |s| entries(s).len() >= 6).await;
    let log = entries(&stats);
    let node = server.app.node_id();
    assert_eq!(
        log,
        vec![
            json!({"timestamp": "2024-05-01T12:00:00.000Z", "node": node, "dialect": "namespace",
                   "target": "/api/1/ws/chat", "direction": "received",
                   "username": "ada@example.com", "message": chat_message}),
            json!({"timestamp": "2024-05-01T12:00:00.000Z", "node": node, "dialect": "namespace",
                   "target": "/api/1/ws/chat", "direction": "sent",
                   "username": "ada@example.com", "message": chat_message}),
            json!({"timestamp": "2024-05-01T12:00:00.000Z", "node": node, "dialect": "namespace",
                   "target": "/api/1/ws/chat", "direction": "rejected", "reason": "invalid",
                   "username": "ada@example.com", "message": "not json"}),
            json!({"timestamp": "2024-05-01T12:00:00.000Z", "node": node, "dialect": "jac",
                   "target": "lobby", "direction": "received", "username": "",
                   "message": r#"{"type":"channel","channel_ids":["lobby"],"data":{"hi":1}}"#}),
            json!({"timestamp": "2024-05-01T12:00:00.000Z", "node": node, "dialect": "channel",
                   "target": "lobby", "direction": "sent", "username": "",
                   "message": r#"{"hi":1}"#}),
            json!({"timestamp": "2024-05-01T12:00:00.000Z", "node": node, "dialect": "jac",
                   "target": "/websocket", "direction": "rejected", "reason": "invalid_json",
                   "username": "", "message": "{"}),
        ]
    );
}

#[tokio::test]
async fn log_messages_are_cut_to_500_characters() {
    let clock = ManualClock::new(T0);
    let server = server(&clock).await;
    let admin = admin_token(&server).await;
    let mut guest = join(&server, "chat", NamespaceOptions::default()).await;
    let long = format!("{{\"text\":\"{}\"}}", "é".repeat(600));
    guest.send_text(&long).await.expect("send");
    guest.recv_json().await.expect("own copy");
    let stats = stats_when(&server, &admin, |s| !entries(s).is_empty()).await;
    let message = entries(&stats)[0]["message"]
        .as_str()
        .expect("message")
        .to_string();
    assert_eq!(message.chars().count(), 500);
    assert!(long.starts_with(&message));
}

#[tokio::test]
async fn the_log_forgets_old_entries_and_keeps_at_most_its_maximum() {
    let clock = ManualClock::new(T0);
    let server = server_with(&clock, |config| config.stats.activity_log_max = 3).await;
    let admin = admin_token(&server).await;
    let mut tight = join(&server, "tight", NamespaceOptions::default()).await;
    // `tight` relays nothing and allows one message a second: each message is one entry,
    // accepted or refused. Each is in the log before the clock moves on.
    let mut full = Value::Null;
    for n in 0..4 {
        clock.advance(Duration::from_secs(1));
        let message = format!(r#"{{"n":{n}}}"#);
        tight.send_text(&message).await.expect("send");
        full = stats_when(&server, &admin, |s| {
            entries(s).last().is_some_and(|e| e["message"] == message)
        })
        .await;
    }
    let kept: Vec<Value> = entries(&full)
        .iter()
        .map(|e| e["message"].clone())
        .collect();
    assert_eq!(
        kept,
        vec![
            json!(r#"{"n":1}"#),
            json!(r#"{"n":2}"#),
            json!(r#"{"n":3}"#)
        ]
    );

    clock.advance(Duration::from_secs(299));
    let aging = stats(&server, &admin).await;
    assert_eq!(
        entries(&aging).len(),
        2,
        "the first of the three is 301 s old: {aging:#}"
    );
    clock.advance(Duration::from_secs(10));
    assert!(entries(&stats(&server, &admin).await).is_empty());
}

#[tokio::test]
async fn with_the_activity_log_off_messages_still_count_but_nothing_is_logged() {
    let clock = ManualClock::new(T0);
    let server = server_with(&clock, |config| config.stats.activity_log = false).await;
    let admin = admin_token(&server).await;
    let mut guest = join(&server, "chat", NamespaceOptions::default()).await;
    guest.send_text(r#"{"text":"hi"}"#).await.expect("send");
    guest.recv_json().await.expect("own copy");
    let counted = stats_when(&server, &admin, |s| s["totalMessages"] == 1).await;
    assert!(entries(&counted).is_empty(), "{counted:#}");
    assert_eq!(namespace(&counted, "/api/1/ws/chat")["totalMessages"], 1);
}
