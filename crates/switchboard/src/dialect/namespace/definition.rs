//! [`Namespace`]: what an application declares for one `/api/1/ws/<name>` endpoint, in code or
//! in the binary's `[[namespace]]` tables ([`NamespaceConfig`]): who may connect, what happens to
//! a client's message, the per-client limits and the hooks.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use super::handle::Client;
pub use crate::config::OnConnect;
use crate::identity::Identity;

/// Longest namespace name, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// Whether `name` may name a namespace: `[A-Za-z0-9_-]{1,64}`.
pub fn is_valid_name(name: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// What the server does with a client's message once the `on_message` hook (if any) accepted it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Relay {
    /// Every client of the namespace, the sender included.
    Broadcast,
    /// Every client of the namespace but the sending socket.
    BroadcastOthers,
    /// Nothing: only the hook sees it (the default in code).
    #[default]
    None,
    /// The team's backend gets it ([`Namespace::upstream`]): its answer's `reply` goes back to
    /// the sender and its `notify` items are delivered; nothing is relayed as is.
    Upstream,
}

/// Why a hook failed. The client sees a generic 500; this text goes to the log only.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HookError(pub String);

impl HookError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// A boxed hook future (hooks are stored type-erased, one per namespace).
pub type HookFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

type LifecycleHook = Arc<dyn Fn(Client, Identity) -> HookFuture<()> + Send + Sync>;
/// What `on_message` answers: `Some(data)` is sent back to the sender as
/// `{"success":true,"data":data,"requestId":R}` (with the message's `requestId`, if any).
pub type MessageOutcome = Result<Option<Value>, HookError>;
type MessageHook = Arc<dyn Fn(Client, Value, Identity) -> HookFuture<MessageOutcome> + Send + Sync>;

/// Per-client limits of one namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NamespaceLimits {
    /// Largest client message, in bytes; over it the client gets error 413 and stays connected.
    pub max_message_bytes: usize,
    /// Messages one socket may send in any 1 s window; over it, error 429. 0: no limit.
    pub messages_per_sec: u32,
}

impl Default for NamespaceLimits {
    fn default() -> Self {
        Self {
            max_message_bytes: 64 * 1024,
            messages_per_sec: 50,
        }
    }
}

/// One namespace as an application registers it on the builder
/// ([`crate::SwitchboardBuilder::namespace`]).
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use switchboard::dialect::namespace::{Namespace, Relay};
/// let mut builder = switchboard::Switchboard::builder(switchboard::Config::default());
/// let chat = builder.namespace(
///     Namespace::new("chat")
///         .relay(Relay::Broadcast)
///         .on_connect(|client, _user| async move {
///             client.send(&serde_json::json!({"type": "welcome"}));
///         }),
/// )?;
/// chat.broadcast(&serde_json::json!({"type": "notice", "text": "hello"}));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Namespace {
    pub(crate) name: String,
    pub(crate) require_auth: bool,
    pub(crate) require_roles: Vec<String>,
    pub(crate) relay: Relay,
    pub(crate) limits: NamespaceLimits,
    pub(crate) on_connect: Option<LifecycleHook>,
    pub(crate) on_message: Option<MessageHook>,
    pub(crate) on_disconnect: Option<LifecycleHook>,
    /// Where client messages go with [`Relay::Upstream`], and who admits connections with
    /// [`OnConnect::Upstream`].
    pub(crate) upstream: Option<Arc<str>>,
    pub(crate) admission: OnConnect,
}

