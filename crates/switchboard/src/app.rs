//! [`Switchboard`]: the handle an application holds. It owns the hub, the walkers, the accounts
//! and the background tasks, and is what every HTTP handler and session reaches through.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use dashmap::DashMap;

use serde::Serialize;
use tokio_util::task::TaskTracker;

use crate::accounts::{AccountError, Accounts};
use crate::auth::{Authenticator, load_or_create_secret};
use crate::broker::{Broker, ClusterOrder, DisconnectTarget, Inbound, Relay, SingleNode};
use crate::close_code;
use crate::config::Config;
use crate::dialect::Dialect;
use crate::dialect::channel::api::Channels;
use crate::dialect::channel::rules::{ChannelRule, ChannelRules};
use crate::dialect::channel::{ChannelDialect, ChannelState};
use crate::dialect::jac::JacDialect;
use crate::dialect::namespace::{Namespace, NamespaceHandle, NamespaceRegistry};
use crate::external_token::ExternalTokens;
use crate::http::api::{ApiKeys, SeenIds};
use crate::http::probes::DatabaseCheck;
use crate::hub::{ConnectionLimits, DialectId, Hub, MAX_DIALECTS, QueueBounds};
use crate::metrics::Metrics;
use crate::notify::{Notifier, Publisher};
use crate::ops::Operations;
use crate::ops::clock::Clock;
use crate::presence::{LocalPresence, Presence};
use crate::readiness::Readiness;
use crate::store::{AccountStore, StoreError};
use crate::throttle::AccountThrottles;
use crate::upstream::Upstreams;
use crate::walker::{Walker, WalkerRegistry};

