//! Every setting, with its default and unit. The server reads these from a TOML file; an app that
//! embeds the library builds the struct in code. Defaults serve a newcomer on one machine.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// The whole configuration. Every field has a default, so an empty file is a valid config.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the server listens on. Default `127.0.0.1:8000`.
    pub listen: SocketAddr,
    /// Directory for the embedded account database and the generated token secret.
    /// Created on first start. Default `switchboard-data` (relative to the working directory).
    pub data_dir: PathBuf,
    /// Where accounts live: `sqlite://PATH` or `postgres://USER@HOST:PORT/DB`. Default:
    /// `accounts.sqlite3` in `data_dir`.
    pub database_url: Option<String>,
    /// Path of a WebSocket echo endpoint for conformance testing (e.g. `/echo`); off by default.
    /// Must start with `/`.
    pub echo_path: Option<String>,
    /// Origins allowed to open browser WebSockets, e.g. `https://app.example.com`. A request
    /// without an `Origin` header (not a browser) is always allowed, and so is a same-origin one
    /// (its host equals the `Host` header); any other origin is refused with 403 unless listed.
    /// `["*"]` allows every origin. Default: empty (same-origin and non-browser clients only).
    pub allowed_origins: Vec<String>,
    /// Accept permessage-deflate (RFC 7692): clients may send compressed messages. Each is
    /// inflated on its own (no context takeover), so idle connections keep no compression
    /// state; the server's own messages go out uncompressed. Default true.
    pub permessage_deflate: bool,
    pub tls: TlsConfig,
    pub http: HttpConfig,
    pub auth: AuthConfig,
    pub jwt: JwtConfig,
    /// Keys of the server API (`/api/publish`, `/api/info`): `[[api_key]]` tables.
    #[serde(rename = "api_key")]
    pub api_keys: Vec<ApiKeyConfig>,
    /// How upstream (HTTP) handlers are called.
    pub upstream: UpstreamConfig,
    /// Walkers served by an upstream: `[[walker]]` tables.
    #[serde(rename = "walker")]
    pub walkers: Vec<UpstreamWalker>,
    pub accounts: AccountsConfig,
    pub limits: Limits,
    pub heartbeat: HeartbeatConfig,
    pub shutdown: ShutdownConfig,
    /// Channel rules of the channel dialect (`/ws/<channel>`), one `[[channel]]` table each; the
    /// longest matching `prefix` applies. Default: none (every channel open, messages relayed).
    pub channel: Vec<ChannelRuleConfig>,
    pub cluster: ClusterConfig,
    pub stats: StatsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8000)),
            data_dir: PathBuf::from("switchboard-data"),
            database_url: None,
            echo_path: None,
            allowed_origins: Vec::new(),
            permessage_deflate: true,
            tls: TlsConfig::default(),
            http: HttpConfig::default(),
            auth: AuthConfig::default(),
            jwt: JwtConfig::default(),
            api_keys: Vec::new(),
            upstream: UpstreamConfig::default(),
            walkers: Vec::new(),
            accounts: AccountsConfig::default(),
            limits: Limits::default(),
            heartbeat: HeartbeatConfig::default(),
            shutdown: ShutdownConfig::default(),
            channel: Vec::new(),
            cluster: ClusterConfig::default(),
            stats: StatsConfig::default(),
        }
    }
}

impl Config {
    /// The accounts database URL, defaulting to a SQLite file in the data directory.
    pub fn accounts_database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}",
                self.data_dir.join("accounts.sqlite3").display()
            ),
        }
    }
}

/// HTTPS and `wss://` served by the process itself, for deployments without a TLS-terminating
/// proxy in front. Both paths set: every connection on `listen` is TLS (plain HTTP is refused);
/// neither: plain HTTP. The files are read again on SIGHUP, so a renewed certificate is served
/// without a restart (see [`crate::tls`]).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file with the certificate chain, the server's own certificate first. Default: none.
    pub cert: Option<PathBuf>,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1) of the first certificate.
    /// Default: none.
    pub key: Option<PathBuf>,
}

