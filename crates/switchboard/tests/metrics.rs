//! `GET /metrics` read as Prometheus reads it: the text is parsed with a Prometheus text-format
//! parser, and a known sequence of connects, messages and walker calls gives known figures.

mod common;

use std::time::{Duration, Instant};

use common::TestServer;
use prometheus_parse::{Sample, Scrape, Value};
use serde_json::json;
use switchboard_client::channel::ChannelClient;
use switchboard_client::{ConnectOptions, http};

/// One scrape of `/metrics`, parsed.
async fn scrape(server: &TestServer) -> Scrape {
    let response = http::get(&server.addr, "/metrics", None)
        .await
        .expect("GET /metrics");
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = response.text();
    Scrape::parse(text.lines().map(|line| Ok(line.to_string()))).expect("Prometheus text format")
}

/// The sample of `name` whose labels are exactly `labels`.
fn sample<'a>(scrape: &'a Scrape, name: &str, labels: &[(&str, &str)]) -> Option<&'a Sample> {
    scrape.samples.iter().find(|s| {
        s.metric == name
            && s.labels.len() == labels.len()
            && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
    })
}

/// The value of a counter, gauge or untyped sample (panics on a missing one, naming it).
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    match sample(scrape, name, labels).map(|s| &s.value) {
        Some(Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v)) => *v,
        other => panic!("{name}{labels:?}: {other:?}"),
    }
}

