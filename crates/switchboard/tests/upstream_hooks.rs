//! The team's backend deciding who connects (`on_connect = "upstream"`, namespaces and channel
//! rules) and serving channel messages (`on_message = "upstream"` on a channel rule): the signed
//! request each one gets, what a client sees when the backend admits, refuses or fails, and that a
//! refusal or failure never leaves a connection hanging.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use common::TestServer;
use serde_json::{Value, json};
use switchboard::config::{ChannelRuleConfig, OnConnect, OnMessageConfig};
use switchboard::dialect::channel::rules::ChannelRule;
use switchboard::dialect::namespace::{Namespace, NamespaceConfig, Relay};
use switchboard_client::channel::ChannelClient;
use switchboard_client::{Incoming, NamespaceClient, NamespaceOptions};

const SECRET: &str = "hook upstream secret";
const WAIT: Duration = Duration::from_secs(10);
const QUIET: Duration = Duration::from_millis(300);

/// Every request the backend received, signature checked, in order.
type Seen = Arc<Mutex<Vec<Value>>>;

/// The backend:
/// - `/admit` allows any namespace or channel whose name holds no `secret`, and refuses the
///   others with the reason `no entry to NAME`;
/// - `/desk` answers a channel message with a reply and a notification to the channel;
/// - `/fail` answers 500, `/slow` too late, `/bad` a body of the wrong shape.
async fn backend(seen: Seen) -> String {
    let verified = move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
        let request: Value = serde_json::from_slice(&body).expect("json");
        let valid = common::backend::signed(&headers, &body, SECRET);
        if valid {
            seen.lock().unwrap().push(request.clone());
        }
        valid.then_some(request)
    };
    let admit = verified.clone();
    let desk = verified;
    let app = axum::Router::new()
        .route(
            "/admit",
            axum::routing::post(move |headers, body| async move {
                let Some(request) = admit(headers, body) else {
                    return (StatusCode::UNAUTHORIZED, String::new());
                };
                let name = request["namespace"]
                    .as_str()
                    .or(request["channel"].as_str())
                    .unwrap_or_default();
                let answer = if name.contains("secret") {
                    json!({"allow": false, "reason": format!("no entry to {name}")})
                } else {
                    json!({"allow": true})
                };
                (StatusCode::OK, answer.to_string())
            }),
        )
        .route(
            "/desk",
            axum::routing::post(move |headers, body| async move {
                let Some(request) = desk(headers, body) else {
                    return (StatusCode::UNAUTHORIZED, String::new());
                };
                let channel = request["channel"].as_str().unwrap_or_default().to_owned();
                let answer = json!({
                    "reply": {"echo": request["data"], "caller": request["caller"]},
                    "notify": [{"target": {"channels": [channel]}, "event": "said",
                                "data": {"text": request["data"]["param"]["text"]}}],
                });
                (StatusCode::OK, answer.to_string())
            }),
        );
    common::backend::serve(common::backend::with_failures(
        app,
        r#"{"allow": true}"#,
        r#"{"allow": "yes"}"#,
    ))
    .await
}

/// Namespaces `door`, `secret-door` (admitted by `/admit`), `members` (login first, then
/// `/admit`), and `failing`, `slow`, `bad` (admitted by the failing endpoints); channel rules
/// `vip.` (joins admitted by `/admit`), `desk.` (messages to `/desk`), `broken.` (messages to
/// `/fail`) and `gate.` (joins admitted by `/fail`).
async fn server(seen: &Seen) -> TestServer {
    let base = backend(seen.clone()).await;
    let rules_base = base.clone();
    TestServer::start_built(
        move |config| {
            config.upstream.secret = Some(SECRET.into());
            config.upstream.timeout_ms = 500;
            // From config tables, as the binary reads them.
            config.channel = vec![
                ChannelRuleConfig {
                    prefix: "vip.".into(),
                    on_connect: OnConnect::Upstream,
                    upstream: Some(format!("{rules_base}/admit")),
                    ..ChannelRuleConfig::default()
                },
                ChannelRuleConfig {
                    prefix: "desk.".into(),
                    on_message: OnMessageConfig::Upstream,
                    upstream: Some(format!("{rules_base}/desk")),
                    ..ChannelRuleConfig::default()
                },
            ];
        },
        move |mut builder| {
            let config: NamespaceConfig = serde_json::from_value(json!({
                "name": "door", "on_connect": "upstream", "on_message": "broadcast",
                "upstream": format!("{base}/admit"),
            }))
            .expect("table");
            assert_eq!(config.on_connect, OnConnect::Upstream);
            builder
                .namespace(Namespace::from_config(&config))
                .expect("door");
            for (name, path) in [
                ("secret-door", "admit"),
                ("failing", "fail"),
                ("slow", "slow"),
                ("bad", "bad"),
            ] {
                builder
                    .namespace(Namespace::new(name).admit_by_upstream(format!("{base}/{path}")))
                    .expect(name);
            }
            builder
                .namespace(
                    Namespace::new("members")
                        .require_auth(true)
                        .admit_by_upstream(format!("{base}/admit")),
                )
                .expect("members");
            for rule in [
                ChannelRule::new("broken.").upstream(format!("{base}/fail")),
                ChannelRule::new("gate.").admit_by_upstream(format!("{base}/fail")),
            ] {
                builder = builder.channel(rule);
            }
            builder
        },
    )
    .await
}

