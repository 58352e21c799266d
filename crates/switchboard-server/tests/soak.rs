//! Soak: churn thousands of connections through the real binary and check that its memory does
//! not grow with them (no leak per connection) and that no connection is left open.
//!
//! The binary starts; a few users register; warm-up waves run; the baseline RSS is read from
//! /proc/PID/status. Then, for `SWITCHBOARD_SOAK_SECS` seconds (default 20), waves of connections
//! are opened at once, each into one of a few channels, as one of the users; every connection
//! sends a channel message and calls the `chat_service` walker (it needs a login, as in seed 000)
//! with `response: true`, reads its reply, and goes away in one of several ways: a polite close,
//! a drop without a close frame, a TCP reset, a reset in the middle of a frame, or a reconnect
//! into the same channel first. Some raw sockets also drop in the middle of the HTTP upgrade.
//! After each wave the test records (connections accepted so far, RSS). After the churn the
//! server idles, then:
//!
//! - `/metrics` shows `switchboard_connections 0`;
//! - no connection failed: on loopback, with waves well under every limit, a failure is a bug;
//! - over the second half of the churn, once the allocator's arenas have settled, RSS grows by
//!   less than [`LEAK_BYTES_PER_CONNECTION`] (512) bytes per connection (least-squares slope), so
//!   a leak of 1 KiB per connection fails even the short run. The default run is 20 s, not
//!   less: the allocator grows its arenas in steps of about 600 KiB, and over a shorter churn
//!   (about 1,100 connections in the second half) one such step alone measures as a 550-byte
//!   slope on a loaded machine;
//! - the final RSS is within baseline + max(8 MiB, 25 % of baseline), a coarse bound: the
//!   allocator keeps some freed memory (glibc arenas per worker thread, fragmentation), so RSS
//!   never returns exactly to the baseline.
//!
//! Loopback only, bounded in time and in connections (`SWITCHBOARD_SOAK_WAVE`, default 200 at
//! once), and it stops by itself. `scripts/soak [SECONDS]` runs it against a release build.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard_client::{ClientError, ConnectOptions, JacClient, http};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");
const ROOMS: usize = 16;
/// Waves before the baseline: they grow what stays for the process's life.
const WARM_UP_WAVES: u64 = 4;
const MIB: u64 = 1024 * 1024;
/// docs/protocol-jac.md: the `connection` frame is always the first frame.
const NOT_FIRST: &str = "the connection frame was not the first frame";

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