/// Browsers calling the HTTP API (REST walkers, accounts) from other origins.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Origins whose pages may call the HTTP API, e.g. `https://app.example.com` (scheme, host
    /// and port, as browsers send them in `Origin`). A request without `Origin` (not a
    /// browser) and a same-origin one (its host equals `Host`) are always allowed; any other
    /// origin gets 403 `origin_not_allowed`, preflight included. `["*"]` allows every origin.
    /// WebSocket upgrades are governed by `allowed_origins` instead. Default: empty (same
    /// origin and non-browser clients only).
    pub cors_origins: Vec<String>,
    /// How long a browser may cache a preflight answer, in seconds. Default 600.
    pub cors_max_age_secs: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            cors_origins: Vec::new(),
            cors_max_age_secs: 600,
        }
    }
}

/// Tokens minted by the team's own identity provider, accepted beside Switchboard's own (see
/// [`crate::external_token`]). Any subset of the three keys may be set; none set: off.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JwtConfig {
    /// Shared secret of HS256 tokens (those without a `kid`). Default: none.
    pub hs256_secret: Option<String>,
    /// PEM public key (RSA for RS256, P-256 for ES256) of tokens without a `kid`. Default: none.
    pub public_key_pem: Option<PathBuf>,
    /// Key set of tokens with a `kid`; `https://`, or `http://` on a loopback host. Fetched on
    /// first use, refetched on an unknown `kid` at most every 30 s and when an hour old.
    /// Default: none.
    pub jwks_url: Option<String>,
    /// Claim holding the user id. Default `sub`.
    pub user_id_claim: String,
    /// Claim holding the username; a token without it uses the user id. Default
    /// `preferred_username`.
    pub username_claim: String,
    /// Claim holding the roles: an array of strings or one space-separated string. Default
    /// `roles`.
    pub roles_claim: String,
    /// Required `aud` of external tokens; empty: `aud` is not checked. Default empty.
    pub audience: String,
    /// Required `iss` of external tokens; empty: `iss` is not checked. Default empty.
    pub issuer: String,
    /// Clock skew allowed when checking `exp` and `nbf`, in seconds. Default 30.
    pub leeway_s: u64,
    /// Shortest time between two key-set fetches caused by tokens naming an unknown `kid`, in
    /// seconds: forged `kid`s cannot make the server hammer the issuer. Default 30.
    pub jwks_min_refetch_s: u64,
}

impl Default for JwtConfig {
    fn default() -> Self {
        Self {
            hs256_secret: None,
            public_key_pem: None,
            jwks_url: None,
            user_id_claim: "sub".into(),
            username_claim: "preferred_username".into(),
            roles_claim: "roles".into(),
            audience: String::new(),
            issuer: String::new(),
            leeway_s: 30,
            jwks_min_refetch_s: 30,
        }
    }
}

/// One key of the server API. `key` or `key_env` (the name of an environment variable holding
/// it), not both.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// Shown in logs and used to scope idempotency keys.
    pub name: String,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub key_env: Option<String>,
}

impl ApiKeyConfig {
    /// The key itself, read from the environment for `key_env`.
    pub fn resolve(&self) -> Result<String, String> {
        let key = match (&self.key, &self.key_env) {
            (Some(key), None) => key.clone(),
            (None, Some(var)) => std::env::var(var).map_err(|_| {
                format!(
                    "api_key `{}`: environment variable {var} is not set",
                    self.name
                )
            })?,
            _ => {
                return Err(format!(
                    "api_key `{}`: set exactly one of `key` and `key_env`",
                    self.name
                ));
            }
        };
        if key.len() < 16 {
            return Err(format!(
                "api_key `{}`: the key must be at least 16 characters",
                self.name
            ));
        }
        Ok(key)
    }
}

/// Calls to the team's own backend (see [`crate::upstream`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpstreamConfig {
    /// HMAC-SHA256 key of the `X-Switchboard-Signature` header. Required when any upstream is
    /// configured. Default: none.
    pub secret: Option<String>,
    /// Longest wait for an upstream's answer, in milliseconds; then `upstream_timeout`.
    /// Default 5000.
    pub timeout_ms: u64,
    /// Upstream calls in flight at once on this node; one more fails at once with
    /// `upstream_busy`. Default 256.
    pub max_in_flight: usize,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        Self {
            secret: None,
            timeout_ms: 5000,
            max_in_flight: 256,
        }
    }
}

