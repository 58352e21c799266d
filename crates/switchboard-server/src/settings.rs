//! Settings precedence: command-line flag, then environment variable (both handled by clap), then
//! the TOML file, then the defaults documented on [`switchboard::Config`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// Everything the binary needs: the library's config plus the binary's own keys.
pub struct Settings {
    pub core: switchboard::Config,
    /// Serve the demo chat app (walkers and the page at `/`). Config key `demo`, default true.
    pub demo: bool,
}

pub fn load(
    file: Option<&Path>,
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
) -> anyhow::Result<Settings> {
    let mut table = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading config file {}", path.display()))?;
            text.parse::<toml::Table>()
                .with_context(|| format!("parsing config file {}", path.display()))?
        }
        None => toml::Table::new(),
    };
    let demo = match table.remove("demo") {
        None => true,
        Some(toml::Value::Boolean(demo)) => demo,
        Some(other) => anyhow::bail!("config key `demo` must be true or false, not {other}"),
    };
    let mut core: switchboard::Config = table
        .try_into()
        .context("invalid config file (see config/switchboard.example.toml)")?;
    if let Some(listen) = listen {
        core.listen = listen;
    }
    if let Some(dir) = data_dir {
        core.data_dir = dir;
    }
    Ok(Settings { core, demo })
}

#[cfg(test)]
mod tests {
    /// The example file documents every default; it must parse and say nothing else.
    #[test]
    fn the_example_config_is_exactly_the_defaults() {
        let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../config/switchboard.example.toml");
        let settings = super::load(Some(&example), None, None).expect("example parses");
        assert_eq!(
            format!("{:?}", settings.core),
            format!("{:?}", switchboard::Config::default())
        );
        assert!(settings.demo);
    }
}
