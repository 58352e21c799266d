//! Walkers: named server-side handlers that clients call over WebSocket or REST.
//!
//! A walker has a name, the methods it is exposed on, an auth requirement and a typed context: the
//! call's JSON context is deserialized into the walker's own struct, and a missing or ill-typed
//! field is refused with a message naming the field before the body runs.
//!
//! - this module: definitions ([`Walker`], [`Call`]), errors and the registry;
//! - [`call`]: the one call path, shared by WebSocket events and REST requests.
//!
//! ```no_run
//! use serde::Deserialize;
//! use switchboard::walker::{Call, Method, Walker};
//!
//! #[derive(Deserialize)]
//! struct Greet {
//!     name: String,
//! }
//!
//! let walker = Walker::new("greet", |call: Call<Greet>| async move {
//!     call.notify.notify_self(&serde_json::json!({"type": "greeting"}));
//!     Ok(vec![serde_json::json!(format!("hello {}", call.context.name))])
//! })
//! .methods(&[Method::WebSocket, Method::Post])
//! .public();
//! ```

pub mod call;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use crate::identity::Identity;
use crate::notify::Notifier;

/// What a walker reports: the `reports` array of its reply.
pub type Reports = Vec<serde_json::Value>;

/// How a walker may be reached (in a config file: `"websocket"`, `"post"`, `"get"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// A `{"type":"walker"}` event on a WebSocket.
    WebSocket,
    /// `POST /walker/<name>` with the context as the JSON body.
    Post,
    /// `GET /walker/<name>` with the context as query parameters (string values).
    Get,
}

impl Method {
    fn bit(self) -> u8 {
        match self {
            Method::WebSocket => 1,
            Method::Post => 2,
            Method::Get => 4,
        }
    }
}

/// One call of a walker, as its body sees it.
pub struct Call<C> {
    /// The call's context, deserialized into the walker's type.
    pub context: C,
    /// Who called: the public user or an account.
    pub caller: Identity,
    /// Sends notifications; `notify_self` reaches the calling socket (a no-op over REST).
    pub notify: Notifier,
}

/// A walker body's failure. Its message is sent to the caller, so it must not hold internal
/// detail; use [`WalkerError::internal`] for failures the caller should not see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalkerError {
    code: &'static str,
    message: String,
    /// The HTTP status of the REST answer; 400 when not set.
    status: Option<http::StatusCode>,
}

impl WalkerError {
    /// A failure the caller may read, with code `walker_failed`.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            code: "walker_failed",
            message: message.into(),
            status: None,
        }
    }

    /// A failure with an application-chosen machine code.
    pub fn with_code(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            status: None,
        }
    }

    /// A failure whose cause is logged and hidden from the caller.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "walker failed internally");
        Self {
            code: "walker_failed",
            message: "internal error".into(),
            status: None,
        }
    }

    /// The walker's upstream failed; the caller sees the upstream code and, over REST, its
    /// status (504, 502 or 503).
    pub fn upstream(err: crate::upstream::UpstreamError) -> Self {
        Self {
            code: err.code(),
            message: err.to_string(),
            status: Some(err.http_status()),
        }
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// The HTTP status of the REST answer.
    pub fn http_status(&self) -> http::StatusCode {
        self.status.unwrap_or(http::StatusCode::BAD_REQUEST)
    }
}

/// Why a walker call did not produce reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvokeError {
    UnknownWalker(String),
    MethodNotAllowed(String),
    AuthRequired(String),
    Forbidden(String),
    InvalidContext(String),
    /// The server is draining; no new calls start.
    ShuttingDown,
    /// The connection already runs this many calls.
    TooManyInflight(usize),
    Failed(WalkerError),
}

impl InvokeError {
    /// The stable machine code sent to clients.
    pub fn code(&self) -> &'static str {
        match self {
            InvokeError::UnknownWalker(_) => "unknown_walker",
            InvokeError::MethodNotAllowed(_) => "method_not_allowed",
            InvokeError::AuthRequired(_) => "auth_required",
            InvokeError::Forbidden(_) => "forbidden",
            InvokeError::InvalidContext(_) => "invalid_context",
            InvokeError::ShuttingDown => "shutting_down",
            InvokeError::TooManyInflight(_) => "too_many_inflight",
            InvokeError::Failed(e) => e.code(),
        }
    }

    /// The message sent to clients.
    pub fn message(&self) -> String {
        match self {
            InvokeError::UnknownWalker(name) => format!("unknown walker `{name}`"),
            InvokeError::MethodNotAllowed(name) => {
                format!("walker `{name}` is not exposed on this method")
            }
            InvokeError::AuthRequired(name) => {
                format!("walker `{name}` requires an authenticated user")
            }
            InvokeError::Forbidden(role) => format!("this walker requires the `{role}` role"),
            InvokeError::InvalidContext(detail) => format!("invalid context: {detail}"),
            InvokeError::ShuttingDown => {
                "the server is shutting down; retry on reconnect".to_string()
            }
            InvokeError::TooManyInflight(limit) => {
                format!("at most {limit} walker calls may run at once on one connection")
            }
            InvokeError::Failed(e) => e.message().to_string(),
        }
    }

    /// The HTTP status for the REST form of a call.
    pub fn http_status(&self) -> http::StatusCode {
        use http::StatusCode;
        match self {
            InvokeError::UnknownWalker(_) => StatusCode::NOT_FOUND,
            InvokeError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            InvokeError::AuthRequired(_) => StatusCode::UNAUTHORIZED,
            InvokeError::Forbidden(_) => StatusCode::FORBIDDEN,
            InvokeError::InvalidContext(_) => StatusCode::UNPROCESSABLE_ENTITY,
            InvokeError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            InvokeError::TooManyInflight(_) => StatusCode::TOO_MANY_REQUESTS,
            InvokeError::Failed(e) => e.http_status(),
        }
    }
}

