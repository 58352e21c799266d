//! Handlers served by the team's own backend over HTTP ("upstreams"), so business logic can live
//! in any language: Switchboard POSTs a signed JSON request and acts on the JSON answer.
//!
//! Every call is bounded so a slow or dead backend costs clients a clean error, never a hang:
//! - at most `[upstream] max_in_flight` calls at once per node; one more fails at once with
//!   `upstream_busy`;
//! - each call times out after `timeout_ms` (`upstream_timeout`);
//! - a non-2xx answer, a refused connection or a body that is not the expected JSON is
//!   `upstream_error`;
//! - after [`BREAKER_FAILURES`] failures in a row one URL's circuit opens for
//!   [`BREAKER_OPEN`]: calls fail at once with `upstream_unavailable`; after that one trial call
//!   is let through, and its outcome closes or reopens the circuit.
//!
//! The request carries `X-Switchboard-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
//! "<t>." + body>` under `[upstream] secret`, so the backend can check where it came from and
//! refuse replays by the timestamp.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::Semaphore;

use serde_json::value::RawValue;

use crate::config::{UpstreamConfig, UpstreamWalker};
use crate::error_code;
use crate::identity::Identity;
use crate::ids::unix_seconds;
use crate::publish::{PublishItem, parse_item};
use crate::walker::{Call, Reports, Walker, WalkerError};

/// Failures in a row that open a URL's circuit.
pub const BREAKER_FAILURES: u32 = 5;
/// How long an open circuit refuses calls.
pub const BREAKER_OPEN: Duration = Duration::from_secs(10);
/// The signature header.
pub const SIGNATURE_HEADER: &str = "x-switchboard-signature";
/// Largest upstream answer read.
const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// Why an upstream call produced no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    #[error("the upstream did not answer in time")]
    Timeout,
    #[error("the upstream failed")]
    Error,
    #[error("the upstream is unavailable; retry later")]
    Unavailable,
    #[error("too many upstream calls in flight; retry later")]
    Busy,
}

