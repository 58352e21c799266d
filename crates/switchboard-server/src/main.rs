//! The `switchboard` binary: serves the hub with the demo app, and manages accounts.
//!
//! # Layout
//!
//! - `main.rs`: the command line (serve by default; `user` and `config` subcommands) and start-up.
//! - [`settings`]: turning flags, environment variables and the TOML file into a [`switchboard::Config`]
//!   and the `[[namespace]]` endpoints; [`config_file`]: reading that file so each mistake is
//!   reported with its file, line and key.
//! - [`logging`]: log format (text or JSON lines) and colour, on stderr.
//! - [`demo`]: the demo chat app: seed 000's walkers and the page at `/`.

mod config_file;
mod demo;
mod logging;
mod settings;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use switchboard::Switchboard;
use switchboard::dialect::namespace::{Namespace, NamespaceConfig};
use switchboard::tls::Tls;

/// Real-time messaging server: WebSockets, walkers, accounts.
#[derive(Parser, Debug)]
#[command(name = "switchboard", version)]
struct Cli {
    /// Address to listen on (default 127.0.0.1:8000).
    #[arg(long, env = "SWITCHBOARD_LISTEN", global = true)]
    listen: Option<std::net::SocketAddr>,
    /// Directory for the account database and token secret (default ./switchboard-data).
    #[arg(long, env = "SWITCHBOARD_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// TOML config file; see config/switchboard.example.toml for every key and default.
    #[arg(long, env = "SWITCHBOARD_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Serve a WebSocket echo endpoint at PATH (for the Autobahn conformance suite).
    #[arg(long, global = true)]
    echo_path: Option<String>,
    /// Join a cluster over this backplane: redis://HOST:PORT or nats://HOST:PORT.
    #[arg(long, env = "SWITCHBOARD_BACKPLANE", global = true)]
    backplane: Option<String>,
    /// This node's id in the cluster (default: random per start).
    #[arg(long, env = "SWITCHBOARD_NODE_ID", global = true)]
    node_id: Option<String>,
    /// Where accounts live (postgres://... for a cluster).
    #[arg(long, env = "SWITCHBOARD_DATABASE_URL", global = true)]
    database_url: Option<String>,
    /// The token signing secret; every node of a cluster must share it.
    #[arg(
        long,
        env = "SWITCHBOARD_TOKEN_SECRET",
        hide_env_values = true,
        global = true
    )]
    token_secret: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve (the default when no subcommand is given).
    Serve,
    /// Manage accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Check a config file, or print the default one.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Report every unknown key and bad value of FILE with its line; exit 1 if there is any.
    Check { file: PathBuf },
    /// Print the default config, every key documented (config/switchboard.example.toml).
    Default,
}

