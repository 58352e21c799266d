//! Several nodes sharing a backplane (Redis or NATS) and a PostgreSQL schema, for cross-node tests.
//!
//! - [`Backplane::shared`]: the running service (`REDIS_URL`, `NATS_URL`); each [`Cluster`] gets a
//!   random cluster name, so parallel tests and runs never hear each other.
//! - [`Backplane::own`]: a `redis-server` / `nats-server` of the test's own on a free port, which
//!   the test may kill and restart (by its own pid).
//!
//! A missing service or binary skips the test with a message, or fails it when
//! `SWITCHBOARD_REQUIRE_SERVICES=1`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::Connection;
use switchboard_client::{ClientError, Incoming, JacClient, http};

use super::TestServer;
pub use super::skip::skip;

/// Which engine carries the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Redis,
    Nats,
}

/// A backplane server: the shared service, or one of the test's own.
pub struct Backplane {
    pub engine: Engine,
    pub url: String,
    port: u16,
    own: Option<Child>,
}

impl Backplane {
    /// The running service, if it answers.
    pub async fn shared(engine: Engine) -> Option<Self> {
        let (var, default) = match engine {
            Engine::Redis => ("REDIS_URL", "redis://127.0.0.1:6379"),
            Engine::Nats => ("NATS_URL", "nats://127.0.0.1:4222"),
        };
        let url = std::env::var(var).unwrap_or_else(|_| default.to_string());
        let port = url
            .rsplit(':')
            .next()
            .and_then(|p| p.trim_end_matches('/').parse().ok())
            .unwrap_or(0);
        let backplane = Self {
            engine,
            url,
            port,
            own: None,
        };
        if backplane.accepts().await {
            Some(backplane)
        } else {
            skip(&format!("{engine:?} at {} unreachable", backplane.url));
            None
        }
    }

    /// A server of this test's own on a free port.
    pub async fn own(engine: Engine) -> Option<Self> {
        let binary = match engine {
            Engine::Redis => "redis-server",
            Engine::Nats => "nats-server",
        };
        if Command::new(binary)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_err()
        {
            skip(&format!("{binary} not installed"));
            return None;
        }
        let port = free_port();
        let scheme = match engine {
            Engine::Redis => "redis",
            Engine::Nats => "nats",
        };
        let mut backplane = Self {
            engine,
            url: format!("{scheme}://127.0.0.1:{port}"),
            port,
            own: None,
        };
        backplane.start().await;
        Some(backplane)
    }

