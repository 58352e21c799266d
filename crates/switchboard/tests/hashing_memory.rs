//! A burst of logins for unknown emails cannot grow the server's memory past the hashing budget,
//! and leaves nothing behind. Alone in its test binary: it reads this process's RSS, which other
//! tests running beside it would disturb.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::TestServer;
use serde_json::json;
use switchboard_client::http;

const MIB: u64 = 1024 * 1024;
/// Memory of one argon2id hash with the default parameters (m = 19456 KiB).
const HASH_MEMORY: u64 = 19 * MIB;
/// Everything that is not hashing memory: 200 sockets and their request tasks on both sides,
/// blocking-pool threads, allocator slack. Generous so a loaded machine cannot make it flaky;
/// the failure it guards against is hundreds of MiB (one 19 MiB area per concurrent request).
const SLACK: u64 = 30 * MIB;
const BURST: usize = 200;

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status");
    kib * 1024
}

async fn login_unknown(addr: &str, n: usize) -> http::Response {
    let creds = json!({"email": format!("nobody-{n}@example.com"), "password": "wrong password"});
    http::post_json(addr, "/user/login", &creds, None)
        .await
        .expect("login request")
}

async fn burst(addr: &str, count: usize, offset: usize) -> Vec<http::Response> {
    let tasks: Vec<_> = (0..count)
        .map(|n| {
            let addr = addr.to_string();
            tokio::spawn(async move { login_unknown(&addr, offset + n).await })
        })
        .collect();
    let mut responses = Vec::with_capacity(count);
    for task in tasks {
        responses.push(task.await.expect("join"));
    }
    responses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_burst_for_unknown_emails_stays_within_the_hashing_memory_budget() {
    let server = TestServer::start().await;
    let slots = server.app.config().accounts.hash_slots() as u64;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let cold = rss_bytes();

    // The hashing slots' memory areas are made on first use and kept: they are the budget, not
    // growth. Fill them once, so the "after" figure below measures what a burst leaves behind.
    for response in burst(&server.addr, slots as usize, 1_000_000).await {
        assert_eq!(response.status, 401, "{}", response.text());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let warm = rss_bytes();

    let peak = Arc::new(AtomicU64::new(warm));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        std::thread::spawn(move || {
            while sampling.load(Ordering::Relaxed) {
                peak.fetch_max(rss_bytes(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let responses = burst(&server.addr, BURST, 0).await;
    sampling.store(false, Ordering::Relaxed);
    sampler.join().expect("sampler");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_bytes();
    let peak = peak.load(Ordering::Relaxed).max(after);

    let (mut unauthorized, mut busy) = (0, 0);
    for response in &responses {
        match response.status {
            401 => unauthorized += 1,
            503 => {
                busy += 1;
                assert_eq!(response.json()["code"], "hashing_busy");
                assert!(response.header("retry-after").is_some());
            }
            other => panic!("unexpected status {other}: {}", response.text()),
        }
    }
    let mib = |bytes: u64| bytes as f64 / MIB as f64;
    eprintln!(
        "slots {slots}: rss cold {:.1} MiB, warm {:.1} MiB, peak {:.1} MiB, after {:.1} MiB; \
         {unauthorized} x 401, {busy} x 503",
        mib(cold),
        mib(warm),
        mib(peak),
        mib(after)
    );
    // Peak: at most one 19 MiB area per hashing slot exists at any time, plus the slack.
    let peak_bound = slots * HASH_MEMORY + SLACK;
    assert!(
        peak.saturating_sub(cold) <= peak_bound,
        "peak growth {:.1} MiB over {:.1} MiB",
        mib(peak - cold),
        mib(peak_bound)
    );
    // After: the burst leaves nothing beyond the slots' areas, which existed before it.
    assert!(
        after.saturating_sub(warm) <= SLACK,
        "after the burst RSS is {:.1} MiB above the warm baseline",
        mib(after - warm)
    );
    assert!(unauthorized > 0, "some logins were served");

    // The server still answers normally.
    server.user("after-burst@example.com").await;
    assert_eq!(
        server.metric(|m| m.hashing_refused.get()),
        busy as u64,
        "every 503 is counted"
    );
}