impl std::fmt::Debug for Namespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Namespace")
            .field("name", &self.name)
            .field("require_auth", &self.require_auth)
            .field("require_roles", &self.require_roles)
            .field("relay", &self.relay)
            .field("admission", &self.admission)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Namespace {
    /// The namespace served at `/api/1/ws/<name>`. The name is checked when registering.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            require_auth: false,
            require_roles: Vec::new(),
            relay: Relay::None,
            limits: NamespaceLimits::default(),
            on_connect: None,
            on_message: None,
            on_disconnect: None,
            upstream: None,
            admission: OnConnect::None,
        }
    }

    /// From a `[[namespace]]` table of the binary's config.
    pub fn from_config(config: &NamespaceConfig) -> Self {
        let mut namespace = Self::new(config.name.clone())
            .require_auth(config.require_auth)
            .require_roles(config.require_roles.iter().cloned())
            .relay(config.on_message)
            .limits(NamespaceLimits {
                max_message_bytes: config.max_message_bytes,
                messages_per_sec: config.messages_per_sec,
            });
        namespace.admission = config.on_connect;
        match &config.upstream {
            Some(url) => namespace.upstream_url(url),
            None => namespace,
        }
    }

    /// Send client messages to the team's backend at `url` instead of relaying them
    /// ([`Relay::Upstream`]; `[upstream]` in the config signs and bounds the calls, see
    /// `docs/backends.md`).
    pub fn upstream(self, url: impl AsRef<str>) -> Self {
        self.relay(Relay::Upstream).upstream_url(url.as_ref())
    }

    /// Let the team's backend at `url` admit each connection: it is asked
    /// `{"namespace","event":"connect","data":null,"caller","node_id"}` before the upgrade is
    /// answered and says `{"allow": true}` or `{"allow": false, "reason": R}` (error 403 with
    /// `R`, close 4403). An upstream failure refuses the connection too (fail closed). Messages
    /// keep their relay unless [`Namespace::upstream`] sends them to the same URL.
    pub fn admit_by_upstream(mut self, url: impl AsRef<str>) -> Self {
        self.admission = OnConnect::Upstream;
        self.upstream_url(url.as_ref())
    }

    fn upstream_url(mut self, url: &str) -> Self {
        self.upstream = Some(Arc::from(url));
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Refuse clients without a valid token (error 401, close 4401). Default false.
    pub fn require_auth(mut self, required: bool) -> Self {
        self.require_auth = required;
        self
    }

    /// Admit only users holding one of `roles` (error 403, close 4403); non-empty implies auth.
    pub fn require_roles<S: Into<String>>(mut self, roles: impl IntoIterator<Item = S>) -> Self {
        self.require_roles = roles.into_iter().map(Into::into).collect();
        self
    }

    /// What happens to a client's message after the hook (default [`Relay::None`]).
    pub fn relay(mut self, relay: Relay) -> Self {
        self.relay = relay;
        self
    }

    pub fn limits(mut self, limits: NamespaceLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Run when a client is admitted, after its `connected` frame.
    pub fn on_connect<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Client, Identity) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.on_connect = Some(Arc::new(move |client, user| Box::pin(hook(client, user))));
        self
    }

    /// Run for each client message (a JSON object, app-level pings excepted), in order per
    /// socket. An error answers the client with a generic 500 and skips the relay.
    pub fn on_message<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Client, Value, Identity) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = MessageOutcome> + Send + 'static,
    {
        self.on_message = Some(Arc::new(move |client, data, user| {
            Box::pin(hook(client, data, user))
        }));
        self
    }

    /// Run when an admitted client's socket has closed. Like `on_connect` it runs as its own
    /// task, so for a socket that closes at once it may start before `on_connect` has finished.
    pub fn on_disconnect<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Client, Identity) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.on_disconnect = Some(Arc::new(move |client, user| Box::pin(hook(client, user))));
        self
    }

    /// Whether a client must bring a valid token.
    pub fn requires_auth(&self) -> bool {
        self.require_auth || !self.require_roles.is_empty()
    }

    /// Why `user` may not connect, if it may not: 401 (no valid token) or 403 (no listed role).
    pub(crate) fn refusal(&self, user: &Identity) -> Option<Refusal> {
        if !self.requires_auth() {
            return None;
        }
        if !user.is_authenticated() {
            return Some(Refusal::Unauthorized);
        }
        let admitted =
            self.require_roles.is_empty() || self.require_roles.iter().any(|r| user.has_role(r));
        (!admitted).then_some(Refusal::Forbidden)
    }
}

