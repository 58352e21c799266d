//! The `switchboard` binary started as an operator starts it, for the tests that drive it
//! from outside: its listening line, signals and exit status.

#![allow(dead_code)] // each test file uses its own part of these helpers

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

pub struct Server {
    pub child: Child,
    /// `host:port` from the listening line.
    pub addr: String,
    /// `http` or `https`, from the listening line.
    pub scheme: String,
}

impl Server {
    /// Write `toml` to `cwd/switchboard.toml` and start the binary on it, on a free port.
    pub fn with_config(cwd: &Path, toml: &str) -> Server {
        let config = cwd.join("switchboard.toml");
        std::fs::write(&config, toml).expect("write the config");
        let config = config.to_str().expect("a UTF-8 path");
        Self::start(cwd, &["--listen", "127.0.0.1:0", "--config", config], &[])
    }

    /// Start the binary in `cwd` with `args` and wait for its listening line; its logs (level
    /// `warn`) go to the test's stderr.
    pub fn start(cwd: &Path, args: &[&str], envs: &[(&str, &str)]) -> Server {
        let mut command = Self::command(cwd, args, envs);
        command.stderr(Stdio::inherit());
        Self::spawn(command)
    }

    /// The command [`Server::start`] runs, for a test that wants to change it (e.g. capture
    /// stderr) before [`Server::spawn`].
    pub fn command(cwd: &Path, args: &[&str], envs: &[(&str, &str)]) -> Command {
        let mut command = Command::new(BIN);
        command
            .current_dir(cwd)
            .args(args)
            .env("SWITCHBOARD_LOG", "warn")
            .stdout(Stdio::piped());
        for (k, v) in envs {
            command.env(k, v);
        }
        command
    }

    /// Spawn `command` (its stdout piped) and wait for its listening line.
    pub fn spawn(mut command: Command) -> Server {
        let mut child = command.spawn().expect("spawn switchboard");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("switchboard listening on ") {
                    let _ = tx.send(url.to_string());
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("server did not report its address");
        let (scheme, addr) = url.split_once("://").expect("a URL");
        Server {
            child,
            addr: addr.to_string(),
            scheme: scheme.to_string(),
        }
    }

    pub fn ws(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// Send `signal` (`TERM`, `HUP`, ...) to the process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Send SIGTERM and wait for a clean exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        self.signal("TERM");
        for _ in 0..200 {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!("server did not exit after SIGTERM");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
