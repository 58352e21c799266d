//! The admin dashboard: the page at `/admin/` and its live feed, the WebSocket `/admin/ws`.
//!
//! The feed needs an admin token, from `Authorization: Bearer` or `?auth=` (a browser cannot set
//! headers on a WebSocket; the login cookie is not accepted, so another site cannot open the
//! feed in an admin's browser). Once open, the server pushes a `snapshot` every second (the
//! stats without the activity log, the connection list for the viewer's search, the last hour
//! of history) and, while the viewer's tap is on, each matching activity-log entry as a `tap`
//! frame. The viewer sends commands:
//!
//! - `{"type":"search","query":Q}`: list the connections matching `Q` from now on.
//! - `{"type":"tap","on":B,"dialect":D,"channel":C,"user":U}`: start (or refilter) or stop the
//!   tap. It is off when the feed opens.
//! - `{"type":"close","key":K,"node":N}`: close connection `K` of node `N` (default: this
//!   node; another node is asked over the backplane); answered `{"type":"closed","key":K,
//!   "node":N,"found":B}`.
//!
//! With a backplane the snapshot's stats and connection list cover every node (each connection
//! names its `node`); the tap shows this node's traffic.
//!
//! A bad command is answered `{"type":"error","code":...,"error":...}` and changes nothing. A
//! viewer that reads slowly only slows its own feed: tap entries wait in its bounded queue and
//! the overflow is dropped and counted (`tapDropped` in the next snapshot).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use bytes::Bytes;
use http::{Request, header};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};

use super::admin::require_admin;
use super::upgrade::{PendingUpgrade, ServerSocket};
use crate::app::Switchboard;
use crate::error_code::{INVALID_FIELD, INVALID_JSON};
use crate::ops::activity::LogEntry;
use crate::ops::tap::{TapFilter, TapSubscription};
use crate::session::admission::check_origin;
use crate::session::credentials::query_auth;
use crate::ws::{Message, OpCode, WsStream};

/// The dashboard: one static page, no build step.
const PAGE: &str = include_str!("admin.html");
/// Largest command accepted from a viewer.
const MAX_COMMAND_BYTES: usize = 4096;
/// How often a snapshot is pushed.
const SNAPSHOT_EVERY: Duration = Duration::from_secs(1);

/// `GET /admin/`: the page. It holds no data; everything comes over the authenticated feed.
pub async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Html(PAGE),
    )
        .into_response()
}

/// `GET /admin/ws`: the live feed, for admins only (refused with 401/403 before any upgrade).
pub async fn feed(State(app): State<Switchboard>, mut request: Request<Body>) -> Response {
    if let Err(err) = check_origin(&app, request.headers()) {
        return err.into_response();
    }
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|value| value.to_str().unwrap_or_default().to_string())
        .or_else(|| query_auth(request.uri()));
    if let Err(err) = require_admin(&app, token.as_deref()).await {
        return err.into_response();
    }
    let pending = match PendingUpgrade::from_request(&mut request) {
        Ok(pending) => pending,
        Err(err) => return err.into_response(),
    };
    let (response, socket) = pending.accept(MAX_COMMAND_BYTES, false);
    tokio::spawn(async move {
        match socket.await {
            Some(ServerSocket::Tcp(stream)) => Viewer::new(app).run(stream).await,
            Some(ServerSocket::Upgraded(stream)) => Viewer::new(app).run(stream).await,
            None => {}
        }
    });
    response
}

/// A viewer's command.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Command {
    Search {
        query: String,
    },
    Tap {
        on: bool,
        #[serde(flatten)]
        filter: TapFilter,
    },
    Close {
        key: u64,
        /// The node holding the connection (default: this one).
        #[serde(default)]
        node: Option<String>,
    },
}

/// One open feed.
struct Viewer {
    app: Switchboard,
    search: String,
    tap: Option<TapSubscription>,
}

impl Viewer {
    fn new(app: Switchboard) -> Self {
        Self {
            app,
            search: String::new(),
            tap: None,
        }
    }

    async fn run<S: AsyncRead + AsyncWrite + Unpin>(mut self, mut stream: WsStream<S>) {
        let mut snapshots = tokio::time::interval(SNAPSHOT_EVERY);
        loop {
            let frame = tokio::select! {
                _ = snapshots.tick() => self.snapshot().await,
                Some(entry) = next_entry(&mut self.tap) => tap_frame(&entry),
                message = stream.next_message() => match message {
                    Ok(Message::Text(text)) => self.command(&text).await,
                    Ok(Message::Binary(_)) => error_frame(INVALID_JSON, "send JSON text commands"),
                    Ok(Message::Ping | Message::Pong) if stream.has_queued_control() => Bytes::new(),
                    Ok(Message::Ping | Message::Pong) => continue,
                    Err(_) => break,
                },
            };
            let written = if frame.is_empty() {
                stream.write_text_batch(&[], false).await
            } else {
                stream.write_message(OpCode::Text, &frame).await
            };
            if written.is_err() {
                return;
            }
        }
        stream.finish(Duration::from_secs(1)).await;
    }

    async fn command(&mut self, text: &str) -> Bytes {
        let command = match serde_json::from_str::<Command>(text) {
            Ok(command) => command,
            Err(err) if err.is_syntax() || err.is_eof() => {
                return error_frame(INVALID_JSON, "commands are JSON objects");
            }
            Err(err) => return error_frame(INVALID_FIELD, &format!("invalid command: {err}")),
        };
        match command {
            Command::Search { query } => {
                self.search = query;
                self.snapshot().await
            }
            Command::Tap { on, filter } => {
                self.tap = on.then(|| self.app.ops().tap().subscribe(filter));
                self.snapshot().await
            }
            Command::Close { key, node } => {
                let node = node.unwrap_or_else(|| self.app.node_id().to_string());
                let found = self.app.close_connection_on(&node, key).await;
                to_frame(&json!({"type": "closed", "key": key, "node": node, "found": found}))
            }
        }
    }

    async fn snapshot(&self) -> Bytes {
        // The tap streams entries as they come; the snapshot need not repeat the whole log.
        let (stats, connections) = self.app.cluster_snapshot(false, Some(&self.search)).await;
        let tap_dropped = self
            .tap
            .as_ref()
            .map_or(0, |tap| tap.dropped.load(Ordering::Relaxed));
        to_frame(&json!({
            "type": "snapshot",
            "stats": stats,
            "connections": connections,
            "history": self.app.ops().history(),
            "tap": {"on": self.tap.is_some(), "dropped": tap_dropped},
        }))
    }
}

/// The next tap entry, or never while the tap is off.
async fn next_entry(tap: &mut Option<TapSubscription>) -> Option<Arc<LogEntry>> {
    match tap {
        Some(tap) => tap.entries.recv().await,
        None => std::future::pending().await,
    }
}

fn tap_frame(entry: &LogEntry) -> Bytes {
    to_frame(&json!({"type": "tap", "entry": entry}))
}

fn error_frame(code: &str, message: &str) -> Bytes {
    to_frame(&json!({"type": "error", "code": code, "error": message}))
}

fn to_frame(value: &Value) -> Bytes {
    Bytes::from(value.to_string())
}
