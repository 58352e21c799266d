//! The summary that ends `scripts/test`: every suite that ran, and every skip, loudly; a skip
//! fails the run under `SWITCHBOARD_REQUIRE_SERVICES=1`. Run on hand-made reports.

use std::path::Path;
use std::process::Output;

fn summary(ran: &str, skipped: &str, status: &str, require: bool) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let (ran_file, skip_file) = (dir.path().join("ran"), dir.path().join("skipped"));
    std::fs::write(&ran_file, ran).unwrap();
    std::fs::write(&skip_file, skipped).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/test-summary");
    let mut command = std::process::Command::new("bash");
    command
        .arg(script)
        .arg(&ran_file)
        .arg(&skip_file)
        .arg(status);
    command.env_remove("SWITCHBOARD_REQUIRE_SERVICES");
    if require {
        command.env("SWITCHBOARD_REQUIRE_SERVICES", "1");
    }
    command.output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const RAN: &str = "rust\nrust doc tests\nautobahn\njavascript\n";
const SKIPPED: &str = "suite autobahn: Python 2.7 not found\n\
                       rust test cluster_over_redis: Redis unreachable\n\
                       js clients/js/test/browser/chat.test.js: Chromium not found\n";

#[test]
fn every_skip_is_listed_and_a_wholly_skipped_suite_is_not_called_ran() {
    let out = summary(RAN, SKIPPED, "0", false);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    let ran = text.split("!! SKIPPED").next().unwrap();
    assert!(
        ran.contains("  rust\n") && ran.contains("  javascript\n"),
        "{text}"
    );
    assert!(!ran.contains("autobahn"), "{text}");
    assert!(text.contains("!! SKIPPED (3)"), "{text}");
    assert!(text.contains("whole suite autobahn: Python 2.7"), "{text}");
    assert!(
        text.contains("cluster_over_redis: Redis unreachable"),
        "{text}"
    );
    assert!(text.contains("chat.test.js: Chromium not found"), "{text}");
    assert!(!text.contains("all tests passed"), "{text}");
    assert!(
        text.trim_end()
            .ends_with("3 SKIPPED (install what is named above to run them)")
    );
}

#[test]
fn a_skip_fails_the_run_when_services_are_required() {
    let out = summary(RAN, SKIPPED, "0", true);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("FAILED: 3 skipped under SWITCHBOARD_REQUIRE_SERVICES=1"));
}

#[test]
fn a_clean_run_says_all_tests_passed_and_a_failed_one_keeps_its_status() {
    let out = summary(RAN, "", "0", true);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).trim_end().ends_with("== all tests passed"));
    assert!(stdout(&out).contains("  autobahn\n"));

    let out = summary("rust\n", SKIPPED, "101", false);
    assert_eq!(out.status.code(), Some(101));
    assert!(stdout(&out).contains("== FAILED (exit status 101)"));
    assert!(stdout(&out).contains("!! SKIPPED (3)"));
}