struct Server {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut child = Command::new(BIN)
            .current_dir(dir.path())
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("data"))
            .env("SWITCHBOARD_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn switchboard");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("switchboard listening on http://") {
                    let _ = tx.send(addr.to_string());
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("server did not report its address");
        Server {
            child,
            addr,
            _dir: dir,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn ws(&self) -> String {
        format!("ws://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `kB` field of /proc/PID/status, in bytes.
fn proc_status_bytes(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

fn rss(pid: u32) -> u64 {
    proc_status_bytes(pid, "VmRSS")
}

/// Growth per connection the soak calls a leak, in bytes: half of 1 KiB, so a leak of 1 KiB per
/// connection fails it with room for the allocator's noise.
const LEAK_BYTES_PER_CONNECTION: f64 = 512.0;

/// Least-squares slope of RSS over connections, in bytes per connection.
fn slope(samples: &[(u64, u64)]) -> f64 {
    let n = samples.len() as f64;
    if samples.len() < 2 {
        return 0.0;
    }
    let mean_x = samples.iter().map(|s| s.0 as f64).sum::<f64>() / n;
    let mean_y = samples.iter().map(|s| s.1 as f64).sum::<f64>() / n;
    let (mut cov, mut var) = (0.0, 0.0);
    for &(x, y) in samples {
        let dx = x as f64 - mean_x;
        cov += dx * (y as f64 - mean_y);
        var += dx * dx;
    }
    if var == 0.0 { 0.0 } else { cov / var }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / MIB as f64)
}

/// The sum of every series of metric `name` (over its labels, e.g. every dialect).
async fn metric(addr: &str, name: &str) -> Option<u64> {
    let text = http::get(addr, "/metrics", None).await.ok()?.text();
    text.lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with([' ', '{']))
        })
        .map(|line| line.rsplit(' ').next()?.trim().parse::<u64>().ok())
        .sum()
}

#[derive(Default)]
struct Counts {
    connections: AtomicU64,
    raw: AtomicU64,
    replies: AtomicU64,
    failures: AtomicU64,
    connection_frame_not_first: AtomicU64,
}

/// How a connection ends.
#[derive(Clone, Copy, Debug)]
enum Ending {
    Polite,
    Drop,
    Reconnect,
    Reset,
    ResetMidFrame,
    DropMidHandshake,
}

const ENDINGS: [Ending; 10] = [
    Ending::Polite,
    Ending::Polite,
    Ending::Polite,
    Ending::Drop,
    Ending::Drop,
    Ending::Reconnect,
    Ending::Reconnect,
    Ending::Reset,
    Ending::ResetMidFrame,
    Ending::DropMidHandshake,
];

/// Connections of one soak user at once at most: under `limits.max_connections_per_user`.
const CONNECTIONS_PER_USER: u64 = 50;

/// Register and log in enough users for `wave_size` connections at once; their tokens.
async fn soak_users(addr: &str, wave_size: u64) -> Vec<String> {
    let mut tokens = Vec::new();
    for i in 0..wave_size.div_ceil(CONNECTIONS_PER_USER) {
        let creds = json!({"email": format!("soak{i}@example.com"), "password": "correct horse"});
        let registered = http::post_json(addr, "/user/register", &creds, None)
            .await
            .expect("register");
        assert_eq!(registered.status, 201, "{}", registered.text());
        let login = http::post_json(addr, "/user/login", &creds, None)
            .await
            .expect("login");
        let token = login.json()["token"].as_str().expect("token").to_string();
        tokens.push(token);
    }
    tokens
}

/// One Jac client of the user with `token`: connect into `room`, send a channel message, call
/// `chat_service` (which needs a login, as in seed 000), read the reply.
async fn chat_once(ws: &str, token: &str, room: &str, n: u64) -> Result<JacClient, String> {
    let mut client = JacClient::connect(ws, ConnectOptions::bearer(token).channel(room))
        .await
        .map_err(|e| match e {
            ClientError::Unexpected(frame) => format!("{NOT_FIRST}: got {frame}"),
            e => format!("connect: {e}"),
        })?;
    client
        .send_json(&json!({
            "type": "channel",
            "channel_ids": [room],
            "data": {"type": "chat", "data": {"message": format!("soak {n}"), "pad": "x".repeat(200)}},
        }))
        .await
        .map_err(|e| format!("send channel: {e}"))?;
    let message = format!("hello {n}");
    client
        .send_json(&json!({
            "type": "walker",
            "walker": "chat_service",
            "context": {"message": message},
            "response": true,
            "id": n,
        }))
        .await
        .map_err(|e| format!("send walker: {e}"))?;
    // Channel messages from the others in the room may come first.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if Instant::now() > deadline {
            return Err("no walker reply".into());
        }
        let frame: Value = client.recv_json().await.map_err(|e| format!("recv: {e}"))?;
        if frame.get("status").is_some() && frame["id"] == json!(n) {
            if frame["reports"] != json!([format!("Received: {message}")]) {
                return Err(format!("unexpected reply {frame}"));
            }
            return Ok(client);
        }
        if frame.get("error").is_some() {
            return Err(format!("error frame {frame}"));
        }
    }
}

/// A raw socket: upgrade by hand, then end rudely (a reset, a reset half-way through a frame, or
/// a drop half-way through the HTTP request).
async fn raw_once(addr: &str, room: &str, ending: Ending) -> Result<(), String> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("tcp: {e}"))?;
    let request = format!(
        "GET /websocket?channel_id={room} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: c29hayBzb2FrIHNvYWsgIQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    );
    if let Ending::DropMidHandshake = ending {
        let half = request.len() / 2;
        stream
            .write_all(&request.as_bytes()[..half])
            .await
            .map_err(|e| format!("write: {e}"))?;
        return Ok(());
    }
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    // The 101 response and the connection frame.
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    while !contains(&seen, b"\"connection\"") {
        if Instant::now() > deadline {
            return Err("no connection frame".into());
        }
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .map_err(|_| "read timeout".to_string())?
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err(format!(
                "closed during upgrade: {}",
                String::from_utf8_lossy(&seen)
            ));
        }
        seen.extend_from_slice(&buf[..n]);
    }
    if !seen.starts_with(b"HTTP/1.1 101") {
        return Err(format!("no 101: {}", String::from_utf8_lossy(&seen)));
    }
    let payload =
        json!({"type": "channel", "channel_ids": [room], "data": {"raw": true}}).to_string();
    let frame = masked_text_frame(payload.as_bytes());
    let sent = match ending {
        Ending::ResetMidFrame => &frame[..frame.len() / 2],
        _ => &frame[..],
    };
    stream
        .write_all(sent)
        .await
        .map_err(|e| format!("write frame: {e}"))?;
    stream
        .set_zero_linger()
        .map_err(|e| format!("linger: {e}"))?;
    drop(stream);
    Ok(())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A client-to-server text frame (FIN, masked), payload under 64 KiB.
