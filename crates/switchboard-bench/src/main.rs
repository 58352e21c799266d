//! `switchboard-bench`: the load generator for Switchboard and the servers people would pick
//! instead. Each scenario prints one table row and writes a JSON record; `report` turns a
//! directory of records into BENCHMARKS.md with charts.
//!
//! ```text
//! switchboard-bench idle    --addr 127.0.0.1:8000 --server-pid PID --connections 10000
//! switchboard-bench connect --connections 10000
//! switchboard-bench fanout  --subscribers 1000 [--rate 100 | --window 4]
//! switchboard-bench rooms   --rooms 100 --per-room 10 --rate 10
//! switchboard-bench rpc     --clients 50 --duration 10
//! switchboard-bench channel --subscribers 1000 [--rate 100 | --window 4]
//! switchboard-bench presence --members 1000 --server-pid PID
//! switchboard-bench namespace --subscribers 1000 --namespace bench [--rate 100 | --window 4]
//! switchboard-bench publish --subscribers 1000 --batch 100 --api-key KEY (Pusher: --protocol pusher)
//! switchboard-bench cluster --addr NODE1 --peers NODE2,NODE3 --server-pid P1 --peer-pids P2,P3 \
//!                           --backplane redis --backplane-pid PID --subscribers 1000 --rate 50
//! switchboard-bench report  --results bench/run/results --out BENCHMARKS.md --charts bench/charts
//! ```
//! The generator runs on one thread: pin it to one core with `taskset`.
//!
//! # Layout
//!
//! - `scenario`: the [`scenario::Scenario`] enum (one subcommand per scenario) and one file per
//!   scenario (`idle`, `connect`, `fanout`, `rooms`, `rpc`, `channel`, `presence`, `namespace`,
//!   `publish`, `cluster`), with the client, publisher and
//!   measurement helpers they share.
//! - `proto`: the wire protocols (Jac dialect, channel dialect, Pusher, Socket.IO, bare `ws`): how to open a usable
//!   connection and publish in each.
//! - `ws`: a deliberately small WebSocket client (raw upgrade, in-place frame parsing).
//! - `procinfo`: /proc readers for memory, CPU time, kernel socket memory and the machine.
//! - `report`: records to BENCHMARKS.md tables and SVG charts.

mod procinfo;
mod proto;
mod report;
mod scenario;
mod ws;

use clap::{Parser, Subcommand};

use scenario::Scenario;

#[derive(Parser)]
#[command(
    name = "switchboard-bench",
    about = "Load generator and side-by-side benchmarks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Scenario(Box<Scenario>),
    /// Summarise a directory of JSON records into a Markdown report with SVG charts.
    Report(report::ReportArgs),
}

fn main() -> anyhow::Result<()> {
    let scenario = match Cli::parse().command {
        Command::Report(args) => return report::run(&args),
        Command::Scenario(scenario) => scenario,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, scenario.run())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{Cli, Command};

    /// The record's `scenario` field and the printed line use `Scenario::name`; run.sh and the
    /// report use the subcommand. They must be the same word.
    #[test]
    fn scenario_name_is_its_subcommand() {
        for name in [
            "idle",
            "connect",
            "fanout",
            "rooms",
            "rpc",
            "channel",
            "presence",
            "namespace",
            "publish",
            "cluster",
        ] {
            let cli = Cli::try_parse_from(["switchboard-bench", name]).expect("parses");
            let Command::Scenario(scenario) = cli.command else {
                panic!("{name} is not a scenario");
            };
            assert_eq!(scenario.name(), name);
        }
    }
}
