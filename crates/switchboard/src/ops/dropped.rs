//! Why a message was dropped, and counts of drops by reason. Kept per namespace and for the
//! whole node: an operator looking at a quiet namespace can tell "nobody talks" from "everything
//! they send is refused".

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// The kinds of drop the stats' `dropped` reports, as seed 003 names them (the Prometheus
/// `reason` label is [`crate::metrics::DropReason`], a different cut).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropKind {
    /// A client message over the size limit.
    Oversize,
    /// A client message over a rate limit.
    RateLimit,
    /// A client message that is not a valid frame of its dialect (bad JSON, unknown command).
    Invalid,
    /// Frames thrown away from the queue of a connection that did not read fast enough.
    SlowConsumer,
}

impl DropKind {
    /// The reason's key in `dropped` (and the `reason` of a namespace's rejected log entries).
    pub fn name(self) -> &'static str {
        match self {
            DropKind::Oversize => "oversize",
            DropKind::RateLimit => "rateLimit",
            DropKind::Invalid => "invalid",
            DropKind::SlowConsumer => "slowConsumer",
        }
    }

    /// The reason a client message refused with error `code` counts under: the rate limit's own
    /// code, or else an invalid message.
    pub fn for_error_code(code: &str) -> Self {
        if code == crate::error_code::RATE_LIMITED {
            DropKind::RateLimit
        } else {
            DropKind::Invalid
        }
    }
}

/// Drop counters by reason; relaxed atomics, cheap to bump from any session.
#[derive(Debug, Default)]
pub struct DropCounters {
    oversize: AtomicU64,
    rate_limit: AtomicU64,
    invalid: AtomicU64,
    slow_consumer: AtomicU64,
}

impl DropCounters {
    pub fn add(&self, reason: DropKind, n: u64) {
        let counter = match reason {
            DropKind::Oversize => &self.oversize,
            DropKind::RateLimit => &self.rate_limit,
            DropKind::Invalid => &self.invalid,
            DropKind::SlowConsumer => &self.slow_consumer,
        };
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Dropped {
        Dropped {
            oversize: self.oversize.load(Ordering::Relaxed),
            rate_limit: self.rate_limit.load(Ordering::Relaxed),
            invalid: self.invalid.load(Ordering::Relaxed),
            slow_consumer: self.slow_consumer.load(Ordering::Relaxed),
        }
    }
}

/// Drops by reason at one moment, as the stats API shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dropped {
    pub oversize: u64,
    pub rate_limit: u64,
    pub invalid: u64,
    pub slow_consumer: u64,
}

impl Dropped {
    pub fn total(&self) -> u64 {
        self.oversize + self.rate_limit + self.invalid + self.slow_consumer
    }
}

impl std::ops::AddAssign for Dropped {
    /// Another node's drops.
    fn add_assign(&mut self, other: Self) {
        self.oversize += other.oversize;
        self.rate_limit += other.rate_limit;
        self.invalid += other.invalid;
        self.slow_consumer += other.slow_consumer;
    }
}
