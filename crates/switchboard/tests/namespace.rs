//! The namespace dialect (`/api/1/ws/<name>`, seed 003) over real sockets: the welcome frame,
//! client ids shared by tabs, envelopes with server-stamped identity, relays, the handle, every
//! refusal and every bad input.

mod common;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use switchboard::metrics::DropReason;

use common::{TestServer, read_http_response, upgrade_request};
use serde_json::{Value, json};
use switchboard::dialect::namespace::{
    HookError, Namespace, NamespaceHandle, NamespaceLimits, NamespaceStatus, Relay,
};

use switchboard_client::{ClientError, Incoming, NamespaceClient, NamespaceOptions, http};
use tokio::io::AsyncWriteExt;

/// A uuid a browser might have stored (upper case, to check normalisation).
const TAB_UUID: &str = "3F2504E0-4F89-41D3-9A0C-0305E82C3301";

struct Namespaces {
    chat: NamespaceHandle,
    cursors: NamespaceHandle,
    quiet: NamespaceHandle,
    /// `on_connect` / `on_disconnect` calls of `chat`: (event, client id, username).
    lifecycle: Arc<Mutex<Vec<(String, String, String)>>>,
}

async fn server() -> (TestServer, Namespaces) {
    server_with(|_| {}).await
}

async fn server_with(tweak: impl FnOnce(&mut switchboard::Config)) -> (TestServer, Namespaces) {
    let lifecycle = Arc::new(Mutex::new(Vec::new()));
    let mut handles = None;
    let seen = lifecycle.clone();
    let server = TestServer::start_with_builder(tweak, |builder| {
        let on_connect_log = seen.clone();
        let on_disconnect_log = seen.clone();
        let chat = builder
            .namespace(
                Namespace::new("chat")
                    .relay(Relay::Broadcast)
                    .limits(NamespaceLimits {
                        max_message_bytes: 1024,
                        messages_per_sec: 50,
                    })
                    .on_connect(move |client, user| {
                        let log = on_connect_log.clone();
                        async move {
                            let name = user.username().unwrap_or("").to_string();
                            log.lock().unwrap().push((
                                "connect".into(),
                                client.id().to_string(),
                                name,
                            ));
                        }
                    })
                    .on_disconnect(move |client, user| {
                        let log = on_disconnect_log.clone();
                        async move {
                            let name = user.username().unwrap_or("").to_string();
                            log.lock().unwrap().push((
                                "disconnect".into(),
                                client.id().to_string(),
                                name,
                            ));
                        }
                    })
                    .on_message(|_client, data: Value, _user| async move {
                        match data["type"].as_str() {
                            Some("fail") => Err(HookError::new("database password is hunter2")),
                            Some("panic") => panic!("secret internal detail"),
                            Some("question") => Ok(Some(json!({"type": "answer", "value": 42}))),
                            _ => Ok(None),
                        }
                    }),
            )
            .expect("chat");
        let cursors = builder
            .namespace(Namespace::new("cursors").relay(Relay::BroadcastOthers))
            .expect("cursors");
        let quiet = builder
            .namespace(Namespace::new("quiet").limits(NamespaceLimits {
                max_message_bytes: 1024,
                messages_per_sec: 5,
            }))
            .expect("quiet");
        builder
            .namespace(
                Namespace::new("members")
                    .require_auth(true)
                    .relay(Relay::Broadcast),
            )
            .expect("members");
        builder
            .namespace(Namespace::new("admin").require_roles(["admin", "root"]))
            .expect("admin");
        builder
            .namespace(
                Namespace::new("hello").on_connect(|client, user| async move {
                    let name = user.username().unwrap_or("guest").to_string();
                    client.send(&json!({"type": "welcome", "to": name, "username": "forged"}));
                }),
            )
            .expect("hello");
        handles = Some((chat, cursors, quiet));
    })
    .await;
    let (chat, cursors, quiet) = handles.expect("registered");
    (
        server,
        Namespaces {
            chat,
            cursors,
            quiet,
            lifecycle,
        },
    )
}

