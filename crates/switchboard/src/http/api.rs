//! The server API for backends in any language, behind API keys (`[[api_key]]`):
//! `POST /api/publish` (one item or a batch; see [`crate::publish`]), `POST /api/disconnect`,
//! `GET /api/presence` and `GET /api/info`.
//!
//! Keys are compared in constant time, every configured key each time, so neither the answer
//! nor its timing tells a missing key from a wrong one or which key was nearly right.
//! Idempotency keys (`"id"`) are remembered per API key for [`IDEMPOTENCY_WINDOW`]. In a cluster
//! a node that delivers an item with an id tells the others over the backplane, so a retry sent
//! to another node is a duplicate there too. Two copies reaching two nodes within the backplane's
//! latency (milliseconds) can both be delivered: the check is not a cluster-wide lock.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use dashmap::DashMap;
use http::{HeaderMap, Request, StatusCode, header};
use serde_json::{Value, json};

use super::body::read_bytes;
use super::error::ApiError;
use crate::app::Switchboard;
use crate::broker::{ClusterOrder, DisconnectTarget};
use crate::error_code;
use crate::hub::Target;
use crate::publish::{ItemError, parse_item};

/// How long a publish item's `id` is remembered.
pub const IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(120);
/// Most idempotency keys remembered at once on a node; an item with a new key beyond it is
/// refused (`idempotency_full`) rather than delivered without its guarantee.
pub const MAX_IDEMPOTENCY_KEYS: usize = 100_000;
/// Most items in one batch.
pub const MAX_BATCH: usize = 1000;

/// The configured API keys, resolved at start.
#[derive(Debug, Default)]
pub struct ApiKeys {
    keys: Vec<(Arc<str>, Vec<u8>)>,
}

impl ApiKeys {
    pub fn new(keys: Vec<(String, String)>) -> Self {
        Self {
            keys: keys
                .into_iter()
                .map(|(name, key)| (Arc::from(name), key.into_bytes()))
                .collect(),
        }
    }

    /// The name of the key `presented` matches, comparing against every key in constant time.
    fn authenticate(&self, presented: &[u8]) -> Option<Arc<str>> {
        let mut found = None;
        for (name, key) in &self.keys {
            if constant_time_eq(key, presented) && !key.is_empty() {
                found = Some(name.clone());
            }
        }
        found
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Idempotency keys seen in the last [`IDEMPOTENCY_WINDOW`], per API key.
#[derive(Debug, Default)]
pub struct SeenIds {
    seen: DashMap<(Arc<str>, String), Instant>,
}

enum Seen {
    New,
    Duplicate,
    Full,
}

impl SeenIds {
    /// Remember `id` as seen under `api_key` now (told by another node); a full table forgets
    /// nothing to make room.
    pub(crate) fn remember(&self, api_key: &str, id: &str) {
        if self.seen.len() < MAX_IDEMPOTENCY_KEYS {
            self.seen
                .insert((Arc::from(api_key), id.to_owned()), Instant::now());
        }
    }

    fn check_and_remember(&self, api_key: &Arc<str>, id: &str) -> Seen {
        let now = Instant::now();
        if self.seen.len() >= MAX_IDEMPOTENCY_KEYS {
            self.seen
                .retain(|_, at| now.duration_since(*at) < IDEMPOTENCY_WINDOW);
        }
        let full = self.seen.len() >= MAX_IDEMPOTENCY_KEYS;
        match self.seen.entry((api_key.clone(), id.to_owned())) {
            dashmap::Entry::Occupied(mut entry) => {
                if now.duration_since(*entry.get()) < IDEMPOTENCY_WINDOW {
                    Seen::Duplicate
                } else {
                    entry.insert(now);
                    Seen::New
                }
            }
            dashmap::Entry::Vacant(_) if full => Seen::Full,
            dashmap::Entry::Vacant(slot) => {
                slot.insert(now);
                Seen::New
            }
        }
    }
}

fn unauthorized() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        error_code::INVALID_API_KEY,
        "a valid API key is required: `Authorization: Bearer <key>`",
    )
}

