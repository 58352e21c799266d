//! Parsing a client frame of the Jac Cloud dialect into a [`ClientEvent`].
//!
//! Parsing is total: any text yields an event or an [`EventError`] with a stable code and a message
//! naming the offending field. Nothing here touches the hub.

use std::collections::HashMap;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use crate::json::{self, ObjectError, strip_position};

/// One client event.
#[derive(Debug)]
pub enum ClientEvent {
    Walker(WalkerEvent),
    /// `user`: deliver `data` verbatim to every connection of these root ids.
    User {
        root_ids: Vec<String>,
        data: Bytes,
    },
    /// `channel`: deliver `data` verbatim to every connection subscribed to these channels.
    Channel {
        channel_ids: Vec<String>,
        data: Bytes,
    },
    /// `client`: deliver `data` verbatim to these connections.
    Client {
        client_ids: Vec<String>,
        data: Bytes,
    },
    /// `change_user` (or `connection` carrying a `token` key): re-authenticate.
    ChangeUser {
        token: Option<String>,
    },
    /// `connection`: send the connection frame again.
    Connection,
    /// `ping`: answer `{"type":"pong"}`.
    Ping,
}

#[derive(Debug)]
pub struct WalkerEvent {
    pub walker: String,
    pub context: Box<RawValue>,
    pub response: bool,
    pub node: Option<String>,
    /// Echoed in the reply so a client can correlate it; a string or a number.
    pub id: Option<serde_json::Value>,
}

/// A frame the dialect cannot act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventError {
    pub code: &'static str,
    pub message: String,
}

impl EventError {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// Limits that apply while parsing.
#[derive(Debug, Clone, Copy)]
pub struct ParseLimits {
    pub max_ids_per_event: usize,
}

/// The top-level fields of a frame, each still raw JSON.
struct Fields(HashMap<String, Box<RawValue>>);

impl Fields {
    fn raw(&self, name: &str) -> Option<&RawValue> {
        self.0.get(name).map(|v| &**v).filter(|v| v.get() != "null")
    }

    fn optional<T: DeserializeOwned>(
        &self,
        name: &str,
        expected: &str,
    ) -> Result<Option<T>, EventError> {
        match self.raw(name) {
            None => Ok(None),
            Some(raw) => serde_json::from_str(raw.get()).map(Some).map_err(|_| {
                EventError::new(
                    "invalid_field",
                    format!("field `{name}` must be {expected}"),
                )
            }),
        }
    }

    fn required<T: DeserializeOwned>(&self, name: &str, expected: &str) -> Result<T, EventError> {
        self.optional(name, expected)?.ok_or_else(|| {
            EventError::new(
                "missing_field",
                format!("field `{name}` is required ({expected})"),
            )
        })
    }

    fn ids(&self, name: &str, limits: ParseLimits) -> Result<Vec<String>, EventError> {
        let ids: Vec<String> = self.required(name, "an array of strings")?;
        if ids.is_empty() {
            return Err(EventError::new(
                "empty_ids",
                format!("field `{name}` must not be empty"),
            ));
        }
        if ids.len() > limits.max_ids_per_event {
            return Err(EventError::new(
                "too_many_ids",
                format!(
                    "field `{name}` has {} ids; at most {} are allowed",
                    ids.len(),
                    limits.max_ids_per_event
                ),
            ));
        }
        Ok(ids)
    }

