//! One namespace socket: checks each client message against the namespace's limits (413, 429),
//! answers app-level pings, runs the `on_message` hook and relays the message to the namespace
//! under the sender's stamped identity.
//!
//! Two rate limits apply, in this order: the session core's per-connection budget
//! (`[limits] messages_per_sec`/`message_burst`, the abuse guard every endpoint has: a socket
//! refused `max_rate_limited_in_a_row` times in a row is closed with 1008) and then the
//! namespace's `messages_per_sec` sliding window (the contract of seed 003). A message refused by
//! either is answered the same way: 429 for the first of a burst and for any carrying a
//! `requestId`, the rest dropped and counted.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use bytes::Bytes;
use bytestring::ByteString;
use futures_util::FutureExt;
use serde_json::Value;

use super::definition::Relay;
use super::envelope;
use super::events::{self, ClientFrame};
use super::handle::{Client, NamespaceState, unix_ms};
use super::rate::{RateVerdict, SlidingWindow};
use crate::app::Switchboard;
use crate::dialect::Session;
use crate::hub::{Connection, Delivery, Target};
use crate::identity::Identity;
use crate::metrics::DropReason;
use crate::ops::activity::{Subject, excerpt};
use crate::ops::dropped::DropKind;

/// This dialect's name in the activity log.
const NAME: &str = "namespace";

/// The message of every hook failure a client sees; the cause goes to the log.
const HOOK_FAILED: &str = "Internal server error";

pub struct NamespaceSession {
    app: Switchboard,
    conn: Arc<Connection>,
    state: Arc<NamespaceState>,
    uuid: Arc<str>,
    window: SlidingWindow,
    /// False for a refused socket, which is closing: its messages are ignored and it runs no
    /// hooks.
    admitted: bool,
}

impl NamespaceSession {
    /// An admitted client: `on_connect` starts now, as its own task (after the `connected`
    /// frame, which is already queued).
    pub(crate) fn admitted(
        app: Switchboard,
        conn: Arc<Connection>,
        state: Arc<NamespaceState>,
        uuid: Arc<str>,
        identity: Identity,
    ) -> Self {
        if let Some(hook) = state.definition.on_connect.clone() {
            let client = Client::new(uuid.clone(), state.clone(), conn.clone());
            tokio::spawn(hook(client, identity));
        }
        Self {
            app,
            conn,
            state,
            uuid,
            window: SlidingWindow::default(),
            admitted: true,
        }
    }

    /// A refused client, closing after its error envelope.
    pub(crate) fn refused(
        app: Switchboard,
        conn: Arc<Connection>,
        state: Arc<NamespaceState>,
        uuid: Arc<str>,
    ) -> Self {
        Self {
            app,
            conn,
            state,
            uuid,
            window: SlidingWindow::default(),
            admitted: false,
        }
    }

    fn send_error(&self, code: u16, message: &str, request_id: Option<&str>) {
        self.app.metrics().client_errors.inc();
        self.app
            .hub()
            .push_frame(&self.conn, envelope::error(code, message, request_id));
    }

    /// Count and log a refused client message (its log reason is the drop reason's name: the
    /// client was told a status, not an error code).
    fn refuse(&self, message: &Bytes, drop: DropKind) {
        let reason = drop.name();
        self.state.count_dropped(drop, 1);
        let subject = Subject::Namespace(self.state.clone());
        self.app
            .ops()
            .rejected(NAME, subject, &self.conn, message, (drop, reason));
    }

    /// Answer or drop a message over a rate limit (see the module docs).
    fn rate_limited(&mut self, verdict: RateVerdict, text: &str) {
        self.refuse(&excerpt(text), DropKind::RateLimit);
        let request_id = events::request_id(text);
        if verdict == RateVerdict::Refused || request_id.is_some() {
            self.send_error(
                429,
                "Too many messages: rate limit exceeded, message dropped",
                request_id.as_deref(),
            );
        }
    }

    async fn on_message(
        &mut self,
        text: &ByteString,
        data: serde_json::Map<String, Value>,
        request_id: Option<String>,
    ) {
        let per_sec = self.state.definition.limits.messages_per_sec;
        if per_sec > 0 {
            let verdict = self.window.check(per_sec, self.app.hub().now_ms());
            if verdict != RateVerdict::Allowed {
                // The session core counts its own refusals; these are the namespace's.
                self.app.metrics().dropped(DropReason::RateLimited).inc();
                return self.rate_limited(verdict, text);
            }
        }
        let ops = self.app.ops();
        self.state.count_message(ops.clock().now_ms());
        let subject = Subject::Namespace(self.state.clone());
        ops.received(NAME, subject, &self.conn, text.as_bytes());
        let identity = self.conn.identity();
        let mut data = Value::Object(data);
        // The backend gets the message too when the namespace sends to an upstream.
        let upstream = self.state.definition.upstream.clone();
        let reply = match self.state.definition.on_message.clone() {
            Some(hook) => {
                let client = Client::new(self.uuid.clone(), self.state.clone(), self.conn.clone());
                let data = if upstream.is_some() {
                    data.clone()
                } else {
                    data.take()
                };
                // Boxed with the hook's own future: only a socket running a hook pays for it.
                let run = hook(client, data, identity.clone());
                match AssertUnwindSafe(run).catch_unwind().await {
                    Ok(Ok(reply)) => reply,
                    Ok(Err(err)) => return self.hook_failed(&err.to_string(), request_id),
                    Err(_) => return self.hook_failed("the hook panicked", request_id),
                }
            }
            None => None,
        };
        self.relay(text, &identity);
        if let Some(reply) = reply {
            self.reply(&reply, request_id.as_deref());
        }
        if let Some(url) = upstream {
            // Boxed: only a socket whose message is in flight to the backend pays for it.
            Box::pin(self.call_upstream(&url, data, &identity, request_id)).await;
        }
    }

