//! `namespace`: S clients of one Switchboard namespace and one publisher in it: `fanout` over the
//! namespace dialect (envelopes stamped with the sender, `/api/1/ws/<name>`), with the same
//! publisher, pacing and measurements, so the two tables compare the cost of the envelope.
//!
//! The server must serve the namespace with `on_message = "broadcast_others"` and no namespace
//! rate limit (`messages_per_sec = 0`): `bench/configs/switchboard.toml` declares `bench`.

use clap::Args;
use serde_json::{Value, json};

use super::publisher::PublishArgs;
use super::rooms::run_named_rooms;
use super::{Common, Env, Metrics};

/// Headline metrics: the same as `fanout`.
pub const METRIC_KEYS: &[&str] = super::rooms::METRIC_KEYS;

#[derive(Args, Clone)]
pub struct NamespaceArgs {
    #[command(flatten)]
    pub common: Common,
    #[arg(long, default_value_t = 1000)]
    pub subscribers: usize,
    /// The namespace, served at `/api/1/ws/<name>`.
    #[arg(long, default_value = "bench")]
    pub namespace: String,
    #[command(flatten)]
    pub publishing: PublishArgs,
}

impl NamespaceArgs {
    pub fn params(&self) -> Value {
        let mut p = self.publishing.params();
        p["subscribers"] = json!(self.subscribers);
        p
    }
}

pub async fn run(env: &Env, args: &NamespaceArgs) -> anyhow::Result<Metrics> {
    run_named_rooms(
        env,
        vec![args.namespace.clone()],
        args.subscribers,
        &args.publishing.publishing(),
    )
    .await
}