type BoxedRun = Pin<Box<dyn Future<Output = Result<Reports, InvokeError>> + Send>>;
type ErasedHandler = dyn Fn(&RawValue, Identity, Notifier) -> BoxedRun + Send + Sync;

/// A walker definition: build it with [`Walker::new`], then register it on the
/// [`crate::SwitchboardBuilder`].
#[derive(Clone)]
pub struct Walker {
    name: Arc<str>,
    methods: u8,
    public: bool,
    required_role: Option<String>,
    handler: Arc<ErasedHandler>,
}

impl std::fmt::Debug for Walker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Walker")
            .field("name", &self.name)
            .field("methods", &self.methods)
            .field("public", &self.public)
            .field("required_role", &self.required_role)
            .finish_non_exhaustive()
    }
}

impl Walker {
    /// A walker named `name` whose body is `handler`. By default it is exposed on WebSocket and
    /// POST and requires an authenticated user.
    pub fn new<C, F, Fut>(name: impl Into<String>, handler: F) -> Self
    where
        C: DeserializeOwned + Send + 'static,
        F: Fn(Call<C>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Reports, WalkerError>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let erased = move |raw: &RawValue, caller: Identity, notify: Notifier| -> BoxedRun {
            let context = parse_context::<C>(raw);
            let handler = handler.clone();
            Box::pin(async move {
                let context = context.map_err(InvokeError::InvalidContext)?;
                handler(Call {
                    context,
                    caller,
                    notify,
                })
                .await
                .map_err(InvokeError::Failed)
            })
        };
        Self {
            name: Arc::from(name.into()),
            methods: Method::WebSocket.bit() | Method::Post.bit(),
            public: false,
            required_role: None,
            handler: Arc::new(erased),
        }
    }

    /// Expose the walker on exactly these methods.
    pub fn methods(mut self, methods: &[Method]) -> Self {
        self.methods = methods.iter().fold(0, |acc, m| acc | m.bit());
        self
    }

    /// Let the public (unauthenticated) user call it; logged-in users may call it too.
    pub fn public(mut self) -> Self {
        self.public = true;
        self
    }

    /// Require a role (for example `admin`); implies an authenticated user.
    pub fn require_role(mut self, role: impl Into<String>) -> Self {
        self.required_role = Some(role.into());
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn allows(&self, method: Method) -> bool {
        self.methods & method.bit() != 0
    }

    pub fn is_public(&self) -> bool {
        self.public
    }

    /// Check that `caller` may call this walker on `method`.
    pub fn authorize(&self, method: Method, caller: &Identity) -> Result<(), InvokeError> {
        if !self.allows(method) {
            return Err(InvokeError::MethodNotAllowed(self.name.to_string()));
        }
        if let Some(role) = &self.required_role {
            if !caller.is_authenticated() {
                return Err(InvokeError::AuthRequired(self.name.to_string()));
            }
            if !caller.has_role(role) {
                return Err(InvokeError::Forbidden(role.clone()));
            }
        } else if !self.public && !caller.is_authenticated() {
            return Err(InvokeError::AuthRequired(self.name.to_string()));
        }
        Ok(())
    }

    /// Run the body with `context`. Authorization is the caller's job ([`Walker::authorize`]).
    pub fn run(&self, context: &RawValue, caller: Identity, notify: Notifier) -> BoxedRun {
        (self.handler)(context, caller, notify)
    }
}

/// Deserialize a context, naming the offending field on failure.
fn parse_context<C: DeserializeOwned>(raw: &RawValue) -> Result<C, String> {
    crate::json::deserialize_named(raw.get())
}

/// All walkers of an app, by name. Fixed once the app is built. Shared (`Arc`) so a call can
/// hold its walker past the lookup without copying it.
#[derive(Debug, Default, Clone)]
pub struct WalkerRegistry {
    walkers: HashMap<Arc<str>, Arc<Walker>>,
}

impl WalkerRegistry {
    pub fn insert(&mut self, walker: Walker) {
        self.walkers.insert(walker.name.clone(), Arc::new(walker));
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Walker>> {
        self.walkers.get(name)
    }

    /// Find `name` and check that `caller` may call it on `method`.
    pub fn resolve(
        &self,
        name: &str,
        method: Method,
        caller: &Identity,
    ) -> Result<&Arc<Walker>, InvokeError> {
        let walker = self
            .get(name)
            .ok_or_else(|| InvokeError::UnknownWalker(name.to_string()))?;
        walker.authorize(method, caller)?;
        Ok(walker)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.walkers.keys().map(|k| &**k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Ctx {
        message: String,
        count: u32,
    }

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_string()).expect("valid json")
    }

    #[test]
    fn missing_field_is_named() {
        let err = parse_context::<Ctx>(&raw(r#"{"count":1}"#)).unwrap_err();
        assert_eq!(err, "missing field `message`");
    }

    #[test]
    fn ill_typed_field_is_named() {
        let err = parse_context::<Ctx>(&raw(r#"{"message":5,"count":1}"#)).unwrap_err();
        assert!(err.starts_with("field `message`: invalid type"), "{err}");
    }
}
