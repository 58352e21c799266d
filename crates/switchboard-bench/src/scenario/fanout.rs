//! `fanout`: S subscribers on one channel, one publisher: the `rooms` scenario with one room, kept
//! as its own command because it is the headline fan-out measurement.

use clap::Args;
use serde_json::{Value, json};

use super::publisher::PublishArgs;
use super::rooms::run_rooms;
use super::{Common, Env, Metrics};

/// Headline metrics: the same as `rooms`.
pub const METRIC_KEYS: &[&str] = super::rooms::METRIC_KEYS;

#[derive(Args, Clone)]
pub struct FanoutArgs {
    #[command(flatten)]
    pub common: Common,
    #[arg(long, default_value_t = 1000)]
    pub subscribers: usize,
    #[command(flatten)]
    pub publishing: PublishArgs,
}

impl FanoutArgs {
    pub fn params(&self) -> Value {
        let mut p = self.publishing.params();
        p["subscribers"] = json!(self.subscribers);
        p
    }
}

pub async fn run(env: &Env, args: &FanoutArgs) -> anyhow::Result<Metrics> {
    run_rooms(env, 1, args.subscribers, &args.publishing.publishing()).await
}
