//! One Jac Cloud connection: applies client events to the hub and runs walkers.

use std::sync::Arc;

use bytes::Bytes;
use bytestring::ByteString;

use super::events::{self, ClientEvent, EventError, ParseLimits, WalkerEvent};
use super::frames;
use crate::app::Switchboard;
use crate::dialect::Session;
use crate::error_code::{BINARY_NOT_SUPPORTED, RATE_LIMITED};
use crate::hub::{Connection, Delivery, Target};
use crate::identity::Identity;
use crate::ops::activity::{Subject, excerpt};
use crate::ops::dropped::DropKind;
use crate::session::credentials;
use crate::walker::{Method, call};

/// This dialect's name in the activity log, and its endpoint.
const NAME: &str = "jac";
const ENDPOINT: &str = "/websocket";

pub struct JacSession {
    app: Switchboard,
    conn: Arc<Connection>,
    limits: ParseLimits,
}

impl JacSession {
    pub fn new(app: Switchboard, conn: Arc<Connection>) -> Self {
        let limits = ParseLimits {
            max_ids_per_event: app.config().limits.max_ids_per_event,
        };
        Self { app, conn, limits }
    }

    /// The first frames of a connection: the `connection` frame and, when a presented token
    /// was refused, an error saying why.
    pub fn greeting(
        client_id: &str,
        identity: &Identity,
        channel: &str,
        refused_token: Option<&crate::auth::AuthError>,
    ) -> Vec<Bytes> {
        let mut frames = vec![frames::connection_info(
            client_id,
            identity.root_id(),
            Some(channel),
        )];
        if let Some(err) = refused_token {
            frames.push(frames::error(
                err.code(),
                &format!("{err}; connected as the public user"),
            ));
        }
        frames
    }

    fn send(&self, frame: Bytes) {
        self.app.hub().push_frame(&self.conn, frame);
    }

    fn send_error(&self, code: &str, message: &str) {
        self.app.metrics().client_errors.inc();
        self.send(frames::error(code, message));
    }

    async fn apply(&mut self, event: ClientEvent) {
        let publisher = &self.app.shared.publisher;
        match event {
            ClientEvent::Walker(call) => self.start_walker(call),
            ClientEvent::User { root_ids, data } => {
                // The hub accepts root ids (`n::<user id>`) as user addresses.
                publisher.publish(&Target::Users(root_ids), &Delivery::from_raw_json(data));
            }
            ClientEvent::Channel { channel_ids, data } => {
                publisher.publish(
                    &Target::Channels(channel_ids),
                    &Delivery::from_raw_json(data),
                );
            }
            ClientEvent::Client { client_ids, data } => {
                publisher.publish(&Target::Clients(client_ids), &Delivery::from_raw_json(data));
            }
            // Boxed: the account lookup behind it is the largest future a frame can start, and
            // every idle connection's task would otherwise reserve room for it.
            ClientEvent::ChangeUser { token } => Box::pin(self.change_user(token)).await,
            ClientEvent::Connection => self.send(frames::connection(&self.conn)),
            ClientEvent::Ping => self.send(frames::pong()),
        }
    }

    /// Re-authenticate the live connection; a missing or refused token makes it public.
    async fn change_user(&mut self, token: Option<String>) {
        let resolved = credentials::resolve(&self.app, token.as_deref()).await;
        if let Some(err) = &resolved.refused {
            self.send_error(err.code(), &format!("{err}; switched to the public user"));
        }
        // The per-user connection limit holds for connections that switch to a user too; over it,
        // the connection keeps its current user and is told why.
        if self
            .app
            .hub()
            .set_identity(&self.conn, resolved.identity)
            .is_err()
        {
            let limit = self.app.config().limits.max_connections_per_user;
            self.app.metrics().user_switches_refused.inc();
            self.send_error(
                "too_many_connections",
                &format!(
                    "this user already has {limit} connections (limits.max_connections_per_user); \
                     the connection keeps its current user"
                ),
            );
        }
        self.send(frames::connection(&self.conn));
    }

    fn start_walker(&self, call: WalkerEvent) {
        let WalkerEvent {
            walker: name,
            context,
            response,
            id,
            node: _,
        } = call;
        let caller = self.conn.identity();
        let admitted = match call::admit(
            &self.app,
            &name,
            Method::WebSocket,
            caller,
            Some(&self.conn),
        ) {
            Ok(admitted) => admitted,
            Err(err) => {
                return self.send(frames::walker_error(&name, err.code(), &err.message(), id));
            }
        };
        let run = admitted.run(&context);
        let app = self.app.clone();
        let conn = self.conn.clone();
        self.app.shared.walker_runs.spawn(async move {
            let frame = match run.await {
                Ok(reports) if response => frames::walker_reply(&name, reports, id),
                Ok(_) => return,
                Err(err) => {
                    app.metrics().client_errors.inc();
                    frames::walker_error(&name, err.code(), &err.message(), id)
                }
            };
            app.hub().push_frame(&conn, frame);
        });
    }

    fn reject_frame(&self, err: EventError, text: &Bytes) {
        self.log_rejected(text, err.code);
        self.send_error(err.code, &err.message);
    }

    /// Count and log a refused client frame.
    fn log_rejected(&self, text: &Bytes, code: &'static str) {
        let drop = DropKind::for_error_code(code);
        let subject = Subject::Endpoint(ENDPOINT);
        self.app
            .ops()
            .rejected(NAME, subject, &self.conn, text, (drop, code));
    }

    /// Log a client message (a walker call or a send); control events are not messages.
    fn log_received(&self, event: &ClientEvent, text: &Bytes) {
        let subject = match event {
            ClientEvent::Walker(call) => Subject::Walker(call.walker.clone()),
            ClientEvent::User { root_ids, .. } => Subject::Target(Target::Users(root_ids.clone())),
            ClientEvent::Channel { channel_ids, .. } => {
                Subject::Target(Target::Channels(channel_ids.clone()))
            }
            ClientEvent::Client { client_ids, .. } => {
                Subject::Target(Target::Clients(client_ids.clone()))
            }
            ClientEvent::ChangeUser { .. } | ClientEvent::Connection | ClientEvent::Ping => return,
        };
        self.app.ops().received(NAME, subject, &self.conn, text);
    }
}

impl Session for JacSession {
    async fn on_text(&mut self, text: &ByteString) {
        // `data` the client relays is a slice of this frame, not a copy.
        match events::parse_frame(text, Some(text.as_bytes()), self.limits) {
            Ok(event) => {
                self.log_received(&event, text.as_bytes());
                self.apply(event).await;
            }
            Err(err) => self.reject_frame(err, text.as_bytes()),
        }
    }

    fn on_rate_limited(&mut self, text: Option<&str>, retry_after_ms: u64) {
        self.app.metrics().client_errors.inc();
        self.log_rejected(&excerpt(text.unwrap_or_default()), RATE_LIMITED);
        // A refused walker call is answered as that call, so a client can fail it at once.
        let walker = text.and_then(|t| match events::parse(t, self.limits) {
            Ok(ClientEvent::Walker(call)) => Some(call),
            _ => None,
        });
        self.send(frames::rate_limited(walker.as_ref(), retry_after_ms));
    }

    async fn on_binary(&mut self, _data: &[u8]) {
        self.log_rejected(&Bytes::new(), BINARY_NOT_SUPPORTED);
        self.send_error(
            BINARY_NOT_SUPPORTED,
            "binary frames are not supported; send JSON text frames",
        );
    }
}
