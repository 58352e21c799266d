//! One channel-dialect connection: built-in commands, messages to the channel's rule, errors.
//!
//! The struct is three handles and a flag: every idle connection keeps one, so anything larger
//! lives in [`super::ChannelState`] or is built per frame.

use std::sync::Arc;

use bytes::Bytes;
use bytestring::ByteString;
use serde_json::value::RawValue;

use super::api::{Channels, Message};
use super::events::{self, Command, CommandError};
use super::rules::{OnMessage, Refusal};
use super::{ChannelState, frames};
use crate::app::Switchboard;
use crate::dialect::Session;
use crate::error_code::{self, BINARY_NOT_SUPPORTED, RATE_LIMITED};
use crate::hub::{Connection, Delivery, Target};
use crate::ops::activity::{Subject, excerpt};
use crate::ops::dropped::DropKind;
use crate::upstream::{self, Admission, UpstreamError};

/// This dialect's name in the activity log, and its endpoint prefix.
const NAME: &str = "channel";
const ENDPOINT: &str = "/ws";

pub struct ChannelSession {
    app: Switchboard,
    conn: Arc<Connection>,
    state: Arc<ChannelState>,
    /// Whether the connection has an entry in the state's metadata map to remove at the end.
    has_metadata: bool,
}

impl ChannelSession {
    pub fn new(
        app: Switchboard,
        conn: Arc<Connection>,
        state: Arc<ChannelState>,
        has_metadata: bool,
    ) -> Self {
        Self {
            app,
            conn,
            state,
            has_metadata,
        }
    }

    /// Count and log a refused client frame.
    fn log_rejected(&self, subject: Subject, text: &Bytes, code: &'static str) {
        let drop = DropKind::for_error_code(code);
        self.app
            .ops()
            .rejected(NAME, subject, &self.conn, text, (drop, code));
    }

    fn send(&self, frame: Bytes) {
        self.app.hub().push_frame(&self.conn, frame);
    }

    fn reject(&self, err: CommandError, text: &Bytes) {
        self.app.metrics().client_errors.inc();
        let subject = match &err.channel {
            Some(channel) => Subject::Target(Target::Channels(vec![channel.clone()])),
            None => Subject::Endpoint(ENDPOINT),
        };
        self.log_rejected(subject, text, err.code);
        self.send(frames::error(
            err.code,
            &err.message,
            err.channel.as_deref(),
        ));
    }

    async fn apply(&mut self, command: Command<'_>, frame: &ByteString) {
        let outcome = match command {
            Command::Ping => {
                self.send(frames::pong());
                Ok(())
            }
            Command::Join(channel) => self.join(&channel).await,
            Command::Leave(channel) => self.leave(&channel),
            // Boxed: the cluster-wide member lookup is the largest future a frame can start, and
            // every idle connection's task would otherwise reserve room for it.
            Command::Members(channel) => Box::pin(self.members(channel.into_owned())).await,
            Command::Message {
                channel,
                cmd,
                param,
            } => self.message(&channel, &cmd, param, frame).await,
        };
        if let Err(err) = outcome {
            self.reject(err, frame.as_bytes());
        }
    }

    async fn join(&self, channel: &str) -> Result<(), CommandError> {
        let rule = self.state.rules.rule_for(channel);
        let identity = self.conn.identity();
        rule.admits(&identity)
            .map_err(|refusal| refused(&refusal, channel))?;
        let max = rule.max_channels();
        if !self.conn.is_in_channel(channel) && self.conn.channel_count() >= max {
            return Err(CommandError::new(
                "too_many_channels",
                format!(
                    "a connection may be in at most {max} channels here \
                     (max_channels_per_connection); leave one first"
                ),
            )
            .about(channel));
        }
        if let Some(url) = rule.admission_upstream()
            && !self.conn.is_in_channel(channel)
        {
            let request = upstream::connect_request(
                &self.app,
                "channel",
                channel,
                &identity,
                self.conn.client_id(),
            );
            // Boxed: only a connection whose join waits for the backend pays for it.
            match Box::pin(Admission::ask(&self.app.shared.upstreams, url, &request)).await {
                Admission::Allowed => {}
                Admission::Refused(reason) => {
                    return Err(CommandError::new(error_code::FORBIDDEN, reason).about(channel));
                }
                Admission::Failed(err) => return Err(upstream_failed(&err, channel)),
            }
        }
        let members = self.app.hub().subscribe(&self.conn, Arc::from(channel));
        self.send(frames::membership(channel, "joined", members));
        Ok(())
    }

    fn leave(&self, channel: &str) -> Result<(), CommandError> {
        if !self.conn.is_in_channel(channel) {
            return Err(not_joined(channel));
        }
        let members = self.app.hub().unsubscribe(&self.conn, channel);
        self.send(frames::membership(channel, "left", members));
        Ok(())
    }

    /// The channel's members on every node. Anyone the channel's rule admits may ask.
    async fn members(&self, channel: String) -> Result<(), CommandError> {
        let rule = self.state.rules.rule_for(&channel);
        if let Err(refusal) = rule.admits(&self.conn.identity()) {
            return Err(refused(&refusal, &channel));
        }
        let members = Channels::new(self.app.clone(), self.state.clone())
            .members(&channel)
            .await;
        self.send(frames::reply(
            &channel,
            "members",
            &serde_json::json!({ "members": members }),
        ));
        Ok(())
    }

