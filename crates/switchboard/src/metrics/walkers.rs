//! Walker calls and their durations, labelled by walker and outcome. The label sets are built at
//! start for the registered walkers only: a client may send any walker name, and an unknown one
//! must not add a series (it is counted in `switchboard_unknown_walker_calls_total`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;

use super::reasons::WalkerOutcome;

/// Upper bounds of the duration histogram's buckets, in seconds: from a walker answering in
/// memory (under a millisecond) to an upstream at its timeout (default 10 s).
const DURATION_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct WalkerLabels {
    walker: String,
    outcome: &'static str,
}

pub(super) type DurationFamily = Family<WalkerLabels, Histogram, fn() -> Histogram>;

pub(super) fn duration_family() -> DurationFamily {
    Family::new_with_constructor(|| Histogram::new(DURATION_BUCKETS))
}

/// One registered walker's series, resolved once.
#[derive(Debug)]
pub struct WalkerMetrics {
    /// Calls by outcome, indexed by [`WalkerOutcome`].
    calls: Vec<Counter>,
    /// Durations of the calls that ran: `ok` then `error`.
    durations: [Histogram; 2],
}

impl WalkerMetrics {
    /// A call that did not run (see [`WalkerOutcome::Refused`]).
    pub fn refused(&self) {
        self.calls[WalkerOutcome::Refused as usize].inc();
    }

    /// A call whose body ran for `elapsed`, successfully or not.
    pub fn finished(&self, ok: bool, elapsed: Duration) {
        let outcome = if ok {
            WalkerOutcome::Ok
        } else {
            WalkerOutcome::Error
        };
        self.calls[outcome as usize].inc();
        self.durations[usize::from(!ok)].observe(elapsed.as_secs_f64());
    }

    /// Calls so far that ended with `outcome`.
    pub fn calls(&self, outcome: WalkerOutcome) -> u64 {
        self.calls[outcome as usize].get()
    }
}

/// The series of every walker in `names`, taken from the two families.
pub(super) fn resolve<'a>(
    names: impl IntoIterator<Item = &'a str>,
    calls: &Family<WalkerLabels, Counter>,
    durations: &DurationFamily,
) -> HashMap<Arc<str>, WalkerMetrics> {
    names
        .into_iter()
        .map(|name| {
            let labels = |outcome: WalkerOutcome| WalkerLabels {
                walker: name.to_string(),
                outcome: outcome.label(),
            };
            let metrics = WalkerMetrics {
                calls: WalkerOutcome::ALL
                    .iter()
                    .map(|&outcome| calls.get_or_create_owned(&labels(outcome)))
                    .collect(),
                durations: [WalkerOutcome::Ok, WalkerOutcome::Error]
                    .map(|outcome| durations.get_or_create_owned(&labels(outcome))),
            };
            (Arc::from(name), metrics)
        })
        .collect()
}