    fn data(&self) -> Result<Bytes, EventError> {
        match self.0.get("data") {
            Some(raw) => Ok(Bytes::copy_from_slice(raw.get().as_bytes())),
            None => Err(EventError::new(
                "missing_field",
                "field `data` is required (any JSON value)",
            )),
        }
    }
}

/// Parse one text frame.
pub fn parse(text: &str, limits: ParseLimits) -> Result<ClientEvent, EventError> {
    let value = json::parse_object(text).map_err(|err| match err {
        ObjectError::NotJson(reason) => {
            EventError::new("invalid_json", format!("frame is not valid JSON: {reason}"))
        }
        ObjectError::NotAnObject => EventError::new(
            "not_an_object",
            "frame must be a JSON object with a `type` field",
        ),
    })?;
    let fields = Fields(
        serde_json::from_str(value.get())
            .map_err(|err| EventError::new("invalid_json", strip_position(&err.to_string())))?,
    );
    let kind: String = match fields.raw("type") {
        None => return Err(EventError::new("missing_type", "field `type` is required")),
        Some(_) => fields.required("type", "a string")?,
    };
    match kind.as_str() {
        "walker" => parse_walker(&fields).map(ClientEvent::Walker),
        "user" => Ok(ClientEvent::User {
            root_ids: fields.ids("root_ids", limits)?,
            data: fields.data()?,
        }),
        "channel" => Ok(ClientEvent::Channel {
            channel_ids: fields.ids("channel_ids", limits)?,
            data: fields.data()?,
        }),
        "client" => Ok(ClientEvent::Client {
            client_ids: fields.ids("client_ids", limits)?,
            data: fields.data()?,
        }),
        "change_user" => Ok(ClientEvent::ChangeUser {
            token: fields.optional("token", "a string")?,
        }),
        // Seed 000 documents the user switch as a `connection` event carrying `token`.
        "connection" if fields.0.contains_key("token") => Ok(ClientEvent::ChangeUser {
            token: fields.optional("token", "a string")?,
        }),
        "connection" => Ok(ClientEvent::Connection),
        "ping" => Ok(ClientEvent::Ping),
        other => Err(EventError::new(
            "unknown_type",
            format!(
                "unknown event type `{}`; expected walker, user, channel, client, change_user, connection or ping",
                truncate(other, 64)
            ),
        )),
    }
}

fn parse_walker(fields: &Fields) -> Result<WalkerEvent, EventError> {
    let walker: String = fields.required("walker", "a string")?;
    let context = match fields.raw("context") {
        None => RawValue::from_string("{}".to_string())
            .map_err(|_| EventError::new("internal_error", "internal error"))?,
        Some(raw) if raw.get().trim_start().starts_with('{') => raw.to_owned(),
        Some(_) => {
            return Err(EventError::new(
                "invalid_field",
                "field `context` must be an object",
            ));
        }
    };
    let id = match fields.optional::<serde_json::Value>("id", "a string or a number")? {
        None => None,
        Some(id @ (serde_json::Value::String(_) | serde_json::Value::Number(_))) => Some(id),
        Some(_) => {
            return Err(EventError::new(
                "invalid_field",
                "field `id` must be a string or a number",
            ));
        }
    };
    Ok(WalkerEvent {
        walker,
        context,
        response: fields.optional("response", "a boolean")?.unwrap_or(false),
        node: fields.optional("node", "a string")?,
        id,
    })
}

fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ParseLimits = ParseLimits {
        max_ids_per_event: 3,
    };

    fn code(text: &str) -> &'static str {
        parse(text, LIMITS).expect_err(text).code
    }

    #[test]
    fn bad_frames_have_stable_codes() {
        assert_eq!(code("hello"), "invalid_json");
        assert_eq!(code("[1,2]"), "not_an_object");
        assert_eq!(code("\"walker\""), "not_an_object");
        assert_eq!(code("{}"), "missing_type");
        assert_eq!(code(r#"{"type":5}"#), "invalid_field");
        assert_eq!(code(r#"{"type":"dance"}"#), "unknown_type");
        assert_eq!(code(r#"{"type":"walker"}"#), "missing_field");
        assert_eq!(code(r#"{"type":"walker","walker":1}"#), "invalid_field");
        assert_eq!(
            code(r#"{"type":"walker","walker":"w","context":[]}"#),
            "invalid_field"
        );
        assert_eq!(
            code(r#"{"type":"walker","walker":"w","response":"yes"}"#),
            "invalid_field"
        );
        assert_eq!(
            code(r#"{"type":"walker","walker":"w","id":{}}"#),
            "invalid_field"
        );
        assert_eq!(code(r#"{"type":"user","data":1}"#), "missing_field");
        assert_eq!(
            code(r#"{"type":"user","root_ids":[],"data":1}"#),
            "empty_ids"
        );
        assert_eq!(
            code(r#"{"type":"user","root_ids":[1],"data":1}"#),
            "invalid_field"
        );
        assert_eq!(
            code(r#"{"type":"channel","channel_ids":"a","data":1}"#),
            "invalid_field"
        );
        assert_eq!(
            code(r#"{"type":"client","client_ids":["a","b","c","d"],"data":1}"#),
            "too_many_ids"
        );
        assert_eq!(
            code(r#"{"type":"client","client_ids":["a"]}"#),
            "missing_field"
        );
        assert_eq!(code(r#"{"type":"change_user","token":5}"#), "invalid_field");
    }

    #[test]
    fn data_is_kept_verbatim() {
        let text = r#"{"type":"channel","channel_ids":["r"],"data":{"z":1, "a":[2,3]}}"#;
        match parse(text, LIMITS).unwrap() {
            ClientEvent::Channel { channel_ids, data } => {
                assert_eq!(channel_ids, vec!["r"]);
                assert_eq!(&data[..], br#"{"z":1, "a":[2,3]}"#);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn connection_with_token_is_a_user_switch() {
        assert!(matches!(
            parse(r#"{"type":"connection","token":"Bearer x"}"#, LIMITS).unwrap(),
            ClientEvent::ChangeUser { token: Some(t) } if t == "Bearer x"
        ));
        assert!(matches!(
            parse(r#"{"type":"connection"}"#, LIMITS).unwrap(),
            ClientEvent::Connection
        ));
    }

    #[test]
    fn walker_defaults() {
        match parse(r#"{"type":"walker","walker":"w"}"#, LIMITS).unwrap() {
            ClientEvent::Walker(w) => {
                assert_eq!(w.walker, "w");
                assert_eq!(w.context.get(), "{}");
                assert!(!w.response);
                assert!(w.id.is_none());
            }
            other => panic!("{other:?}"),
        }
    }
}