fn masked_text_frame(payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut frame = vec![0x81];
    match payload.len() {
        len @ 0..=125 => frame.push(0x80 | len as u8),
        len => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// One connection's life, ended the way `ending` says.
async fn one_connection(
    ws: Arc<String>,
    addr: Arc<String>,
    tokens: Arc<Vec<String>>,
    n: u64,
    ending: Ending,
    counts: Arc<Counts>,
) {
    let room = format!("soak_room_{}", n as usize % ROOMS);
    let token = &tokens[n as usize % tokens.len()];
    let result = match ending {
        Ending::Reset | Ending::ResetMidFrame | Ending::DropMidHandshake => {
            counts.raw.fetch_add(1, Ordering::Relaxed);
            raw_once(&addr, &room, ending).await
        }
        Ending::Polite | Ending::Drop | Ending::Reconnect => {
            counts.connections.fetch_add(1, Ordering::Relaxed);
            match chat_once(&ws, token, &room, n).await {
                Err(e) => Err(e),
                Ok(client) => {
                    counts.replies.fetch_add(1, Ordering::Relaxed);
                    match ending {
                        Ending::Polite => client.close().await.map_err(|e| format!("close: {e}")),
                        Ending::Drop => {
                            drop(client);
                            Ok(())
                        }
                        _ => {
                            // Gone without a word, then back into the same channel.
                            drop(client);
                            counts.connections.fetch_add(1, Ordering::Relaxed);
                            match chat_once(&ws, token, &room, n + 1_000_000_000).await {
                                Ok(again) => {
                                    counts.replies.fetch_add(1, Ordering::Relaxed);
                                    again.close().await.map_err(|e| format!("close: {e}"))
                                }
                                Err(e) => Err(e),
                            }
                        }
                    }
                }
            }
        }
    };
    if let Err(e) = result {
        if e.starts_with(NOT_FIRST) {
            counts
                .connection_frame_not_first
                .fetch_add(1, Ordering::Relaxed);
        }
        let failures = counts.failures.fetch_add(1, Ordering::Relaxed);
        if failures < 5 {
            let e: String = e.chars().take(240).collect();
            eprintln!("soak: connection {n} ({ending:?}) failed: {e}");
        }
    }
}

/// One wave: `size` connections at once, all ended before it returns.
async fn wave(
    server_ws: &Arc<String>,
    addr: &Arc<String>,
    tokens: &Arc<Vec<String>>,
    first: u64,
    size: u64,
    counts: &Arc<Counts>,
) {
    let mut tasks = Vec::with_capacity(size as usize);
    for n in first..first + size {
        let ending = ENDINGS[(n as usize * 7 + n as usize / ENDINGS.len()) % ENDINGS.len()];
        tasks.push(tokio::spawn(one_connection(
            server_ws.clone(),
            addr.clone(),
            tokens.clone(),
            n,
            ending,
            counts.clone(),
        )));
    }
    for task in tasks {
        task.await.expect("connection task");
    }
}

async fn wait_for_no_open_connections(addr: &str) -> Option<u64> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let open = metric(addr, "switchboard_connections").await;
        if open == Some(0) || Instant::now() > deadline {
            return open;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churning_connections_does_not_leak_memory() {
    let secs = env_u64("SWITCHBOARD_SOAK_SECS", 20);
    let wave_size = env_u64("SWITCHBOARD_SOAK_WAVE", 200).clamp(1, 2000);
    let idle = Duration::from_secs(env_u64("SWITCHBOARD_SOAK_IDLE_SECS", 3));
    let server = Server::start();
    let pid = server.pid();
    let ws = Arc::new(server.ws());
    let addr = Arc::new(server.addr.clone());
    let counts = Arc::new(Counts::default());
    let tokens = Arc::new(soak_users(&addr, wave_size).await);

    // Warm-up: the first connections allocate what stays for the process's life (runtime
    // workers' buffers, lazily built tables, allocator arenas).
    let started = Instant::now();
    let mut next = 0;
    for _ in 0..WARM_UP_WAVES {
        wave(&ws, &addr, &tokens, next, wave_size, &counts).await;
        next += wave_size;
    }
    assert_eq!(wait_for_no_open_connections(&addr).await, Some(0));
    tokio::time::sleep(idle).await;
    let baseline = rss(pid);
    let warmup_connections = counts.connections.load(Ordering::Relaxed);
    println!(
        "soak: baseline RSS {} after a warm-up of {warmup_connections} connections in {:.1}s",
        mib(baseline),
        started.elapsed().as_secs_f64()
    );

    // Sample RSS while churning, for the peak.
    let sampling = Arc::new(AtomicBool::new(true));
    let peak = Arc::new(AtomicU64::new(baseline));
    let sampler = {
        let (sampling, peak) = (sampling.clone(), peak.clone());
        std::thread::spawn(move || {
            while sampling.load(Ordering::Relaxed) {
                if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                    if let Some(kib) = status
                        .lines()
                        .find_map(|l| l.strip_prefix("VmRSS:"))
                        .and_then(|r| r.split_whitespace().next()?.parse::<u64>().ok())
                    {
                        peak.fetch_max(kib * 1024, Ordering::Relaxed);
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };

    let churn_started = Instant::now();
    let churn_deadline = churn_started + Duration::from_secs(secs);
    let mut waves = 0u64;
    let mut midpoint_rss = None;
    // (connections the server accepted so far, RSS) after each wave, for the growth per connection.
    let mut samples: Vec<(u64, u64)> = Vec::new();
    while Instant::now() < churn_deadline {
        wave(&ws, &addr, &tokens, next, wave_size, &counts).await;
        next += wave_size;
        waves += 1;
        if let Some(total) = metric(&addr, "switchboard_connections_accepted_total").await {
            samples.push((total, rss(pid)));
        }
        if midpoint_rss.is_none() && churn_started.elapsed() >= Duration::from_secs(secs) / 2 {
            midpoint_rss = Some(rss(pid));
        }
    }
    let churn_elapsed = churn_started.elapsed();
    let churned = counts.connections.load(Ordering::Relaxed) - warmup_connections;
    let raw = counts.raw.load(Ordering::Relaxed);
    let replies = counts.replies.load(Ordering::Relaxed);
    let failures = counts.failures.load(Ordering::Relaxed);
    let not_first = counts.connection_frame_not_first.load(Ordering::Relaxed);

    let open = wait_for_no_open_connections(&addr).await;
    tokio::time::sleep(idle).await;
    sampling.store(false, Ordering::Relaxed);
    sampler.join().expect("sampler");
    let final_rss = rss(pid);
    let peak = peak.load(Ordering::Relaxed).max(final_rss);
    let total = metric(&addr, "switchboard_connections_accepted_total").await;
    let tolerance = (8 * MIB).max(baseline / 4);
    // The first half of the churn may still grow the allocator's arenas a little; after that a
    // leak-free server's RSS is flat, and a leak shows as a slope.
    let settled = &samples[samples.len() / 2..];
    let growth_per_connection = slope(settled);

    println!(
        "soak: {waves} waves of {wave_size} in {:.1}s: {churned} client connections \
         ({:.0}/s) and {raw} raw sockets after warm-up; {replies} walker replies in all; \
         {failures} failures ({not_first} of them: a channel message arrived before the \
         connection frame); server counted {} connections",
        churn_elapsed.as_secs_f64(),
        churned as f64 / churn_elapsed.as_secs_f64(),
        total.map_or("?".to_string(), |t| t.to_string()),
    );
    println!(
        "soak: RSS grows {growth_per_connection:.0} bytes per connection over the last {} waves \
         ({} connections; a leak is {LEAK_BYTES_PER_CONNECTION:.0} or more)",
        settled.len(),
        settled.last().map_or(0, |l| l.0) - settled.first().map_or(0, |f| f.0),
    );
    println!(
        "soak: RSS baseline {}, peak {}, middle {}, final {} (after {}s idle; allowed up to {})",
        mib(baseline),
        mib(peak),
        midpoint_rss.map_or("-".to_string(), mib),
        mib(final_rss),
        idle.as_secs(),
        mib(baseline + tolerance),
    );

    assert_eq!(open, Some(0), "switchboard_connections after the churn");
    assert_eq!(
        not_first, 0,
        "the connection frame must be every connection's first frame"
    );
    // Loopback, waves bounded well under every limit: no connection has a reason to fail, so
    // none may (the first five failures are printed above).
    assert_eq!(
        failures,
        0,
        "{failures} of {} connections failed",
        churned + raw
    );
    assert!(
        settled.len() >= 4,
        "too few waves to measure the growth per connection: {samples:?}"
    );
    assert!(
        growth_per_connection < LEAK_BYTES_PER_CONNECTION,
        "RSS grows {growth_per_connection:.0} bytes per connection after the allocator settled \
         (allowed under {LEAK_BYTES_PER_CONNECTION}): a leak. Samples (connections, RSS): \
         {settled:?}"
    );
    assert!(churned >= wave_size, "the churn ran at least one wave");
    assert!(
        final_rss <= baseline + tolerance,
        "RSS did not come back near its baseline: {} -> {} (peak {}), allowed {}",
        mib(baseline),
        mib(final_rss),
        mib(peak),
        mib(baseline + tolerance)
    );
}
