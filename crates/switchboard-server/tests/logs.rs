//! Where the binary's logs go and in what shape: stderr, JSON lines on request, and no colour
//! escape codes when stderr is not a terminal (a file, a pipe, the journal).

mod common;

use std::io::Read;
use std::process::Stdio;

use common::Server;

/// Start the binary with `envs`, stop it with SIGTERM, and return everything it logged.
fn logs_of_a_run(envs: &[(&str, &str)]) -> String {
    let cwd = tempfile::tempdir().unwrap();
    let mut command = Server::command(cwd.path(), &["--listen", "127.0.0.1:0"], envs);
    command
        .env("SWITCHBOARD_LOG", "info")
        .stderr(Stdio::piped());
    let mut server = Server::spawn(command);
    let mut stderr = server.child.stderr.take().unwrap();
    assert!(server.terminate().success());
    let mut logs = String::new();
    stderr.read_to_string(&mut logs).unwrap();
    logs
}

#[test]
fn json_format_writes_one_json_object_per_line_on_stderr() {
    let logs = logs_of_a_run(&[("SWITCHBOARD_LOG_FORMAT", "json")]);
    let lines: Vec<&str> = logs.lines().collect();
    assert!(lines.len() >= 2, "{logs}");
    let events: Vec<serde_json::Value> = lines
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    for event in &events {
        assert!(event.is_object(), "{event}");
        assert!(event["timestamp"].is_string(), "{event}");
        assert!(event["level"].is_string(), "{event}");
    }
    let serving = events
        .iter()
        .find(|event| event["fields"]["message"] == "serving")
        .unwrap_or_else(|| panic!("no `serving` event in {logs}"));
    assert_eq!(serving["level"], "INFO");
    assert!(serving["fields"]["bound"].is_string(), "{serving}");
    assert!(!logs.contains('\u{1b}'), "{logs:?}");
}

#[test]
fn text_logs_carry_no_colour_codes_when_stderr_is_not_a_terminal() {
    let logs = logs_of_a_run(&[]);
    assert!(logs.contains("serving"), "{logs}");
    assert!(!logs.contains('\u{1b}'), "{logs:?}");
}

#[test]
fn an_unknown_log_format_is_a_start_error() {
    let cwd = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(common::BIN)
        .current_dir(cwd.path())
        .args(["--listen", "127.0.0.1:0"])
        .env("SWITCHBOARD_LOG_FORMAT", "xml")
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("SWITCHBOARD_LOG_FORMAT"), "{stderr}");
}
