//! A publish item: one message from a backend, as the HTTP publish API and upstream answers
//! (`notify`) carry it:
//! `{"target": {"users":[..]}|{"channels":[..]}|{"clients":[..]}|{"namespace":N}|{"all":true},
//!   "event": T, "data": D, "id"?: K}`.
//!
//! An item becomes a [`Target`] and a [`Delivery`] whose event is `T` and payload `D`, so each
//! recipient gets it in its own dialect (a Jac client `{"type":T,"data":D}`).

use serde_json::{Map, Value};

use crate::error_code;
use crate::hub::{Delivery, Target};

/// Longest idempotency key accepted.
pub const MAX_ID_BYTES: usize = 128;

/// One parsed publish item.
#[derive(Debug)]
pub struct PublishItem {
    pub target: Target,
    pub delivery: Delivery,
    /// The idempotency key, if the item has one.
    pub id: Option<String>,
}

/// Why an item was refused; `code` is from [`crate::error_code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ItemError {
    pub code: &'static str,
    pub message: String,
}

fn invalid(code: &'static str, message: impl Into<String>) -> ItemError {
    ItemError {
        code,
        message: message.into(),
    }
}

/// Parse one item. `max_ids` bounds each id list (`limits.max_ids_per_event`).
pub fn parse_item(item: &Value, max_ids: usize) -> Result<PublishItem, ItemError> {
    let Value::Object(fields) = item else {
        return Err(invalid(
            error_code::NOT_AN_OBJECT,
            "a publish item must be a JSON object",
        ));
    };
    let target = parse_target(fields, max_ids)?;
    let event = match fields.get("event") {
        Some(Value::String(event)) if !event.is_empty() => event.as_str(),
        Some(_) => {
            return Err(invalid(
                error_code::INVALID_FIELD,
                "`event` must be a non-empty string",
            ));
        }
        None => return Err(invalid(error_code::MISSING_FIELD, "missing field `event`")),
    };
    let data = fields.get("data").unwrap_or(&Value::Null);
    let id = match fields.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) if !id.is_empty() && id.len() <= MAX_ID_BYTES => Some(id.clone()),
        Some(_) => {
            return Err(invalid(
                error_code::INVALID_FIELD,
                format!("`id` must be a string of 1 to {MAX_ID_BYTES} bytes"),
            ));
        }
    };
    let delivery = Delivery::from_json(data)
        .map_err(|_| invalid(error_code::INVALID_FIELD, "`data` cannot be encoded"))?
        .with_event(event);
    Ok(PublishItem {
        target,
        delivery,
        id,
    })
}

fn parse_target(fields: &Map<String, Value>, max_ids: usize) -> Result<Target, ItemError> {
    let Some(target) = fields.get("target") else {
        return Err(invalid(error_code::MISSING_FIELD, "missing field `target`"));
    };
    let Value::Object(target) = target else {
        return Err(invalid(
            error_code::INVALID_FIELD,
            "`target` must be an object with one of users, channels, clients, namespace, all",
        ));
    };
    if target.len() != 1 {
        return Err(invalid(
            error_code::INVALID_FIELD,
            "`target` must name exactly one of users, channels, clients, namespace, all",
        ));
    }
    let (kind, value) = target.iter().next().expect("one entry");
    match kind.as_str() {
        "users" => Ok(Target::Users(ids(kind, value, max_ids)?)),
        "channels" => Ok(Target::Channels(ids(kind, value, max_ids)?)),
        "clients" => Ok(Target::Clients(ids(kind, value, max_ids)?)),
        "namespace" => match value {
            Value::String(name) if !name.is_empty() => Ok(Target::Namespace(name.clone())),
            _ => Err(invalid(
                error_code::INVALID_FIELD,
                "`target.namespace` must be a namespace name",
            )),
        },
        "all" => match value {
            Value::Bool(true) => Ok(Target::Everyone),
            _ => Err(invalid(
                error_code::INVALID_FIELD,
                "`target.all` must be true",
            )),
        },
        other => Err(invalid(
            error_code::INVALID_FIELD,
            format!("unknown target `{other}`: use users, channels, clients, namespace or all"),
        )),
    }
}

fn ids(kind: &str, value: &Value, max_ids: usize) -> Result<Vec<String>, ItemError> {
    let Value::Array(items) = value else {
        return Err(invalid(
            error_code::INVALID_FIELD,
            format!("`target.{kind}` must be an array of strings"),
        ));
    };
    if items.is_empty() {
        return Err(invalid(
            error_code::EMPTY_IDS,
            format!("`target.{kind}` is empty"),
        ));
    }
    if items.len() > max_ids {
        return Err(invalid(
            error_code::TOO_MANY_IDS,
            format!("`target.{kind}` has more than {max_ids} ids (limits.max_ids_per_event)"),
        ));
    }
    items
        .iter()
        .map(|item| match item {
            Value::String(id) if !id.is_empty() => Ok(id.clone()),
            _ => Err(invalid(
                error_code::INVALID_FIELD,
                format!("`target.{kind}` must hold non-empty strings"),
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn each_target_form_parses() {
        let cases = [
            (json!({"users": ["u1", "n::u2"]}), "Users"),
            (json!({"channels": ["room"]}), "Channels"),
            (json!({"clients": ["c"]}), "Clients"),
            (json!({"namespace": "chat"}), "Namespace"),
            (json!({"all": true}), "Everyone"),
        ];
        for (target, kind) in cases {
            let item = json!({"target": target, "event": "e", "data": {"x": 1}, "id": "k"});
            let parsed = parse_item(&item, 10).expect("valid");
            assert!(format!("{:?}", parsed.target).starts_with(kind));
            assert_eq!(parsed.delivery.event(), Some("e"));
            assert_eq!(&parsed.delivery.payload()[..], br#"{"x":1}"#);
            assert_eq!(parsed.id.as_deref(), Some("k"));
        }
    }

    #[test]
    fn bad_items_name_what_is_wrong() {
        let cases = [
            (json!([]), error_code::NOT_AN_OBJECT),
            (json!({"event": "e"}), error_code::MISSING_FIELD),
            (json!({"target": {"all": true}}), error_code::MISSING_FIELD),
            (
                json!({"target": {"all": true}, "event": 3}),
                error_code::INVALID_FIELD,
            ),
            (
                json!({"target": {"all": false}, "event": "e"}),
                error_code::INVALID_FIELD,
            ),
            (
                json!({"target": {}, "event": "e"}),
                error_code::INVALID_FIELD,
            ),
            (
                json!({"target": {"users": ["a"], "all": true}, "event": "e"}),
                error_code::INVALID_FIELD,
            ),
            (
                json!({"target": {"users": []}, "event": "e"}),
                error_code::EMPTY_IDS,
            ),
            (
                json!({"target": {"users": ["a", "b", "c"]}, "event": "e"}),
                error_code::TOO_MANY_IDS,
            ),
            (
                json!({"target": {"users": [1]}, "event": "e"}),
                error_code::INVALID_FIELD,
            ),
            (
                json!({"target": {"rooms": ["a"]}, "event": "e"}),
                error_code::INVALID_FIELD,
            ),
            (
                json!({"target": {"all": true}, "event": "e", "id": ""}),
                error_code::INVALID_FIELD,
            ),
        ];
        for (item, code) in cases {
            let err = parse_item(&item, 2).expect_err("invalid");
            assert_eq!(err.code, code, "{item}: {err}");
        }
    }
}
