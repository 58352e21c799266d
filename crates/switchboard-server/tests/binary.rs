//! The `switchboard` binary as a newcomer runs it: zero-config start, the demo app, the CLI,
//! config files and graceful shutdown on SIGTERM.

use std::process::Command;
use std::time::Duration;

use serde_json::json;
use switchboard_client::channel::ChannelClient;
use switchboard_client::{ConnectOptions, Incoming, JacClient, http};

mod common;

use common::{BIN, Server};

async fn register_and_login(addr: &str, email: &str) -> (String, String) {
    let creds = json!({"email": email, "password": "correct horse"});
    let registered = http::post_json(addr, "/user/register", &creds, None)
        .await
        .unwrap();
    assert_eq!(registered.status, 201, "{}", registered.text());
    login(addr, email).await
}

async fn login(addr: &str, email: &str) -> (String, String) {
    let creds = json!({"email": email, "password": "correct horse"});
    let body = http::post_json(addr, "/user/login", &creds, None)
        .await
        .unwrap()
        .json();
    (
        body["token"].as_str().expect("token").to_string(),
        format!("n::{}", body["user"]["root_id"].as_str().expect("root_id")),
    )
}

#[tokio::test]
async fn zero_config_start_creates_the_data_dir_and_serves_the_demo_page() {
    let cwd = tempfile::tempdir().unwrap();
    let server = Server::start(cwd.path(), &["--listen", "127.0.0.1:0"], &[]);
    assert!(
        cwd.path()
            .join("switchboard-data/accounts.sqlite3")
            .exists()
    );
    assert!(cwd.path().join("switchboard-data/token-secret").exists());
    let page = http::get(&server.addr, "/", None).await.unwrap();
    assert_eq!(page.status, 200);
    assert!(page.text().contains("<html"), "{}", page.text());
    let sdk = http::get(&server.addr, "/switchboard.js", None)
        .await
        .unwrap();
    assert_eq!(sdk.status, 200);
    assert!(sdk.header("content-type").unwrap().contains("javascript"));
    // The SDK's channel-dialect module, imported by switchboard.js from beside itself.
    let channel_sdk = http::get(&server.addr, "/channel.js", None).await.unwrap();
    assert_eq!(channel_sdk.status, 200);
    assert!(channel_sdk.text().contains("export class Socket"));
    let rooms = http::get(&server.addr, "/rooms", None).await.unwrap();
    assert_eq!(rooms.status, 200);
    assert!(rooms.text().contains("dialect: 'channel'"));
    assert!(server.terminate().success());
}

#[tokio::test]
async fn environment_variables_set_listen_address_and_data_dir() {
    let cwd = tempfile::tempdir().unwrap();
    let data = cwd.path().join("elsewhere");
    let server = Server::start(
        cwd.path(),
        &[],
        &[
            ("SWITCHBOARD_LISTEN", "127.0.0.1:0"),
            ("SWITCHBOARD_DATA_DIR", data.to_str().unwrap()),
        ],
    );
    assert!(data.join("accounts.sqlite3").exists());
    assert!(server.terminate().success());
}

