//! Whether this node should be sent new clients: not while it starts, nor once it begins to
//! stop. A load balancer reads it at `GET /ready`; [`crate::serve`] moves it along.

use std::sync::atomic::{AtomicU8, Ordering};

/// Where the node is in its life, as a load balancer needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Built, but the accept loop has not started.
    Starting,
    /// Accepting and serving.
    Serving,
    /// A shutdown began: still serving during `shutdown.ready_grace_ms`, then draining.
    Stopping,
}

impl Stage {
    /// How `GET /ready` names it.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Starting => "starting",
            Stage::Serving => "ready",
            Stage::Stopping => "stopping",
        }
    }
}

/// The node's [`Stage`], shared by the accept loop and the probe.
#[derive(Debug, Default)]
pub struct Readiness(AtomicU8);

impl Readiness {
    pub fn stage(&self) -> Stage {
        match self.0.load(Ordering::Acquire) {
            0 => Stage::Starting,
            1 => Stage::Serving,
            _ => Stage::Stopping,
        }
    }

    /// The accept loop runs.
    pub fn serving(&self) {
        // A node that already began stopping stays stopping.
        let _ = self
            .0
            .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire);
    }

    /// A shutdown began.
    pub fn stopping(&self) {
        self.0.store(2, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_only_move_forward() {
        let readiness = Readiness::default();
        assert_eq!(readiness.stage(), Stage::Starting);
        readiness.serving();
        assert_eq!(readiness.stage(), Stage::Serving);
        readiness.stopping();
        readiness.serving();
        assert_eq!(readiness.stage(), Stage::Stopping);
    }
}
