//! `channel`: S members of one channel in Switchboard's channel dialect (`/ws/<channel>`), one
//! member publishing: the `fanout` measurement through the channel dialect, so the two sit side by
//! side (same generator, same room shape, same payload; only the frames differ).

use clap::Args;
use serde_json::Value;

use super::fanout::FanoutArgs;
use super::rooms::run_rooms;
use super::{Env, Metrics};

/// Headline metrics: the same as `fanout`.
pub const METRIC_KEYS: &[&str] = super::rooms::METRIC_KEYS;

#[derive(Args, Clone)]
pub struct ChannelArgs {
    #[command(flatten)]
    pub fanout: FanoutArgs,
}

impl ChannelArgs {
    pub fn params(&self) -> Value {
        self.fanout.params()
    }
}

/// Runs with the channel protocol whatever `--protocol` says (see `Scenario::protocol`).
pub async fn run(env: &Env, args: &ChannelArgs) -> anyhow::Result<Metrics> {
    let fanout = &args.fanout;
    run_rooms(env, 1, fanout.subscribers, &fanout.publishing.publishing()).await
}