/// Why a client was refused admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Unauthorized,
    Forbidden,
}

/// One `[[namespace]]` table of the binary's config file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamespaceConfig {
    /// Served at `/api/1/ws/<name>`; `[A-Za-z0-9_-]{1,64}`.
    pub name: String,
    /// Refuse clients without a valid token. Default false.
    #[serde(default)]
    pub require_auth: bool,
    /// Any one of these roles admits; non-empty implies `require_auth`. Default empty.
    #[serde(default)]
    pub require_roles: Vec<String>,
    /// `broadcast`, `broadcast_others`, `none` or `upstream` (to `upstream`). Default `none`.
    #[serde(default)]
    pub on_message: Relay,
    /// `none`, or `upstream` (the `upstream` URL admits each connection). Default `none`.
    #[serde(default)]
    pub on_connect: OnConnect,
    /// The backend URL client messages go to with `on_message = "upstream"`, and that admits
    /// connections with `on_connect = "upstream"`. Default none.
    #[serde(default)]
    pub upstream: Option<String>,
    /// Largest client message, in bytes (error 413 over it). Default 65536.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// Messages per client socket in any 1 s window (error 429 over it); 0: no limit. Default 50.
    #[serde(default = "default_messages_per_sec")]
    pub messages_per_sec: u32,
}

impl NamespaceConfig {
    /// A table naming only `name`: every other key at its default.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            require_auth: false,
            require_roles: Vec::new(),
            on_message: Relay::default(),
            on_connect: OnConnect::default(),
            upstream: None,
            max_message_bytes: default_max_message_bytes(),
            messages_per_sec: default_messages_per_sec(),
        }
    }
}

fn default_max_message_bytes() -> usize {
    NamespaceLimits::default().max_message_bytes
}

fn default_messages_per_sec() -> u32 {
    NamespaceLimits::default().messages_per_sec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_documented_alphabet() {
        assert!(is_valid_name("chat"));
        assert!(is_valid_name("a-B_9"));
        assert!(is_valid_name(&"x".repeat(64)));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name(&"x".repeat(65)));
        assert!(!is_valid_name("a/b"));
        assert!(!is_valid_name("a:b"));
        assert!(!is_valid_name("é"));
    }

    #[test]
    fn roles_imply_auth_and_any_one_admits() {
        let ns = Namespace::new("admin").require_roles(["admin", "viewer"]);
        assert!(ns.requires_auth());
        assert_eq!(ns.refusal(&Identity::public()), Some(Refusal::Unauthorized));
        let viewer = Identity::user("u".into(), "u@x.io".into(), vec!["viewer".into()]);
        assert_eq!(ns.refusal(&viewer), None);
        let plain = Identity::user("p".into(), "p@x.io".into(), vec![]);
        assert_eq!(ns.refusal(&plain), Some(Refusal::Forbidden));
        assert_eq!(Namespace::new("open").refusal(&Identity::public()), None);
    }

    #[test]
    fn config_tables_default_like_the_issue_says() {
        let config: NamespaceConfig = toml_like(r#"{"name":"chat"}"#);
        assert_eq!(config, NamespaceConfig::new("chat"));
        assert_eq!(config.on_message, Relay::None);
        assert_eq!(config.on_connect, OnConnect::None);
        assert_eq!(config.max_message_bytes, 65536);
        assert_eq!(config.messages_per_sec, 50);
        let config: NamespaceConfig = toml_like(r#"{"name":"c","on_message":"broadcast_others"}"#);
        assert_eq!(config.on_message, Relay::BroadcastOthers);
    }

    fn toml_like(json: &str) -> NamespaceConfig {
        serde_json::from_str(json).expect("config")
    }
}
