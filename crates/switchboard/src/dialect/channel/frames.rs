//! Frames the server sends in the channel dialect: `{"channel":C,"cmd":X,"param":P}`, with
//! `"from"` first when a connection sent it. Each is built once and queued as shared bytes.

use bytes::Bytes;
use serde_json::{Value, json};

use crate::json::push_string;

/// A message frame from its parts; `param` is valid JSON already and is copied as is.
pub fn message(from: Option<&str>, channel: Option<&str>, cmd: &str, param: &[u8]) -> Bytes {
    let mut frame = Vec::with_capacity(
        param.len() + cmd.len() + channel.map_or(0, str::len) + from.map_or(0, str::len) + 40,
    );
    frame.push(b'{');
    if let Some(from) = from {
        frame.extend_from_slice(br#""from":"#);
        push_string(&mut frame, from);
        frame.push(b',');
    }
    if let Some(channel) = channel {
        frame.extend_from_slice(br#""channel":"#);
        push_string(&mut frame, channel);
        frame.push(b',');
    }
    frame.extend_from_slice(br#""cmd":"#);
    push_string(&mut frame, cmd);
    frame.extend_from_slice(br#","param":"#);
    frame.extend_from_slice(param);
    frame.push(b'}');
    Bytes::from(frame)
}

/// A reply about one channel (`joined`, `left`, `members`).
pub fn reply(channel: &str, cmd: &str, param: &Value) -> Bytes {
    encode(&json!({"channel": channel, "cmd": cmd, "param": param}))
}

/// An upstream's reply to a member's message: `{"channel":C,"cmd":CMD,"param":P}`, with
/// `"requestId"` when the message carried one.
pub fn upstream_reply(channel: &str, cmd: &str, param: &Value, request_id: Option<Value>) -> Bytes {
    let mut frame = json!({"channel": channel, "cmd": cmd, "param": param});
    if let Some(request_id) = request_id {
        frame["requestId"] = request_id;
    }
    encode(&frame)
}

/// `{"channel":C,"cmd":"joined"|"left","param":{"members":N}}`.
pub fn membership(channel: &str, cmd: &str, members: usize) -> Bytes {
    reply(channel, cmd, &json!({ "members": members }))
}

/// `{"cmd":"pong","param":{"timestamp":MS}}`, `MS` in Unix milliseconds.
pub fn pong() -> Bytes {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    encode(&json!({"cmd": "pong", "param": {"timestamp": now}}))
}

/// Seed 004's request to stop reconnecting: `{"cmd":"close-connection"}`.
pub fn close_connection() -> Bytes {
    Bytes::from_static(br#"{"cmd":"close-connection"}"#)
}

/// `{"channel":C,"cmd":"error","param":{"code":CODE,"message":MSG}}`, `channel` only when the
/// error is about one.
pub fn error(code: &str, message: &str, channel: Option<&str>) -> Bytes {
    encode(&error_value(code, message, channel))
}

fn error_value(code: &str, message: &str, channel: Option<&str>) -> Value {
    let mut frame = json!({"cmd": "error", "param": {"code": code, "message": message}});
    if let Some(channel) = channel {
        frame["channel"] = json!(channel);
    }
    frame
}

/// The rate limit dropped a message: the error frame plus `retry_after_ms` in `param`.
pub fn rate_limited(retry_after_ms: u64) -> Bytes {
    let message =
        format!("message rate over the limit; message dropped, retry after {retry_after_ms} ms");
    let mut frame = error_value("rate_limited", &message, None);
    frame["param"]["retry_after_ms"] = json!(retry_after_ms);
    encode(&frame)
}

fn encode(value: &Value) -> Bytes {
    // Serializing a `Value` cannot fail.
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_frames_escape_names_and_keep_param_bytes() {
        let frame = message(Some("id-1"), Some("a\"b"), "chat", br#"{"x": 1}"#);
        assert_eq!(
            &frame[..],
            br#"{"from":"id-1","channel":"a\"b","cmd":"chat","param":{"x": 1}}"#
        );
        assert_eq!(
            &message(None, None, "m", b"null")[..],
            br#"{"cmd":"m","param":null}"#
        );
    }

    #[test]
    fn errors_name_their_channel_only_when_about_one() {
        let with: Value = serde_json::from_slice(&error("not_joined", "no", Some("c"))).unwrap();
        assert_eq!(with["channel"], "c");
        assert_eq!(with["param"]["code"], "not_joined");
        let without: Value = serde_json::from_slice(&rate_limited(5)).unwrap();
        assert!(without.get("channel").is_none());
        assert_eq!(without["param"]["retry_after_ms"], 5);
    }
}