/// A walker whose body is the team's backend: `[[walker]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamWalker {
    pub name: String,
    /// Where it may be called: `"websocket"`, `"post"`, `"get"`. Default websocket and post.
    #[serde(default = "default_walker_methods")]
    pub methods: Vec<crate::walker::Method>,
    /// Callable without a login. Default false.
    #[serde(default)]
    pub public: bool,
    /// The URL Switchboard POSTs each call to.
    pub upstream: String,
}

fn default_walker_methods() -> Vec<crate::walker::Method> {
    vec![
        crate::walker::Method::WebSocket,
        crate::walker::Method::Post,
    ]
}

/// Tokens and passwords.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// HS256 signing secret for issued tokens. Default: generated on first start and kept in
    /// `<data_dir>/token-secret` (mode 0600), so tokens survive restarts.
    pub token_secret: Option<String>,
    /// Lifetime of an issued token, in seconds. Default 86400 (one day).
    pub token_ttl_secs: u64,
    /// Shortest accepted password, in characters. Default 8.
    pub min_password_len: usize,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            token_secret: None,
            token_ttl_secs: 86_400,
            min_password_len: 8,
        }
    }
}

/// What the unauthenticated account endpoints (`/user/login`, `/user/register`) may cost.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountsConfig {
    /// Password hashes (argon2id, 19 MiB of memory each) computed at once; this also bounds
    /// the hashing memory of the process to this many times 19 MiB. 0 means one per core
    /// (`std::thread::available_parallelism`). Default 0.
    pub max_concurrent_hashes: usize,
    /// Longest time a login or registration waits for a free hashing slot, in milliseconds;
    /// then it is refused with 503 `hashing_busy` and `Retry-After`. Default 2000.
    pub hash_queue_timeout_ms: u64,
    /// Most logins and registrations waiting for a hashing slot at once; one more is refused at
    /// once with 503 `hashing_busy`. Default 64.
    pub max_queued_hashes: usize,
    /// `POST /user/register` calls one address may make per minute (IPv6: per /64), as a
    /// burst that refills evenly over the minute; over it, 429 `too_many_attempts` with
    /// `Retry-After`. 0 disables. Default 60.
    pub registrations_per_address_per_min: u32,
    /// `POST /user/login` calls one address may make per minute, successful or not; over it,
    /// 429 `too_many_attempts`. 0 disables. Default 300.
    pub logins_per_address_per_min: u32,
    /// Failed logins per minute for one email (known or not), from any address; over it, every
    /// login for that email (even with the right password) gets 429 `too_many_attempts` until
    /// an attempt refills (one every 60 / this seconds). 0 disables. Default 10.
    pub failed_logins_per_email_per_min: u32,
    /// Most addresses or emails each throttle remembers, so the throttles cannot be made to
    /// grow without bound (about 400 bytes per email key); past it, keys whose budget refilled
    /// are forgotten first, then the least recently used half. Default 10000.
    pub throttle_max_keys: usize,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        Self {
            max_concurrent_hashes: 0,
            hash_queue_timeout_ms: 2_000,
            max_queued_hashes: 64,
            registrations_per_address_per_min: 60,
            logins_per_address_per_min: 300,
            failed_logins_per_email_per_min: 10,
            throttle_max_keys: 10_000,
        }
    }
}

impl AccountsConfig {
    /// `max_concurrent_hashes`, with 0 resolved to the number of cores.
    pub fn hash_slots(&self) -> usize {
        match self.max_concurrent_hashes {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        }
    }

    pub fn hash_queue_timeout(&self) -> Duration {
        Duration::from_millis(self.hash_queue_timeout_ms)
    }
}