async fn expect_close(
    next: Result<Incoming, switchboard_client::ClientError>,
    code: u16,
) -> String {
    match next {
        Ok(Incoming::Closed { code: got, reason }) => {
            assert_eq!(got, Some(code), "{reason}");
            reason
        }
        other => panic!("expected close {code}, got {other:?}"),
    }
}

fn requests(seen: &Seen) -> Vec<Value> {
    seen.lock().unwrap().clone()
}

#[tokio::test]
async fn an_admitted_namespace_client_connects_and_the_backend_saw_who() {
    let seen = Seen::default();
    let server = server(&seen).await;
    let none = NamespaceOptions::default();
    let mut first = NamespaceClient::connect(&server.ws, "door", &none)
        .await
        .expect("admitted");
    let mut second = NamespaceClient::connect(&server.ws, "door", &none)
        .await
        .expect("admitted");
    let asked = requests(&seen);
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert_eq!(
        asked[0],
        json!({
            "namespace": "door", "event": "connect", "data": null,
            "caller": {"user_id": null, "username": "", "roles": [],
                       "client_id": first.welcome["clientId"]},
            "node_id": server.app.node_id(),
        })
    );
    // The admission changes nothing else: the namespace still relays.
    first.send_json(&json!({"text": "hi"})).await.expect("send");
    assert_eq!(
        second.recv_json().await.expect("relay")["data"]["text"],
        "hi"
    );
    assert_eq!(
        first.recv_json().await.expect("relay")["data"]["text"],
        "hi"
    );
}

#[tokio::test]
async fn a_namespace_refusal_is_a_403_envelope_with_the_reason_then_4403() {
    let seen = Seen::default();
    let server = server(&seen).await;
    let mut refused =
        NamespaceClient::open(&server.ws, "secret-door", &NamespaceOptions::default())
            .await
            .expect("upgrade");
    let error = refused.recv_json().await.expect("error");
    assert_eq!(
        error,
        json!({"success": false, "error": "no entry to secret-door", "code": 403, "username": ""})
    );
    let reason = expect_close(refused.recv(WAIT).await, 4403).await;
    assert_eq!(reason, "no entry to secret-door");
    // Nothing stays registered once the socket is gone.
    for _ in 0..100 {
        if server.app.hub().connection_count() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the refused connection stayed registered");
}

#[tokio::test]
async fn the_login_check_comes_first_and_the_backend_sees_the_user() {
    let seen = Seen::default();
    let server = server(&seen).await;
    let mut anonymous = NamespaceClient::open(&server.ws, "members", &NamespaceOptions::default())
        .await
        .expect("upgrade");
    assert_eq!(anonymous.recv_json().await.expect("error")["code"], 401);
    expect_close(anonymous.recv(WAIT).await, 4401).await;
    assert!(
        requests(&seen).is_empty(),
        "a refused login never reaches the backend"
    );

    let (token, user) = server.user("ada@example.com").await;
    let member = NamespaceClient::connect(
        &server.ws,
        "members",
        &NamespaceOptions::default().bearer(token),
    )
    .await
    .expect("admitted");
    let asked = requests(&seen);
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0]["caller"]["user_id"], user["id"]);
    assert_eq!(asked[0]["caller"]["username"], member.welcome["username"]);
    assert_eq!(asked[0]["caller"]["client_id"], member.welcome["clientId"]);
}