    /// Hand a client message to the namespace's upstream: its `notify` items are delivered, then
    /// its `reply` goes to this socket. A failure is an error envelope whose `code` is the HTTP
    /// status of the failure (504, 502, 503) and whose `error` starts with the stable code.
    async fn call_upstream(
        &self,
        url: &str,
        data: Value,
        identity: &Identity,
        request_id: Option<String>,
    ) {
        let request = serde_json::json!({
            "namespace": self.state.name(),
            "event": "message",
            "data": data,
            "caller": crate::upstream::caller_json(identity, Some(&self.uuid)),
            "node_id": self.app.shared.upstreams.node_id(),
        });
        match crate::upstream::call_message_hook(&self.app, url, &request).await {
            Ok(reply) => {
                if let Some(reply) = reply {
                    self.reply(&reply, request_id.as_deref());
                }
            }
            Err(err) => {
                tracing::warn!(namespace = self.state.name(), %url, %err, "upstream failed");
                self.send_error(
                    err.http_status().as_u16(),
                    &format!("{}: {err}", err.code()),
                    request_id.as_deref(),
                );
            }
        }
    }

    fn hook_failed(&self, cause: &str, request_id: Option<String>) {
        tracing::error!(
            namespace = self.state.name(),
            client_id = %self.uuid,
            cause,
            "on_message failed"
        );
        self.send_error(500, HOOK_FAILED, request_id.as_deref());
    }

    /// Relay the client's message as it came (a slice of the frame, not a copy), stamped with the
    /// sender by the encoder.
    fn relay(&self, text: &ByteString, identity: &Identity) {
        let relay = self.state.definition.relay;
        if matches!(relay, Relay::None | Relay::Upstream) {
            return;
        }
        let username = identity.username().map(Arc::from);
        let mut delivery = Delivery::from_raw_json(text.as_bytes().clone())
            .with_sender(self.uuid.clone(), username);
        if relay == Relay::BroadcastOthers {
            delivery = delivery.excluding(self.conn.key());
        }
        self.app
            .shared
            .publisher
            .publish(&Target::Namespace(self.state.name().to_string()), &delivery);
    }

    /// `on_message`'s answer, to this socket: `{"success":true,"data":...,"requestId":R}`.
    fn reply(&self, reply: &Value, request_id: Option<&str>) {
        let payload = reply.to_string();
        let frame = envelope::success(payload.as_bytes(), None, "", request_id);
        self.app.hub().push_frame(&self.conn, frame);
    }
}

impl Session for NamespaceSession {
    async fn on_text(&mut self, text: &ByteString) {
        if !self.admitted {
            return;
        }
        let limit = self.state.definition.limits.max_message_bytes;
        if text.len() > limit {
            self.refuse(&excerpt(text), DropKind::Oversize);
            let request_id = events::request_id(text);
            return self.send_error(
                413,
                &format!(
                    "Message too large: {} bytes, the limit is {limit}",
                    text.len()
                ),
                request_id.as_deref(),
            );
        }
        match events::parse(text) {
            Ok(ClientFrame::Ping) => {
                let pong = envelope::pong(unix_ms());
                self.app.hub().push_frame(&self.conn, pong);
            }
            Ok(ClientFrame::Message { data, request_id }) => {
                self.on_message(text, data, request_id).await;
            }
            Err(bad) => {
                self.refuse(text.as_bytes(), DropKind::Invalid);
                self.send_error(400, bad.0, None);
            }
        }
    }

    async fn on_binary(&mut self, _data: &[u8]) {
        if self.admitted {
            self.refuse(&Bytes::new(), DropKind::Invalid);
            self.send_error(
                400,
                "Invalid message format: binary frames are not supported, send JSON text",
                None,
            );
        }
    }

    fn on_rate_limited(&mut self, text: Option<&str>, _retry_after_ms: u64) {
        if !self.admitted {
            return;
        }
        let verdict = self.window.refuse();
        self.rate_limited(verdict, text.unwrap_or_default());
    }
}

impl Drop for NamespaceSession {
    /// The socket has closed: `on_disconnect` runs as its own task.
    fn drop(&mut self) {
        if !self.admitted {
            return;
        }
        if let Some(hook) = self.state.definition.on_disconnect.clone() {
            let client = Client::new(self.uuid.clone(), self.state.clone(), self.conn.clone());
            let identity = self.conn.identity();
            tokio::spawn(hook(client, identity));
        }
    }
}