/// Scrape until `settled` holds (frames are counted as the socket writes them, which may trail
/// the client reading them by a moment); the last scrape either way.
async fn scrape_until(server: &TestServer, settled: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let scrape = scrape(server).await;
        if settled(&scrape) || Instant::now() > deadline {
            return scrape;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const UPGRADE: [(&str, &str); 4] = [
    ("Connection", "Upgrade"),
    ("Upgrade", "websocket"),
    ("Sec-WebSocket-Version", "13"),
    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
];

#[tokio::test]
async fn a_known_sequence_of_connects_and_messages_gives_the_expected_figures() {
    let server = TestServer::start().await;
    let room = || ConnectOptions::default().channel("room");
    let mut alice = server.connect_with(room()).await;
    let mut bob = server.connect_with(room()).await;
    let _carol = ChannelClient::connect(&server.ws, "/ws/lobby", None)
        .await
        .expect("channel dialect");

    // One channel message, delivered to both members (the sender too).
    alice
        .send_json(&json!({"type": "channel", "channel_ids": ["room"], "data": {"n": 1}}))
        .await
        .unwrap();
    assert_eq!(alice.recv_json().await.unwrap(), json!({"n": 1}));
    assert_eq!(bob.recv_json().await.unwrap(), json!({"n": 1}));
    // Four walker calls: one succeeds, one fails, one is refused, one names no walker.
    let ok = alice.call_walker("echo", json!({"message": "hi"})).await;
    assert_eq!(ok.unwrap()["status"], 200);
    for walker in ["fails", "whoami", "no_such_walker"] {
        let reply = alice.call_walker(walker, json!({})).await.unwrap();
        assert!(reply.get("error").is_some(), "{walker}: {reply}");
    }
    // Two refused handshakes: a foreign browser origin, and a channel name that is not one.
    let mut foreign = UPGRADE.to_vec();
    foreign.push(("Origin", "http://evil.example"));
    let refused = http::request(&server.addr, "GET", "/websocket", &foreign, b"")
        .await
        .unwrap();
    assert_eq!(refused.status, 403);
    let refused = http::request(&server.addr, "GET", "/ws/bad%20name", &UPGRADE, b"")
        .await
        .unwrap();
    assert_eq!(refused.status, 400);
    bob.close().await.unwrap();

    let jac = [("dialect", "jac")];
    let channel = [("dialect", "channel")];
    // Alice: her connection frame, the channel message, four replies; Bob: the first two.
    let sent = 6.0 + 2.0;
    let m = scrape_until(&server, |m| {
        value(m, "switchboard_connections", &jac) == 1.0
            && value(m, "switchboard_messages_sent_total", &jac) == sent
    })
    .await;

    assert!(matches!(
        sample(&m, "switchboard_connections", &jac).unwrap().value,
        Value::Gauge(_)
    ));
    assert_eq!(value(&m, "switchboard_connections", &jac), 1.0);
    assert_eq!(value(&m, "switchboard_connections", &channel), 1.0);
    assert!(matches!(
        sample(&m, "switchboard_connections_accepted_total", &jac)
            .unwrap()
            .value,
        Value::Counter(_)
    ));
    assert_eq!(
        value(&m, "switchboard_connections_accepted_total", &jac),
        2.0
    );
    assert_eq!(
        value(&m, "switchboard_connections_accepted_total", &channel),
        1.0
    );
    assert_eq!(value(&m, "switchboard_messages_received_total", &jac), 5.0);
    assert_eq!(
        value(&m, "switchboard_messages_received_total", &channel),
        0.0
    );
    assert_eq!(value(&m, "switchboard_messages_sent_total", &jac), sent);
    assert_eq!(value(&m, "switchboard_messages_sent_total", &channel), 0.0);
    assert_eq!(value(&m, "switchboard_deliveries_total", &[]), sent);
    for reason in ["slow_consumer", "recipient_closed", "rate_limited"] {
        assert_eq!(
            value(&m, "switchboard_dropped_total", &[("reason", reason)]),
            0.0
        );
    }
    let handshake = |reason| {
        value(
            &m,
            "switchboard_handshake_failures_total",
            &[("reason", reason)],
        )
    };
    assert_eq!(handshake("origin_refused"), 1.0);
    assert_eq!(handshake("invalid_request"), 1.0);
    assert_eq!(handshake("connection_limit"), 0.0);

    let walker = |name, outcome| [("walker", name), ("outcome", outcome)];
    let calls = |name, outcome| value(&m, "switchboard_walker_calls_total", &walker(name, outcome));
    assert_eq!(calls("echo", "ok"), 1.0);
    assert_eq!(calls("echo", "error"), 0.0);
    assert_eq!(calls("fails", "error"), 1.0);
    assert_eq!(calls("whoami", "refused"), 1.0);
    assert_eq!(
        value(&m, "switchboard_unknown_walker_calls_total", &[]),
        1.0
    );
    assert!(
        m.samples
            .iter()
            .all(|s| s.labels.get("walker") != Some("no_such_walker")),
        "an unknown walker name made a series"
    );
    let Value::Histogram(buckets) = &sample(
        &m,
        "switchboard_walker_duration_seconds",
        &walker("echo", "ok"),
    )
    .expect("the echo histogram")
    .value
    else {
        panic!("switchboard_walker_duration_seconds is not a histogram")
    };
    let infinite = buckets.iter().find(|b| b.less_than.is_infinite()).unwrap();
    assert_eq!(infinite.count, 1.0);
    assert_eq!(
        value(
            &m,
            "switchboard_walker_duration_seconds_count",
            &walker("fails", "error")
        ),
        1.0
    );

    assert_eq!(value(&m, "switchboard_backplane_up", &[]), 0.0);
    assert_eq!(
        value(&m, "switchboard_backplane_not_relayed_total", &[]),
        0.0
    );
    assert_eq!(
        value(
            &m,
            "switchboard_node_info",
            &[("node_id", server.app.node_id())]
        ),
        1.0
    );
    assert!(value(&m, "switchboard_uptime_seconds", &[]) > 0.0);
    if cfg!(target_os = "linux") {
        assert!(value(&m, "switchboard_process_resident_memory_bytes", &[]) > 1e6);
    }
    assert_eq!(value(&m, "switchboard_outbound_queued_bytes", &[]), 0.0);
}

#[tokio::test]
async fn every_app_counts_its_own_connections() {
    let busy = TestServer::start().await;
    let idle = TestServer::start().await;
    let _client = busy.connect().await;
    let jac = [("dialect", "jac")];
    let busy_scrape =
        scrape_until(&busy, |m| value(m, "switchboard_connections", &jac) == 1.0).await;
    assert_eq!(value(&busy_scrape, "switchboard_connections", &jac), 1.0);
    let idle_scrape = scrape(&idle).await;
    assert_eq!(value(&idle_scrape, "switchboard_connections", &jac), 0.0);
    assert_eq!(
        value(&idle_scrape, "switchboard_connections_accepted_total", &jac),
        0.0
    );
}

/// Every `switchboard_...` metric name in `text`, with a histogram's `_bucket` suffix removed.
fn metric_names_in(text: &str) -> std::collections::BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| word.starts_with("switchboard_") && word.len() > "switchboard_".len())
        .map(|word| word.trim_end_matches("_bucket").to_string())
        .collect()
}

#[tokio::test]
async fn the_operations_doc_and_the_dashboard_name_exactly_the_exposed_metrics() {
    let server = TestServer::start().await;
    let exposed: std::collections::BTreeSet<String> = scrape(&server)
        .await
        .samples
        .iter()
        .map(|s| s.metric.trim_end_matches("_count").trim_end_matches("_sum"))
        .map(str::to_string)
        .collect();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let read = |path: &str| std::fs::read_to_string(format!("{root}/{path}")).expect(path);
    let documented = metric_names_in(&read("docs/operations.md"));
    assert_eq!(documented, exposed, "docs/operations.md lists another set");
    let charted = metric_names_in(&read("deploy/grafana/switchboard.json"));
    let unknown: Vec<_> = charted.difference(&exposed).collect();
    assert!(unknown.is_empty(), "the dashboard charts {unknown:?}");
}
