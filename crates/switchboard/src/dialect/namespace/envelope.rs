//! The envelope every namespace frame travels in (seed 003's "standard API format"):
//! `{"success":true,"data":{...,"username":U}}` for data, `{"success":false,"error":E,"code":N,
//! "username":""}` for errors.
//!
//! [`Envelope`] is the dialect's [`FrameEncoder`]: it stamps the delivery's sender into `data`
//! (`username`, and `from` for a relayed client message), replacing whatever the payload said,
//! so a client can never speak under another name. Its frame does not name the route, so one
//! frame serves the whole namespace: encoded once per delivery, shared by every recipient.

use bytes::{BufMut, Bytes, BytesMut};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::hub::{Delivery, FrameEncoder, Route};

/// The namespace dialect's encoder (see the module docs).
#[derive(Debug, Default)]
pub struct Envelope;

impl FrameEncoder for Envelope {
    fn dialect(&self) -> &'static str {
        "namespace"
    }

    fn encode(&self, delivery: &Delivery, _route: &Route<'_>) -> Bytes {
        let typed;
        let payload = match delivery.event() {
            // A message that names an event (a backend's publish item, another dialect's
            // command): `type` is the event, beside the data's fields when the data is an
            // object, else beside the data under `data`.
            Some(event) => {
                typed = with_type(event, delivery.payload());
                &typed[..]
            }
            None => &delivery.payload()[..],
        };
        success(
            payload,
            delivery.sender(),
            delivery.sender_name().unwrap_or(""),
            None,
        )
    }
}

/// `{"type":EVENT,...DATA}` for an object `DATA`, else `{"type":EVENT,"data":DATA}`.
fn with_type(event: &str, data: &[u8]) -> Vec<u8> {
    let mut object = serde_json::Map::new();
    object.insert("type".into(), Value::String(event.to_owned()));
    match serde_json::from_slice::<Value>(data) {
        Ok(Value::Object(fields)) => {
            for (key, value) in fields {
                object.entry(key).or_insert(value);
            }
        }
        Ok(other) => {
            object.insert("data".into(), other);
        }
        Err(_) => {
            object.insert("data".into(), Value::Null);
        }
    }
    serde_json::to_vec(&object).unwrap_or_default()
}

