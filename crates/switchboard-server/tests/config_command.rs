//! `switchboard config check` and `config default`, and the start-up reporting config mistakes
//! the same way: each with its file, line and key, an unknown key with the valid ones.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::BIN;

fn run(cwd: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .current_dir(cwd)
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run switchboard")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn config_default_prints_the_example_file_and_it_checks_ok() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["config", "default"]);
    assert!(out.status.success());
    let example = include_str!("../../../config/switchboard.example.toml");
    assert_eq!(String::from_utf8_lossy(&out.stdout), example);

    let file = dir.path().join("default.toml");
    std::fs::write(&file, &out.stdout).unwrap();
    let check = run(dir.path(), &["config", "check", file.to_str().unwrap()]);
    assert_eq!(check.status.code(), Some(0), "{}", stderr(&check));
    assert_eq!(String::from_utf8_lossy(&check.stdout), "ok\n");
    // Checking creates nothing: no data directory, no database.
    assert!(!dir.path().join("switchboard-data").exists());
}

const BAD: &str = "\
listen = \"127.0.0.1:0\"
demo = \"yes\"

[limits]
max_frame = 1
max_connections = -3

[[namespace]]
name = \"game\"
on_message = \"shout\"
colour = \"red\"
";

#[test]
fn config_check_reports_every_mistake_with_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, BAD).unwrap();
    let out = run(dir.path(), &["config", "check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let report = stderr(&out);
    let at = |line: usize, key: &str| format!("bad.toml:{line}: `{key}`: ");
    for (line, key, says) in [
        (2, "demo", "expected a boolean"),
        (
            5,
            "limits.max_frame",
            "unknown key `max_frame`; valid keys here: ",
        ),
        (6, "limits.max_connections", "invalid value"),
        (10, "namespace[0].on_message", "unknown variant `shout`"),
        (
            11,
            "namespace[0].colour",
            "unknown key `colour`; valid keys here: ",
        ),
    ] {
        let found = report
            .lines()
            .find(|l| l.contains(&at(line, key)))
            .unwrap_or_else(|| panic!("no error for {key} at line {line}:\n{report}"));
        assert!(found.contains(says), "{found}");
    }
    // The valid keys of the table the unknown key is in, every one of them.
    let limits = report.lines().find(|l| l.contains("max_frame`;")).unwrap();
    for key in ["max_frame_bytes", "max_connections", "handshake_timeout_ms"] {
        assert!(limits.contains(&format!("`{key}`")), "{limits}");
    }
    let colour = report.lines().find(|l| l.contains("colour")).unwrap();
    assert!(colour.contains("`on_message`"), "{colour}");
    assert!(
        report.starts_with("5 errors in the config file"),
        "{report}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn the_server_refuses_to_start_with_the_same_report() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, BAD).unwrap();
    let check = stderr(&run(
        dir.path(),
        &["config", "check", file.to_str().unwrap()],
    ));
    let out = run(dir.path(), &["--config", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let start = stderr(&out);
    for line in check.lines().skip(1) {
        assert!(start.contains(line), "missing {line:?} in:\n{start}");
    }
    assert!(!dir.path().join("switchboard-data").exists());
}

#[test]
fn config_check_reports_syntax_errors_and_unreadable_files() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.toml");
    std::fs::write(&file, "demo = true\n[limits\nmax_frame_bytes = 1\n").unwrap();
    let out = run(dir.path(), &["config", "check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("broken.toml:2: "), "{}", stderr(&out));

    let missing = dir.path().join("missing.toml");
    let out = run(dir.path(), &["config", "check", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("missing.toml: cannot read the file"),
        "{}",
        stderr(&out)
    );

    let out = run(dir.path(), &["config", "check"]);
    assert!(!out.status.success(), "a file argument is required");
}

#[test]
fn config_check_accepts_a_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("small.toml");
    std::fs::write(
        &file,
        "demo = false\n[limits]\nmax_frame_bytes = 200\n[[namespace]]\nname = \"game\"\n",
    )
    .unwrap();
    let out = run(dir.path(), &["config", "check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
}
