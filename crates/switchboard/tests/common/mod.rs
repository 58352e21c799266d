//! A real server on 127.0.0.1:0 with test walkers, plus helpers to register and log in.
#![allow(dead_code)]

pub mod admin_feed;
pub mod backend;
pub mod cluster;
pub mod skip;

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use switchboard::{Call, Config, Method, Switchboard, Walker, WalkerError};
use switchboard_client::{ConnectOptions, JacClient, http};
use tokio::sync::oneshot;

/// The header a JSON endpoint requires of a request with a body.
pub const JSON: &[(&str, &str)] = &[("Content-Type", "application/json")];

pub struct TestServer {
    pub app: Switchboard,
    /// `127.0.0.1:PORT`
    pub addr: String,
    /// `ws://127.0.0.1:PORT`
    pub ws: String,
    stop: Option<oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _data_dir: tempfile::TempDir,
}

#[derive(Deserialize)]
pub struct Echo {
    pub message: String,
}

#[derive(Deserialize)]
pub struct Typed {
    pub name: String,
    pub count: u32,
}

#[derive(Deserialize)]
pub struct Nothing {}

#[derive(Deserialize)]
pub struct NotifyTargets {
    #[serde(default)]
    pub root_ids: Vec<String>,
    #[serde(default)]
    pub channel_ids: Vec<String>,
    #[serde(default)]
    pub client_ids: Vec<String>,
}

#[derive(Deserialize)]
pub struct Sleep {
    pub millis: u64,
}