impl UpstreamError {
    /// The stable machine code sent to clients.
    pub fn code(&self) -> &'static str {
        match self {
            UpstreamError::Timeout => error_code::UPSTREAM_TIMEOUT,
            UpstreamError::Error => error_code::UPSTREAM_ERROR,
            UpstreamError::Unavailable => error_code::UPSTREAM_UNAVAILABLE,
            UpstreamError::Busy => error_code::UPSTREAM_BUSY,
        }
    }

    /// The HTTP status of the REST form of a call that failed so.
    pub fn http_status(&self) -> http::StatusCode {
        match self {
            UpstreamError::Timeout => http::StatusCode::GATEWAY_TIMEOUT,
            UpstreamError::Error => http::StatusCode::BAD_GATEWAY,
            UpstreamError::Unavailable | UpstreamError::Busy => {
                http::StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }
}

/// Makes upstream calls for one node: pooled keep-alive connections, the in-flight bound and
/// the circuit breakers.
#[derive(Debug)]
pub struct Upstreams {
    http: reqwest::Client,
    secret: Vec<u8>,
    in_flight: Arc<Semaphore>,
    circuits: DashMap<String, Circuit>,
    node_id: Arc<str>,
}

#[derive(Debug, Default)]
struct Circuit {
    failures_in_a_row: u32,
    open_until: Option<Instant>,
    /// A trial call is running after the open period; others are refused until it ends.
    trial_running: bool,
}

/// Whether a call may go out, and whether it is the trial call of a half-open circuit.
enum CircuitPass {
    Closed,
    Trial,
}

impl Upstreams {
    pub fn new(config: &UpstreamConfig, node_id: &str) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.timeout_ms.max(1)))
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|err| format!("upstream HTTP client: {err}"))?;
        Ok(Self {
            http,
            secret: config.secret.clone().unwrap_or_default().into_bytes(),
            in_flight: Arc::new(Semaphore::new(config.max_in_flight.max(1))),
            circuits: DashMap::new(),
            node_id: Arc::from(node_id),
        })
    }

    /// This node's id, sent in every request.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// The signature header value for `body` at time `t`.
    pub fn signature(&self, t: u64, body: &[u8]) -> String {
        sign(&self.secret, t, body)
    }

    /// POST `body` to `url` and return the JSON object it answers.
    pub async fn call(&self, url: &str, body: &Value) -> Result<Value, UpstreamError> {
        let Ok(_permit) = self.in_flight.clone().try_acquire_owned() else {
            return Err(UpstreamError::Busy);
        };
        let admission = self.admit(url)?;
        let outcome = self.post(url, body).await;
        self.record(url, admission, outcome.is_ok());
        outcome
    }

    async fn post(&self, url: &str, body: &Value) -> Result<Value, UpstreamError> {
        let bytes = serde_json::to_vec(body).map_err(|_| UpstreamError::Error)?;
        let t = unix_seconds();
        let signature = self.signature(t, &bytes);
        let sent = self
            .http
            .post(url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .body(bytes)
            .send()
            .await;
        let mut response = match sent {
            Ok(response) => response,
            Err(err) if err.is_timeout() => return Err(UpstreamError::Timeout),
            Err(err) => {
                tracing::warn!(%url, %err, "upstream request failed");
                return Err(UpstreamError::Error);
            }
        };
        if !response.status().is_success() {
            tracing::warn!(%url, status = %response.status(), "upstream answered an error");
            return Err(UpstreamError::Error);
        }
        let mut answer = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) if answer.len() + chunk.len() <= MAX_ANSWER_BYTES => {
                    answer.extend_from_slice(&chunk)
                }
                Ok(Some(_)) => {
                    tracing::warn!(%url, "upstream answer over {MAX_ANSWER_BYTES} bytes");
                    return Err(UpstreamError::Error);
                }
                Ok(None) => break,
                Err(err) if err.is_timeout() => return Err(UpstreamError::Timeout),
                Err(err) => {
                    tracing::warn!(%url, %err, "upstream answer failed");
                    return Err(UpstreamError::Error);
                }
            }
        }
        match serde_json::from_slice::<Value>(&answer) {
            Ok(value @ Value::Object(_)) => Ok(value),
            _ => {
                tracing::warn!(%url, "upstream answer is not a JSON object");
                Err(UpstreamError::Error)
            }
        }
    }

    fn admit(&self, url: &str) -> Result<CircuitPass, UpstreamError> {
        let mut circuit = self.circuits.entry(url.to_owned()).or_default();
        match circuit.open_until {
            None => Ok(CircuitPass::Closed),
            Some(until) if Instant::now() < until || circuit.trial_running => {
                Err(UpstreamError::Unavailable)
            }
            Some(_) => {
                circuit.trial_running = true;
                Ok(CircuitPass::Trial)
            }
        }
    }

    /// Count a call's outcome; a bad answer the caller found later counts through
    /// [`Upstreams::record_bad_answer`].
    fn record(&self, url: &str, admission: CircuitPass, succeeded: bool) {
        let mut circuit = self.circuits.entry(url.to_owned()).or_default();
        if matches!(admission, CircuitPass::Trial) {
            circuit.trial_running = false;
        }
        if succeeded {
            circuit.failures_in_a_row = 0;
            circuit.open_until = None;
            return;
        }
        circuit.failures_in_a_row += 1;
        if matches!(admission, CircuitPass::Trial) || circuit.failures_in_a_row >= BREAKER_FAILURES
        {
            if circuit.open_until.is_none() {
                tracing::warn!(%url, "upstream circuit open for {BREAKER_OPEN:?}");
            }
            circuit.open_until = Some(Instant::now() + BREAKER_OPEN);
        }
    }

    /// An answer that was JSON but not of the expected shape: a failure like a non-2xx one.
    pub fn record_bad_answer(&self, url: &str) {
        self.record(url, CircuitPass::Closed, false);
    }
}

