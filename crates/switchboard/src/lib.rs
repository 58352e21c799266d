//! Switchboard: a real-time messaging hub. Clients hold a WebSocket; application code pushes to
//! one connection, every connection of a user, a channel, or everyone; clients call server-side
//! handlers (walkers) and message each other.
//!
//! # Layout
//!
//! - [`app`]: the [`Switchboard`] handle and its builder (walkers, dialects, broker); owns the rest.
//! - [`session`]: the one connect path every WebSocket endpoint runs (handshake, origin,
//!   credentials, admission, registration, rate budget) and the per-connection I/O loop.
//! - [`dialect`]: the dialect contract (a trait each wire protocol implements) and the dialects
//!   ([`dialect::jac`], the Jac Cloud protocol; [`dialect::channel`], seed 004's channels;
//!   [`dialect::namespace`], seed 003's namespaces with their builder API and handles); frames
//!   to hub operations and back.
//! - [`hub`]: live connections indexed by client id, user, channel and namespace; one
//!   `deliver(&Target, &Delivery)` into bounded outbound queues, each frame encoded once per
//!   dialect; the channel observer.
//! - [`broker`]: the seam to other nodes (single node by default; an in-process bus; Redis and
//!   NATS backplanes, see docs/cluster.md).
//! - [`presence`]: members of a channel, across nodes.
//! - [`ws`]: the WebSocket protocol itself.
//! - [`walker`]: walker definitions, their registry and the one call path (WebSocket and REST).
//! - [`notify`]: `notify_users` / `notify_channels` / `notify_clients` / `notify_self` / `broadcast`;
//!   [`publish`]: a backend's publish item (target, event, data) as the HTTP API carries it.
//! - [`upstream`]: handlers served by the team's own backend over signed HTTP, bounded
//!   (timeout, in-flight limit, circuit breaker).
//! - [`auth`]: issuing and verifying tokens; [`external_token`]: tokens from the team's own
//!   identity provider (HS256, RS256/ES256 by PEM or JWKS); [`identity`]: who a caller is,
//!   dialect-neutral.
//! - [`accounts`]: registration, login, revocation, roles; [`store`]: where accounts live;
//!   [`hashing`]: bounded password hashing; [`throttle`]: attempt budgets per address and email.
//! - [`http`]: the axum router: dialect routes, REST walkers, accounts, metrics, origin policy.
//! - [`heartbeat`]: the one sweep task that pings idle connections and closes silent ones.
//! - [`rate_limit`]: the per-connection message budget; [`token_bucket`]: the bucket behind it
//!   and the account throttles.
//! - [`shutdown`]: signals, the accept loop and the graceful shutdown sequence; [`readiness`]:
//!   whether the node should get new clients (starting, serving, stopping); [`tls`]: HTTPS and
//!   `wss://` without a proxy, the certificate reloaded on SIGHUP.
//! - [`config`]: every setting with its default; [`metrics`]: the Prometheus metrics.
//! - [`ops`]: what an operator sees: statistics per namespace, channel and node, on a clock
//!   tests can set.
//! - [`close_code`] and [`error_code`]: the two contracts with clients (close codes, error codes).
//! - [`ids`]: identifier formats; [`json`]: client JSON with field-naming errors.
//!
//! `docs/design.md` in the repository draws the layers and walks through adding a dialect.

pub mod accounts;
pub mod app;
pub mod auth;
pub mod broker;
pub mod close_code;
pub mod config;
pub mod dialect;
pub mod error_code;
pub mod external_token;
pub mod hashing;
pub mod heartbeat;
pub mod http;
pub mod hub;
pub mod identity;
pub mod ids;
pub mod json;
pub mod metrics;
pub mod notify;
pub mod ops;
pub mod presence;
pub mod publish;
pub mod rate_limit;
pub mod readiness;
pub mod session;
pub mod shutdown;
pub mod store;
pub mod throttle;
pub mod tls;
pub mod token_bucket;
pub mod upstream;
pub mod walker;
pub mod ws;

/// The README's Rust examples, compiled as doc tests so they cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeExamples;

pub use app::{StartError, Switchboard, SwitchboardBuilder};
pub use config::Config;
pub use identity::Identity;
pub use notify::Notifier;
pub use shutdown::{serve, serve_tls};
pub use walker::{Call, Method, Reports, Walker, WalkerError};