#[tokio::test]
async fn demo_chat_walkers_behave_as_in_seed_000() {
    let cwd = tempfile::tempdir().unwrap();
    let server = Server::start(cwd.path(), &["--listen", "127.0.0.1:0"], &[]);
    let (token, root) = register_and_login(&server.addr, "alice@example.com").await;
    let mut alice = JacClient::connect(
        &server.ws(),
        ConnectOptions::bearer(&token).channel("room_123"),
    )
    .await
    .unwrap();
    let mut guest = JacClient::connect(&server.ws(), ConnectOptions::default().channel("room_123"))
        .await
        .unwrap();

    // chat_service: declares no `auth` in the seed, so it needs a login; echoes.
    let refused = guest
        .call_walker("chat_service", json!({"message": "Hello, server!"}))
        .await
        .unwrap();
    assert_eq!(refused["code"], "auth_required", "{refused}");
    let reply = alice
        .call_walker("chat_service", json!({"message": "Hello, server!"}))
        .await
        .unwrap();
    assert_eq!(reply["status"], 200);
    assert_eq!(reply["reports"], json!(["Received: Hello, server!"]));

    // send_chat_to_group: needs a login; reaches everyone in the room, default message.
    let refused = guest
        .call_walker("send_chat_to_group", json!({"channel_id": "room_123"}))
        .await
        .unwrap();
    assert_eq!(refused["code"], "auth_required");
    alice
        .send_json(&json!({"type": "walker", "walker": "send_chat_to_group", "response": true, "context": {"channel_id": "room_123"}}))
        .await
        .unwrap();
    // Alice is in the room too: the notification reaches her before the walker's reply.
    let chat = json!({"type": "chat", "data": {"message": "Hello channel!"}});
    assert_eq!(alice.recv_json().await.unwrap(), chat);
    let reply = alice.recv_json().await.unwrap();
    assert_eq!(reply["reports"], json!(["Message sent to channel!"]));
    assert_eq!(guest.recv_json().await.unwrap(), chat);

    // send_chat_to_client and send_chat_to_user, also over REST.
    let reply = alice
        .call_walker(
            "send_chat_to_client",
            json!({"client_id": guest.info.client_id.clone(), "message": "psst"}),
        )
        .await
        .unwrap();
    assert_eq!(reply["reports"], json!(["Message sent to client!"]));
    assert_eq!(
        guest.recv_json().await.unwrap(),
        json!({"type": "chat", "data": {"message": "psst"}})
    );
    let rest = http::post_json(
        &server.addr,
        "/walker/send_chat_to_user",
        &json!({"root_id": root}),
        Some(&token),
    )
    .await
    .unwrap();
    assert_eq!(
        rest.json(),
        json!({"status": 200, "reports": ["Message sent to user!"]})
    );
    assert_eq!(
        alice.recv_json().await.unwrap(),
        json!({"type": "chat", "data": {"message": "Hello user!"}})
    );

    // self_progress_notif: six notifications from 0% to 100%, each the seed's `notify_self`
    // payload as the whole frame, then the reply.
    guest
        .send_json(&json!({"type": "walker", "walker": "self_progress_notif", "response": true, "context": {}}))
        .await
        .unwrap();
    let steps = [
        ("0%", "started"),
        ("20%", "processing"),
        ("40%", "processing"),
        ("60%", "processing"),
        ("80%", "processing"),
        ("100%", "completed"),
    ];
    for (progress, status) in steps {
        assert_eq!(
            guest.recv_json().await.unwrap(),
            json!({"progress": progress, "status": status})
        );
    }
    let reply = guest.recv_json().await.unwrap();
    assert_eq!(
        reply["reports"],
        json!(["0%", "20%", "40%", "60%", "80%", "100%"])
    );
    drop((alice, guest));
    assert!(server.terminate().success());
}

#[tokio::test]
async fn cli_creates_users_grants_roles_and_revokes_tokens() {
    let cwd = tempfile::tempdir().unwrap();
    let data = cwd.path().join("data");
    let data = data.to_str().unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(BIN)
            .current_dir(cwd.path())
            .args(args)
            .args(["--data-dir", data])
            .env("SWITCHBOARD_LOG", "warn")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, out) = run(&[
        "user",
        "create",
        "--email",
        "boss@example.com",
        "--password",
        "correct horse",
        "--role",
        "admin",
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("admin"), "{out}");
    let (ok, out) = run(&[
        "user",
        "create",
        "--email",
        "boss@example.com",
        "--password",
        "correct horse",
    ]);
    assert!(!ok, "duplicate must fail: {out}");
    let (ok, out) = run(&[
        "user",
        "create",
        "--email",
        "worker@example.com",
        "--password",
        "correct horse",
    ]);
    assert!(ok, "{out}");
    let (ok, out) = run(&[
        "user",
        "grant",
        "--email",
        "worker@example.com",
        "--role",
        "ops",
    ]);
    assert!(ok, "{out}");

    let server = Server::start(
        cwd.path(),
        &["--listen", "127.0.0.1:0", "--data-dir", data],
        &[],
    );
    let login = http::post_json(
        &server.addr,
        "/user/login",
        &json!({"email": "worker@example.com", "password": "correct horse"}),
        None,
    )
    .await
    .unwrap();
    assert_eq!(login.json()["user"]["roles"], json!(["ops"]));
    let token = login.json()["token"].as_str().unwrap().to_string();
    let (ok, out) = run(&["user", "revoke", "--email", "worker@example.com"]);
    assert!(ok, "{out}");
    let refused = http::post_json(&server.addr, "/user/revoke", &json!({}), Some(&token))
        .await
        .unwrap();
    assert_eq!(refused.status, 401);
    assert_eq!(refused.json()["code"], "token_revoked");
    assert!(server.terminate().success());
}