/// A walker whose body is an upstream: `[[walker]]` with `upstream = URL` in the config. The
/// request is `{"walker", "context", "caller", "node_id"}`; the answer
/// `{"reports": [...]?, "notify": [publish items]?}`, whose notifications are delivered before
/// the walker's reply, as a Rust walker's are.
pub fn walker(definition: &UpstreamWalker, upstreams: Arc<Upstreams>, max_ids: usize) -> Walker {
    let url: Arc<str> = Arc::from(definition.upstream.as_str());
    let name: Arc<str> = Arc::from(definition.name.as_str());
    let walker = Walker::new(definition.name.clone(), move |call: Call<Box<RawValue>>| {
        let (url, name, upstreams) = (url.clone(), name.clone(), upstreams.clone());
        async move {
            let request = json!({
                "walker": &*name,
                "context": call.context,
                "caller": caller_json(&call.caller, call.notify.origin_client_id()),
                "node_id": upstreams.node_id(),
            });
            let answer = upstreams
                .call(&url, &request)
                .await
                .map_err(WalkerError::upstream)?;
            let Some((reports, notify)) = walker_answer(&answer, max_ids) else {
                tracing::warn!(%url, walker = %name, "upstream walker answer has the wrong shape");
                upstreams.record_bad_answer(&url);
                return Err(WalkerError::upstream(UpstreamError::Error));
            };
            for item in notify {
                call.notify.publish(&item.target, &item.delivery);
            }
            Ok(reports)
        }
    })
    .methods(&definition.methods);
    if definition.public {
        walker.public()
    } else {
        walker
    }
}

/// `{"reports": [...]?, "notify": [items]?}`; `None` for any other shape or a bad item.
fn walker_answer(answer: &Value, max_ids: usize) -> Option<(Reports, Vec<PublishItem>)> {
    let reports = match answer.get("reports") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(reports)) => reports.clone(),
        Some(_) => return None,
    };
    Some((reports, notify_items(answer, max_ids)?))
}

/// Hand a client message to a message hook upstream (a namespace's or channel rule's
/// `on_message = "upstream"`): POST `request`, deliver the answer's `notify` items, and return
/// its `reply` for the sender. An answer of another shape is an `upstream_error`.
pub async fn call_message_hook(
    app: &crate::app::Switchboard,
    url: &str,
    request: &Value,
) -> Result<Option<Value>, UpstreamError> {
    let upstreams = &app.shared.upstreams;
    let answer = upstreams.call(url, request).await?;
    let max_ids = app.config().limits.max_ids_per_event;
    let Some((reply, notify)) = message_answer(&answer, max_ids) else {
        tracing::warn!(%url, "upstream message answer has the wrong shape");
        upstreams.record_bad_answer(url);
        return Err(UpstreamError::Error);
    };
    for item in notify {
        app.shared.publisher.publish(&item.target, &item.delivery);
    }
    Ok(reply)
}

/// A message hook's answer, `{"reply": D?, "notify": [items]?}`: the reply (absent or null: none)
/// and the notifications; `None` for any other shape or a bad item.
fn message_answer(answer: &Value, max_ids: usize) -> Option<(Option<Value>, Vec<PublishItem>)> {
    let reply = answer.get("reply").filter(|r| !r.is_null()).cloned();
    Some((reply, notify_items(answer, max_ids)?))
}

/// The `notify` list of an answer; `None` if it is not a list of valid items.
pub fn notify_items(answer: &Value, max_ids: usize) -> Option<Vec<PublishItem>> {
    match answer.get("notify") {
        None | Some(Value::Null) => Some(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| parse_item(item, max_ids).ok())
            .collect(),
        Some(_) => None,
    }
}

