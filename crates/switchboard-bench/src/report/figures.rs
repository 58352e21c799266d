//! What the report shows for each scenario and how it formats numbers: the servers in table
//! order, the figures (metric, column title, direction) per scenario, and median/min/max.

use serde_json::Value;

/// Servers in report order; Switchboard first, it is the reference of every ratio.
pub(super) const SERVERS: &[&str] = &["switchboard", "sockudo", "socketio", "ws", "jaccloud"];
pub(super) const REFERENCE: &str = "switchboard";

pub(super) fn display_name(server: &str) -> &str {
    match server {
        "switchboard" => "Switchboard",
        "sockudo" => "Sockudo 5.2",
        "socketio" => "Socket.IO 4",
        "ws" => "bare ws (floor)",
        "jaccloud" => "Jac Cloud 0.2.11",
        other => other,
    }
}

/// A figure reported per scenario: the metric key, its column title, and whether more is better.
pub(super) struct Figure {
    pub(super) key: &'static str,
    pub(super) title: &'static str,
    pub(super) higher_is_better: bool,
}

const fn fig(key: &'static str, title: &'static str, higher_is_better: bool) -> Figure {
    Figure {
        key,
        title,
        higher_is_better,
    }
}

pub(super) fn figures(scenario: &str, tag: &str) -> Vec<Figure> {
    match scenario {
        "idle" => vec![
            fig(
                "rss_per_conn_bytes",
                "server RSS per connection (bytes)",
                false,
            ),
            fig("pss_per_conn_bytes", "PSS per connection (bytes)", false),
            fig(
                "kernel_slab_per_conn_pair_bytes",
                "kernel slab per connection pair (bytes, both ends)",
                false,
            ),
            fig(
                "connections_alive_after_hold",
                "connections alive after hold",
                true,
            ),
        ],
        "connect" => vec![
            fig("handshakes_per_sec", "handshakes/s", true),
            fig("handshake_p50_ms", "handshake p50 (ms)", false),
            fig("handshake_p99_ms", "handshake p99 (ms)", false),
            fig(
                "server_cpu_us_per_handshake",
                "server CPU per handshake (us)",
                false,
            ),
        ],
        "fanout" | "rooms" | "namespace" if tag.contains("rate") => vec![
            fig("p50_ms", "latency p50 (ms)", false),
            fig("p90_ms", "p90 (ms)", false),
            fig("p99_ms", "p99 (ms)", false),
            fig("p999_ms", "p99.9 (ms)", false),
            fig("deliveries_per_sec", "deliveries/s", true),
            fig("lost", "lost", false),
            fig(
                "server_cpu_ns_per_delivery",
                "server CPU per delivery (ns)",
                false,
            ),
        ],
        "fanout" | "rooms" | "channel" | "namespace" => vec![
            fig("deliveries_per_sec", "deliveries/s", true),
            fig(
                "server_cpu_ns_per_delivery",
                "server CPU per delivery (ns)",
                false,
            ),
            fig("p50_ms", "latency p50 (ms)", false),
            fig("p99_ms", "p99 (ms)", false),
            fig("lost", "lost", false),
            fig("server_cpu_util", "server CPU (cores)", true),
            fig("generator_cpu_util", "generator CPU (cores)", true),
        ],
        "publish" => vec![
            fig("messages_per_sec", "items published/s", true),
            fig("requests_per_sec", "HTTP requests/s", true),
            fig("deliveries_per_sec", "deliveries/s", true),
            fig("p50_ms", "publish-to-receive p50 (ms)", false),
            fig("p99_ms", "p99 (ms)", false),
            fig("lost", "lost", false),
            fig("publish_errors", "failed requests", false),
            fig(
                "server_cpu_ns_per_delivery",
                "server CPU per delivery (ns)",
                false,
            ),
        ],
        "cluster" => vec![
            fig("deliveries_per_sec", "deliveries/s", true),
            fig("p50_ms", "latency p50 (ms)", false),
            fig("p99_ms", "p99 (ms)", false),
            fig("lost", "lost", false),
            fig(
                "nodes_cpu_ns_per_delivery",
                "all nodes' CPU per delivery (ns)",
                false,
            ),
            fig(
                "backplane_cpu_us_per_message",
                "backplane CPU per message (us)",
                false,
            ),
            fig("backplane_cpu_util", "backplane CPU (cores)", false),
        ],
        "presence" => vec![
            fig("join_deliveries_per_sec", "join storm: deliveries/s", true),
            fig("join_p50_ms", "join online-update p50 (ms)", false),
            fig("join_p99_ms", "join online-update p99 (ms)", false),
            fig(
                "leave_deliveries_per_sec",
                "leave storm: deliveries/s",
                true,
            ),
            fig("leave_p99_ms", "leave online-update p99 (ms)", false),
            fig(
                "rss_per_member_bytes",
                "server RSS per member (bytes)",
                false,
            ),
        ],
        _ => vec![
            fig("calls_per_sec", "round trips/s", true),
            fig("p50_ms", "latency p50 (ms)", false),
            fig("p99_ms", "p99 (ms)", false),
            fig("errors", "errors", false),
            fig("server_cpu_us_per_call", "server CPU per call (us)", false),
        ],
    }
}

pub(super) struct Stat {
    pub(super) median: f64,
    pub(super) min: f64,
    pub(super) max: f64,
    pub(super) n: usize,
}

pub(super) fn stat(values: &mut [f64]) -> Option<Stat> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let n = values.len();
    let median = if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    };
    Some(Stat {
        median,
        min: values[0],
        max: values[n - 1],
        n,
    })
}

pub(super) fn fmt_num(x: f64) -> String {
    let a = x.abs();
    if a >= 1000.0 {
        group_thousands(x.round() as i64)
    } else if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a == 0.0 {
        "0".into()
    } else {
        format!("{x:.2}")
    }
}

pub(super) fn group_thousands(v: i64) -> String {
    let digits = v.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0 { format!("-{out}") } else { out }
}

pub(super) fn collect(runs: &[Value], key: &str) -> Vec<f64> {
    runs.iter()
        .filter_map(|r| r["metrics"][key].as_f64())
        .collect()
}