#[tokio::test]
async fn sigterm_closes_every_socket_with_1001_and_exits_cleanly() {
    let cwd = tempfile::tempdir().unwrap();
    let server = Server::start(cwd.path(), &["--listen", "127.0.0.1:0"], &[]);
    let mut a = JacClient::connect(&server.ws(), ConnectOptions::default())
        .await
        .unwrap();
    let mut b = JacClient::connect(&server.ws(), ConnectOptions::default())
        .await
        .unwrap();
    // A walker in flight finishes before the close.
    a.send_json(&json!({"type": "walker", "walker": "self_progress_notif", "response": true}))
        .await
        .unwrap();
    assert_eq!(a.recv_json().await.unwrap()["progress"], "0%");
    let exit = tokio::task::spawn_blocking(move || server.terminate());
    let mut frames = 0;
    let close = loop {
        match a.recv(Duration::from_secs(10)).await.unwrap() {
            Incoming::Json(frame) => {
                frames += 1;
                if frames == 6 {
                    assert_eq!(frame["reports"].as_array().unwrap().len(), 6, "{frame}");
                }
            }
            closed => break closed,
        }
    };
    assert_eq!(frames, 6, "five more progress frames and the reply");
    assert!(
        matches!(
            close,
            Incoming::Closed {
                code: Some(1001),
                ..
            }
        ),
        "{close:?}"
    );
    assert!(matches!(
        b.recv(Duration::from_secs(10)).await.unwrap(),
        Incoming::Closed {
            code: Some(1001),
            ..
        }
    ));
    assert!(exit.await.unwrap().success());
}

#[tokio::test]
async fn sigterm_makes_ready_answer_503_for_the_grace_while_the_listener_still_accepts() {
    let cwd = tempfile::tempdir().unwrap();
    let server = Server::with_config(cwd.path(), "[shutdown]\nready_grace_ms = 1500\n");
    let addr = server.addr.clone();
    let ws = server.ws();
    let ready = http::get(&addr, "/ready", None).await.unwrap();
    assert_eq!(
        (ready.status, &ready.json()["status"]),
        (200, &json!("ready"))
    );

    let exit = tokio::task::spawn_blocking(move || server.terminate());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let ready = http::get(&addr, "/ready", None).await.unwrap();
        if ready.status == 503 {
            assert_eq!(ready.json()["status"], "stopping");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "/ready stayed 200");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Not ready, but the listener still accepts: a load balancer has time to stop sending.
    let mut late = JacClient::connect(&ws, ConnectOptions::default())
        .await
        .expect("accepted during the grace");
    late.send_json(&json!({"type": "ping"})).await.unwrap();
    assert_eq!(late.recv_json().await.unwrap(), json!({"type": "pong"}));
    assert!(exit.await.unwrap().success());
    assert!(
        JacClient::connect(&ws, ConnectOptions::default())
            .await
            .is_err(),
        "the listener closed once the process exited"
    );
}