/// Limits on what one client can make the server hold or do.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest WebSocket message a client may send, in bytes. Over it the connection is closed
    /// with 1009. Default 65536 (64 KiB).
    pub max_frame_bytes: usize,
    /// Most ids in one `user`/`channel`/`client` event or notify call. Default 1000.
    pub max_ids_per_event: usize,
    /// Most messages waiting in one connection's outbound queue; one more closes the connection
    /// with 4008 (slow consumer). Default 1024.
    pub outbound_queue_messages: usize,
    /// Most bytes waiting in one connection's outbound queue; past it, 4008 as above.
    /// Default 4194304 (4 MiB).
    pub outbound_queue_bytes: usize,
    /// How long a slow consumer (its queue overflowed) has to read the rest of the frame being
    /// written to it, and then again to read the 4008 close frame, in milliseconds. A peer that
    /// takes longer has its TCP connection dropped without a close frame (counted in
    /// `slow_consumer_hangups`). Default 1000.
    pub slow_consumer_grace_ms: u64,
    /// Most walker calls running at once for one connection. Default 32.
    pub max_inflight_walkers: usize,
    /// Largest HTTP request body (REST walkers, accounts), in bytes. Default 65536.
    pub max_http_body_bytes: usize,
    /// Most WebSocket connections on this process; more are closed with 1013. Default 100000.
    pub max_connections: usize,
    /// Most WebSocket connections from one IP address; more are closed with 1013. Default 10000.
    pub max_connections_per_ip: usize,
    /// Most WebSocket connections of one logged-in user (the public user is not limited by
    /// this); more are closed with 1013. Default 100.
    pub max_connections_per_user: usize,
    /// Sustained messages per second one connection may send. Default 100.
    pub messages_per_sec: u32,
    /// Messages a connection may send in a burst above the sustained rate. Default 200.
    pub message_burst: u32,
    /// Consecutive rate-limited messages after which the connection is closed with 1008.
    /// Default 50.
    pub max_rate_limited_in_a_row: u32,
    /// Time a new TCP connection has to send its complete HTTP request head (slow-loris guard),
    /// in milliseconds. Default 10000.
    pub handshake_timeout_ms: u64,
}

impl Limits {
    /// [`Self::slow_consumer_grace_ms`] as a duration.
    pub fn slow_consumer_grace(&self) -> Duration {
        Duration::from_millis(self.slow_consumer_grace_ms)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_bytes: 64 * 1024,
            max_ids_per_event: 1000,
            outbound_queue_messages: 1024,
            outbound_queue_bytes: 4 * 1024 * 1024,
            slow_consumer_grace_ms: 1000,
            max_inflight_walkers: 32,
            max_http_body_bytes: 64 * 1024,
            max_connections: 100_000,
            max_connections_per_ip: 10_000,
            max_connections_per_user: 100,
            messages_per_sec: 100,
            message_burst: 200,
            max_rate_limited_in_a_row: 50,
            handshake_timeout_ms: 10_000,
        }
    }
}

/// Liveness of idle connections. One sweep task serves every connection: no timer per
/// connection.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HeartbeatConfig {
    /// A connection silent this long is sent a WebSocket ping, in milliseconds. Default 30000.
    pub interval_ms: u64,
    /// A connection silent for the interval plus this long is closed with 4001, in
    /// milliseconds. Default 5000.
    pub timeout_ms: u64,
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        Self {
            interval_ms: 30_000,
            timeout_ms: 5_000,
        }
    }
}

impl HeartbeatConfig {
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms.max(1))
    }
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// Graceful shutdown.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownConfig {
    /// How long in-flight walkers may run after a shutdown signal, in seconds. Default 10.
    pub walker_grace_secs: u64,
    /// How long to wait for clients to answer the close handshake, in seconds. Default 2.
    pub close_grace_secs: u64,
    /// After a shutdown signal, how long `GET /ready` answers 503 while the server still
    /// accepts connections and serves, before it stops listening, in milliseconds: the time a
    /// load balancer needs to see the node leave (its check interval times its failure
    /// threshold). Default 0 (stop listening at once).
    pub ready_grace_ms: u64,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self {
            walker_grace_secs: 10,
            close_grace_secs: 2,
            ready_grace_ms: 0,
        }
    }
}

impl ShutdownConfig {
    pub fn walker_grace(&self) -> Duration {
        Duration::from_secs(self.walker_grace_secs)
    }
    pub fn close_grace(&self) -> Duration {
        Duration::from_secs(self.close_grace_secs)
    }
    pub fn ready_grace(&self) -> Duration {
        Duration::from_millis(self.ready_grace_ms)
    }
}

/// One `[[channel]]` table: the rule for channels whose names start with `prefix`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChannelRuleConfig {
    /// Channel name prefix; `""` is the default rule. Default `""`.
    pub prefix: String,
    /// Only logged-in connections may join. Default false.
    pub require_auth: bool,
    /// Roles a user needs, every one of them, to join (implies a login). Default none.
    pub require_roles: Vec<String>,
    /// What a member's message does: `relay` (to the channel's other members, `from` stamped
    /// by the server), `none` (dropped) or `upstream` (to the `upstream` URL). Default `relay`.
    pub on_message: OnMessageConfig,
    /// `none`, or `upstream`: the `upstream` URL admits each join of a channel of this rule.
    /// Default `none`.
    pub on_connect: OnConnect,
    /// The team's backend for `on_message = "upstream"` and `on_connect = "upstream"`.
    pub upstream: Option<String>,
    /// Channels a connection may be in, the one joined on connect included. Default 32.
    pub max_channels_per_connection: usize,
}