#[tokio::test]
async fn a_failing_admission_refuses_with_the_failure_code_and_closes() {
    let seen = Seen::default();
    let server = server(&seen).await;
    for (namespace, status, code) in [
        ("failing", 502, "upstream_error"),
        ("slow", 504, "upstream_timeout"),
        ("bad", 502, "upstream_error"),
    ] {
        let mut client = NamespaceClient::open(&server.ws, namespace, &NamespaceOptions::default())
            .await
            .expect("upgrade");
        let error = client.recv_json().await.expect("error");
        assert_eq!(error["success"], false, "{error}");
        assert_eq!(error["code"], status, "{namespace}: {error}");
        assert!(
            error["error"].as_str().is_some_and(|e| e.starts_with(code)),
            "{namespace}: {error}"
        );
        assert!(!error.to_string().contains("boom"), "{error}");
        expect_close(client.recv(WAIT).await, 1011).await;
    }
    // The server is fine: an admitted client still connects.
    NamespaceClient::connect(&server.ws, "door", &NamespaceOptions::default())
        .await
        .expect("admitted");
}

#[tokio::test]
async fn on_connect_upstream_needs_a_url() {
    let mut builder = switchboard::Switchboard::builder(switchboard::Config::default());
    let config: NamespaceConfig =
        serde_json::from_value(json!({"name": "x", "on_connect": "upstream"})).expect("table");
    let err = builder
        .namespace(Namespace::from_config(&config))
        .expect_err("no url");
    assert!(err.to_string().contains("on_connect"), "{err}");

    let dir = tempfile::tempdir().expect("tempdir");
    for rule in [
        ChannelRuleConfig {
            prefix: "a.".into(),
            on_connect: OnConnect::Upstream,
            ..ChannelRuleConfig::default()
        },
        ChannelRuleConfig {
            prefix: "b.".into(),
            on_message: OnMessageConfig::Upstream,
            ..ChannelRuleConfig::default()
        },
    ] {
        let config = switchboard::Config {
            data_dir: dir.path().to_path_buf(),
            channel: vec![rule],
            ..switchboard::Config::default()
        };
        let err = switchboard::Switchboard::builder(config)
            .build()
            .await
            .expect_err("no url");
        assert!(err.to_string().contains("`upstream` needs a URL"), "{err}");
    }
    // A URL but no secret to sign with.
    let config = switchboard::Config {
        data_dir: dir.path().to_path_buf(),
        channel: vec![ChannelRuleConfig {
            prefix: "c.".into(),
            on_message: OnMessageConfig::Upstream,
            upstream: Some("http://127.0.0.1:9/".into()),
            ..ChannelRuleConfig::default()
        }],
        ..switchboard::Config::default()
    };
    let err = switchboard::Switchboard::builder(config)
        .build()
        .await
        .expect_err("no secret");
    assert!(err.to_string().contains("upstream.secret"), "{err}");
    assert_eq!(Relay::default(), Relay::None);
}

async fn channel(server: &TestServer, path: &str) -> ChannelClient {
    ChannelClient::connect(&server.ws, path, None)
        .await
        .expect("connect")
}

/// The next frame that is not a presence update (members joining show up as `online-update`).
async fn next(client: &mut ChannelClient) -> Value {
    loop {
        let frame = client.recv_json().await.expect("frame");
        if frame["cmd"] != "online-update" {
            return frame;
        }
    }
}

/// Nothing but presence updates arrives for a while.
async fn assert_quiet(client: &mut ChannelClient) {
    while let Ok(Incoming::Json(frame)) = client.recv(QUIET).await {
        assert_eq!(frame["cmd"], "online-update", "unexpected {frame}");
    }
}

async fn assert_alive(client: &mut ChannelClient) {
    client
        .send_json(&json!({"cmd": "ping"}))
        .await
        .expect("ping");
    assert_eq!(next(client).await["cmd"], "pong");
}

