//! `publish`: S subscribers on one channel, fed by a backend through the server's HTTP publish
//! API: Switchboard's `POST /api/publish` (with `--api-key`) or Sockudo's signed Pusher events
//! API (`--protocol pusher`). It answers the question a team with a Python or Node backend asks:
//! how many items per second can my backend push to a channel, one per request or a batch per
//! request, and do all of them arrive?
//!
//! The publisher keeps at most `--http-conns` requests in flight over keep-alive connections and,
//! like flat-out `fanout`, at most `--window` items per subscriber not yet delivered, so the
//! figure is what the server delivers, not what it merely accepted into queues.

use clap::Args;
use serde_json::{Value, json};

use super::publisher::PublishArgs;
use super::rooms::run_rooms;
use super::{Common, Env, Metrics};

/// Headline metrics, in the order of the printed line.
pub const METRIC_KEYS: &[&str] = &[
    "connections_ok",
    "messages_sent",
    "messages_per_sec",
    "requests_per_sec",
    "deliveries_per_sec",
    "lost",
    "publish_errors",
    "p50_ms",
    "p99_ms",
    "server_cpu_ns_per_delivery",
    "server_core_busy",
    "generator_core_busy",
];

#[derive(Args, Clone)]
pub struct PublishApiArgs {
    #[command(flatten)]
    pub common: Common,
    #[arg(long, default_value_t = 1000)]
    pub subscribers: usize,
    /// Items per HTTP request: 1 publishes one item per request, more sends the API's batch form.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    #[command(flatten)]
    pub publishing: PublishArgs,
}

impl PublishApiArgs {
    pub fn params(&self) -> Value {
        let mut p = self.publishing.params();
        p["subscribers"] = json!(self.subscribers);
        p["batch"] = json!(self.batch);
        p["http_conns"] = json!(self.publishing.http_conns);
        p["window"] = json!(self.window());
        p
    }

    /// The flat-out window, widened so that every HTTP connection can carry a whole batch.
    fn window(&self) -> u64 {
        let whole_batches = (self.batch.max(1) * self.publishing.http_conns.max(1)) as u64;
        self.publishing.window.max(whole_batches)
    }
}

pub async fn run(env: &Env, args: &PublishApiArgs) -> anyhow::Result<Metrics> {
    anyhow::ensure!(
        args.batch >= 1,
        "--batch must be at least 1 (items per request)"
    );
    anyhow::ensure!(
        env.target
            .http_publish_request("probe", &[String::new()])
            .is_some(),
        "publish needs an HTTP publish API: --api-key KEY for Switchboard, --protocol pusher for Sockudo"
    );
    let mut publishing = args.publishing.publishing();
    publishing.over_http = true;
    publishing.batch = args.batch;
    if let super::publisher::Pace::FlatOut { window } = &mut publishing.pace {
        *window = args.window();
    }
    let mut m = run_rooms(env, 1, args.subscribers, &publishing).await?;
    let items = m["messages_per_sec"].as_f64().unwrap_or(0.0);
    m.insert(
        "requests_per_sec".into(),
        json!(super::measure::round3(items / args.batch as f64)),
    );
    Ok(m)
}
