//! The seam between processes. A [`Backplane`] carries every notify call to the other processes of
//! a cluster, where it is delivered to their local connections; each process skips its own echo.
//!
//! Only the in-process implementation exists today ([`LocalOnly`], the default: one process needs
//! nothing else). Redis pub/sub and NATS implementations will sit beside it as `redis.rs` and
//! `nats.rs`, each with its test file, and subscribe with a callback into
//! [`crate::hub::Hub`]'s `deliver_to_*` methods. See `docs/design.md`.

use crate::hub::Delivery;
use crate::notify::Target;

/// Carries deliveries to other processes.
pub trait Backplane: Send + Sync + std::fmt::Debug + 'static {
    /// Forward a delivery that was already delivered locally. Must not block: an implementation
    /// queues the message for its own I/O task and counts anything it has to drop.
    fn publish(&self, target: &Target, delivery: &Delivery);
}

/// A single process: nothing to forward.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalOnly;

impl Backplane for LocalOnly {
    fn publish(&self, _target: &Target, _delivery: &Delivery) {}
}
