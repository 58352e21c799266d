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
//! names its `node`). The tap streams this node's entries as they happen and the other nodes'
//! with each snapshot (up to a second later; each entry names its `node`).
//!
//! A bad command is answered `{"type":"error","code":...,"error":...}` and changes nothing. A
//! viewer that reads slowly only slows its own feed: tap entries wait in its bounded queue and
//! the overflow is dropped and counted (`tapDropped` in the next snapshot).

use std::collections::HashMap;
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
use crate::ops::stats::TapPull;
use crate::ops::tap::{TapFilter, TapSubscription};
use crate::session::admission::check_origin;
use crate::session::credentials::query_auth;
use crate::ws::{Message, WsStream};

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
    /// This node's entries, as they happen.
    tap: Option<TapSubscription>,
    /// The other nodes' entries, pulled with each snapshot.
    remote_tap: Option<TapPull>,
    /// Remote entries past a node's batch limit, not shown.
    remote_dropped: u64,
}

impl Viewer {
    fn new(app: Switchboard) -> Self {
        Self {
            app,
            search: String::new(),
            tap: None,
            remote_tap: None,
            remote_dropped: 0,
        }
    }

    async fn run<S: AsyncRead + AsyncWrite + Unpin>(mut self, mut stream: WsStream<S>) {
        let mut snapshots = tokio::time::interval(SNAPSHOT_EVERY);
        loop {
            let frames = tokio::select! {
                _ = snapshots.tick() => self.snapshot().await,
                Some(entry) = next_entry(&mut self.tap) => vec![tap_frame(&entry)],
                message = stream.next_message() => match message {
                    Ok(Message::Text(text)) => self.command(&text).await,
                    Ok(Message::Binary(_)) => vec![error_frame(INVALID_JSON, "send JSON text commands")],
                    // Nothing to say, but the pong the ping queued must go out.
                    Ok(Message::Ping | Message::Pong) if stream.has_queued_control() => Vec::new(),
                    Ok(Message::Ping | Message::Pong) => continue,
                    Err(_) => break,
                },
            };
            // An empty batch still sends the queued pong.
            if stream.write_text_batch(&frames, false).await.is_err() {
                return;
            }
        }
        stream.finish(Duration::from_secs(1)).await;
    }

    async fn command(&mut self, text: &str) -> Vec<Bytes> {
        let command = match serde_json::from_str::<Command>(text) {
            Ok(command) => command,
            Err(err) if err.is_syntax() || err.is_eof() => {
                return vec![error_frame(INVALID_JSON, "commands are JSON objects")];
            }
            Err(err) => {
                return vec![error_frame(
                    INVALID_FIELD,
                    &format!("invalid command: {err}"),
                )];
            }
        };
        match command {
            Command::Search { query } => {
                self.search = query;
                self.snapshot().await
            }
            Command::Tap { on, filter } => {
                self.remote_tap = on.then(|| TapPull {
                    asker: self.app.node_id().to_string(),
                    filter: filter.clone(),
                    cursors: HashMap::new(),
                });
                self.tap = on.then(|| self.app.ops().tap().subscribe(filter));
                self.remote_dropped = 0;
                self.snapshot().await
            }
            Command::Close { key, node } => {
                let node = node.unwrap_or_else(|| self.app.node_id().to_string());
                let found = self.app.close_connection_on(&node, key).await;
                vec![to_frame(
                    &json!({"type": "closed", "key": key, "node": node, "found": found}),
                )]
            }
        }
    }

    /// The snapshot frame, then a `tap` frame for each entry the other nodes logged since the
    /// last one (this node's stream through the subscription).
    async fn snapshot(&mut self) -> Vec<Bytes> {
        // The tap streams entries as they come; the snapshot need not repeat the whole log.
        let snapshot = self
            .app
            .cluster_snapshot(false, Some(&self.search), self.remote_tap.as_ref())
            .await;
        let mut remote_entries = Vec::new();
        if let Some(pull) = &mut self.remote_tap {
            for (node, batch) in snapshot.tap {
                pull.cursors.insert(node, batch.until_ms);
                self.remote_dropped += batch.dropped;
                remote_entries.extend(batch.entries);
            }
        }
        remote_entries.sort_by_key(|entry| entry.at_ms);
        let tap_dropped = self
            .tap
            .as_ref()
            .map_or(0, |tap| tap.dropped.load(Ordering::Relaxed))
            + self.remote_dropped;
        let mut frames = vec![to_frame(&json!({
            "type": "snapshot",
            "stats": snapshot.stats,
            "connections": snapshot.connections,
            "history": self.app.ops().history(),
            "tap": {"on": self.tap.is_some(), "dropped": tap_dropped},
        }))];
        frames.extend(remote_entries.iter().map(tap_frame));
        frames
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
