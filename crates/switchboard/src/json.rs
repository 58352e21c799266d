//! Turning JSON text from a client into values, with error messages a client can act on: they
//! name the offending field and carry no parser internals (positions, type names).

use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

/// Why text is not a JSON object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectError {
    /// Not JSON at all; the parser's reason, without its position.
    NotJson(String),
    /// Valid JSON, but an array, string, number, boolean or null.
    NotAnObject,
}

/// Check that `text` is one JSON object, keeping it raw.
pub fn parse_object(text: &str) -> Result<Box<RawValue>, ObjectError> {
    let raw: Box<RawValue> = serde_json::from_str(text)
        .map_err(|err| ObjectError::NotJson(strip_position(&err.to_string())))?;
    if raw.get().trim_start().starts_with('{') {
        Ok(raw)
    } else {
        Err(ObjectError::NotAnObject)
    }
}

/// Deserialize JSON text into `T`; on failure, a message naming the field at fault
/// (``field `count`: invalid type: string "three", expected u32``, or ``missing field `name` ``).
pub fn deserialize_named<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let detail = strip_position(&err.inner().to_string());
        if path == "." || path.is_empty() {
            detail
        } else {
            format!("field `{path}`: {detail}")
        }
    })
}

/// Append `text` as a JSON string literal (quoted and escaped), for frames assembled from raw
/// JSON parts without building a `Value`.
pub fn push_string(out: &mut Vec<u8>, text: &str) {
    // Writing a `str` into a `Vec` cannot fail.
    let _ = serde_json::to_writer(&mut *out, text);
}

/// serde_json appends " at line L column C"; clients send one line of JSON, so it is noise.
pub fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_string(),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_only() {
        assert!(parse_object(r#" {"a":1}"#).is_ok());
        assert!(matches!(parse_object("[1]"), Err(ObjectError::NotAnObject)));
        assert!(
            matches!(parse_object("{oops"), Err(ObjectError::NotJson(m)) if !m.contains("line"))
        );
    }
}