/// Why an app could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot prepare the data directory: {0}")]
    DataDir(#[from] std::io::Error),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("cannot open the account store: {0}")]
    Store(#[from] StoreError),
}

/// Collects walkers and options, then opens the account store.
#[derive(Debug)]
pub struct SwitchboardBuilder {
    config: Config,
    walkers: WalkerRegistry,
    broker: Option<Arc<dyn Broker>>,
    dialects: Vec<Arc<dyn Dialect>>,
    channel_rules: Vec<ChannelRule>,
    namespaces: NamespaceRegistry,
    clock: Clock,
}

impl SwitchboardBuilder {
    /// Serve a namespace at `/api/1/ws/<name>` (seed 003). Returns its handle (broadcast,
    /// send_to_client, stats), which works once the app is built. A name outside
    /// `[A-Za-z0-9_-]{1,64}`, or one already registered, is refused.
    pub fn namespace(&mut self, namespace: Namespace) -> Result<NamespaceHandle, StartError> {
        self.namespaces
            .register(namespace)
            .map_err(StartError::Config)
    }

    /// Register a walker; a later one with the same name replaces an earlier one.
    pub fn walker(mut self, walker: Walker) -> Self {
        self.walkers.insert(walker);
        self
    }

    /// Join other nodes through `broker` (default: this node alone).
    pub fn broker(mut self, broker: Arc<dyn Broker>) -> Self {
        self.broker = Some(broker);
        self
    }

    /// Serve another dialect beside the built-in ones (its routes join the app's router).
    pub fn dialect(mut self, dialect: Arc<dyn Dialect>) -> Self {
        self.dialects.push(dialect);
        self
    }

    /// Add a channel rule of the channel dialect; it replaces a `[[channel]]` rule of the
    /// configuration with the same prefix (a rule in code can hand messages to a handler).
    pub fn channel(mut self, rule: ChannelRule) -> Self {
        self.channel_rules.push(rule);
        self
    }

    /// Read statistics time (rates, namespace colours, the activity log) from `clock` instead of
    /// the system clock: tests move a [`crate::ops::clock::ManualClock`] by hand.
    pub fn clock(mut self, clock: impl Into<Clock>) -> Self {
        self.clock = clock.into();
        self
    }

    /// Open the account store (creating the data directory and token secret on first start).
    pub async fn build(self) -> Result<Switchboard, StartError> {
        let config = self.config;
        let mut dialects = self.dialects;
        let namespaces_use_upstream = self.namespaces.uses_upstream();
        let namespace_states = self.namespaces.states();
        dialects.extend(self.namespaces.into_dialect());
        if let Some(path) = &config.echo_path
            && (!path.starts_with('/') || path.contains('{'))
        {
            return Err(StartError::Config(format!(
                "echo_path `{path}` must start with `/` and hold no route parameters"
            )));
        }
        let broker = match (self.broker, &config.cluster.backplane) {
            (Some(broker), _) => broker,
            (None, Some(url)) => cluster_broker(&config, url)?,
            (None, None) => Arc::new(SingleNode::new(node_id(&config))),
        };
        std::fs::create_dir_all(&config.data_dir)?;
        let secret = load_or_create_secret(config.auth.token_secret.as_deref(), &config.data_dir)?;
        let store = AccountStore::open(&config.accounts_database_url()).await?;
        let external = ExternalTokens::from_config(&config.jwt).map_err(StartError::Config)?;
        let auth =
            Authenticator::new(&secret, config.auth.token_ttl_secs, store).with_external(external);
        let accounts = Accounts::new(auth, config.auth.min_password_len, &config.accounts);
        let account_throttles = AccountThrottles::new(&config.accounts);
        let upstreams = Arc::new(
            Upstreams::new(&config.upstream, broker.node_id()).map_err(StartError::Config)?,
        );
        let mut walkers = self.walkers;
        let channel_rules =
            ChannelRules::new(&config.channel, self.channel_rules).map_err(StartError::Config)?;
        if (!config.walkers.is_empty() || namespaces_use_upstream || channel_rules.uses_upstream())
            && config.upstream.secret.as_deref().unwrap_or("").is_empty()
        {
            return Err(StartError::Config(
                "upstreams ([[walker]], or a namespace's or channel rule's on_message or on_connect = \"upstream\") need upstream.secret (the key the backend checks requests with)".into(),
            ));
        }
        let api_keys = config
            .api_keys
            .iter()
            .map(|k| k.resolve().map(|key| (k.name.clone(), key)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(StartError::Config)?;
        for definition in &config.walkers {
            walkers.insert(crate::upstream::walker(
                definition,
                upstreams.clone(),
                config.limits.max_ids_per_event,
            ));
        }
        // The channel dialect is built here, once the configured and coded rules are known.
        let channels = Arc::new(ChannelState::new(
            Hub::dialect_id(dialects.len()),
            channel_rules,
        ));
        dialects.push(Arc::new(ChannelDialect::new(channels.clone())));
        if dialects.len() > MAX_DIALECTS {
            return Err(StartError::Config(format!(
                "at most {MAX_DIALECTS} dialects can be registered"
            )));
        }
        let metrics = Arc::new(Metrics::new(
            broker.node_id(),
            dialects.iter().map(|d| d.encoder().dialect()),
            walkers.names(),
        ));
        let hub = Arc::new(Hub::new(
            dialects.iter().map(|d| d.encoder()).collect(),
            QueueBounds {
                messages: config.limits.outbound_queue_messages,
                bytes: config.limits.outbound_queue_bytes,
            },
            ConnectionLimits {
                total: config.limits.max_connections,
                per_user: config.limits.max_connections_per_user,
            },
            metrics.clone(),
        ));
        if let Some(interest) = broker.interest() {
            hub.observe_channels(interest);
        }
        // Filled once the app exists: other nodes' orders and questions reach the app.
        let app_slot: Arc<std::sync::OnceLock<std::sync::Weak<Shared>>> = Arc::default();
        let slot = app_slot.clone();
        let asked = app_slot.clone();
        broker.attach(
            Inbound::new(broker.node_id(), &hub)
                .on_order(Arc::new(move |change| {
                    if let Some(shared) = slot.get().and_then(std::sync::Weak::upgrade) {
                        tokio::spawn(Switchboard { shared }.apply_order(change));
                    }
                }))
                .on_question(Arc::new(move |question| {
                    asked
                        .get()
                        .and_then(std::sync::Weak::upgrade)
                        .map(|shared| Switchboard { shared }.answer_question(question))
                        .unwrap_or_default()
                })),
        );
        let presence: Arc<dyn Presence> = broker
            .presence()
            .unwrap_or_else(|| Arc::new(LocalPresence::new(&hub)));
        let ops = Arc::new(Operations::new(
            broker.node_id(),
            self.clock,
            config.stats.clone(),
            namespace_states,
        ));
        hub.observe_overflows(ops.clone());
        let publisher = Arc::new(Publisher::new(hub.clone(), broker, ops.clone()));
        crate::dialect::channel::presence::start(&hub, &publisher, channels.dialect_id());
        let app = Switchboard {
            shared: Arc::new(Shared {
                config,
                hub,
                publisher,
                walkers,
                upstreams,
                api_keys: ApiKeys::new(api_keys),
                seen_ids: SeenIds::default(),
                dialects,
                channels,
                presence,
                accounts,
                metrics,
                sessions: TaskTracker::new(),
                walker_runs: TaskTracker::new(),
                draining: AtomicBool::new(false),
                readiness: Readiness::default(),
                database_check: DatabaseCheck::default(),
                connections_per_ip: DashMap::new(),
                account_throttles,
                ops,
            }),
        };
        let _ = app_slot.set(Arc::downgrade(&app.shared));
        tokio::spawn(crate::ops::history::run(
            Arc::downgrade(&app.shared.hub),
            Arc::downgrade(&app.shared.ops),
        ));
        tokio::spawn(crate::heartbeat::run(
            Arc::downgrade(&app.shared.hub),
            app.shared.config.heartbeat.clone(),
        ));
        Ok(app)
    }
}

/// This node's configured id, or a random one per start.
fn node_id(config: &Config) -> String {
    if config.cluster.node_id.is_empty() {
        crate::ids::new_object_id()
    } else {
        config.cluster.node_id.clone()
    }
}

/// The broker of `[cluster] backplane`. Nodes share accounts, so a per-node SQLite file is
/// refused: a token issued or revoked on one node would mean nothing on the others.
fn cluster_broker(config: &Config, url: &str) -> Result<Arc<dyn Broker>, StartError> {
    let accounts = config.accounts_database_url();
    if !(accounts.starts_with("postgres://") || accounts.starts_with("postgresql://")) {
        return Err(StartError::Config(format!(
            "a backplane is set ([cluster] backplane = `{url}`), so accounts must be shared by \
             every node: set database_url (or SWITCHBOARD_DATABASE_URL) to a postgres:// URL; \
             SQLite (`{accounts}`) is one node's file"
        )));
    }
    let node_id = node_id(config);
    let broker = crate::broker::connect(url, &node_id, &config.cluster.name)
        .map_err(|err| StartError::Config(err.to_string()))?;
    tracing::info!(node_id, backplane = url, "joining a cluster");
    Ok(broker)
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) hub: Arc<Hub>,
    pub(crate) publisher: Arc<Publisher>,
    pub(crate) walkers: WalkerRegistry,
    /// Calls to the team's backend (upstream walkers and namespace messages).
    pub(crate) upstreams: Arc<Upstreams>,
    /// Keys of the server API.
    pub(crate) api_keys: ApiKeys,
    /// Publish items' idempotency keys of the last two minutes.
    pub(crate) seen_ids: SeenIds,
    /// Registered dialects; a connection's [`DialectId`] is its dialect's position here.
    pub(crate) dialects: Vec<Arc<dyn Dialect>>,
    /// The channel dialect's rules and per-connection metadata.
    pub(crate) channels: Arc<ChannelState>,
    pub(crate) presence: Arc<dyn Presence>,
    pub(crate) accounts: Accounts,
    pub(crate) metrics: Arc<Metrics>,
    /// Every connection's task, so shutdown can wait for the close handshakes.
    pub(crate) sessions: TaskTracker,
    /// Every walker run, so shutdown can let them finish.
    pub(crate) walker_runs: TaskTracker,
    /// Set once shutdown began: new upgrades are refused.
    pub(crate) draining: AtomicBool,
    /// Whether a load balancer should send this node new clients (`GET /ready`).
    pub(crate) readiness: Readiness,
    /// `GET /health`'s database check, one at a time however many probes ask.
    pub(crate) database_check: DatabaseCheck,
    /// Open WebSockets per peer address, for `limits.max_connections_per_ip`.
    pub(crate) connections_per_ip: DashMap<IpAddr, usize>,
    /// Login and registration attempts per address and per email.
    pub(crate) account_throttles: AccountThrottles,
    /// Statistics and the activity log.
    pub(crate) ops: Arc<Operations>,
}

/// The running app. Cheap to clone; every clone is the same app.
#[derive(Debug, Clone)]
pub struct Switchboard {
    pub(crate) shared: Arc<Shared>,
}

impl Switchboard {
    pub fn builder(config: Config) -> SwitchboardBuilder {
        SwitchboardBuilder {
            config,
            walkers: WalkerRegistry::default(),
            broker: None,
            // The built-in dialects; each is one line here.
            dialects: vec![Arc::new(JacDialect)],
            channel_rules: Vec::new(),
            namespaces: NamespaceRegistry::default(),
            clock: Clock::System,
        }
    }

    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.shared.hub
    }

    /// The registered dialects with the id their connections carry.
    pub fn dialects(&self) -> impl Iterator<Item = (DialectId, &Arc<dyn Dialect>)> {
        self.shared
            .dialects
            .iter()
            .enumerate()
            .map(|(index, dialect)| (Hub::dialect_id(index), dialect))
    }

    /// The channel dialect's server API: send to channels and connections, join, leave,
    /// members, and the connection listing.
    pub fn channels(&self) -> Channels {
        Channels::new(self.clone(), self.shared.channels.clone())
    }

    /// Members of channels across the cluster.
    pub fn presence(&self) -> &Arc<dyn Presence> {
        &self.shared.presence
    }

    /// This node's id in the cluster.
    pub fn node_id(&self) -> &str {
        self.shared.publisher.broker().node_id()
    }

    /// Whether the link to the other nodes works: `None` for a node without a backplane.
    pub fn backplane_up(&self) -> Option<bool> {
        self.shared.publisher.broker().backplane_up()
    }

    pub fn accounts(&self) -> &Accounts {
        &self.shared.accounts
    }

    pub fn authenticator(&self) -> &Authenticator {
        self.shared.accounts.authenticator()
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.shared.metrics
    }

    /// Statistics and the activity log (see [`Switchboard::stats`]).
    pub fn ops(&self) -> &Arc<Operations> {
        &self.shared.ops
    }

    /// A notify handle not tied to any connection (`notify_self` does nothing on it).
    pub fn notifier(&self) -> Notifier {
        Notifier::new(self.shared.publisher.clone(), None)
    }

    // Each send returns whether the other nodes will get it (see [`Notifier`]).

    /// Send to every connection of these users (user ids or Jac `n::...` root ids).
    pub fn notify_users<S: AsRef<str>, T: Serialize + ?Sized>(
        &self,
        root_ids: &[S],
        data: &T,
    ) -> Relay {
        self.notifier().notify_users(root_ids, data)
    }

    /// Send to every connection subscribed to these channels.
    pub fn notify_channels<S: AsRef<str>, T: Serialize + ?Sized>(
        &self,
        channels: &[S],
        data: &T,
    ) -> Relay {
        self.notifier().notify_channels(channels, data)
    }

    /// Send to the connections with these client ids.
    pub fn notify_clients<S: AsRef<str>, T: Serialize + ?Sized>(
        &self,
        client_ids: &[S],
        data: &T,
    ) -> Relay {
        self.notifier().notify_clients(client_ids, data)
    }

    /// Send to every connection.
    pub fn broadcast<T: Serialize + ?Sized>(&self, data: &T) -> Relay {
        self.notifier().broadcast(data)
    }

    /// Revoke every token of account `user_id` and act on its live connections at once: each
    /// connection's dialect downgrades it to the public user or closes it with 4401.
    /// In a cluster, every other node does the same with its connections of that user (the
    /// returned [`Relay`] says whether they were told).
    pub async fn revoke_user_tokens(&self, user_id: &str) -> Result<Relay, AccountError> {
        self.accounts().revoke_tokens(user_id).await?;
        self.credentials_revoked(user_id);
        Ok(self.broker().send_order(&ClusterOrder::Revoked {
            user_id: user_id.to_string(),
        }))
    }

    /// Grant `role` to the account with `email`; its live connections act with the role at once,
    /// on every node of a cluster (the returned [`Relay`] says whether the others were told).
    pub async fn grant_role(&self, email: &str, role: &str) -> Result<Relay, AccountError> {
        let identity = crate::auth::identity_of(self.accounts().grant_role(email, role).await?);
        self.identity_changed(identity.clone());
        Ok(self.broker().send_order(&ClusterOrder::RoleGranted {
            user_id: identity.user_id().to_string(),
            email: email.to_string(),
        }))
    }

    /// Close the connections of these users or clients with `code` (4000-4999) and `reason`, on
    /// this node at once and on every other node of a cluster. Returns how many connections of
    /// this node closed, and whether the others were told.
    pub fn disconnect(&self, target: DisconnectTarget, code: u16, reason: &str) -> (usize, Relay) {
        let relay = self.broker().send_order(&ClusterOrder::Disconnect {
            target: target.clone(),
            code,
            reason: reason.to_string(),
        });
        (
            self.disconnect_here(&target, code, Arc::from(reason)),
            relay,
        )
    }

    /// This node's part of [`Switchboard::disconnect`].
    fn disconnect_here(&self, target: &DisconnectTarget, code: u16, reason: Arc<str>) -> usize {
        let hub = self.hub();
        let connections: Vec<_> = match target {
            DisconnectTarget::Users(ids) => ids
                .iter()
                .flat_map(|id| hub.user_connections(crate::identity::user_id_of_address(id)))
                .collect(),
            DisconnectTarget::Clients(ids) => ids
                .iter()
                .flat_map(|id| hub.connections_of_client(id))
                .collect(),
        };
        let close = close_code::CloseCode::application(code);
        connections
            .iter()
            .filter(|conn| conn.outbound.close_with_reason(close, reason.clone()))
            .count()
    }

    /// Wait (up to `within`) until the backplane link is up; `true` at once for a single node.
    pub async fn backplane_ready(&self, within: std::time::Duration) -> bool {
        self.poll(within, || self.backplane_up() != Some(false))
            .await
    }

    /// Wait (up to `within`) until every send for other nodes went out (or was counted lost):
    /// for a short-lived process such as the `user` command, before it exits.
    pub async fn backplane_flushed(&self, within: std::time::Duration) -> bool {
        self.poll(within, || self.broker().unsent() == 0).await
    }

    async fn poll(&self, within: std::time::Duration, done: impl Fn() -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        while !done() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        true
    }

    pub(crate) fn broker(&self) -> &Arc<dyn Broker> {
        self.shared.publisher.broker()
    }

    /// Give every live connection of the user its new identity.
    fn identity_changed(&self, identity: crate::identity::Identity) {
        for conn in self.hub().user_connections(identity.user_id()) {
            // The connection's token still expires when it did.
            let token = conn.identity().token();
            // Same user, so the per-user limit cannot refuse it.
            let _ = self
                .hub()
                .set_identity(&conn, identity.clone().with_token(token));
        }
    }

    /// Another node changed an account: act on this node's connections of it.
    async fn apply_order(self, change: ClusterOrder) {
        match change {
            ClusterOrder::Revoked { user_id } => self.credentials_revoked(&user_id),
            ClusterOrder::RoleGranted { email, .. } => {
                match self.accounts().user_by_email(&email).await {
                    Ok(Some(user)) => self.identity_changed(crate::auth::identity_of(user)),
                    Ok(None) => {}
                    Err(err) => tracing::warn!(%err, "cannot reload an account changed elsewhere"),
                }
            }
            ClusterOrder::Disconnect {
                target,
                code,
                reason,
            } => {
                self.disconnect_here(&target, code, Arc::from(reason));
            }
            ClusterOrder::PublishIdSeen { api_key, id } => {
                self.shared.seen_ids.remember(&api_key, &id)
            }
        }
    }

    /// Tell the dialect of each live connection of `user_id` that its token no longer holds.
    fn credentials_revoked(&self, user_id: &str) {
        let connections = self.hub().user_connections(user_id);
        if !connections.is_empty() {
            tracing::info!(
                user_id,
                connections = connections.len(),
                "tokens revoked on live connections"
            );
        }
        for conn in connections {
            if let Some(dialect) = self.shared.dialects.get(conn.dialect().index()) {
                dialect.credentials_revoked(self, &conn);
            }
        }
    }

    /// Whether this node is starting, serving or stopping.
    pub fn readiness(&self) -> &Readiness {
        &self.shared.readiness
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.shared.draining.load(Ordering::Acquire)
    }

    /// Graceful shutdown of the sockets: refuse new upgrades, let in-flight walkers finish within
    /// `shutdown.walker_grace_secs`, close every socket with 1001, and wait (bounded) for the
    /// close handshakes. Stopping the listener is the caller's job (see [`crate::serve`]).
    pub async fn shutdown(&self) {
        self.shared.readiness.stopping();
        self.shared.draining.store(true, Ordering::Release);
        let grace = &self.shared.config.shutdown;
        self.shared.walker_runs.close();
        if tokio::time::timeout(grace.walker_grace(), self.shared.walker_runs.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                still_running = self.shared.walker_runs.len(),
                "walkers did not finish within the shutdown grace period"
            );
        }
        self.shared.hub.close_all(close_code::GOING_AWAY);
        self.shared.sessions.close();
        let _ = tokio::time::timeout(
            grace.close_grace() + std::time::Duration::from_millis(500),
            self.shared.sessions.wait(),
        )
        .await;
    }
}
