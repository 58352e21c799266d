//! Parsing a client frame of the channel dialect (`{"channel":C,"cmd":X,"param":P}`) into a
//! [`Command`], borrowing from the frame.
//!
//! Parsing is total: any text yields a command or a [`CommandError`] with a stable code, a message
//! naming the offending field and, when the frame named a channel, that channel. A client-set
//! `from` (or any other field) is ignored: the server stamps `from` itself.

use std::borrow::Cow;

use serde_json::value::RawValue;

use super::is_valid_channel_name;
use crate::json::strip_position;

/// One client command.
#[derive(Debug)]
pub enum Command<'a> {
    /// `{"cmd":"join","channel":C}`.
    Join(Cow<'a, str>),
    /// `{"cmd":"leave","channel":C}`.
    Leave(Cow<'a, str>),
    /// `{"cmd":"members","channel":C}`.
    Members(Cow<'a, str>),
    /// `{"cmd":"ping"}`.
    Ping,
    /// Anything else: a message for the channel's handler. `param` is absent or raw JSON.
    Message {
        channel: Cow<'a, str>,
        cmd: Cow<'a, str>,
        param: Option<&'a RawValue>,
    },
}

/// A frame the dialect cannot act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandError {
    pub code: &'static str,
    pub message: String,
    /// The channel the frame named, when it named a valid one.
    pub channel: Option<String>,
}

impl CommandError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            channel: None,
        }
    }

    /// Name the channel the refused frame was about.
    pub fn about(mut self, channel: &str) -> Self {
        self.channel = Some(channel.to_string());
        self
    }
}

/// Commands only the server sends. A member may not send them to others: a relayed
/// `close-connection` would make their clients stop for good, a relayed `online-update` would
/// fake presence.
pub const SERVER_COMMANDS: &[&str] = &[
    "joined",
    "left",
    "members",
    "pong",
    "error",
    "online-update",
    "close-connection",
];

/// The top-level fields the dialect reads, still raw; others are skipped.
#[derive(serde::Deserialize)]
struct Fields<'a> {
    #[serde(borrow, default)]
    channel: Option<&'a RawValue>,
    #[serde(borrow, default)]
    cmd: Option<&'a RawValue>,
    #[serde(borrow, default)]
    param: Option<&'a RawValue>,
}

/// Parse one text frame.
pub fn parse(text: &str) -> Result<Command<'_>, CommandError> {
    let invalid = |err: serde_json::Error| {
        CommandError::new(
            "invalid_json",
            format!(
                "the frame is not valid JSON: {}",
                strip_position(&err.to_string())
            ),
        )
    };
    // Checked first: serde would read a struct from an array too.
    if !text.trim_start().starts_with('{') {
        serde_json::from_str::<serde::de::IgnoredAny>(text).map_err(invalid)?;
        return Err(CommandError::new(
            "not_an_object",
            "the frame must be a JSON object {\"channel\",\"cmd\",\"param\"}",
        ));
    }
    let fields: Fields<'_> = serde_json::from_str(text).map_err(invalid)?;
    let cmd = match present(fields.cmd) {
        None => {
            return Err(CommandError::new(
                "missing_cmd",
                "field `cmd` is required (a string)",
            ));
        }
        Some(raw) => string(raw)
            .ok_or_else(|| CommandError::new("invalid_field", "field `cmd` must be a string"))?,
    };
    if cmd == "ping" {
        return Ok(Command::Ping);
    }
    let channel = channel(fields.channel)?;
    Ok(match &*cmd {
        "join" => Command::Join(channel),
        "leave" => Command::Leave(channel),
        "members" => Command::Members(channel),
        reserved if SERVER_COMMANDS.contains(&reserved) => {
            return Err(CommandError::new(
                "invalid_field",
                format!("`cmd` `{reserved}` is sent by the server only"),
            )
            .about(&channel));
        }
        _ => Command::Message {
            channel,
            cmd,
            param: present(fields.param),
        },
    })
}

/// The frame's `channel`: a string naming a valid channel.
fn channel(raw: Option<&RawValue>) -> Result<Cow<'_, str>, CommandError> {
    let Some(raw) = present(raw) else {
        return Err(CommandError::new(
            "missing_field",
            "field `channel` is required (a channel name)",
        ));
    };
    let name = string(raw)
        .ok_or_else(|| CommandError::new("invalid_field", "field `channel` must be a string"))?;
    if !is_valid_channel_name(&name) {
        return Err(CommandError::new(
            "invalid_channel",
            "a channel name is 1 to 128 characters of A-Z a-z 0-9 _ . : -",
        ));
    }
    Ok(name)
}

/// A present, non-null field.
fn present(raw: Option<&RawValue>) -> Option<&RawValue> {
    raw.filter(|v| v.get() != "null")
}

/// A JSON string, borrowed unless it holds escapes.
fn string(raw: &RawValue) -> Option<Cow<'_, str>> {
    serde_json::from_str::<&str>(raw.get())
        .map(Cow::Borrowed)
        .or_else(|_| serde_json::from_str::<String>(raw.get()).map(Cow::Owned))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> &'static str {
        parse(text).unwrap_err().code
    }

    #[test]
    fn built_in_commands_and_messages() {
        assert!(matches!(parse(r#"{"cmd":"ping"}"#), Ok(Command::Ping)));
        assert!(
            matches!(parse(r#"{"cmd":"join","channel":"a.b:c"}"#), Ok(Command::Join(c)) if c == "a.b:c")
        );
        match parse(r#"{"channel":"r","cmd":"chat","param":{"t":1},"from":"x"}"#).unwrap() {
            Command::Message {
                channel,
                cmd,
                param,
            } => {
                assert_eq!((&*channel, &*cmd), ("r", "chat"));
                assert_eq!(param.unwrap().get(), r#"{"t":1}"#);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(r#"{"channel":"r","cmd":"c\u0068at"}"#),
            Ok(Command::Message { cmd, param: None, .. }) if cmd == "chat"
        ));
    }

    #[test]
    fn every_bad_frame_has_its_code() {
        assert_eq!(code("{nope"), "invalid_json");
        assert_eq!(code(r#"{"cmd":"a","cmd":"b"}"#), "invalid_json");
        assert_eq!(code("[1]"), "not_an_object");
        assert_eq!(code("42"), "not_an_object");
        assert_eq!(code("[1"), "invalid_json");
        assert_eq!(code(r#"{"channel":"r"}"#), "missing_cmd");
        assert_eq!(code(r#"{"cmd":null}"#), "missing_cmd");
        assert_eq!(code(r#"{"cmd":7}"#), "invalid_field");
        assert_eq!(code(r#"{"cmd":"join"}"#), "missing_field");
        assert_eq!(code(r#"{"cmd":"chat","channel":5}"#), "invalid_field");
        assert_eq!(code(r#"{"cmd":"join","channel":"a b"}"#), "invalid_channel");
        assert_eq!(code(r#"{"cmd":"join","channel":""}"#), "invalid_channel");
        let reserved = parse(r#"{"cmd":"close-connection","channel":"r"}"#).unwrap_err();
        assert_eq!(
            (reserved.code, reserved.channel.as_deref()),
            ("invalid_field", Some("r"))
        );
    }
}
