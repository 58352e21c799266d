//! Where logs go and in what shape: stderr, human-readable text by default or one JSON object
//! per line for log collectors, with colour only when a person is watching a terminal.
//!
//! `SWITCHBOARD_LOG` filters (`info` by default; `debug`, `switchboard=debug,warn`, ...), and
//! `SWITCHBOARD_LOG_FORMAT` picks `text` (default) or `json`.

use std::io::IsTerminal;

use anyhow::bail;
use tracing_subscriber::EnvFilter;

/// Install the global subscriber. Fails on an unknown `SWITCHBOARD_LOG_FORMAT`, so a typo
/// cannot silently send text to a collector that expects JSON.
pub fn init() -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_env("SWITCHBOARD_LOG").unwrap_or_else(|_| "info".into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match std::env::var("SWITCHBOARD_LOG_FORMAT").as_deref() {
        Ok("json") => logs.json().with_ansi(false).init(),
        Ok("text") | Ok("") | Err(std::env::VarError::NotPresent) => {
            // Escape codes in a file or a journal are noise: colour only for a terminal.
            logs.with_ansi(std::io::stderr().is_terminal()).init()
        }
        Ok(other) => bail!("SWITCHBOARD_LOG_FORMAT must be `text` or `json`, not `{other}`"),
        Err(std::env::VarError::NotUnicode(_)) => {
            bail!("SWITCHBOARD_LOG_FORMAT must be `text` or `json`")
        }
    }
    Ok(())
}
