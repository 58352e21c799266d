//! Parsing a client frame of the Jac Cloud dialect into a [`ClientEvent`].
//!
//! Parsing is total: any text yields an event or an [`EventError`] with a stable code and a message
//! naming the offending field. Nothing here touches the hub.

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

/// The top-level fields of a frame the dialect reads, each still raw JSON borrowed from the
/// frame. Read in one pass; other fields are skipped without being kept; a repeated field keeps
/// its last value (as JSON objects are read everywhere else).
#[derive(Default)]
struct Fields<'a> {
    kind: Option<&'a RawValue>,
    walker: Option<&'a RawValue>,
    context: Option<&'a RawValue>,
    response: Option<&'a RawValue>,
    node: Option<&'a RawValue>,
    id: Option<&'a RawValue>,
    root_ids: Option<&'a RawValue>,
    channel_ids: Option<&'a RawValue>,
    client_ids: Option<&'a RawValue>,
    data: Option<&'a RawValue>,
    token: Option<&'a RawValue>,
    /// `token` was present, even as `null` (a `connection` event with it is a user switch).
    has_token: bool,
}

/// The names [`Fields`] keeps.
enum FieldName {
    Type,
    Walker,
    Context,
    Response,
    Node,
    Id,
    RootIds,
    ChannelIds,
    ClientIds,
    Data,
    Token,
    Other,
}

impl<'de> serde::Deserialize<'de> for FieldName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl serde::de::Visitor<'_> for NameVisitor {
            type Value = FieldName;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<FieldName, E> {
                Ok(match name {
                    "type" => FieldName::Type,
                    "walker" => FieldName::Walker,
                    "context" => FieldName::Context,
                    "response" => FieldName::Response,
                    "node" => FieldName::Node,
                    "id" => FieldName::Id,
                    "root_ids" => FieldName::RootIds,
                    "channel_ids" => FieldName::ChannelIds,
                    "client_ids" => FieldName::ClientIds,
                    "data" => FieldName::Data,
                    "token" => FieldName::Token,
                    _ => FieldName::Other,
                })
            }
        }
        deserializer.deserialize_identifier(NameVisitor)
    }
}

impl<'de> serde::Deserialize<'de> for Fields<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldsVisitor;
        impl<'de> serde::de::Visitor<'de> for FieldsVisitor {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Fields<'de>, A::Error> {
                let mut fields = Fields::default();
                while let Some(name) = map.next_key::<FieldName>()? {
                    let slot = match name {
                        FieldName::Type => &mut fields.kind,
                        FieldName::Walker => &mut fields.walker,
                        FieldName::Context => &mut fields.context,
                        FieldName::Response => &mut fields.response,
                        FieldName::Node => &mut fields.node,
                        FieldName::Id => &mut fields.id,
                        FieldName::RootIds => &mut fields.root_ids,
                        FieldName::ChannelIds => &mut fields.channel_ids,
                        FieldName::ClientIds => &mut fields.client_ids,
                        FieldName::Data => &mut fields.data,
                        FieldName::Token => {
                            fields.has_token = true;
                            &mut fields.token
                        }
                        FieldName::Other => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                            continue;
                        }
                    };
                    *slot = Some(map.next_value::<&'de RawValue>()?);
                }
                Ok(fields)
            }
        }
        deserializer.deserialize_map(FieldsVisitor)
    }
}

/// A present, non-null field.
fn present(raw: Option<&RawValue>) -> Option<&RawValue> {
    raw.filter(|v| v.get() != "null")
}

fn optional<T: DeserializeOwned>(
    raw: Option<&RawValue>,
    name: &str,
    expected: &str,
) -> Result<Option<T>, EventError> {
    match present(raw) {
        None => Ok(None),
        Some(raw) => serde_json::from_str(raw.get()).map(Some).map_err(|_| {
            EventError::new(
                "invalid_field",
                format!("field `{name}` must be {expected}"),
            )
        }),
    }
}