async fn join(server: &TestServer, name: &str) -> NamespaceClient {
    join_with(server, name, NamespaceOptions::default()).await
}

async fn join_with(server: &TestServer, name: &str, options: NamespaceOptions) -> NamespaceClient {
    NamespaceClient::connect(&server.ws, name, &options)
        .await
        .expect("connect")
}

/// The next envelope, which must be an error with `code`.
async fn expect_error(client: &mut NamespaceClient, code: u16) -> Value {
    let frame = client.recv_json().await.expect("error envelope");
    assert_eq!(frame["success"], false, "{frame}");
    assert_eq!(frame["code"], code, "{frame}");
    assert_eq!(frame["username"], "", "{frame}");
    assert!(
        frame["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{frame}"
    );
    frame
}

/// A 401 envelope whose message says `why` arrives within `within` (a background check, such as
/// token expiry or revocation, sends it), then the socket closes with 4401.
async fn expect_logged_out(client: &mut NamespaceClient, why: &str, within: Duration) {
    match client.recv(within).await {
        Ok(Incoming::Json(frame)) => {
            assert_eq!(frame["code"], 401, "{frame}");
            assert!(frame["error"].as_str().unwrap().contains(why), "{frame}");
        }
        other => panic!("expected the {why} error, got {other:?}"),
    }
    expect_close(client, 4401).await;
}

/// The socket is still open and served: an app-level ping gets its pong.
async fn assert_alive(client: &mut NamespaceClient) {
    client
        .send_json(&json!({"type": "ping"}))
        .await
        .expect("ping");
    let pong = client.recv_json().await.expect("pong");
    assert_eq!(pong["data"]["type"], "pong", "{pong}");
}

/// The close code the server ends with, skipping nothing: the next thing must be the close.
async fn expect_close(client: &mut NamespaceClient, code: u16) {
    match client.recv(Duration::from_secs(10)).await {
        Ok(Incoming::Closed { code: got, .. }) => assert_eq!(got, Some(code)),
        other => panic!("expected close {code}, got {other:?}"),
    }
}

fn is_v4_uuid(text: &str) -> bool {
    text.len() == 36
        && text == text.to_lowercase()
        && text.chars().nth(14) == Some('4')
        && text.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

#[tokio::test]
async fn the_first_frame_is_the_connected_envelope() {
    let (server, _ns) = server().await;
    let mut anonymous = NamespaceClient::open(&server.ws, "chat", &NamespaceOptions::default())
        .await
        .expect("open");
    let welcome = anonymous.recv_json().await.expect("welcome");
    let client_id = welcome["data"]["clientId"]
        .as_str()
        .expect("clientId")
        .to_string();
    assert!(is_v4_uuid(&client_id), "{client_id}");
    assert_eq!(
        welcome,
        json!({"success": true, "data": {"type": "connected", "clientId": client_id,
               "namespace": "/api/1/ws/chat", "username": ""}})
    );

    let (token, _user) = server.user("ada@example.com").await;
    let named = join_with(&server, "chat", NamespaceOptions::default().bearer(token)).await;
    assert_eq!(named.welcome["username"], "ada@example.com");
}

#[tokio::test]
async fn a_uuid_is_kept_in_lower_case_and_anything_else_is_replaced() {
    let (server, _ns) = server().await;
    let kept = join_with(&server, "chat", NamespaceOptions::default().uuid(TAB_UUID)).await;
    assert_eq!(kept.client_id(), TAB_UUID.to_lowercase());
    for bad in ["not-a-uuid", "3f2504e04f8941d39a0c0305e82c3301", "<script>"] {
        let replaced = join_with(&server, "chat", NamespaceOptions::default().uuid(bad)).await;
        assert!(
            is_v4_uuid(replaced.client_id()),
            "{bad}: {}",
            replaced.client_id()
        );
    }
    // A reconnecting client keeps its id.
    kept.close().await.expect("close");
    let again = join_with(&server, "chat", NamespaceOptions::default().uuid(TAB_UUID)).await;
    assert_eq!(again.client_id(), TAB_UUID.to_lowercase());
}

#[tokio::test]
async fn an_unknown_namespace_is_404_before_the_upgrade() {
    let (server, _ns) = server().await;
    for path in ["/api/1/ws/nope", "/api/1/ws/chat/extra"] {
        let mut stream = tokio::net::TcpStream::connect(&server.addr)
            .await
            .expect("tcp");
        stream
            .write_all(upgrade_request(&server.addr, path).as_bytes())
            .await
            .expect("write");
        let (status, _body) = read_http_response(&mut stream).await;
        assert_eq!(status, 404, "{path}");
    }
    // A query string that cannot be parsed (here: two uuids) is refused before the upgrade too.
    let mut stream = tokio::net::TcpStream::connect(&server.addr)
        .await
        .expect("tcp");
    stream
        .write_all(upgrade_request(&server.addr, "/api/1/ws/chat?uuid=a&uuid=b").as_bytes())
        .await
        .expect("write");
    let (status, body) = read_http_response(&mut stream).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("invalid_query"), "{body}");
    // The server is unaffected.
    let mut client = join(&server, "chat").await;
    assert_alive(&mut client).await;
}

#[tokio::test]
async fn on_connect_can_greet_the_new_socket_after_its_connected_frame() {
    let (server, _ns) = server().await;
    let (token, _user) = server.user("ada@example.com").await;
    let mut ada = join_with(&server, "hello", NamespaceOptions::default().bearer(token)).await;
    let mut bystander = join(&server, "hello").await;
    assert_eq!(
        ada.recv_json().await.expect("welcome"),
        json!({"success": true, "data": {"type": "welcome", "to": "ada@example.com", "username": ""}})
    );
    assert_eq!(
        bystander.recv_json().await.expect("own welcome")["data"]["to"],
        "guest"
    );
    assert!(
        ada.is_silent_for(Duration::from_millis(200)).await,
        "only its own greeting"
    );
}

#[tokio::test]
async fn sockets_sharing_a_uuid_each_get_sends_once_and_close_alone() {
    let (server, ns) = server().await;
    let options = NamespaceOptions::default().uuid(TAB_UUID);
    let mut stale = join_with(&server, "chat", options.clone()).await;
    let mut live = join_with(&server, "chat", options).await;
    let mut other = join(&server, "chat").await;
    let id = TAB_UUID.to_lowercase();
    assert_eq!(stale.client_id(), id);
    assert_eq!(live.client_id(), id);

    assert_eq!(ns.chat.send_to_client(&id, &json!({"type": "private"})), 2);
    for tab in [&mut stale, &mut live] {
        let frame = tab.recv_json().await.expect("private");
        assert_eq!(
            frame,
            json!({"success": true, "data": {"type": "private", "username": ""}})
        );
    }
    assert_eq!(ns.chat.broadcast(&json!({"type": "all"})), 3);
    for client in [&mut stale, &mut live, &mut other] {
        assert_eq!(
            client.recv_json().await.expect("broadcast")["data"]["type"],
            "all"
        );
        assert!(
            client.is_silent_for(Duration::from_millis(200)).await,
            "once only"
        );
    }
    let stats = ns.chat.stats();
    assert_eq!((stats.sockets, stats.clients, stats.users), (3, 2, 0));
    assert_eq!(stats.status, NamespaceStatus::Red, "no message yet");

    stale.close().await.expect("close");
    // The stale socket's close removed only itself: the live tab still gets its sends.
    for _ in 0..200 {
        if ns.chat.stats().sockets == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(ns.chat.stats().sockets, 2);
    assert_eq!(ns.chat.send_to_client(&id, &json!({"type": "last"})), 1);
    assert_eq!(
        live.recv_json().await.expect("last")["data"]["type"],
        "last"
    );
    // The same uuid in another namespace is another address.
    let mut cursor_tab = join_with(
        &server,
        "cursors",
        NamespaceOptions::default().uuid(TAB_UUID),
    )
    .await;
    assert_eq!(ns.cursors.send_to_client(&id, &json!({"n": 1})), 1);
    assert_eq!(
        cursor_tab.recv_json().await.expect("cursor")["data"]["n"],
        1
    );
    assert!(live.is_silent_for(Duration::from_millis(200)).await);
}

#[tokio::test]
async fn relayed_messages_carry_the_server_stamped_sender() {
    let (server, _ns) = server().await;
    let (token, _user) = server.user("ada@example.com").await;
    let mut ada = join_with(&server, "chat", NamespaceOptions::default().bearer(token)).await;
    let mut guest = join(&server, "chat").await;
    let ada_id = ada.client_id().to_string();

    ada.send_json(
        &json!({"type": "chat", "text": "hi", "username": "root", "from": "forged",
                          "nested": {"username": "kept"}}),
    )
    .await
    .expect("send");
    let expected = json!({"success": true, "data": {"type": "chat", "text": "hi",
        "nested": {"username": "kept"}, "from": ada_id, "username": "ada@example.com"}});
    // Broadcast reaches the sender too.
    assert_eq!(ada.recv_json().await.expect("own copy"), expected);
    assert_eq!(guest.recv_json().await.expect("relayed"), expected);

    guest
        .send_json(&json!({"type": "chat", "username": "ada@example.com"}))
        .await
        .expect("send");
    let relayed = ada.recv_json().await.expect("relayed");
    assert_eq!(relayed["data"]["username"], "");
    assert_eq!(relayed["data"]["from"], guest.client_id());
}

#[tokio::test]
async fn broadcast_others_skips_only_the_sending_socket() {
    let (server, _ns) = server().await;
    let options = NamespaceOptions::default().uuid(TAB_UUID);
    let mut sender = join_with(&server, "cursors", options.clone()).await;
    let mut same_uuid_tab = join_with(&server, "cursors", options).await;
    let mut other = join(&server, "cursors").await;
    sender
        .send_json(&json!({"type": "cursor", "x": 1, "y": 2}))
        .await
        .expect("send");
    for client in [&mut same_uuid_tab, &mut other] {
        let frame = client.recv_json().await.expect("cursor");
        assert_eq!(frame["data"]["x"], 1);
        assert_eq!(frame["data"]["from"], TAB_UUID.to_lowercase());
    }
    assert!(sender.is_silent_for(Duration::from_millis(300)).await);
}

#[tokio::test]
async fn the_handle_broadcasts_as_the_system_or_as_a_named_speaker() {
    let (server, ns) = server().await;
    let mut client = join(&server, "chat").await;
    let mut elsewhere = join(&server, "cursors").await;
    assert_eq!(
        ns.chat
            .broadcast(&json!({"type": "notice", "username": "x"})),
        1
    );
    assert_eq!(
        client.recv_json().await.expect("notice"),
        json!({"success": true, "data": {"type": "notice", "username": ""}})
    );
    ns.chat
        .broadcast_from(&json!({"type": "todo-created"}), "grace");
    assert_eq!(
        client.recv_json().await.expect("named"),
        json!({"success": true, "data": {"type": "todo-created", "username": "grace"}})
    );
    assert_eq!(ns.chat.send_to_client("no-such-client", &json!({})), 0);
    assert!(elsewhere.is_silent_for(Duration::from_millis(200)).await);
    assert_eq!(ns.chat.path(), "/api/1/ws/chat");
}

#[tokio::test]
async fn bad_frames_get_400_and_change_nothing() {
    let (server, ns) = server().await;
    let mut bad = join(&server, "chat").await;
    let mut bystander = join(&server, "chat").await;
    for text in ["{not json", "[1,2]", "\"text\"", "42", "null"] {
        bad.send_text(text).await.expect("send");
        let error = expect_error(&mut bad, 400).await;
        assert!(
            error["error"]
                .as_str()
                .unwrap()
                .starts_with("Invalid message format")
        );
    }
    bad.send_binary(vec![1, 2, 3]).await.expect("send");
    expect_error(&mut bad, 400).await;
    assert_alive(&mut bad).await;
    assert!(bystander.is_silent_for(Duration::from_millis(200)).await);
    assert_eq!(ns.chat.stats().messages, 0);
    assert_alive(&mut bystander).await;
}

#[tokio::test]
async fn an_oversized_message_gets_413_and_a_giant_frame_closes_1009() {
    let (server, _ns) = server().await;
    let mut client = join(&server, "chat").await;
    let mut bystander = join(&server, "chat").await;
    let big = json!({"type": "chat", "requestId": "big-1", "text": "x".repeat(2000)});
    client.send_json(&big).await.expect("send");
    let error = expect_error(&mut client, 413).await;
    assert_eq!(error["requestId"], "big-1");
    assert_alive(&mut client).await;
    assert!(bystander.is_silent_for(Duration::from_millis(200)).await);

    // Over 1 MiB, whatever [limits] max_frame_bytes says (64 KiB here), closes with 1009;
    // 100 KiB is only over the namespace's limit.
    client
        .send_text(&format!(r#"{{"text":"{}"}}"#, "y".repeat(100 * 1024)))
        .await
        .expect("send");
    expect_error(&mut client, 413).await;
    let _ = client
        .send_text(&format!(r#"{{"text":"{}"}}"#, "z".repeat(1024 * 1024 + 1)))
        .await;
    expect_close(&mut client, 1009).await;
    assert_alive(&mut bystander).await;
}

#[tokio::test]
async fn over_the_rate_the_first_of_a_burst_and_each_request_get_429() {
    let (server, ns) = server().await;
    let mut flooder = join(&server, "quiet").await;
    let mut neighbour = join(&server, "quiet").await;
    // Pings count neither as messages nor against the rate.
    for _ in 0..10 {
        assert_alive(&mut flooder).await;
    }
    for n in 0..5 {
        flooder.send_json(&json!({"n": n})).await.expect("send");
    }
    for n in 5..9 {
        flooder.send_json(&json!({"n": n})).await.expect("send");
    }
    flooder
        .send_json(&json!({"n": 9, "requestId": "r-9"}))
        .await
        .expect("send");
    let first = expect_error(&mut flooder, 429).await;
    assert!(first.get("requestId").is_none(), "{first}");
    let own = expect_error(&mut flooder, 429).await;
    assert_eq!(own["requestId"], "r-9");
    assert!(
        flooder.is_silent_for(Duration::from_millis(200)).await,
        "the rest were dropped"
    );
    let stats = ns.quiet.stats();
    assert_eq!(stats.messages, 5);
    assert_eq!(stats.messages_rate_limited, 5);
    assert_eq!(
        server.metric(|m| m.dropped(DropReason::RateLimited).get()),
        5,
        "in /metrics too"
    );
    // The connection stays, and other clients have their own budget.
    assert_alive(&mut flooder).await;
    neighbour
        .send_json(&json!({"n": 0, "requestId": 1}))
        .await
        .expect("send");
    assert_alive(&mut neighbour).await;
}

#[tokio::test]
async fn on_message_can_answer_a_request_and_its_failures_are_a_generic_500() {
    let (server, ns) = server().await;
    let mut client = join(&server, "chat").await;
    let mut bystander = join(&server, "chat").await;

    client
        .send_json(&json!({"type": "question", "requestId": 7}))
        .await
        .expect("send");
    // The relay (broadcast, sender included) comes first, then the answer.
    let relayed = client.recv_json().await.expect("relay");
    assert_eq!(relayed["data"]["type"], "question");
    assert_eq!(relayed["data"]["requestId"], 7);
    assert_eq!(
        client.recv_json().await.expect("answer"),
        json!({"success": true, "data": {"type": "answer", "value": 42, "username": ""},
               "requestId": 7})
    );
    assert_eq!(
        bystander.recv_json().await.expect("relay")["data"]["type"],
        "question"
    );

    for kind in ["fail", "panic"] {
        client
            .send_json(&json!({"type": kind, "requestId": kind}))
            .await
            .expect("send");
        let error = expect_error(&mut client, 500).await;
        assert_eq!(error["requestId"], kind);
        let text = error.to_string();
        assert!(
            !text.contains("hunter2") && !text.contains("secret"),
            "{text}"
        );
        assert_alive(&mut client).await;
    }
    // A failed hook skips the relay.
    assert!(bystander.is_silent_for(Duration::from_millis(200)).await);
    assert_eq!(ns.chat.stats().messages, 3);
    assert_eq!(ns.chat.stats().status, NamespaceStatus::Green);
}

#[tokio::test]
async fn hooks_see_connects_and_disconnects_with_the_user() {
    let (server, ns) = server().await;
    let (token, _user) = server.user("ada@example.com").await;
    let client = join_with(&server, "chat", NamespaceOptions::default().bearer(token)).await;
    let id = client.client_id().to_string();
    client.close().await.expect("close");
    let expected = vec![
        (
            "connect".to_string(),
            id.clone(),
            "ada@example.com".to_string(),
        ),
        ("disconnect".to_string(), id, "ada@example.com".to_string()),
    ];
    for _ in 0..200 {
        if *ns.lifecycle.lock().unwrap() == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("hooks saw {:?}", ns.lifecycle.lock().unwrap());
}

#[tokio::test]
async fn a_namespace_requiring_a_login_refuses_with_401_then_4401() {
    let (server, _ns) = server().await;
    let mut anonymous = NamespaceClient::open(&server.ws, "members", &NamespaceOptions::default())
        .await
        .expect("open");
    expect_error(&mut anonymous, 401).await;
    expect_close(&mut anonymous, 4401).await;

    let options = NamespaceOptions {
        bearer: Some("not.a.token".into()),
        ..NamespaceOptions::default()
    };
    let mut forged = NamespaceClient::open(&server.ws, "members", &options)
        .await
        .expect("open");
    expect_error(&mut forged, 401).await;
    expect_close(&mut forged, 4401).await;

    let (token, user) = server.user("ada@example.com").await;
    let record = server
        .app
        .accounts()
        .user_by_email("ada@example.com")
        .await
        .expect("lookup")
        .expect("user");
    let expired = server.app.authenticator().issue_with_lifetime(&record, -10);
    let options = NamespaceOptions::default().bearer(expired);
    let mut late = NamespaceClient::open(&server.ws, "members", &options)
        .await
        .expect("open");
    let error = expect_error(&mut late, 401).await;
    assert!(
        error["error"].as_str().unwrap().contains("expired"),
        "{error}"
    );
    expect_close(&mut late, 4401).await;

    // Each token form admits: header, ?auth=, cookie.
    let forms = [
        NamespaceOptions::default().bearer(token.clone()),
        NamespaceOptions {
            auth_query: Some(format!("Bearer {token}")),
            ..NamespaceOptions::default()
        },
        NamespaceOptions {
            cookie_token: Some(token.clone()),
            ..NamespaceOptions::default()
        },
    ];
    for options in forms {
        let mut member = join_with(&server, "members", options).await;
        assert_eq!(member.welcome["username"], user["email"]);
        assert_alive(&mut member).await;
    }
}

#[tokio::test]
async fn a_user_without_a_listed_role_is_refused_with_403_then_4403() {
    let (server, _ns) = server().await;
    let (token, _user) = server.user("ada@example.com").await;
    let options = NamespaceOptions::default().bearer(token.clone());
    let mut plain = NamespaceClient::open(&server.ws, "admin", &options)
        .await
        .expect("open");
    expect_error(&mut plain, 403).await;
    expect_close(&mut plain, 4403).await;

    server
        .app
        .grant_role("ada@example.com", "root")
        .await
        .expect("grant");
    let mut admin = join_with(&server, "admin", options).await;
    assert_alive(&mut admin).await;
}

#[tokio::test]
async fn a_revoked_token_closes_auth_namespaces_and_anonymises_open_ones() {
    let (server, _ns) = server().await;
    let (token, _user) = server.user("ada@example.com").await;
    let options = NamespaceOptions::default().bearer(token.clone());
    let mut member = join_with(&server, "members", options.clone()).await;
    let mut chatter = join_with(&server, "chat", options).await;
    let mut bystander = join(&server, "chat").await;

    let revoked = http::post_json(&server.addr, "/user/revoke", &json!({}), Some(&token))
        .await
        .expect("revoke");
    assert_eq!(revoked.status, 200, "{}", revoked.text());

    expect_error(&mut member, 401).await;
    expect_close(&mut member, 4401).await;

    expect_error(&mut chatter, 401).await;
    chatter
        .send_json(&json!({"type": "chat"}))
        .await
        .expect("send");
    assert_eq!(
        chatter.recv_json().await.expect("own")["data"]["username"],
        ""
    );
    assert_eq!(
        bystander.recv_json().await.expect("relay")["data"]["username"],
        ""
    );
}

#[tokio::test]
async fn an_expiring_token_closes_its_session_within_a_heartbeat_interval() {
    let (server, _ns) = server_with(|config| config.heartbeat.interval_ms = 1000).await;
    let _ = server.user("ada@example.com").await;
    let record = server
        .app
        .accounts()
        .user_by_email("ada@example.com")
        .await
        .expect("lookup")
        .expect("user");
    let short = server.app.authenticator().issue_with_lifetime(&record, 2);
    let options = NamespaceOptions::default().bearer(short.clone());
    let mut member = join_with(&server, "members", options).await;
    let mut open = join_with(&server, "chat", NamespaceOptions::default().bearer(short)).await;
    // Within the token's 2 s plus one heartbeat interval (waiting generously).
    expect_logged_out(&mut member, "expired", Duration::from_secs(15)).await;
    // An open namespace does not need the login: its socket stays.
    assert_alive(&mut open).await;
}

#[tokio::test]
async fn registering_a_bad_or_duplicate_name_is_refused() {
    let mut builder = switchboard::Switchboard::builder(switchboard::Config::default());
    for bad in ["", "a/b", "has space", "é", &"x".repeat(65)] {
        assert!(builder.namespace(Namespace::new(bad)).is_err(), "{bad:?}");
    }
    builder.namespace(Namespace::new("ok_-9")).expect("valid");
    assert!(builder.namespace(Namespace::new("ok_-9")).is_err());
}

#[tokio::test]
async fn the_rust_client_reports_a_refusal_as_a_connect_error() {
    let (server, _ns) = server().await;
    match NamespaceClient::connect(&server.ws, "members", &NamespaceOptions::default()).await {
        Err(ClientError::Unexpected(frame)) => assert!(frame.contains("401"), "{frame}"),
        Ok(_) => panic!("connected without a login"),
        Err(other) => panic!("unexpected error {other}"),
    }
}

#[tokio::test]
async fn a_token_revoked_elsewhere_closes_its_session_within_a_heartbeat_interval() {
    let (server, _ns) = server_with(|config| config.heartbeat.interval_ms = 1000).await;
    let (token, user) = server.user("ada@example.com").await;
    let mut member = join_with(
        &server,
        "members",
        NamespaceOptions::default().bearer(token),
    )
    .await;
    // As another node or `switchboard user revoke` on a shared database would: only the store
    // learns of it, not this process.
    server
        .app
        .authenticator()
        .store()
        .bump_token_version(user["id"].as_str().expect("id"))
        .await
        .expect("bump");
    expect_logged_out(&mut member, "revoked", Duration::from_secs(15)).await;
}

#[tokio::test]
async fn server_code_reaches_a_namespace_client_by_its_scoped_address() {
    let (server, _ns) = server().await;
    let mut tab = join_with(&server, "chat", NamespaceOptions::default().uuid(TAB_UUID)).await;
    let mut other_namespace = join_with(
        &server,
        "cursors",
        NamespaceOptions::default().uuid(TAB_UUID),
    )
    .await;
    let address = format!("chat:{}", TAB_UUID.to_lowercase());
    server
        .app
        .notify_clients(&[address], &json!({"type": "from-a-walker"}));
    assert_eq!(
        tab.recv_json().await.expect("delivery"),
        json!({"success": true, "data": {"type": "from-a-walker", "username": ""}})
    );
    assert!(
        other_namespace
            .is_silent_for(Duration::from_millis(200))
            .await
    );
}
