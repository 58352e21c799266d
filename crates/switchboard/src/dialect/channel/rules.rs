//! Channel rules: who may join a channel and what happens to the messages its members send,
//! chosen per channel by the longest matching name prefix. Rules come from the `[[channel]]`
//! tables of the configuration and from [`crate::SwitchboardBuilder::channel`]; a channel no rule
//! matches gets [`ChannelRule::default`] (anyone may join, messages are relayed).

use std::fmt;
use std::sync::Arc;

use super::api::{Channels, ConnectionInfo, Message};
use crate::close_code::{self, CloseCode};
use crate::config::{ChannelRuleConfig, OnConnect, OnMessageConfig};
use crate::identity::Identity;

/// Application code that receives a channel's messages instead of the relay: the API handle to
/// answer with, the sending connection, and the message (its `from` is the sender's id).
pub type MessageHandler = Arc<dyn Fn(&Channels, &ConnectionInfo, Message) + Send + Sync>;

/// What a member's message (any command but the built-in ones) does.
#[derive(Clone)]
pub enum OnMessage {
    /// Deliver it to the channel's other members, in each one's dialect, `from` stamped.
    Relay,
    /// Drop it: the channel only carries what the server sends.
    Ignore,
    /// Hand it to application code.
    Handler(MessageHandler),
    /// POST it to the team's backend at this URL; the answer's `reply` goes to the sender and
    /// its `notify` items are delivered (docs/backends.md).
    Upstream(Arc<str>),
}

impl fmt::Debug for OnMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OnMessage::Relay => "Relay",
            OnMessage::Ignore => "Ignore",
            OnMessage::Handler(_) => "Handler",
            OnMessage::Upstream(_) => "Upstream",
        })
    }
}

/// The rule for the channels whose names start with `prefix`.
#[derive(Debug, Clone)]
pub struct ChannelRule {
    prefix: String,
    require_auth: bool,
    require_roles: Vec<String>,
    on_message: OnMessage,
    /// The backend that admits each join, when there is one.
    admission_upstream: Option<Arc<str>>,
    max_channels_per_connection: usize,
}

/// Default of `max_channels_per_connection`.
pub const DEFAULT_MAX_CHANNELS: usize = 32;

impl Default for ChannelRule {
    fn default() -> Self {
        Self::new("")
    }
}

impl ChannelRule {
    /// Anyone may join channels starting with `prefix`; messages are relayed; a connection may
    /// be in [`DEFAULT_MAX_CHANNELS`] channels. `""` matches every channel.
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
            require_auth: false,
            require_roles: Vec::new(),
            on_message: OnMessage::Relay,
            admission_upstream: None,
            max_channels_per_connection: DEFAULT_MAX_CHANNELS,
        }
    }

    /// Only logged-in connections may join.
    pub fn require_auth(mut self) -> Self {
        self.require_auth = true;
        self
    }

    /// Only users holding every one of `roles` may join (implies a login).
    pub fn require_roles<S: Into<String>>(mut self, roles: impl IntoIterator<Item = S>) -> Self {
        self.require_roles = roles.into_iter().map(Into::into).collect();
        self
    }

    /// What members' messages do (default [`OnMessage::Relay`]).
    pub fn on_message(mut self, on_message: OnMessage) -> Self {
        self.on_message = on_message;
        self
    }

    /// Hand members' messages to `handler` instead of relaying them.
    pub fn handler(
        self,
        handler: impl Fn(&Channels, &ConnectionInfo, Message) + Send + Sync + 'static,
    ) -> Self {
        self.on_message(OnMessage::Handler(Arc::new(handler)))
    }

    /// POST members' messages to the team's backend at `url` ([`OnMessage::Upstream`]).
    pub fn upstream(self, url: impl AsRef<str>) -> Self {
        self.on_message(OnMessage::Upstream(Arc::from(url.as_ref())))
    }

    /// Let the team's backend at `url` admit each join of a channel of this rule, the one a
    /// connection opens on included, after the login and role checks: it is asked
    /// `{"channel","event":"connect","data":null,"caller","node_id"}` and answers
    /// `{"allow": true}` or `{"allow": false, "reason": R}`. A refusal of the channel a
    /// connection opens on closes it with 4403; of a later `join`, it answers an error frame.
    pub fn admit_by_upstream(mut self, url: impl AsRef<str>) -> Self {
        self.admission_upstream = Some(Arc::from(url.as_ref()));
        self
    }

    /// The backend that admits joins, if any.
    pub fn admission_upstream(&self) -> Option<&Arc<str>> {
        self.admission_upstream.as_ref()
    }

    /// Whether this rule calls the team's backend.
    pub fn uses_upstream(&self) -> bool {
        self.admission_upstream.is_some() || matches!(self.on_message, OnMessage::Upstream(_))
    }

    /// How many channels a connection joining a channel of this rule may be in, that channel
    /// included (at least 1).
    pub fn max_channels_per_connection(mut self, max: usize) -> Self {
        self.max_channels_per_connection = max.max(1);
        self
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn messages(&self) -> &OnMessage {
        &self.on_message
    }

    pub fn max_channels(&self) -> usize {
        self.max_channels_per_connection
    }

    pub fn requires_login(&self) -> bool {
        self.require_auth || !self.require_roles.is_empty()
    }

    /// Whether `identity` may join; the refusal says which error code and close code apply.
    pub fn admits(&self, identity: &Identity) -> Result<(), Refusal> {
        if self.requires_login() && !identity.is_authenticated() {
            return Err(Refusal::AuthRequired);
        }
        match self.require_roles.iter().find(|r| !identity.has_role(r)) {
            Some(role) => Err(Refusal::MissingRole(role.clone())),
            None => Ok(()),
        }
    }
}

