//! The one walker call path, for a `walker` event on a WebSocket and for `POST|GET /walker/<name>`:
//! refuse while draining, find the walker and check the caller may call it on this method, take an
//! in-flight permit (per connection), then run the body, which validates the context first and
//! turns a panic into an internal error.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use futures_util::FutureExt;
use serde_json::value::RawValue;

use super::{InvokeError, Method, Reports, Walker, WalkerError};
use crate::app::Switchboard;
use crate::hub::{Connection, WalkerPermit};
use crate::identity::Identity;
use crate::notify::Notifier;

/// A call that passed every check and holds its permit; run it with [`Admitted::run`].
#[derive(Debug)]
pub struct Admitted {
    app: Switchboard,
    walker: Arc<Walker>,
    caller: Identity,
    origin: Option<Arc<Connection>>,
    _permit: Option<WalkerPermit>,
}

/// Check a call of walker `name` on `method` by `caller`, from connection `origin` (WebSocket) or
/// none (REST). Every refusal is counted as a client error.
pub fn admit(
    app: &Switchboard,
    name: &str,
    method: Method,
    caller: Identity,
    origin: Option<&Arc<Connection>>,
) -> Result<Admitted, InvokeError> {
    let refused = |err: InvokeError| {
        let metrics = app.metrics();
        metrics.client_errors.inc();
        metrics.walker_refused(name);
        err
    };
    if app.is_draining() {
        return Err(refused(InvokeError::ShuttingDown));
    }
    let walker = app
        .shared
        .walkers
        .resolve(name, method, &caller)
        .map_err(refused)?
        .clone();
    let permit = match origin {
        Some(conn) => {
            let limit = app.config().limits.max_inflight_walkers;
            Some(
                conn.try_start_walker(limit)
                    .ok_or_else(|| refused(InvokeError::TooManyInflight(limit)))?,
            )
        }
        None => None,
    };
    Ok(Admitted {
        app: app.clone(),
        walker,
        caller,
        origin: origin.cloned(),
        _permit: permit,
    })
}

impl Admitted {
    /// The body's run with `context`: validates the context, then runs the body; a panic becomes
    /// an internal error. The permit is held until it ends. The caller spawns it on
    /// `walker_runs`, so graceful shutdown waits for it.
    pub fn run(
        self,
        context: &RawValue,
    ) -> impl Future<Output = Result<Reports, InvokeError>> + Send + 'static {
        let metrics = self.app.metrics().clone();
        let notifier = Notifier::new(self.app.shared.publisher.clone(), self.origin.clone());
        let body = self.walker.run(context, self.caller.clone(), notifier);
        async move {
            let started = Instant::now();
            let result = AssertUnwindSafe(body)
                .catch_unwind()
                .await
                .unwrap_or_else(|_| {
                    Err(InvokeError::Failed(WalkerError::internal(
                        "walker panicked",
                    )))
                });
            if let Some(walker) = metrics.walker(self.walker.name()) {
                walker.finished(result.is_ok(), started.elapsed());
            }
            drop(self);
            result
        }
    }
}
