//! Switchboard: a real-time messaging hub. Clients hold a WebSocket; application code pushes to
//! one connection, every connection of a user, a channel, or everyone; clients call server-side
//! handlers (walkers) and message each other.
//!
//! # Layout
//!
//! - [`app`]: the [`Switchboard`] handle and its builder; owns everything below.
//! - [`hub`]: live connections indexed by client id, user and channel; fan-out into bounded
//!   outbound queues, each message serialized once.
//! - [`dialect`]: the wire protocols (today the Jac Cloud dialect); frames to hub operations.
//! - [`socket`]: the per-connection I/O loop every dialect's session runs on.
//! - [`ws`]: the WebSocket protocol itself (frames, close handshake), lean on idle connections.
//! - [`walker`]: walker definitions (name, methods, auth, typed context) and their registry.
//! - [`notify`]: `notify_users` / `notify_channels` / `notify_clients` / `notify_self` / `broadcast`.
//! - [`backplane`]: the seam to other processes (in-process today; Redis and NATS later).
//! - [`auth`]: issuing and verifying tokens; [`identity`]: who a caller is.
//! - [`accounts`]: registration, login, revocation, roles; [`store`]: where accounts live;
//!   [`hashing`]: password hashing within a fixed budget of threads and memory.
//! - [`http`]: the axum router: upgrade endpoints, REST walkers, accounts, metrics.
//! - [`heartbeat`]: the one sweep task that pings idle connections and closes silent ones.
//! - [`rate_limit`]: the per-connection message budget; [`throttle`]: login and registration
//!   attempts per address and per email.
//! - [`shutdown`]: signals, the accept loop and the graceful shutdown sequence.
//! - [`config`]: every setting with its default; [`stats`]: counters; [`close_code`]: the
//!   close-code contract; [`ids`]: identifier formats; [`json`]: client JSON with
//!   field-naming errors.
//!
//! `docs/design.md` in the repository explains how the other dialects and the backplanes plug in.

pub mod accounts;
pub mod app;
pub mod auth;
pub mod broker;
pub mod close_code;
pub mod config;
pub mod dialect;
pub mod error_code;
pub mod hashing;
pub mod heartbeat;
pub mod http;
pub mod hub;
pub mod identity;
pub mod ids;
pub mod json;
pub mod notify;
pub mod presence;
pub mod rate_limit;
pub mod session;
pub mod shutdown;
pub mod socket;
pub mod stats;
pub mod store;
pub mod throttle;
pub mod walker;
pub mod ws;

pub use app::{StartError, Switchboard, SwitchboardBuilder};
pub use config::Config;
pub use identity::Identity;
pub use notify::Notifier;
pub use shutdown::serve;
pub use walker::{Call, Method, Reports, Walker, WalkerError};
