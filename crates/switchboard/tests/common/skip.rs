//! Tests that need a service (PostgreSQL, Redis, NATS, Python) skip without it, and say so where
//! `scripts/test` can count it: a skipped Rust test passes, and its output is captured.
//!
//! Shared by the binary's tests too (`#[path]`-included), so there is one skip rule.

use std::io::Write;

/// Skip (print why and add it to the skip report) or, under `SWITCHBOARD_REQUIRE_SERVICES=1`,
/// fail.
pub fn skip(why: &str) {
    assert!(
        std::env::var("SWITCHBOARD_REQUIRE_SERVICES").as_deref() != Ok("1"),
        "required service missing: {why}"
    );
    eprintln!("skipped: {why}");
    // The test's name is its thread's name under the standard test harness.
    let test = std::thread::current()
        .name()
        .unwrap_or("rust test")
        .to_string();
    if let Some(report) = std::env::var_os("SWITCHBOARD_SKIP_REPORT") {
        let appended = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(report)
            .and_then(|mut file| writeln!(file, "rust test {test}: {why}"));
        if let Err(err) = appended {
            eprintln!("cannot write the skip report: {err}");
        }
    }
}
