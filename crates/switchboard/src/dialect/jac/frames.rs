//! Frames the server sends in the Jac Cloud dialect. Each is built once and queued as shared bytes.

use bytes::Bytes;
use serde_json::{Value, json};

use super::events::WalkerEvent;
use crate::hub::Connection;
use crate::walker::Reports;

/// `{"type":"connection","data":{client_id, root_id, channel_id}}`.
pub fn connection(conn: &Connection) -> Bytes {
    let channel = conn.channels().into_iter().next();
    connection_info(
        conn.client_id(),
        conn.identity().root_id(),
        channel.as_deref(),
    )
}

/// The same frame from its parts, for a connection not registered yet.
pub fn connection_info(client_id: &str, root_id: &str, channel_id: Option<&str>) -> Bytes {
    encode(&json!({
        "type": "connection",
        "data": {"client_id": client_id, "root_id": root_id, "channel_id": channel_id}
    }))
}

/// A walker's reply: `{"status":200,"reports":[...],"walker":NAME}` plus the client's `id`.
pub fn walker_reply(walker: &str, reports: Reports, id: Option<Value>) -> Bytes {
    let mut reply = json!({"status": 200, "reports": reports, "walker": walker});
    if let Some(id) = id {
        reply["id"] = id;
    }
    encode(&reply)
}

/// `{"type":"walker","walker":NAME,"error":MSG,"code":CODE}` plus the client's `id`.
pub fn walker_error(walker: &str, code: &str, message: &str, id: Option<Value>) -> Bytes {
    encode(&walker_error_value(walker, code, message, id))
}

fn walker_error_value(walker: &str, code: &str, message: &str, id: Option<Value>) -> Value {
    let mut frame = json!({"type": "walker", "walker": walker, "error": message, "code": code});
    if let Some(id) = id {
        frame["id"] = id;
    }
    frame
}

/// `{"type":"error","error":MSG,"code":CODE}`.
pub fn error(code: &str, message: &str) -> Bytes {
    encode(&error_value(code, message))
}

fn error_value(code: &str, message: &str) -> Value {
    json!({"type": "error", "error": message, "code": code})
}

/// The message was dropped by the rate limit: `{"type":"error","code":"rate_limited",
/// "retry_after_ms":N,...}`, or, for a walker call, the walker error shape with its `id`.
pub fn rate_limited(walker: Option<&WalkerEvent>, retry_after_ms: u64) -> Bytes {
    let message =
        format!("message rate over the limit; message dropped, retry after {retry_after_ms} ms");
    let mut frame = match walker {
        Some(call) => walker_error_value(&call.walker, "rate_limited", &message, call.id.clone()),
        None => error_value("rate_limited", &message),
    };
    frame["retry_after_ms"] = json!(retry_after_ms);
    encode(&frame)
}

/// `{"type":EVENT,"data":DATA}`: how an event-named delivery (a channel-dialect message) reaches
/// a Jac connection. `data` is valid JSON already and is copied as is.
pub fn typed(event: &str, data: &[u8]) -> Bytes {
    let mut frame = Vec::with_capacity(event.len() + data.len() + 20);
    frame.extend_from_slice(br#"{"type":"#);
    crate::json::push_string(&mut frame, event);
    frame.extend_from_slice(br#","data":"#);
    frame.extend_from_slice(data);
    frame.push(b'}');
    Bytes::from(frame)
}

/// `{"type":"pong"}`.
pub fn pong() -> Bytes {
    Bytes::from_static(br#"{"type":"pong"}"#)
}

fn encode(value: &Value) -> Bytes {
    // Serializing a `Value` cannot fail.
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}