    /// Start the own server and wait until it accepts connections.
    pub async fn start(&mut self) {
        let port = self.port.to_string();
        let child = match self.engine {
            Engine::Redis => Command::new("redis-server")
                .args([
                    "--port",
                    &port,
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn(),
            Engine::Nats => Command::new("nats-server")
                .args(["-a", "127.0.0.1", "-p", &port])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn(),
        }
        .expect("start the backplane server");
        self.own = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.accepts().await {
            assert!(Instant::now() < deadline, "backplane server did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL the own server and reap it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.own.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOP / SIGCONT the own server: a backplane that hangs instead of failing.
    pub fn signal(&self, signal: &str) {
        let pid = self.own.as_ref().expect("an own server").id().to_string();
        let status = Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    async fn accepts(&self) -> bool {
        tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_ok()
    }
}

impl Drop for Backplane {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A PostgreSQL schema of this cluster's own; dropped by [`Schema::drop_now`].
pub struct Schema {
    base_url: String,
    name: String,
}

impl Schema {
    pub async fn create() -> Option<Schema> {
        let base_url = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let mut conn = match sqlx::PgConnection::connect(&base_url).await {
            Ok(conn) => conn,
            Err(err) => {
                skip(&format!("PostgreSQL at {base_url} unreachable: {err}"));
                return None;
            }
        };
        let name = format!("sb_cluster_{}", switchboard::ids::new_object_id());
        sqlx::query(&format!("CREATE SCHEMA {name}"))
            .execute(&mut conn)
            .await
            .expect("create schema");
        Some(Schema { base_url, name })
    }

    pub fn url(&self) -> String {
        let separator = if self.base_url.contains('?') {
            '&'
        } else {
            '?'
        };
        format!(
            "{}{separator}options[search_path]={}",
            self.base_url, self.name
        )
    }

    pub async fn drop_now(&self) {
        if let Ok(mut conn) = sqlx::PgConnection::connect(&self.base_url).await {
            let _ = sqlx::query(&format!("DROP SCHEMA {} CASCADE", self.name))
                .execute(&mut conn)
                .await;
        }
    }
}

/// The token secret every node of a test cluster shares.
pub const SECRET: &str = "a secret every node shares";

/// N in-process nodes sharing a backplane, a schema and a token secret.
pub struct Cluster {
    pub nodes: Vec<TestServer>,
    schema: Schema,
    /// The cluster's name on the backplane.
    pub name: String,
}

impl Cluster {
    /// Start `n` nodes on `backplane` and wait until every one reports its link up.
    /// `n` nodes over the running `engine` service; the backplane handle must outlive them.
    /// `None` (the test is skipped, or fails when services are required) when it is unreachable.
    pub async fn on_shared(engine: Engine, n: usize) -> Option<(Backplane, Cluster)> {
        let backplane = Backplane::shared(engine).await?;
        let cluster = Cluster::start(&backplane, n).await?;
        Some((backplane, cluster))
    }

    pub async fn start(backplane: &Backplane, n: usize) -> Option<Cluster> {
        Self::start_built(backplane, n, |_, _| {}, |_, builder| builder).await
    }

    /// Start `n` nodes as [`Cluster::start`] does, each also given `tweak(index, config)` (after
    /// the cluster's own settings) and `build(index, builder)` (namespaces, channel rules).
    pub async fn start_built(
        backplane: &Backplane,
        n: usize,
        tweak: impl Fn(usize, &mut switchboard::Config),
        build: impl Fn(usize, switchboard::SwitchboardBuilder) -> switchboard::SwitchboardBuilder,
    ) -> Option<Cluster> {
        let schema = Schema::create().await?;
        let name = format!("sbtest-{}", switchboard::ids::new_object_id());
        let mut nodes = Vec::new();
        for index in 0..n {
            let url = schema.url();
            let backplane = backplane.url.clone();
            let name = name.clone();
            let tweak = &tweak;
            let build = &build;
            nodes.push(
                TestServer::start_built(
                    move |config| {
                        config.database_url = Some(url);
                        config.auth.token_secret = Some(SECRET.into());
                        config.cluster.backplane = Some(backplane);
                        config.cluster.name = name;
                        config.cluster.node_id = format!("node-{index}");
                        tweak(index, config);
                    },
                    |builder| build(index, builder),
                )
                .await,
            );
        }
        let cluster = Cluster {
            nodes,
            schema,
            name,
        };
        cluster.wait_health(200, Duration::from_secs(10)).await;
        Some(cluster)
    }

    /// Wait until every node's `GET /health` answers `status`; panics after `within`.
    pub async fn wait_health(&self, status: u16, within: Duration) {
        let deadline = Instant::now() + within;
        for node in &self.nodes {
            loop {
                let (got, _) = health(node).await;
                if got == status {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "node {} health stayed {got}, wanted {status} within {within:?}",
                    node.app.node_id()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// One more node of this cluster as a separate `switchboard` process (`SWITCHBOARD_BIN`,
    /// default target/debug/switchboard), so a test can SIGKILL it. `None` (skipped) when the
    /// binary is missing.
    pub async fn spawn_process(&self, backplane: &Backplane, node_id: &str) -> Option<ProcessNode> {
        let binary = std::env::var("SWITCHBOARD_BIN").unwrap_or_else(|_| {
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../target/debug/switchboard"
            )
            .to_string()
        });
        if !std::path::Path::new(&binary).exists() {
            skip(&format!(
                "{binary} missing (cargo build -p switchboard-server)"
            ));
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("switchboard.toml");
        std::fs::write(
            &config,
            format!("demo = false\n[cluster]\nname = \"{}\"\n", self.name),
        )
        .expect("write config");
        let mut child = tokio::process::Command::new(binary)
            .arg("--config")
            .arg(&config)
            .env("SWITCHBOARD_LISTEN", "127.0.0.1:0")
            .env("SWITCHBOARD_DATA_DIR", dir.path())
            .env("SWITCHBOARD_BACKPLANE", &backplane.url)
            .env("SWITCHBOARD_NODE_ID", node_id)
            .env("SWITCHBOARD_DATABASE_URL", self.schema.url())
            .env("SWITCHBOARD_TOKEN_SECRET", SECRET)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn switchboard");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
        let addr = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(addr) = line.strip_prefix("switchboard listening on http://") {
                    return addr.to_string();
                }
            }
            panic!("the node exited before listening");
        })
        .await
        .expect("the node listens in time");
        Some(ProcessNode {
            child,
            ws: format!("ws://{addr}"),
            addr,
            _dir: dir,
        })
    }

    /// Run the `switchboard` binary with `args` against this cluster (its backplane, database
    /// and secret); its output, or `None` (skipped) when the binary is missing.
    pub async fn run_binary(
        &self,
        backplane: &Backplane,
        args: &[&str],
    ) -> Option<std::process::Output> {
        let binary = binary()?;
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("switchboard.toml");
        std::fs::write(&config, format!("[cluster]\nname = \"{}\"\n", self.name))
            .expect("write config");
        let output = tokio::process::Command::new(binary)
            .arg("--config")
            .arg(&config)
            .args(args)
            .env("SWITCHBOARD_DATA_DIR", dir.path())
            .env("SWITCHBOARD_BACKPLANE", &backplane.url)
            .env("SWITCHBOARD_DATABASE_URL", self.schema.url())
            .env("SWITCHBOARD_TOKEN_SECRET", SECRET)
            .output()
            .await
            .expect("run switchboard");
        Some(output)
    }

    pub async fn stop(mut self) {
        for node in &mut self.nodes {
            node.shutdown().await;
        }
        self.schema.drop_now().await;
    }
}

/// `GET /health`: status and body.
pub async fn health(node: &TestServer) -> (u16, Value) {
    let response = http::get(&node.addr, "/health", None)
        .await
        .expect("GET /health");
    (response.status, response.json())
}

/// `GET /metrics` as text.
pub async fn metrics_text(node: &TestServer) -> String {
    http::get(&node.addr, "/metrics", None)
        .await
        .expect("GET /metrics")
        .text()
}

/// Frames until `wait` passes with nothing new.
pub async fn drain(client: &mut JacClient, wait: Duration) -> Vec<Value> {
    let mut frames = Vec::new();
    loop {
        match client.recv(wait).await {
            Ok(Incoming::Json(frame)) => frames.push(frame),
            Ok(Incoming::Closed { code, reason }) => panic!("closed {code:?} {reason}"),
            Err(ClientError::Timeout) => return frames,
            Err(err) => panic!("{err}"),
        }
    }
}

/// Send channel probes from `sender` until every listener has heard one (their nodes have
/// subscribed the channel), then swallow the probes still in flight.
pub async fn converge(sender: &mut JacClient, channel: &str, listeners: &mut [&mut JacClient]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut heard = vec![false; listeners.len()];
    let mut n = 0;
    while heard.iter().any(|h| !h) {
        assert!(
            Instant::now() < deadline,
            "channel {channel} never converged"
        );
        n += 1;
        sender
            .send_json(&json!({"type": "channel", "channel_ids": [channel], "data": {"probe": n}}))
            .await
            .expect("send probe");
        for (listener, heard) in listeners.iter_mut().zip(heard.iter_mut()) {
            if !*heard {
                *heard = matches!(
                    listener.recv(Duration::from_millis(100)).await,
                    Ok(Incoming::Json(frame)) if frame.get("probe").is_some()
                );
            }
        }
    }
    let settle = Duration::from_millis(300);
    drain(sender, settle).await;
    for listener in listeners.iter_mut() {
        let late = drain(listener, settle).await;
        assert!(late.iter().all(|f| f.get("probe").is_some()), "{late:?}");
    }
}

/// The server binary (`SWITCHBOARD_BIN`, default target/debug/switchboard), if built.
fn binary() -> Option<String> {
    let binary = std::env::var("SWITCHBOARD_BIN").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../target/debug/switchboard"
        )
        .to_string()
    });
    if std::path::Path::new(&binary).exists() {
        Some(binary)
    } else {
        skip(&format!(
            "{binary} missing (cargo build -p switchboard-server)"
        ));
        None
    }
}

/// A node running as its own process.
pub struct ProcessNode {
    child: tokio::process::Child,
    pub addr: String,
    pub ws: String,
    _dir: tempfile::TempDir,
}

impl ProcessNode {
    /// SIGKILL: no goodbye to anyone.
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }
}

/// One `#[tokio::test]` per engine for each named `async fn name(engine: Engine)`: modules `redis`
/// and `nats` beside the functions, so `cargo test redis::` runs one engine's half.
// Every test binary compiles this module; only the cluster ones use the macro.
#[allow(unused_macros)]
macro_rules! per_engine {
    ($($name:ident),* $(,)?) => {
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Engine::Redis).await;
                }
            )*
        }
        mod nats {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Engine::Nats).await;
                }
            )*
        }
    };
}
#[allow(unused_imports)]
pub(crate) use per_engine;