/// Walkers that exercise every path of the walker machinery.
pub fn test_walkers(builder: switchboard::SwitchboardBuilder) -> switchboard::SwitchboardBuilder {
    builder
        .walker(
            Walker::new("echo", |call: Call<Echo>| async move {
                Ok(vec![json!(format!("Received: {}", call.context.message))])
            })
            .methods(&[Method::WebSocket, Method::Post, Method::Get])
            .public(),
        )
        .walker(
            Walker::new("typed", |call: Call<Typed>| async move {
                Ok(vec![
                    json!({"name": call.context.name, "count": call.context.count}),
                ])
            })
            .public(),
        )
        .walker(Walker::new("whoami", |call: Call<Nothing>| async move {
            Ok(vec![json!({
                "root_id": &**call.caller.root_id(),
                "email": call.caller.email(),
            })])
        }))
        .walker(
            Walker::new("public_whoami", |call: Call<Nothing>| async move {
                Ok(vec![json!({"root_id": &**call.caller.root_id()})])
            })
            .public(),
        )
        .walker(
            Walker::new("ws_only", |_call: Call<Nothing>| async move { Ok(vec![]) })
                .methods(&[Method::WebSocket])
                .public(),
        )
        .walker(
            Walker::new("admin_only", |_call: Call<Nothing>| async move {
                Ok(vec![json!("welcome, admin")])
            })
            .require_role("admin"),
        )
        .walker(
            Walker::new("notify_all_ways", |call: Call<NotifyTargets>| async move {
                let ctx = call.context;
                call.notify.notify_self(&json!({"type": "self", "n": 1}));
                call.notify.notify_self(&json!({"type": "self", "n": 2}));
                if !ctx.root_ids.is_empty() {
                    call.notify
                        .notify_users(&ctx.root_ids, &json!({"type": "to_user"}));
                }
                if !ctx.channel_ids.is_empty() {
                    call.notify
                        .notify_channels(&ctx.channel_ids, &json!({"type": "to_channel"}));
                }
                if !ctx.client_ids.is_empty() {
                    call.notify
                        .notify_clients(&ctx.client_ids, &json!({"type": "to_client"}));
                }
                call.notify.notify_self(&json!({"type": "self", "n": 3}));
                Ok(vec![json!("notified")])
            })
            .public(),
        )
        .walker(
            Walker::new("fails", |_call: Call<Nothing>| async move {
                Err::<Vec<Value>, _>(WalkerError::with_code("out_of_stock", "nothing left"))
            })
            .public(),
        )
        .walker(
            Walker::new("panics", |_call: Call<Nothing>| async move {
                if true {
                    panic!("boom with internal detail");
                }
                Ok(vec![])
            })
            .public(),
        )
        .walker(
            Walker::new("sleep", |call: Call<Sleep>| async move {
                tokio::time::sleep(Duration::from_millis(call.context.millis)).await;
                Ok(vec![json!("slept")])
            })
            .public(),
        )
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        Self::start_built(tweak, |builder| builder).await
    }

    /// Start with the test walkers plus whatever `extend` registers on the builder (namespaces).
    pub async fn start_with_builder(
        tweak: impl FnOnce(&mut Config),
        extend: impl FnOnce(&mut switchboard::SwitchboardBuilder),
    ) -> Self {
        Self::start_built(tweak, |mut builder| {
            extend(&mut builder);
            builder
        })
        .await
    }

    /// Start with a tweaked config and extra builder steps (rules, dialects) after the test
    /// walkers.
    pub async fn start_built(
        tweak: impl FnOnce(&mut Config),
        build: impl FnOnce(switchboard::SwitchboardBuilder) -> switchboard::SwitchboardBuilder,
    ) -> Self {
        let data_dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config {
            data_dir: data_dir.path().to_path_buf(),
            ..Config::default()
        };
        config.shutdown.walker_grace_secs = 5;
        config.shutdown.close_grace_secs = 1;
        tweak(&mut config);
        let app = build(test_walkers(Switchboard::builder(config)))
            .build()
            .await
            .expect("build app");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let (stop, stopped) = oneshot::channel::<()>();
        let router = switchboard::http::router(app.clone());
        let served = tokio::spawn(switchboard::serve(app.clone(), router, listener, async {
            let _ = stopped.await;
        }));
        Self {
            ws: format!("ws://{addr}"),
            addr,
            app,
            stop: Some(stop),
            served: Some(served),
            _data_dir: data_dir,
        }
    }

    /// Trigger graceful shutdown and wait for it to finish.
    pub async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(served) = self.served.take() {
            served.await.expect("join").expect("serve");
        }
    }

    pub async fn connect(&self) -> JacClient {
        JacClient::connect(&self.ws, ConnectOptions::default())
            .await
            .expect("connect")
    }

    pub async fn connect_with(&self, options: ConnectOptions) -> JacClient {
        JacClient::connect(&self.ws, options)
            .await
            .expect("connect")
    }

    /// Register `email` and return a login token.
    pub async fn user(&self, email: &str) -> (String, Value) {
        let creds = json!({"email": email, "password": "correct horse"});
        let registered = http::post_json(&self.addr, "/user/register", &creds, None)
            .await
            .expect("register");
        assert_eq!(registered.status, 201, "{}", registered.text());
        let login = http::post_json(&self.addr, "/user/login", &creds, None)
            .await
            .expect("login");
        assert_eq!(login.status, 200, "{}", login.text());
        let body = login.json();
        (
            body["token"].as_str().expect("token").to_string(),
            body["user"].clone(),
        )
    }

    /// Create `email` with the `admin` role and return a login token.
    pub async fn admin(&self, email: &str) -> String {
        self.app
            .accounts()
            .register_named(email, "correct horse", None, vec!["admin".into()])
            .await
            .expect("admin account");
        let creds = json!({"email": email, "password": "correct horse"});
        let login = http::post_json(&self.addr, "/user/login", &creds, None)
            .await
            .expect("login");
        assert_eq!(login.status, 200, "{}", login.text());
        login.json()["token"].as_str().expect("token").to_string()
    }

    /// Read one figure of the app's metrics, e.g. `server.metric(|m| m.client_errors.get())`.
    pub fn metric<T>(&self, read: impl Fn(&switchboard::metrics::Metrics) -> T) -> T {
        read(self.app.metrics())
    }
}

/// Assert an error frame's code and return the frame.
pub fn assert_error(frame: &Value, code: &str) {
    assert_eq!(frame["code"], code, "expected error {code}, got {frame}");
    assert!(
        frame["error"].as_str().is_some_and(|m| !m.is_empty()),
        "{frame}"
    );
}

/// The connection still answers: an app-level ping gets a pong.
pub async fn assert_alive(client: &mut JacClient) {
    client
        .send_json(&json!({"type": "ping"}))
        .await
        .expect("send ping");
    let frame = client.recv_json().await.expect("pong");
    assert_eq!(frame, json!({"type": "pong"}));
}

/// A WebSocket upgrade request for `path`, written by hand (keep-alive HTTP/1.1).
pub fn upgrade_request(addr: &str, path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
}

/// Read one HTTP response from `stream`: its status and its body (by Content-Length).
pub async fn read_http_response(stream: &mut tokio::net::TcpStream) -> (u16, String) {
    use tokio::io::AsyncReadExt;
    let read = async {
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            stream.read_exact(&mut byte).await.expect("response head");
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).expect("utf-8 head");
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status in {head}"));
        let length = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().ok())?
            })
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        stream.read_exact(&mut body).await.expect("response body");
        (status, String::from_utf8_lossy(&body).into_owned())
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("an HTTP response in time")
}
