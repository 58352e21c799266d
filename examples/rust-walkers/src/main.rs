//! Embedding Switchboard in an axum app, with walkers written in Rust.
//!
//! Run it with `cargo run -p example-rust-walkers`, then in another terminal:
//!
//! ```text
//! curl -s localhost:8080/walker/add -H 'content-type: application/json' -d '{"a": 2, "b": 3}'
//! curl -s localhost:8080/announce -d 'hello everyone'
//! ```
//!
//! and connect a WebSocket to `ws://localhost:8080/websocket?channel_id=news` to see the
//! announcement arrive.
//!
//! It also serves a namespace (seed 003) at `ws://localhost:8080/api/1/ws/dashboard`: every
//! client gets a `tick` each 5 seconds from a timer, `curl -s localhost:8080/dashboard -d 'hi'`
//! pushes to all of them as `ops`, and a message `{"type":"get-clients","requestId":1}` is
//! answered with the namespace's client count.

use axum::extract::State;
use axum::routing::post;
use serde::Deserialize;
use serde_json::json;
use switchboard::dialect::namespace::{Namespace, NamespaceHandle};
use switchboard::{Call, Config, Method, Switchboard, Walker, WalkerError};

/// The typed context of the `add` walker: a call missing `b`, or with `"a": "two"`, is refused
/// with an error naming the field before this code runs.
#[derive(Deserialize)]
struct Add {
    a: i64,
    b: i64,
}

/// The `progress` walker's context: how many steps to report.
#[derive(Deserialize)]
struct Progress {
    #[serde(default = "three")]
    steps: u32,
}

fn three() -> u32 {
    3
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().init();
    let config = Config {
        data_dir: "example-data".into(),
        ..Config::default()
    };
    let mut builder = Switchboard::builder(config);
    // A namespace: its handle broadcasts from anywhere (the timer and the route below), and its
    // hook answers requests with the namespace's own statistics.
    let dashboard = builder.namespace(Namespace::new("dashboard").on_message(
        |client, data, _user| async move {
            Ok((data["type"] == "get-clients")
                .then(|| json!({"type": "clients", "count": client.namespace().stats().clients})))
        },
    ))?;
    let app = builder
        // Anyone may add, over WebSocket or POST /walker/add.
        .walker(
            Walker::new("add", |call: Call<Add>| async move {
                let sum =
                    call.context.a.checked_add(call.context.b).ok_or_else(|| {
                        WalkerError::with_code("overflow", "the sum does not fit")
                    })?;
                Ok(vec![json!(sum)])
            })
            .methods(&[Method::WebSocket, Method::Post])
            .public(),
        )
        // Logged-in users only: progress notifications to the calling socket, then the reply.
        .walker(
            Walker::new("progress", |call: Call<Progress>| async move {
                let who = call.caller.email().unwrap_or_default().to_string();
                for step in 1..=call.context.steps {
                    call.notify
                        .notify_self(&json!({"type": "progress", "step": step}));
                }
                Ok(vec![json!(format!("done for {who}"))])
            })
            .methods(&[Method::WebSocket]),
        )
        .build()
        .await?;

    tokio::spawn(tick(dashboard.clone()));

    // The app's own routes sit beside Switchboard's; any handler can push to clients.
    let router = axum::Router::new()
        .route("/announce", post(announce))
        .route(
            "/dashboard",
            post(move |body: String| async move {
                let reached =
                    dashboard.broadcast_from(&json!({"type": "note", "text": body}), "ops");
                format!("sent to {reached} sockets\n")
            }),
        )
        .with_state(app.clone())
        .merge(switchboard::http::router(app.clone()));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    println!("example listening on http://{}", listener.local_addr()?);
    switchboard::serve(app, router, listener, switchboard::shutdown::signal()).await?;
    Ok(())
}

/// Push the request body to every connection in channel `news`.
async fn announce(State(app): State<Switchboard>, body: String) -> &'static str {
    app.notify_channels(&["news"], &json!({"type": "announcement", "text": body}));
    "sent\n"
}

/// Every 5 seconds, tell every dashboard client the time (a system message: `username` "").
async fn tick(dashboard: NamespaceHandle) {
    let mut timer = tokio::time::interval(std::time::Duration::from_secs(5));
    loop {
        timer.tick().await;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        dashboard.broadcast(&json!({"type": "tick", "unix": now}));
    }
}