impl Default for ChannelRuleConfig {
    fn default() -> Self {
        Self {
            prefix: String::new(),
            require_auth: false,
            require_roles: Vec::new(),
            on_message: OnMessageConfig::Relay,
            on_connect: OnConnect::None,
            upstream: None,
            max_channels_per_connection: 32,
        }
    }
}

/// Several nodes behind a load balancer, joined by a backplane (see docs/cluster.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// `redis://HOST:PORT` or `nats://HOST:PORT`: the backplane every node of the cluster
    /// shares. Accounts must then live in PostgreSQL (`database_url`), and every node needs the
    /// same `auth.token_secret`. Default: none (a single node).
    pub backplane: Option<String>,
    /// This node's id in logs, metrics and backplane messages; unique in the cluster. Default
    /// empty: a random id per start.
    pub node_id: String,
    /// Names the cluster on the backplane: every subject and channel starts with it, so
    /// clusters with different names can share one Redis or NATS server. Default `switchboard`.
    pub name: String,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            backplane: None,
            node_id: String::new(),
            name: "switchboard".to_string(),
        }
    }
}

/// `on_message` of a `[[channel]]` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnMessageConfig {
    Relay,
    None,
    Upstream,
}

/// `on_connect` of a `[[namespace]]` or `[[channel]]` table: who decides, beyond the login and
/// role checks, whether a client may connect (a namespace) or join (a channel).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnConnect {
    /// Nobody else: those checks admit (the default).
    #[default]
    None,
    /// The team's backend at the table's `upstream` URL admits each one: it answers
    /// `{"allow": true}` or `{"allow": false, "reason": R}` (see docs/backends.md).
    Upstream,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_is_the_default_config() {
        let config: Config = toml_like_empty();
        assert_eq!(config.listen.port(), 8000);
        assert_eq!(config.limits.max_frame_bytes, 65536);
    }

    fn toml_like_empty() -> Config {
        serde_json::from_str("{}").expect("empty config")
    }

    #[test]
    fn channel_tables_read_with_defaults() {
        let config: Config = serde_json::from_str(
            r#"{"channel":[{"prefix":"admin.","require_roles":["ops"],"on_message":"none"},{}]}"#,
        )
        .expect("channel rules");
        assert_eq!(config.channel.len(), 2);
        assert_eq!(config.channel[0].on_message, OnMessageConfig::None);
        assert_eq!(config.channel[1].max_channels_per_connection, 32);
        assert_eq!(config.channel[1].on_message, OnMessageConfig::Relay);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = serde_json::from_str::<Config>(r#"{"limits":{"max_frame":1}}"#).unwrap_err();
        assert!(err.to_string().contains("max_frame"), "{err}");
    }
}

/// Statistics and the activity log (`stats()`, `GET /admin/api/stats`, the admin dashboard).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StatsConfig {
    /// A namespace with clients but no message for this many seconds turns from `green` to
    /// `yellow`. Default 300 (5 minutes, as seed 003).
    pub status_idle_secs: u64,
    /// A namespace with no message for this many seconds (or no clients) is `red`. Default 1800
    /// (30 minutes, as seed 003).
    pub status_stale_secs: u64,
    /// How far back the activity log reaches, in seconds. Default 300.
    pub activity_log_secs: u64,
    /// Most entries the activity log keeps; the oldest go first. Default 1000.
    pub activity_log_max: usize,
    /// Record the activity log (and so feed the admin dashboard's live tap). `false` skips the
    /// per-message recording; counts, rates and status colours are kept either way. Default true.
    pub activity_log: bool,
}

impl Default for StatsConfig {
    fn default() -> Self {
        Self {
            status_idle_secs: 300,
            status_stale_secs: 1800,
            activity_log_secs: 300,
            activity_log_max: 1000,
            activity_log: true,
        }
    }
}