#[derive(Subcommand, Debug)]
enum UserCommand {
    /// Create an account, optionally with roles.
    Create {
        #[arg(long)]
        email: String,
        /// The password; prefer SWITCHBOARD_PASSWORD to keep it out of shell history.
        #[arg(long, env = "SWITCHBOARD_PASSWORD", hide_env_values = true)]
        password: String,
        /// A role to grant, e.g. `admin`; repeatable.
        #[arg(long = "role")]
        roles: Vec<String>,
        /// The name shown to other users (`[A-Za-z0-9_.-]{1,32}`); default: the email.
        #[arg(long)]
        username: Option<String>,
    },
    /// Grant a role to an existing account.
    Grant {
        #[arg(long)]
        email: String,
        #[arg(long)]
        role: String,
    },
    /// Revoke every token issued so far to an account.
    Revoke {
        #[arg(long)]
        email: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    logging::init()?;
    let cli = Cli::parse();
    // `None`: serve. The config commands need no loaded config and no data directory.
    let user_command = match cli.command.unwrap_or(Command::Serve) {
        Command::Config(command) => return config_command(command),
        Command::Serve => None,
        Command::User(command) => Some(command),
    };
    let mut config = settings::load(cli.config.as_deref(), cli.listen, cli.data_dir)?;
    if let Some(path) = cli.echo_path {
        config.core.echo_path = Some(path);
    }
    if let Some(url) = cli.backplane {
        config.core.cluster.backplane = Some(url);
    }
    if let Some(node_id) = cli.node_id {
        config.core.cluster.node_id = node_id;
    }
    if let Some(url) = cli.database_url {
        config.core.database_url = Some(url);
    }
    if let Some(secret) = cli.token_secret {
        config.core.auth.token_secret = Some(secret);
    }
    match user_command {
        None => serve(config.core, config.demo, &config.namespaces).await,
        Some(command) => manage_user(config.core, command).await,
    }
}

/// `config check` and `config default`: no server, no data directory.
fn config_command(command: ConfigCommand) -> anyhow::Result<()> {
    match command {
        ConfigCommand::Default => print!("{}", settings::DEFAULT_CONFIG),
        ConfigCommand::Check { file } => {
            let settings = match settings::load(Some(&file), None, None) {
                Ok(settings) => settings,
                Err(errors) => {
                    eprintln!("{errors}");
                    std::process::exit(1);
                }
            };
            if let Err(err) = Tls::from_config(&settings.core.tls) {
                eprintln!("{}: {err}", file.display());
                std::process::exit(1);
            }
            println!("ok");
        }
    }
    Ok(())
}

async fn serve(
    config: switchboard::Config,
    demo: bool,
    namespaces: &[NamespaceConfig],
) -> anyhow::Result<()> {
    let listen = config.listen;
    // Before anything else starts: a missing or bad certificate is a start error.
    let tls = Tls::from_config(&config.tls)?;
    let mut builder = Switchboard::builder(config);
    if demo {
        builder = demo::walkers(builder);
    }
    for namespace in namespaces {
        builder
            .namespace(Namespace::from_config(namespace))
            .context("in [[namespace]]")?;
    }
    let app = builder.build().await.context("starting switchboard")?;
    let mut router = switchboard::http::router(app.clone());
    if demo {
        router = demo::pages().merge(router);
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let bound = listener.local_addr()?;
    // Signals are handled from here on: a SIGTERM sent as soon as the line below appears shuts
    // down gracefully instead of killing the process, and a SIGHUP reloads the certificate.
    let stop = switchboard::shutdown::signal();
    if let Some(tls) = &tls {
        tls.reload_on_sighup();
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    // Tests and scripts read this line to learn the port when listening on port 0.
    println!("switchboard listening on {scheme}://{bound}");
    tracing::info!(%bound, tls = tls.is_some(), data_dir = %app.config().data_dir.display(), demo, node_id = app.node_id(), "serving");
    match tls {
        Some(tls) => switchboard::serve_tls(app, router, listener, tls, stop).await?,
        None => switchboard::serve(app, router, listener, stop).await?,
    }
    tracing::info!("stopped");
    Ok(())
}

async fn manage_user(config: switchboard::Config, command: UserCommand) -> anyhow::Result<()> {
    let app = Switchboard::builder(config).build().await?;
    // In a cluster, running nodes apply a grant or revocation to their live connections once
    // told over the backplane.
    let wait = std::time::Duration::from_secs(5);
    if !app.backplane_ready(wait).await {
        eprintln!("warning: backplane unreachable; running servers apply this at their next check");
    }
    let accounts = app.accounts();
    match command {
        UserCommand::Create {
            email,
            password,
            roles,
            username,
        } => {
            let user = accounts
                .register_named(&email, &password, username.as_deref(), roles)
                .await?;
            println!(
                "created {} (username {}, id {}, root_id n::{}, roles [{}])",
                user.email,
                user.username.as_deref().unwrap_or(&user.email),
                user.id,
                user.root_id,
                user.roles.join(", ")
            );
        }
        UserCommand::Grant { email, role } => {
            app.grant_role(&email, &role).await?;
            println!("granted {role} to {email}");
        }
        UserCommand::Revoke { email } => {
            let user = accounts
                .user_by_email(&email)
                .await?
                .context("no such account")?;
            app.revoke_user_tokens(&user.id).await?;
            println!("revoked every token of {email}");
        }
    }
    if !app.backplane_flushed(wait).await {
        eprintln!("warning: running servers may not have been told");
    }
    Ok(())
}