fn required<T: DeserializeOwned>(
    raw: Option<&RawValue>,
    name: &str,
    expected: &str,
) -> Result<T, EventError> {
    optional(raw, name, expected)?.ok_or_else(|| {
        EventError::new(
            "missing_field",
            format!("field `{name}` is required ({expected})"),
        )
    })
}

fn ids(raw: Option<&RawValue>, name: &str, limits: ParseLimits) -> Result<Vec<String>, EventError> {
    let ids: Vec<String> = required(raw, name, "an array of strings")?;
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

/// `data`, verbatim: a slice of the received frame when it is at hand, else a copy.
fn data(raw: Option<&RawValue>, frame: Option<&Bytes>) -> Result<Bytes, EventError> {
    let Some(raw) = raw else {
        return Err(EventError::new(
            "missing_field",
            "field `data` is required (any JSON value)",
        ));
    };
    let text = raw.get().as_bytes();
    Ok(match frame {
        Some(frame) if frame.as_ptr_range().contains(&text.as_ptr()) => frame.slice_ref(text),
        _ => Bytes::copy_from_slice(text),
    })
}

/// Parse one text frame.
pub fn parse(text: &str, limits: ParseLimits) -> Result<ClientEvent, EventError> {
    parse_frame(text, None, limits)
}

/// Parse one text frame whose bytes are `frame` (`text` is `frame` as a `str`), so a relayed
/// `data` is a slice of it rather than a copy. The frame is read once.
pub fn parse_frame(
    text: &str,
    frame: Option<&Bytes>,
    limits: ParseLimits,
) -> Result<ClientEvent, EventError> {
    if !text.trim_start().starts_with('{') {
        // Not an object: tell "not JSON" from "JSON of another kind" (the rare error path).
        return Err(match json::parse_object(text) {
            Err(ObjectError::NotJson(reason)) => {
                EventError::new("invalid_json", format!("frame is not valid JSON: {reason}"))
            }
            _ => EventError::new(
                "not_an_object",
                "frame must be a JSON object with a `type` field",
            ),
        });
    }
    let fields: Fields<'_> = serde_json::from_str(text).map_err(|err| {
        EventError::new(
            "invalid_json",
            format!(
                "frame is not valid JSON: {}",
                strip_position(&err.to_string())
            ),
        )
    })?;
    let kind: String = match present(fields.kind) {
        None => return Err(EventError::new("missing_type", "field `type` is required")),
        Some(_) => required(fields.kind, "type", "a string")?,
    };
    match kind.as_str() {
        "walker" => parse_walker(&fields).map(ClientEvent::Walker),
        "user" => Ok(ClientEvent::User {
            root_ids: ids(fields.root_ids, "root_ids", limits)?,
            data: data(fields.data, frame)?,
        }),
        "channel" => Ok(ClientEvent::Channel {
            channel_ids: ids(fields.channel_ids, "channel_ids", limits)?,
            data: data(fields.data, frame)?,
        }),
        "client" => Ok(ClientEvent::Client {
            client_ids: ids(fields.client_ids, "client_ids", limits)?,
            data: data(fields.data, frame)?,
        }),
        "change_user" => Ok(ClientEvent::ChangeUser {
            token: optional(fields.token, "token", "a string")?,
        }),
        // Seed 000 documents the user switch as a `connection` event carrying `token`.
        "connection" if fields.has_token => Ok(ClientEvent::ChangeUser {
            token: optional(fields.token, "token", "a string")?,
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

fn parse_walker(fields: &Fields<'_>) -> Result<WalkerEvent, EventError> {
    let walker: String = required(fields.walker, "walker", "a string")?;
    let context = match present(fields.context) {
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
    let id = match optional::<serde_json::Value>(fields.id, "id", "a string or a number")? {
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
        response: optional(fields.response, "response", "a boolean")?.unwrap_or(false),
        node: optional(fields.node, "node", "a string")?,
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