impl TryFrom<&ChannelRuleConfig> for ChannelRule {
    type Error = String;

    /// A `[[channel]]` table; one that calls an upstream without naming its URL is refused.
    fn try_from(config: &ChannelRuleConfig) -> Result<Self, String> {
        let upstream = || {
            config.upstream.as_deref().ok_or_else(|| {
                format!(
                    "[[channel]] prefix {:?}: `upstream` needs a URL when on_message or \
                     on_connect is \"upstream\"",
                    config.prefix
                )
            })
        };
        let mut rule = ChannelRule::new(config.prefix.clone())
            .require_roles(config.require_roles.iter().cloned())
            .max_channels_per_connection(config.max_channels_per_connection)
            .on_message(match config.on_message {
                OnMessageConfig::Relay => OnMessage::Relay,
                OnMessageConfig::None => OnMessage::Ignore,
                OnMessageConfig::Upstream => OnMessage::Upstream(Arc::from(upstream()?)),
            });
        if config.on_connect == OnConnect::Upstream {
            rule = rule.admit_by_upstream(upstream()?);
        }
        if config.require_auth {
            rule = rule.require_auth();
        }
        Ok(rule)
    }
}

/// Why a rule refused a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    AuthRequired,
    MissingRole(String),
}

impl Refusal {
    /// The error code of the error frame.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::AuthRequired => "auth_required",
            Refusal::MissingRole(_) => "forbidden",
        }
    }

    /// The close code when the refusal is of the channel a connection opened on.
    pub fn close_code(&self) -> CloseCode {
        match self {
            Refusal::AuthRequired => close_code::UNAUTHORIZED,
            Refusal::MissingRole(_) => close_code::FORBIDDEN,
        }
    }

    pub fn message(&self, channel: &str) -> String {
        match self {
            Refusal::AuthRequired => format!("channel `{channel}` requires a login"),
            Refusal::MissingRole(role) => format!("channel `{channel}` requires the role `{role}`"),
        }
    }
}

/// Every rule, longest prefix first.
#[derive(Debug, Clone)]
pub struct ChannelRules {
    rules: Vec<ChannelRule>,
    fallback: ChannelRule,
}

impl ChannelRules {
    /// `configured` rules, then `coded` ones; a coded rule replaces a configured one with the
    /// same prefix (code can attach handlers, the file cannot).
    pub fn new(configured: &[ChannelRuleConfig], coded: Vec<ChannelRule>) -> Result<Self, String> {
        let mut rules = configured
            .iter()
            .map(ChannelRule::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        for rule in coded {
            rules.retain(|r| r.prefix != rule.prefix);
            rules.push(rule);
        }
        rules.sort_by_key(|rule| std::cmp::Reverse(rule.prefix.len()));
        Ok(Self {
            rules,
            fallback: ChannelRule::default(),
        })
    }

    /// Whether any rule calls the team's backend.
    pub fn uses_upstream(&self) -> bool {
        self.rules.iter().any(ChannelRule::uses_upstream)
    }

    /// The rule of `channel`: the longest prefix that matches.
    pub fn rule_for(&self, channel: &str) -> &ChannelRule {
        self.rules
            .iter()
            .find(|rule| channel.starts_with(&rule.prefix))
            .unwrap_or(&self.fallback)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_matching_prefix_wins_and_code_replaces_config() {
        let configured = vec![
            ChannelRuleConfig {
                prefix: "admin".into(),
                require_auth: true,
                ..ChannelRuleConfig::default()
            },
            ChannelRuleConfig {
                prefix: "admin.ops".into(),
                require_roles: vec!["ops".into()],
                ..ChannelRuleConfig::default()
            },
            ChannelRuleConfig {
                prefix: "news".into(),
                on_message: OnMessageConfig::None,
                ..ChannelRuleConfig::default()
            },
        ];
        let rules = ChannelRules::new(
            &configured,
            vec![ChannelRule::new("news").max_channels_per_connection(2)],
        )
        .expect("valid rules");
        assert_eq!(rules.rule_for("admin.ops.1").prefix(), "admin.ops");
        assert_eq!(rules.rule_for("admin.x").prefix(), "admin");
        assert_eq!(rules.rule_for("lobby").prefix(), "");
        let news = rules.rule_for("news.today");
        assert_eq!(news.max_channels(), 2);
        assert!(
            matches!(news.messages(), OnMessage::Relay),
            "code replaced config"
        );
    }

    #[test]
    fn admission_needs_a_login_then_every_role() {
        let public = Identity::public();
        let ada = Identity::user("1".into(), "ada@example.com".into(), vec!["ops".into()]);
        let rule = ChannelRule::new("").require_roles(["ops", "dev"]);
        assert_eq!(rule.admits(&public), Err(Refusal::AuthRequired));
        assert_eq!(rule.admits(&ada), Err(Refusal::MissingRole("dev".into())));
        assert_eq!(
            ChannelRule::new("").require_roles(["ops"]).admits(&ada),
            Ok(())
        );
        assert_eq!(ChannelRule::default().admits(&public), Ok(()));
    }
}