/// The API key a request presents, by name; 401 when missing or wrong (one answer for both).
fn api_key(app: &Switchboard, headers: &HeaderMap) -> Result<Arc<str>, ApiError> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(crate::auth::strip_bearer)
        .unwrap_or("");
    app.shared
        .api_keys
        .authenticate(presented.as_bytes())
        .ok_or_else(unauthorized)
}

/// The API key a request presents and its body as any JSON value: 401 without a valid key
/// (checked before the body is read), 413 over `limits.max_http_body_bytes`, 400 for non-JSON.
/// The body's content type is not checked: these are server-to-server calls, never a browser's.
async fn authenticated_json(
    app: &Switchboard,
    request: Request<Body>,
) -> Result<(Arc<str>, Value), ApiError> {
    let key = api_key(app, request.headers())?;
    let limit = app.config().limits.max_http_body_bytes;
    let bytes = read_bytes(request.into_body(), limit).await?;
    let body = serde_json::from_slice(&bytes).map_err(|err| {
        ApiError::bad_request(
            error_code::INVALID_JSON,
            format!("body is not valid JSON: {err}"),
        )
    })?;
    Ok((key, body))
}

/// `POST /api/publish`.
pub async fn publish(
    State(app): State<Switchboard>,
    request: Request<Body>,
) -> Result<Json<Value>, ApiError> {
    let (key, body) = authenticated_json(&app, request).await?;
    match &body {
        Value::Object(_) => Ok(Json(publish_one(&app, &key, &body))),
        Value::Array(items) if items.len() > MAX_BATCH => Err(ApiError::bad_request(
            error_code::TOO_MANY_IDS,
            format!("a batch holds at most {MAX_BATCH} items"),
        )),
        Value::Array(items) => {
            let results: Vec<Value> = items
                .iter()
                .map(|item| publish_one(&app, &key, item))
                .collect();
            Ok(Json(json!({ "results": results })))
        }
        _ => Err(ApiError::bad_request(
            error_code::NOT_AN_OBJECT,
            "body must be a publish item (object) or a batch (array)",
        )),
    }
}

/// One item's answer: `{"delivered","relayed"}`, `{"delivered":0,"duplicate":true}` or
/// `{"error","code"}`.
fn publish_one(app: &Switchboard, key: &Arc<str>, item: &Value) -> Value {
    let parsed = match parse_item(item, app.config().limits.max_ids_per_event) {
        Ok(parsed) => parsed,
        Err(ItemError { code, message }) => return json!({"error": message, "code": code}),
    };
    if let Some(id) = &parsed.id {
        match app.shared.seen_ids.check_and_remember(key, id) {
            Seen::New => {
                app.broker().send_order(&ClusterOrder::PublishIdSeen {
                    api_key: key.to_string(),
                    id: id.clone(),
                });
            }
            Seen::Duplicate => return json!({"delivered": 0, "duplicate": true}),
            Seen::Full => {
                return json!({
                    "error": "too many idempotency keys in the last two minutes; retry later",
                    "code": error_code::IDEMPOTENCY_FULL,
                });
            }
        }
    }
    let published = app
        .shared
        .publisher
        .publish(&parsed.target, &parsed.delivery);
    json!({"delivered": published.local, "relayed": published.relay.is_relayed()})
}

/// `GET /api/info`: every live node's figures, this node's first.
pub async fn info(
    State(app): State<Switchboard>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    api_key(&app, &headers)?;
    let here = app.hub().connection_count() as u64;
    let mut nodes = vec![json!({
        "node_id": app.node_id(),
        "connections": here,
        "uptime": app.metrics().uptime().as_secs(),
    })];
    let mut connections = here;
    // The other nodes, as their last alive announcement (at most a second old) says.
    for (node_id, figures) in app.broker().peers() {
        let figures = figures.unwrap_or_default();
        connections += figures.connections;
        nodes.push(json!({
            "node_id": &*node_id,
            "connections": figures.connections,
            "uptime": figures.uptime_secs,
        }));
    }
    Ok(Json(json!({ "nodes": nodes, "connections": connections })))
}