/// What an `on_connect` upstream decided about one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    /// `{"allow": false, "reason": R}`: the connection is refused (close 4403) with `R`.
    Refused(String),
    /// No decision: the connection is refused with the failure's code (fail closed).
    Failed(UpstreamError),
}

impl Admission {
    /// How `/metrics` counts a connection this verdict refuses; `None` when it admits.
    pub fn handshake_failure(&self) -> Option<crate::metrics::HandshakeFailure> {
        use crate::metrics::HandshakeFailure;
        match self {
            Admission::Allowed => None,
            Admission::Refused(_) => Some(HandshakeFailure::UpstreamRefused),
            Admission::Failed(_) => Some(HandshakeFailure::UpstreamFailed),
        }
    }

    /// Ask `url` whether to admit a connection: POST `request` (it names the namespace or
    /// channel, `"event": "connect"`, and the caller), expect `{"allow": true}` or
    /// `{"allow": false, "reason": "..."}`.
    pub async fn ask(upstreams: &Upstreams, url: &str, request: &Value) -> Self {
        let answer = match upstreams.call(url, request).await {
            Ok(answer) => answer,
            Err(err) => return Admission::Failed(err),
        };
        match (answer.get("allow"), answer.get("reason")) {
            (Some(Value::Bool(true)), _) => Admission::Allowed,
            (Some(Value::Bool(false)), None | Some(Value::Null)) => {
                Admission::Refused("refused by the application".to_owned())
            }
            (Some(Value::Bool(false)), Some(Value::String(reason))) => {
                Admission::Refused(reason.clone())
            }
            _ => {
                tracing::warn!(%url, "upstream on_connect answer has the wrong shape");
                upstreams.record_bad_answer(url);
                Admission::Failed(UpstreamError::Error)
            }
        }
    }
}

/// The request an `on_connect` upstream gets: `{KIND: NAME, "event": "connect", "data": null,
/// "caller", "node_id"}`, `KIND` being `namespace` or `channel`.
pub fn connect_request(
    app: &crate::app::Switchboard,
    kind: &str,
    name: &str,
    caller: &Identity,
    client_id: &str,
) -> Value {
    json!({
        kind: name,
        "event": "connect",
        "data": null,
        "caller": caller_json(caller, Some(client_id)),
        "node_id": app.shared.upstreams.node_id(),
    })
}

/// A close reason from free text: at most 123 bytes (RFC 6455's limit), cut on a character.
pub fn close_reason(text: &str) -> Arc<str> {
    let mut end = text.len().min(123);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Arc::from(&text[..end])
}

/// The close code of a connection refused because its `on_connect` upstream failed: 1011 when
/// it failed or timed out, 1013 (try again later) when it is unavailable or busy.
pub fn failure_close_code(err: &UpstreamError) -> crate::close_code::CloseCode {
    match err {
        UpstreamError::Timeout | UpstreamError::Error => crate::close_code::INTERNAL_ERROR,
        UpstreamError::Unavailable | UpstreamError::Busy => crate::close_code::TRY_AGAIN_LATER,
    }
}

/// The `caller` object of a request.
pub fn caller_json(caller: &Identity, client_id: Option<&str>) -> Value {
    json!({
        "user_id": caller.account_id(),
        "username": caller.username().unwrap_or(""),
        "roles": caller.roles(),
        "client_id": client_id,
    })
}

/// `t=<t>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>`.
pub fn sign(secret: &[u8], t: u64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(digest.len() * 2);
    for byte in digest {
        hex.push_str(&format!("{byte:02x}"));
    }
    format!("t={t},v1={hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // RFC 4231 does not cover this framing; the value was computed independently with
        // `printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac secret`.
        assert_eq!(
            sign(b"secret", 1_700_000_000, br#"{"a":1}"#),
            "t=1700000000,v1=49f24e537407743fa4a0242bb63b94b9a47ee99cbbe071ccd8a22550ae411686"
        );
    }
}
