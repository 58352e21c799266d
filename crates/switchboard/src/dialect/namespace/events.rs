//! A client's text frame in the namespace dialect, parsed once: an app-level ping, or a message
//! (a JSON object, handed to the hook and relayed), or a 400.

use serde_json::{Map, Value};

/// What a client sent.
#[derive(Debug, PartialEq)]
pub enum ClientFrame {
    /// `{"type":"ping"}`: answered with a pong, not counted as a message nor against the rate.
    Ping,
    /// Any other JSON object.
    Message {
        data: Map<String, Value>,
        /// The message's `requestId`, as JSON text, echoed in its error or reply.
        request_id: Option<String>,
    },
}

/// A frame that is not a JSON object (answered with 400).
#[derive(Debug, PartialEq, Eq)]
pub struct BadFrame(pub &'static str);

pub fn parse(text: &str) -> Result<ClientFrame, BadFrame> {
    let value: Value =
        serde_json::from_str(text).map_err(|_| BadFrame("Invalid message format"))?;
    let Value::Object(data) = value else {
        return Err(BadFrame(
            "Invalid message format: a message must be a JSON object",
        ));
    };
    if data.get("type").and_then(Value::as_str) == Some("ping") {
        return Ok(ClientFrame::Ping);
    }
    let request_id = data.get("requestId").map(Value::to_string);
    Ok(ClientFrame::Message { data, request_id })
}

/// The `requestId` of a frame that is not otherwise processed (dropped by a limit), if it has one.
pub fn request_id(text: &str) -> Option<String> {
    match parse(text) {
        Ok(ClientFrame::Message { request_id, .. }) => request_id,
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pings_messages_and_bad_frames() {
        assert_eq!(parse(r#"{"type":"ping"}"#), Ok(ClientFrame::Ping));
        let Ok(ClientFrame::Message { data, request_id }) =
            parse(r#"{"type":"chat","requestId":"r-1"}"#)
        else {
            panic!("a message");
        };
        assert_eq!(data["type"], "chat");
        assert_eq!(request_id.as_deref(), Some(r#""r-1""#));
        assert!(parse("{").is_err());
        assert!(parse("[1]").is_err());
        assert!(parse("\"x\"").is_err());
        assert_eq!(
            super::request_id(r#"{"requestId":3}"#).as_deref(),
            Some("3")
        );
        assert_eq!(super::request_id(r#"{"type":"ping","requestId":3}"#), None);
    }
}