/// `POST /api/disconnect` `{"target": {"users":[..]}|{"clients":[..]}, "code"?: 4000-4999,
/// "reason"?: at most 123 bytes}` -> `{"disconnected": N}`: the connections of this node it
/// closed.
pub async fn disconnect(
    State(app): State<Switchboard>,
    request: Request<Body>,
) -> Result<Json<Value>, ApiError> {
    let (_key, body) = authenticated_json(&app, request).await?;
    let Value::Object(fields) = &body else {
        return Err(ApiError::bad_request(
            error_code::NOT_AN_OBJECT,
            "body must be a JSON object",
        ));
    };
    let code = match fields.get("code") {
        None | Some(Value::Null) => 4000,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(code @ 4000..=4999) => code as u16,
            _ => return Err(invalid_field("`code` must be a number from 4000 to 4999")),
        },
        Some(_) => return Err(invalid_field("`code` must be a number from 4000 to 4999")),
    };
    let reason: Arc<str> = match fields.get("reason") {
        None | Some(Value::Null) => Arc::from(""),
        Some(Value::String(reason)) if reason.len() <= MAX_CLOSE_REASON => {
            Arc::from(reason.as_str())
        }
        Some(_) => {
            return Err(invalid_field(format!(
                "`reason` must be a string of at most {MAX_CLOSE_REASON} bytes"
            )));
        }
    };
    // The target takes the publish item's forms; only users and clients make sense here.
    let mut item = json!({"event": "disconnect"});
    if let Some(target) = fields.get("target") {
        item["target"] = target.clone();
    }
    let target = parse_item(&item, app.config().limits.max_ids_per_event)
        .map_err(|ItemError { code, message }| ApiError::bad_request(code, message))?
        .target;
    let target = match target {
        Target::Users(ids) => DisconnectTarget::Users(ids),
        Target::Clients(ids) => DisconnectTarget::Clients(ids),
        _ => {
            return Err(invalid_field(
                "`target` must be {\"users\": [...]} or {\"clients\": [...]}",
            ));
        }
    };
    let (disconnected, relay) = app.disconnect(target, code, &reason);
    let mut answer = json!({ "disconnected": disconnected });
    // Only a failure is spelled out, so the usual answer is exactly `{"disconnected": N}`.
    if !relay.is_relayed() {
        answer["relayed"] = json!(false);
    }
    Ok(Json(answer))
}

/// Longest close reason a WebSocket close frame carries.
const MAX_CLOSE_REASON: usize = 123;

fn invalid_field(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(error_code::INVALID_FIELD, message)
}

/// `GET /api/presence?channel=C` -> `{"channel": C, "members": [{"client_id", "user_id",
/// "username", "dialect"}]}`: the channel's members on every node (`user_id` null and
/// `username` "" for an anonymous connection).
pub async fn presence(
    State(app): State<Switchboard>,
    headers: HeaderMap,
    uri: http::Uri,
) -> Result<Json<Value>, ApiError> {
    api_key(&app, &headers)?;
    let query =
        axum::extract::Query::<std::collections::HashMap<String, String>>::try_from_uri(&uri)
            .map_err(|_| {
                ApiError::bad_request(error_code::INVALID_QUERY, "the query string is malformed")
            })?;
    let channel = query
        .0
        .get("channel")
        .filter(|c| !c.is_empty())
        .cloned()
        .ok_or_else(|| {
            ApiError::bad_request(
                error_code::MISSING_FIELD,
                "missing query parameter `channel`",
            )
        })?;
    let members: Vec<Value> = app
        .presence()
        .members(&channel)
        .await
        .into_iter()
        .map(|member| {
            json!({
                "client_id": &*member.client_id,
                "user_id": member.authenticated.then_some(&*member.user_id),
                "username": member.username.as_deref().unwrap_or(""),
                "dialect": &*member.dialect,
            })
        })
        .collect();
    Ok(Json(json!({ "channel": channel, "members": members })))
}