    /// A member's message: to the channel's rule (relay, drop, handler or upstream).
    async fn message(
        &self,
        channel: &str,
        cmd: &str,
        param: Option<&RawValue>,
        frame: &ByteString,
    ) -> Result<(), CommandError> {
        if !self.conn.is_in_channel(channel) {
            return Err(not_joined(channel));
        }
        let subject = Subject::Target(Target::Channels(vec![channel.to_string()]));
        self.app
            .ops()
            .received(NAME, subject, &self.conn, frame.as_bytes());
        match self.state.rules.rule_for(channel).messages() {
            OnMessage::Relay => {
                let param = param.map_or_else(
                    || Bytes::from_static(b"null"),
                    // `param` is a slice of this frame: the relay shares its bytes.
                    |raw| frame.as_bytes().slice_ref(raw.get().as_bytes()),
                );
                let delivery = Delivery::from_raw_json(param)
                    .with_event(cmd)
                    .with_sender(self.conn.client_id().clone(), None)
                    .excluding(self.conn.key());
                self.app
                    .shared
                    .publisher
                    .publish(&Target::Channels(vec![channel.to_string()]), &delivery);
            }
            OnMessage::Ignore => {}
            OnMessage::Handler(handler) => {
                let channels = Channels::new(self.app.clone(), self.state.clone());
                let sender = channels.describe(&self.conn);
                let param = param.map_or(serde_json::Value::Null, |raw| {
                    // Already parsed once as JSON, so it parses again.
                    serde_json::from_str(raw.get()).unwrap_or_default()
                });
                let message = Message {
                    from: Some(self.conn.client_id().to_string()),
                    channel: channel.to_string(),
                    cmd: cmd.to_string(),
                    param,
                };
                handler(&channels, &sender, message);
            }
            OnMessage::Upstream(url) => {
                let param = param.map_or(serde_json::Value::Null, |raw| {
                    serde_json::from_str(raw.get()).unwrap_or_default()
                });
                // Boxed: only a connection whose message is in flight to the backend pays for it.
                Box::pin(self.call_upstream(url, channel, cmd, param, frame)).await?;
            }
        }
        Ok(())
    }

    /// Hand a member's message to the rule's upstream as `{"channel","event":"message",
    /// "data":{"cmd","param"},"caller","node_id"}`: its `notify` items are delivered, then its
    /// `reply` goes to this connection as `{"channel","cmd","param":reply}` (with the message's
    /// `requestId`, if it had one).
    async fn call_upstream(
        &self,
        url: &str,
        channel: &str,
        cmd: &str,
        param: serde_json::Value,
        frame: &ByteString,
    ) -> Result<(), CommandError> {
        let request = serde_json::json!({
            "channel": channel,
            "event": "message",
            "data": {"cmd": cmd, "param": param},
            "caller": upstream::caller_json(&self.conn.identity(), Some(self.conn.client_id())),
            "node_id": self.app.shared.upstreams.node_id(),
        });
        let reply = upstream::call_message_hook(&self.app, url, &request)
            .await
            .map_err(|err| upstream_failed(&err, channel))?;
        if let Some(reply) = reply {
            let request_id = serde_json::from_str::<serde_json::Value>(frame)
                .ok()
                .and_then(|mut value| value.get_mut("requestId").map(serde_json::Value::take));
            self.send(frames::upstream_reply(channel, cmd, &reply, request_id));
        }
        Ok(())
    }
}

/// An upstream failure as a client error: the stable code (`upstream_timeout`, ...) and why.
fn upstream_failed(err: &UpstreamError, channel: &str) -> CommandError {
    CommandError::new(err.code(), err.to_string()).about(channel)
}

fn not_joined(channel: &str) -> CommandError {
    CommandError::new(
        "not_joined",
        format!("this connection is not a member of channel `{channel}`; join it first"),
    )
    .about(channel)
}

fn refused(refusal: &Refusal, channel: &str) -> CommandError {
    CommandError::new(refusal.code(), refusal.message(channel)).about(channel)
}

impl Session for ChannelSession {
    async fn on_text(&mut self, text: &ByteString) {
        match events::parse(text) {
            Ok(command) => self.apply(command, text).await,
            Err(err) => self.reject(err, text.as_bytes()),
        }
    }

    fn on_rate_limited(&mut self, text: Option<&str>, retry_after_ms: u64) {
        self.app.metrics().client_errors.inc();
        let text = excerpt(text.unwrap_or_default());
        self.log_rejected(Subject::Endpoint(ENDPOINT), &text, RATE_LIMITED);
        self.send(frames::rate_limited(retry_after_ms));
    }

    async fn on_binary(&mut self, _data: &[u8]) {
        self.app.metrics().client_errors.inc();
        let subject = Subject::Endpoint(ENDPOINT);
        self.log_rejected(subject, &Bytes::new(), BINARY_NOT_SUPPORTED);
        self.send(frames::error(
            BINARY_NOT_SUPPORTED,
            "binary frames are not supported; send JSON text frames",
            None,
        ));
    }
}

impl Drop for ChannelSession {
    /// The session ends with its connection: forget the metadata it opened with.
    fn drop(&mut self) {
        if self.has_metadata {
            self.state.metadata.remove(self.conn.client_id());
        }
    }
}