#[tokio::test]
async fn a_channel_rule_admits_each_join_through_the_backend() {
    let seen = Seen::default();
    let server = server(&seen).await;
    let mut member = channel(&server, "/ws/vip.lounge").await;
    assert!(member.is_silent_for(QUIET).await);
    assert_alive(&mut member).await;
    assert_eq!(server.app.hub().channel_size("vip.lounge"), 1);
    let asked = requests(&seen);
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0]["channel"], "vip.lounge");
    assert_eq!(asked[0]["event"], "connect");
    assert_eq!(asked[0]["data"], Value::Null);
    assert!(asked[0]["caller"]["client_id"].is_string(), "{}", asked[0]);

    // Refused on connect: an error frame with the reason, then 4403 with it.
    let mut refused = channel(&server, "/ws/vip.secret").await;
    assert_eq!(
        refused.recv_json().await.expect("error"),
        json!({"channel": "vip.secret", "cmd": "error",
               "param": {"code": "forbidden", "message": "no entry to vip.secret"}})
    );
    assert_eq!(
        expect_close(refused.recv(WAIT).await, 4403).await,
        "no entry to vip.secret"
    );

    // Refused on a later join: an error frame; the connection stays in its channels.
    member
        .send_json(&json!({"cmd": "join", "channel": "vip.secret.room"}))
        .await
        .expect("join");
    let error = member.recv_json().await.expect("error");
    assert_eq!(error["cmd"], "error");
    assert_eq!(error["channel"], "vip.secret.room");
    assert_eq!(error["param"]["code"], "forbidden");
    assert_eq!(server.app.hub().channel_size("vip.secret.room"), 0);
    let joined = member.join("vip.bar").await.expect("joined");
    assert_eq!(joined["cmd"], "joined", "{joined}");
    assert_eq!(server.app.hub().channel_size("vip.lounge"), 1);

    // Joins outside the rule never reach the backend.
    let before = requests(&seen).len();
    member.join("lobby").await.expect("joined");
    assert_eq!(requests(&seen).len(), before);
}

#[tokio::test]
async fn a_failing_channel_admission_refuses_the_connection_and_the_join() {
    let seen = Seen::default();
    let server = server(&seen).await;
    let mut refused = channel(&server, "/ws/gate.a").await;
    let error = refused.recv_json().await.expect("error");
    assert_eq!(error["param"]["code"], "upstream_error", "{error}");
    assert_eq!(error["channel"], "gate.a");
    expect_close(refused.recv(WAIT).await, 1011).await;

    let mut other = channel(&server, "/ws/lobby").await;
    other
        .send_json(&json!({"cmd": "join", "channel": "gate.b"}))
        .await
        .expect("join");
    let error = other.recv_json().await.expect("error");
    assert_eq!(error["param"]["code"], "upstream_error", "{error}");
    assert_eq!(server.app.hub().channel_size("gate.b"), 0);
    assert_alive(&mut other).await;
}

#[tokio::test]
async fn a_channel_message_goes_to_the_backend_which_replies_and_notifies() {
    let seen = Seen::default();
    let server = server(&seen).await;
    let mut sender = channel(&server, "/ws/desk.1").await;
    let mut other = channel(&server, "/ws/desk.1").await;
    sender
        .send_json(
            &json!({"channel": "desk.1", "cmd": "ask", "param": {"text": "hello"},
                           "requestId": "q1"}),
        )
        .await
        .expect("send");
    // The notification reaches every member, the sender included; the message itself is not
    // relayed.
    let said = json!({"channel": "desk.1", "cmd": "said", "param": {"text": "hello"}});
    assert_eq!(next(&mut other).await, said);
    assert_eq!(next(&mut sender).await, said);
    let reply = next(&mut sender).await;
    assert_eq!(reply["channel"], "desk.1", "{reply}");
    assert_eq!(reply["cmd"], "ask");
    assert_eq!(reply["requestId"], "q1");
    assert_eq!(
        reply["param"]["echo"],
        json!({"cmd": "ask", "param": {"text": "hello"}})
    );
    let asked = requests(&seen);
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0]["channel"], "desk.1");
    assert_eq!(asked[0]["event"], "message");
    assert_eq!(asked[0]["caller"]["user_id"], Value::Null);
    assert_quiet(&mut other).await;
}

#[tokio::test]
async fn a_failing_channel_upstream_is_an_error_frame_and_the_connection_stays() {
    let seen = Seen::default();
    let server = server(&seen).await;
    let mut sender = channel(&server, "/ws/broken.1").await;
    let mut other = channel(&server, "/ws/broken.1").await;
    sender
        .send_json(&json!({"channel": "broken.1", "cmd": "ask", "param": 1}))
        .await
        .expect("send");
    let error = next(&mut sender).await;
    assert_eq!(
        error,
        json!({"channel": "broken.1", "cmd": "error",
               "param": {"code": "upstream_error", "message": "the upstream failed"}})
    );
    assert_alive(&mut sender).await;
    assert_quiet(&mut other).await;
}
