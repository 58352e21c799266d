//! Settings precedence: command-line flag, then environment variable (both handled by clap), then
//! the TOML file, then the defaults documented on [`switchboard::Config`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use switchboard::dialect::namespace::{NamespaceConfig, Relay};

/// Everything the binary needs: the library's config plus the binary's own keys.
pub struct Settings {
    pub core: switchboard::Config,
    /// Serve the demo chat app (walkers and the page at `/`). Config key `demo`, default true.
    pub demo: bool,
    /// The `[[namespace]]` tables: namespace endpoints at `/api/1/ws/<name>`. Without any, the
    /// shipped ones ([`default_namespaces`]); `namespace = []` serves none.
    pub namespaces: Vec<NamespaceConfig>,
}

/// The namespaces a config without `[[namespace]]` tables serves: `chat` (every message to
/// everyone), `cursors` (to everyone but the sender) and `admin` (users with the `admin` role;
/// messages go to the server's hooks only).
pub fn default_namespaces() -> Vec<NamespaceConfig> {
    let open = |name: &str, on_message| NamespaceConfig {
        on_message,
        ..NamespaceConfig::new(name)
    };
    vec![
        open("chat", Relay::Broadcast),
        open("cursors", Relay::BroadcastOthers),
        NamespaceConfig {
            require_roles: vec!["admin".to_string()],
            ..open("admin", Relay::None)
        },
    ]
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
    let namespaces = match table.remove("namespace") {
        None => default_namespaces(),
        Some(value) => value
            .try_into()
            .context("invalid [[namespace]] table (see config/switchboard.example.toml)")?,
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
    Ok(Settings {
        core,
        demo,
        namespaces,
    })
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
        assert_eq!(settings.namespaces, super::default_namespaces());
    }

    #[test]
    fn namespace_tables_replace_the_shipped_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("ns.toml");
        std::fs::write(
            &file,
            "[[namespace]]\nname = \"game\"\nrequire_roles = [\"player\"]\n\
             on_message = \"broadcast_others\"\nmessages_per_sec = 5\n",
        )
        .expect("write");
        let settings = super::load(Some(&file), None, None).expect("parses");
        assert_eq!(settings.namespaces.len(), 1);
        let game = &settings.namespaces[0];
        assert_eq!(game.name, "game");
        assert_eq!(game.on_message, super::Relay::BroadcastOthers);
        assert_eq!((game.messages_per_sec, game.max_message_bytes), (5, 65536));

        std::fs::write(&file, "namespace = []\n").expect("write");
        let none = super::load(Some(&file), None, None).expect("parses");
        assert!(none.namespaces.is_empty());

        std::fs::write(
            &file,
            "[[namespace]]\nname = \"x\"\non_message = \"shout\"\n",
        )
        .expect("write");
        assert!(super::load(Some(&file), None, None).is_err());
    }
}
