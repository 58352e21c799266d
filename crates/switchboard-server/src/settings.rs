//! Settings precedence: command-line flag, then environment variable (both handled by clap), then
//! the TOML file, then the defaults documented on [`switchboard::Config`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use switchboard::dialect::namespace::{NamespaceConfig, Relay};

use crate::config_file::{ConfigErrors, ConfigFile};

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

/// The documented defaults, as a config file: `switchboard config default` prints it, and a test
/// checks that it reads as exactly the defaults.
pub const DEFAULT_CONFIG: &str = include_str!("../../../config/switchboard.example.toml");

pub fn load(
    file: Option<&Path>,
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
) -> Result<Settings, ConfigErrors> {
    let mut settings = match file {
        Some(path) => from_file(ConfigFile::read(path)?)?,
        None => Settings {
            core: switchboard::Config::default(),
            demo: true,
            namespaces: default_namespaces(),
        },
    };
    if let Some(listen) = listen {
        settings.core.listen = listen;
    }
    if let Some(dir) = data_dir {
        settings.core.data_dir = dir;
    }
    Ok(settings)
}

/// The settings of a parsed config file, or every mistake in it.
pub fn from_file(mut file: ConfigFile) -> Result<Settings, ConfigErrors> {
    let mut errors = Vec::new();
    let demo = file.take::<bool>("demo", &mut errors);
    let namespaces = file.take::<Vec<NamespaceConfig>>("namespace", &mut errors);
    let core = file.rest::<switchboard::Config>(&mut errors);
    match core {
        Some(core) if errors.is_empty() => Ok(Settings {
            core,
            demo: demo.unwrap_or(true),
            namespaces: namespaces.unwrap_or_else(default_namespaces),
        }),
        _ => {
            errors.sort_by_key(|error| error.line);
            Err(ConfigErrors(errors))
        }
    }
}

#[cfg(test)]
mod tests {
    /// The example file (printed by `config default`) documents every default; it must parse
    /// and say nothing else.
    #[test]
    fn the_example_config_is_exactly_the_defaults() {
        let file = super::ConfigFile::parse(
            std::path::Path::new("default.toml"),
            super::DEFAULT_CONFIG.to_string(),
        )
        .expect("the default config is valid TOML");
        let settings = super::from_file(file).expect("the default config parses");
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