#[tokio::test]
async fn config_file_sets_limits_and_refuses_unknown_keys() {
    let cwd = tempfile::tempdir().unwrap();
    let server = Server::with_config(
        cwd.path(),
        "demo = false\n[limits]\nmax_frame_bytes = 200\n",
    );
    // demo = false: no page, no demo walkers.
    assert_eq!(
        http::get(&server.addr, "/", None).await.unwrap().status,
        404
    );
    let mut client = JacClient::connect(&server.ws(), ConnectOptions::default())
        .await
        .unwrap();
    client
        .send_json(&json!({"type": "channel", "channel_ids": ["a"], "data": "x".repeat(300)}))
        .await
        .unwrap();
    assert!(matches!(
        client.recv(Duration::from_secs(5)).await.unwrap(),
        Incoming::Closed {
            code: Some(1009),
            ..
        }
    ));
    drop(server);

    let bad = cwd.path().join("bad.toml");
    std::fs::write(&bad, "[limits]\nmax_frame = 1\n").unwrap();
    let out = Command::new(BIN)
        .current_dir(cwd.path())
        .args(["--listen", "127.0.0.1:0", "--config", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("max_frame"), "{stderr}");
}

#[tokio::test]
async fn channel_tables_in_the_config_file_set_channel_rules() {
    let cwd = tempfile::tempdir().unwrap();
    let server = Server::with_config(
        cwd.path(),
        "[[channel]]\nprefix = \"private.\"\nrequire_auth = true\n\n\
         [[channel]]\nprefix = \"quiet.\"\non_message = \"none\"\n",
    );
    let mut refused = ChannelClient::connect(&server.ws(), "/ws/private.room", None)
        .await
        .unwrap();
    let frame = refused.recv_json().await.unwrap();
    assert_eq!(frame["param"]["code"], "auth_required", "{frame}");
    assert!(matches!(
        refused.recv(Duration::from_secs(5)).await.unwrap(),
        Incoming::Closed {
            code: Some(4401),
            ..
        }
    ));
    let mut a = ChannelClient::connect(&server.ws(), "/ws/quiet.room", None)
        .await
        .unwrap();
    // The channel dialect sends no first frame, and a connection joins its channel just after
    // the upgrade answer: a pong says `a` is in, so it hears `b` arrive.
    a.send_json(&json!({"cmd": "ping"})).await.unwrap();
    a.recv_cmd(&["pong"]).await.unwrap();
    let mut b = ChannelClient::connect(&server.ws(), "/ws/quiet.room", None)
        .await
        .unwrap();
    assert_eq!(
        a.recv_cmd(&["online-update"]).await.unwrap()["param"]["connected"],
        true
    );
    b.send_json(&json!({"channel": "quiet.room", "cmd": "chat", "param": 1}))
        .await
        .unwrap();
    assert!(
        a.is_silent_for(Duration::from_millis(300)).await,
        "on_message = none"
    );
    let mut open = ChannelClient::connect(&server.ws(), "/ws/open.room", None)
        .await
        .unwrap();
    let mut peer = ChannelClient::connect(&server.ws(), "/ws/open.room", None)
        .await
        .unwrap();
    let _ = open.recv_cmd(&["online-update"]).await.unwrap();
    peer.send_json(&json!({"channel": "open.room", "cmd": "chat", "param": 2}))
        .await
        .unwrap();
    assert_eq!(
        open.recv_cmd(&["chat"]).await.unwrap()["param"],
        2,
        "the default relays"
    );
    assert!(server.terminate().success());
}

#[tokio::test]
async fn the_shipped_namespaces_and_cli_usernames_work() {
    use switchboard_client::{NamespaceClient, NamespaceOptions};
    let cwd = tempfile::tempdir().unwrap();
    let data = cwd.path().join("data");
    let data = data.to_str().unwrap();
    let out = Command::new(BIN)
        .current_dir(cwd.path())
        .args([
            "user",
            "create",
            "--email",
            "ada@example.com",
            "--username",
            "ada",
        ])
        .args([
            "--password",
            "correct horse",
            "--role",
            "admin",
            "--data-dir",
            data,
        ])
        .env("SWITCHBOARD_LOG", "warn")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("username ada"),
        "{text}"
    );
    let server = Server::start(
        cwd.path(),
        &["--listen", "127.0.0.1:0", "--data-dir", data],
        &[],
    );
    let (token, _root) = login(&server.addr, "ada@example.com").await;
    let none = NamespaceOptions::default();

    // chat: everyone, the sender included, under the sender's username.
    let ada_options = NamespaceOptions::default().bearer(token.clone());
    let mut ada = NamespaceClient::connect(&server.ws(), "chat", &ada_options)
        .await
        .unwrap();
    let mut guest = NamespaceClient::connect(&server.ws(), "chat", &none)
        .await
        .unwrap();
    ada.send_json(&json!({"type": "msg", "text": "hi"}))
        .await
        .unwrap();
    for client in [&mut ada, &mut guest] {
        let frame = client.recv_json().await.unwrap();
        assert_eq!(frame["data"]["username"], "ada", "{frame}");
    }
    // cursors: everyone but the sender.
    let mut mover = NamespaceClient::connect(&server.ws(), "cursors", &none)
        .await
        .unwrap();
    let mut watcher = NamespaceClient::connect(&server.ws(), "cursors", &none)
        .await
        .unwrap();
    mover.send_json(&json!({"x": 1, "y": 2})).await.unwrap();
    assert_eq!(watcher.recv_json().await.unwrap()["data"]["x"], 1);
    assert!(mover.is_silent_for(Duration::from_millis(300)).await);
    // admin: a role is required.
    let mut refused = NamespaceClient::open(&server.ws(), "admin", &none)
        .await
        .unwrap();
    assert_eq!(refused.recv_json().await.unwrap()["code"], 401);
    assert!(matches!(
        refused.recv(Duration::from_secs(5)).await.unwrap(),
        Incoming::Closed {
            code: Some(4401),
            ..
        }
    ));
    let admin = NamespaceClient::connect(&server.ws(), "admin", &ada_options)
        .await
        .unwrap();
    assert_eq!(admin.welcome["namespace"], "/api/1/ws/admin");
    assert_eq!(
        http::get(&server.addr, "/api/1/ws/unknown", None)
            .await
            .unwrap()
            .status,
        404
    );
    assert!(server.terminate().success());
}