/// `{"success":true,"data":DATA}` with `from` (when given) and `username` stamped into `data`, and
/// `requestId` (raw JSON) beside it when given. A payload that is not a JSON object is carried as
/// `{"value":PAYLOAD}` so the stamp has somewhere to go.
pub fn success(
    payload: &[u8],
    from: Option<&str>,
    username: &str,
    request_id: Option<&str>,
) -> Bytes {
    let mut out = BytesMut::with_capacity(payload.len() + 64 + username.len());
    out.put_slice(br#"{"success":true,"data":{"#);
    let mut first = true;
    match Fields::parse(payload) {
        Some(fields) => {
            for (key, value) in fields.0 {
                if key == "username" || key == "from" {
                    continue;
                }
                put_separator(&mut out, &mut first);
                put_json_string(&mut out, &key);
                out.put_u8(b':');
                out.put_slice(value.get().as_bytes());
            }
        }
        None => {
            put_separator(&mut out, &mut first);
            out.put_slice(br#""value":"#);
            out.put_slice(payload);
        }
    }
    if let Some(from) = from {
        put_separator(&mut out, &mut first);
        out.put_slice(br#""from":"#);
        put_json_string(&mut out, from);
    }
    put_separator(&mut out, &mut first);
    out.put_slice(br#""username":"#);
    put_json_string(&mut out, username);
    out.put_u8(b'}');
    if let Some(request_id) = request_id {
        out.put_slice(br#","requestId":"#);
        out.put_slice(request_id.as_bytes());
    }
    out.put_u8(b'}');
    out.freeze()
}

/// `{"success":false,"error":MESSAGE,"code":CODE,"username":""}`, plus the `requestId` (raw JSON)
/// of the message it answers.
pub fn error(code: u16, message: &str, request_id: Option<&str>) -> Bytes {
    let mut frame = json!({"success": false, "error": message, "code": code, "username": ""});
    if let Some(request_id) = request_id.and_then(|r| serde_json::from_str::<Value>(r).ok()) {
        frame["requestId"] = request_id;
    }
    Bytes::from(frame.to_string())
}

/// The welcome frame: `{"success":true,"data":{"type":"connected","clientId":C,"namespace":P,
/// "username":U}}`.
pub fn connected(client_id: &str, path: &str, username: &str) -> Bytes {
    let data = json!({"type": "connected", "clientId": client_id, "namespace": path});
    success(data.to_string().as_bytes(), None, username, None)
}

/// The answer to an app-level ping: `{"success":true,"data":{"type":"pong","timestamp":MS,
/// "username":""}}`.
pub fn pong(timestamp_ms: u64) -> Bytes {
    Bytes::from(format!(
        r#"{{"success":true,"data":{{"type":"pong","timestamp":{timestamp_ms},"username":""}}}}"#
    ))
}

fn put_separator(out: &mut BytesMut, first: &mut bool) {
    if !*first {
        out.put_u8(b',');
    }
    *first = false;
}

fn put_json_string(out: &mut BytesMut, text: &str) {
    // Serializing a string into a buffer cannot fail.
    let _ = serde_json::to_writer((&mut *out).writer(), text);
}

/// A JSON object's members in their original order, values kept as raw text.
struct Fields<'a>(Vec<(String, &'a RawValue)>);

impl<'a> Fields<'a> {
    fn parse(json: &'a [u8]) -> Option<Self> {
        let mut de = serde_json::Deserializer::from_slice(json);
        let fields = (&mut de).deserialize_map(FieldsVisitor).ok()?;
        de.end().ok()?;
        Some(fields)
    }
}

struct FieldsVisitor;

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = Fields<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(8));
        while let Some(key) = map.next_key::<String>()? {
            fields.push((key, map.next_value::<&'de RawValue>()?));
        }
        Ok(Fields(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(frame: &Bytes) -> Value {
        serde_json::from_slice(frame).expect("valid JSON")
    }

    #[test]
    fn stamps_sender_over_forged_fields_and_keeps_the_rest_in_order() {
        let frame = success(
            br#"{"type":"chat","username":"root","text":"hi \"x\"","from":"forged","n":[1,2]}"#,
            Some("c1"),
            "ada",
            None,
        );
        assert_eq!(
            std::str::from_utf8(&frame).unwrap(),
            r#"{"success":true,"data":{"type":"chat","text":"hi \"x\"","n":[1,2],"from":"c1","username":"ada"}}"#
        );
    }

    #[test]
    fn system_messages_have_an_empty_username_and_non_objects_are_wrapped() {
        assert_eq!(
            parsed(&success(b"{}", None, "", None)),
            json!({"success": true, "data": {"username": ""}})
        );
        assert_eq!(
            parsed(&success(b"[1]", None, "", None)),
            json!({"success": true, "data": {"value": [1], "username": ""}})
        );
        assert_eq!(
            parsed(&success(br#"{"a":1}"#, None, "", Some("7"))),
            json!({"success": true, "data": {"a": 1, "username": ""}, "requestId": 7})
        );
    }

    #[test]
    fn errors_welcome_and_pong_have_the_documented_shape() {
        assert_eq!(
            parsed(&error(400, "Invalid message format", Some(r#""r1""#))),
            json!({"success": false, "error": "Invalid message format", "code": 400,
                   "username": "", "requestId": "r1"})
        );
        assert_eq!(
            parsed(&connected("u", "/api/1/ws/chat", "")),
            json!({"success": true, "data": {"type": "connected", "clientId": "u",
                   "namespace": "/api/1/ws/chat", "username": ""}})
        );
        assert_eq!(
            parsed(&pong(5)),
            json!({"success": true, "data": {"type": "pong", "timestamp": 5, "username": ""}})
        );
    }
}
