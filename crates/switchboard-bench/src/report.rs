//! Turns a directory of JSON records (one per run) into BENCHMARKS.md and SVG charts: per scenario
//! and parameter set, one row per server with the median and min-max over repetitions and the
//! ratio to Switchboard.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use plotters::prelude::*;
use serde_json::Value;

#[derive(Args)]
pub struct ReportArgs {
    /// Directory of JSON records written by the scenarios (and n/a records from bench/run.sh);
    /// repeat to combine runs (e.g. a quick run of every peer and a full run of some).
    #[arg(long, required = true)]
    pub results: Vec<PathBuf>,
    /// The Markdown file to write.
    #[arg(long, default_value = "BENCHMARKS.md")]
    pub out: PathBuf,
    /// Directory for the SVG charts (linked relative to the Markdown file).
    #[arg(long, default_value = "bench/charts")]
    pub charts: PathBuf,
    /// The command(s) that produced the records, quoted in the report.
    #[arg(long)]
    pub command: Vec<String>,
    /// Seconds the run took.
    #[arg(long)]
    pub elapsed: Option<u64>,
    /// A hand-written Markdown file of findings, included after the method section.
    #[arg(long)]
    pub notes: Option<PathBuf>,
    /// What was measured (commit, build time), quoted in the report.
    #[arg(long)]
    pub revision: Option<String>,
}

/// Servers in report order; Switchboard first, it is the reference of every ratio.
const SERVERS: &[&str] = &["switchboard", "sockudo", "socketio", "ws", "jaccloud"];
const REFERENCE: &str = "switchboard";

fn display_name(server: &str) -> &str {
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
struct Figure {
    key: &'static str,
    title: &'static str,
    higher_is_better: bool,
}

const fn fig(key: &'static str, title: &'static str, higher_is_better: bool) -> Figure {
    Figure {
        key,
        title,
        higher_is_better,
    }
}

fn figures(scenario: &str, tag: &str) -> Vec<Figure> {
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
        "fanout" | "rooms" if tag.contains("rate") => vec![
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
        "fanout" | "rooms" => vec![
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
        _ => vec![
            fig("calls_per_sec", "round trips/s", true),
            fig("p50_ms", "latency p50 (ms)", false),
            fig("p99_ms", "p99 (ms)", false),
            fig("errors", "errors", false),
            fig("server_cpu_us_per_call", "server CPU per call (us)", false),
        ],
    }
}

struct Stat {
    median: f64,
    min: f64,
    max: f64,
    n: usize,
}

fn stat(values: &mut [f64]) -> Option<Stat> {
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

fn fmt_num(x: f64) -> String {
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

fn group_thousands(v: i64) -> String {
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

/// Records of one (scenario, tag), by server.
#[derive(Default)]
struct Group {
    runs: BTreeMap<String, Vec<Value>>,
    na: BTreeMap<String, String>,
    params: Option<Value>,
}

pub fn run(args: &ReportArgs) -> anyhow::Result<()> {
    let mut groups: BTreeMap<(String, String), Group> = BTreeMap::new();
    let mut na_everywhere: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut machine = None;
    let mut first_time = u64::MAX;
    let mut paths = Vec::new();
    for dir in &args.results {
        for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            paths.push(entry?.path());
        }
    }
    for path in paths {
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let record: Value = serde_json::from_str(&std::fs::read_to_string(&path)?)
            .with_context(|| format!("parsing {}", path.display()))?;
        let scenario = record["scenario"].as_str().unwrap_or("").to_string();
        let server = record["server"].as_str().unwrap_or("").to_string();
        if let Some(reason) = record["na"].as_str() {
            na_everywhere.insert((scenario, server), reason.to_string());
            continue;
        }
        if machine.is_none() {
            machine = Some(record["machine"].clone());
        }
        first_time = first_time.min(record["unix_time"].as_u64().unwrap_or(u64::MAX));
        let mut tag = record["tag"].as_str().unwrap_or("").to_string();
        // Runs of different lengths (quick and full mode) are reported apart.
        if let Some(d) = record["params"]["duration"].as_f64() {
            tag = format!("{tag}-{d}s");
        }
        let group = groups.entry((scenario, tag)).or_default();
        group.params.get_or_insert_with(|| record["params"].clone());
        group.runs.entry(server).or_default().push(record);
    }
    // n/a records apply to every parameter set of their scenario.
    for ((scenario, tag), group) in groups.iter_mut() {
        let _ = tag;
        for ((s, server), reason) in &na_everywhere {
            if s == scenario && !group.runs.contains_key(server) {
                group.na.insert(server.clone(), reason.clone());
            }
        }
    }
    std::fs::create_dir_all(&args.charts)?;
    let chart_link = relative_link(&args.out, &args.charts);
    let fonts_ok = register_font();

    let mut md = String::new();
    writeln!(md, "# Benchmarks\n")?;
    writeln!(
        md,
        "Switchboard side by side with the servers people would pick instead, on the same machine, in \
         the same run, with the same scenarios. Generated by `switchboard-bench report` from the JSON \
         records of the run(s) below; do not edit by hand, rerun the commands.\n"
    )?;
    let commands = if args.command.is_empty() {
        vec!["bench/run.sh".to_string()]
    } else {
        args.command.clone()
    };
    writeln!(md, "```sh\n{}\n```\n", commands.join("\n"))?;
    if let Some(rev) = &args.revision {
        writeln!(md, "Switchboard revision: {rev}.\n")?;
    }
    if let Some(m) = &machine {
        let when = if first_time == u64::MAX {
            String::new()
        } else {
            format!(", run started at unix time {first_time}")
        };
        writeln!(
            md,
            "Machine: {} core(s), CPU `{}`, kernel `{}`, {:.1} GiB RAM{when}{}.\n",
            m["cores"],
            m["cpu_model"].as_str().unwrap_or("?"),
            m["kernel"].as_str().unwrap_or("?"),
            m["memory_total_bytes"].as_f64().unwrap_or(0.0) / (1u64 << 30) as f64,
            args.elapsed
                .map(|e| format!("; the scenarios took {e} s"))
                .unwrap_or_default(),
        )?;
    }
    md.push_str(METHOD);
    if let Some(notes) = &args.notes {
        let text = std::fs::read_to_string(notes)
            .with_context(|| format!("reading {}", notes.display()))?;
        md.push('\n');
        md.push_str(text.trim_end());
        md.push('\n');
    }

    let order = ["idle", "connect", "fanout", "rooms", "rpc"];
    // Fan-out across S for the charts.
    // Per server: S -> (run length, deliveries/s, CPU per delivery); the longest runs win.
    let mut fanout_points: BTreeMap<String, BTreeMap<u64, (f64, f64, f64)>> = BTreeMap::new();
    for scenario in order {
        let keys: Vec<_> = groups
            .keys()
            .filter(|(s, _)| s == scenario)
            .cloned()
            .collect();
        if keys.is_empty() {
            continue;
        }
        writeln!(md, "\n## {scenario}\n")?;
        md.push_str(scenario_blurb(scenario));
        for key in keys {
            let group = &groups[&key];
            let figs = figures(scenario, &key.1);
            writeln!(md, "\n### {scenario} `{}`\n", key.1)?;
            if let Some(p) = &group.params {
                writeln!(md, "Parameters: `{p}`\n")?;
            }
            // Header.
            write!(md, "| server | runs |")?;
            for f in &figs {
                write!(md, " {} |", f.title)?;
            }
            writeln!(md, " {} vs Switchboard |", figs[0].title)?;
            write!(md, "| --- | ---: |")?;
            for _ in &figs {
                write!(md, " ---: |")?;
            }
            writeln!(md, " ---: |")?;
            let reference = group
                .runs
                .get(REFERENCE)
                .and_then(|runs| stat(&mut collect(runs, figs[0].key)));
            let mut bars = Vec::new();
            for server in ordered_servers(group) {
                if let Some(reason) = group.na.get(&server) {
                    write!(md, "| {} | 0 |", display_name(&server))?;
                    for _ in &figs {
                        write!(md, " n/a |")?;
                    }
                    writeln!(md, " n/a: {reason} |")?;
                    continue;
                }
                let Some(runs) = group.runs.get(&server) else {
                    continue;
                };
                write!(md, "| {} | {} |", display_name(&server), runs.len())?;
                let mut first = None;
                for f in &figs {
                    match stat(&mut collect(runs, f.key)) {
                        Some(s) => {
                            if s.n > 1 && s.min != s.max {
                                write!(
                                    md,
                                    " {} ({}–{}) |",
                                    fmt_num(s.median),
                                    fmt_num(s.min),
                                    fmt_num(s.max)
                                )?;
                            } else {
                                write!(md, " {} |", fmt_num(s.median))?;
                            }
                            if first.is_none() {
                                first = Some(s);
                            }
                        }
                        None => write!(md, " – |")?,
                    }
                }
                let ratio = match (&first, &reference) {
                    (Some(s), Some(r)) if r.median != 0.0 => format!("{:.2}x", s.median / r.median),
                    _ => "–".into(),
                };
                writeln!(md, " {ratio} |")?;
                // Errors worth seeing.
                for run in runs.iter().take(1) {
                    for k in ["first_error", "publisher_error"] {
                        if let Some(e) = run["metrics"][k].as_str() {
                            bars.push((
                                format!(
                                    "note: {} {k}: {}",
                                    display_name(&server),
                                    e.chars().take(200).collect::<String>()
                                ),
                                0.0,
                                0.0,
                                0.0,
                            ));
                        }
                    }
                }
                if let Some(s) = first {
                    bars.push((server.clone(), s.median, s.min, s.max));
                    if scenario == "fanout" && key.1.contains("-flat") {
                        let params = group.params.as_ref();
                        if let Some(subs) = params.and_then(|p| p["subscribers"].as_f64()) {
                            let length = params.and_then(|p| p["duration"].as_f64()).unwrap_or(0.0);
                            let cost = stat(&mut collect(runs, "server_cpu_ns_per_delivery"))
                                .map_or(0.0, |c| c.median);
                            let slot = fanout_points
                                .entry(server.clone())
                                .or_default()
                                .entry(subs as u64)
                                .or_insert((length, s.median, cost));
                            if length > slot.0 {
                                *slot = (length, s.median, cost);
                            }
                        }
                    }
                }
            }
            let notes: Vec<_> = bars
                .iter()
                .filter(|b| b.0.starts_with("note: "))
                .map(|b| b.0.clone())
                .collect();
            for n in &notes {
                writeln!(
                    md,
                    "\n- {}",
                    n.trim_start_matches("note: ").replace('|', "\\|")
                )?;
            }
            let bars: Vec<_> = bars
                .into_iter()
                .filter(|b| !b.0.starts_with("note: "))
                .collect();
            if fonts_ok && !bars.is_empty() {
                let file = format!("{scenario}-{}.svg", key.1);
                let path = args.charts.join(&file);
                let higher = if figs[0].higher_is_better {
                    "higher is better"
                } else {
                    "lower is better"
                };
                match bar_chart(
                    &path,
                    &format!("{scenario} {}: {} ({higher})", key.1, figs[0].title),
                    &bars,
                ) {
                    Ok(()) => writeln!(md, "\n![{scenario} {}]({chart_link}/{file})", key.1)?,
                    Err(e) => writeln!(md, "\n(chart failed: {e})")?,
                }
            }
        }
    }
    let fanout_curve: BTreeMap<String, Vec<(f64, f64, f64)>> = fanout_points
        .into_iter()
        .map(|(server, points)| {
            let v = points
                .into_iter()
                .map(|(subs, (_, d, c))| (subs as f64, d, c))
                .collect();
            (server, v)
        })
        .collect();
    if fonts_ok && fanout_curve.values().any(|v| v.len() > 1) {
        let path = args.charts.join("fanout-scaling.svg");
        match scaling_chart(&path, &fanout_curve) {
            Ok(()) => writeln!(
                md,
                "\n## fan-out scaling\n\nDeliveries per second (flat out) and server CPU per delivery as the \
                 channel grows; a flat cost line means the per-delivery cost does not grow with S.\n\n\
                 ![fanout scaling]({chart_link}/fanout-scaling.svg)"
            )?,
            Err(e) => writeln!(md, "\n(scaling chart failed: {e})")?,
        }
    }
    if !fonts_ok {
        writeln!(
            md,
            "\n(Charts skipped: no TrueType font found for plotters.)"
        )?;
    }
    std::fs::write(&args.out, md)?;
    println!(
        "wrote {} and charts in {}",
        args.out.display(),
        args.charts.display()
    );
    Ok(())
}

const METHOD: &str = "\
How it is measured (see `bench/run.sh` and `crates/switchboard-bench`):

- Every server runs on one core (`taskset -c 0`), the generator on the other (`taskset -c 1`), one
  thread. Each server gets the same warm-up (200 connections opened and closed) and is started fresh
  for each scenario (for `idle`, for each repetition). Figures are the median over the repetitions,
  with min–max in parentheses. Ratios are the server's median divided by Switchboard's.
- Each server is driven through its own protocol, the way its clients use it: Switchboard and Jac
  Cloud through the Jac Cloud dialect (`channel` events to publish, `walker` events for rpc), Sockudo
  through the Pusher protocol (WebSocket subscribe, publish with its signed HTTP events API; Sockudo
  answers every API request with `connection: close`, so each publish opens a new TCP connection), Socket.IO through Engine.IO v4 over a raw WebSocket (`42[\"pub\",room,data]`),
  the `ws` floor with raw text frames it forwards untouched.
- Latency is end to end: the publisher writes its wall-clock time into the payload, each subscriber
  subtracts it from its own clock on arrival (same machine, same clock) into an HDR histogram.
- Flat-out fan-out keeps at most 64 messages per subscriber in flight (a publisher waits for
  deliveries before sending more), so no server's outbound queue has to overflow; fixed-rate runs
  publish on a 1 ms tick regardless of deliveries.
- `server CPU` is user+system time of the server process (and its children) from /proc, divided by
  the measured interval or by the number of deliveries. Loopback TCP work done in softirq context is
  not always charged to the process, so it undercounts kernel work similarly for every server.
  `generator CPU` near 1.0 means the generator, not the server, may have been the limit.
- The machine is shared with other builds (niced). Linux groups processes by session for scheduling
  (autogroup), so `nice` alone does not keep them off the pinned cores; `bench/run.sh` runs in its
  own session with a raised autogroup weight. What they still take shows as the min–max spread.
- Tables are keyed by parameters: `n5000` is N = 5,000 connections, `s1000-flat` is S = 1,000
  subscribers flat out, `s1000-rate20` is 20 messages/s to 1,000 subscribers,
  `m100k10-rate10` is 100 rooms of 10 with 10 messages/s each, `c50` is 50 rpc clients.

";

fn scenario_blurb(scenario: &str) -> &'static str {
    match scenario {
        "idle" => {
            "Open N connections, hold them, read the server's memory from /proc (VmRSS and smaps_rollup \
                   PSS) before and after. Kernel slab memory (TCP, sock_inode_cache, dentry, filp, eventpoll) \
                   is system wide and covers both ends of each loopback connection.\n"
        }
        "connect" => {
            "Open N connections with 100 handshakes in flight; a handshake ends when the connection \
                      is usable (Jac: the `connection` frame; Pusher: `connection_established`; Socket.IO: the \
                      namespace `40` reply; ws: the 101 response).\n"
        }
        "fanout" => {
            "S subscribers on one channel, one publisher; `lost` counts deliveries that never \
                     arrived (must be 0 below saturation).\n"
        }
        "rooms" => {
            "M channels of K subscribers, one publisher per channel at a fixed rate (a chat-like load).\n"
        }
        _ => {
            "C clients each calling the `chat_service` walker with `response: true`, one call in flight \
              per client, as a logged-in user (seed 000 declares no auth for it, so both Jac Cloud \
              and Switchboard's demo require a login).\n"
        }
    }
}

fn collect(runs: &[Value], key: &str) -> Vec<f64> {
    runs.iter()
        .filter_map(|r| r["metrics"][key].as_f64())
        .collect()
}

fn ordered_servers(group: &Group) -> Vec<String> {
    let mut out: Vec<String> = SERVERS
        .iter()
        .map(|s| s.to_string())
        .filter(|s| group.runs.contains_key(s) || group.na.contains_key(s))
        .collect();
    for s in group.runs.keys().chain(group.na.keys()) {
        if !out.contains(s) {
            out.push(s.clone());
        }
    }
    out
}

fn relative_link(md: &Path, charts: &Path) -> String {
    let base = md.parent().map(|p| p.to_path_buf()).unwrap_or_default();
    let base = std::fs::canonicalize(if base.as_os_str().is_empty() {
        Path::new(".")
    } else {
        &base
    })
    .ok();
    let charts_abs = std::fs::canonicalize(charts).ok();
    match (base, charts_abs) {
        (Some(b), Some(c)) => c
            .strip_prefix(&b)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| c.display().to_string()),
        _ => charts.display().to_string(),
    }
}

fn register_font() -> bool {
    const CANDIDATES: &[&str] = &[
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    ];
    for path in CANDIDATES {
        if let Ok(bytes) = std::fs::read(path) {
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                return true;
            }
        }
    }
    false
}

const COLORS: &[RGBColor] = &[
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(214, 39, 40),
];

fn color_of(server: &str) -> RGBColor {
    let i = SERVERS
        .iter()
        .position(|s| *s == server)
        .unwrap_or(SERVERS.len() - 1);
    COLORS[i % COLORS.len()]
}

/// Horizontal bars (median) with min-max whiskers, one per server.
fn bar_chart(path: &Path, title: &str, bars: &[(String, f64, f64, f64)]) -> anyhow::Result<()> {
    let height = 90 + 40 * bars.len() as u32;
    let root = SVGBackend::new(path, (820, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let max = bars
        .iter()
        .map(|b| b.3.max(b.1))
        .fold(0.0f64, f64::max)
        .max(1e-9)
        * 1.15;
    let n = bars.len() as i32;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(140)
        .build_cartesian_2d(0.0..max, (0..n).into_segmented())?;
    let names: Vec<String> = bars
        .iter()
        .map(|b| display_name(&b.0).to_string())
        .collect();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => names.get(*i as usize).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .x_label_formatter(&|v| fmt_num(*v))
        .draw()?;
    for (i, (server, median, min, max_v)) in bars.iter().enumerate() {
        let i = i as i32;
        let color = color_of(server);
        chart.draw_series(std::iter::once(Rectangle::new(
            [
                (0.0, SegmentValue::Exact(i)),
                (*median, SegmentValue::Exact(i + 1)),
            ],
            color.mix(0.8).filled(),
        )))?;
        chart.draw_series(std::iter::once(PathElement::new(
            vec![
                (*min, SegmentValue::CenterOf(i)),
                (*max_v, SegmentValue::CenterOf(i)),
            ],
            BLACK.stroke_width(2),
        )))?;
        chart.draw_series(std::iter::once(Text::new(
            fmt_num(*median),
            (max_v.max(*median) + max * 0.01, SegmentValue::CenterOf(i)),
            ("sans-serif", 13),
        )))?;
    }
    root.present()?;
    Ok(())
}

/// Deliveries/s and CPU per delivery against S, one line per server, log-scaled S.
fn scaling_chart(
    path: &Path,
    curves: &BTreeMap<String, Vec<(f64, f64, f64)>>,
) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (1000, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(500);
    let s_max = curves
        .values()
        .flatten()
        .map(|p| p.0)
        .fold(1.0f64, f64::max)
        * 1.5;
    let s_min = curves
        .values()
        .flatten()
        .map(|p| p.0)
        .fold(f64::MAX, f64::min)
        .max(1.0)
        / 1.5;
    for (area, title, pick) in [
        (&left, "deliveries/s (flat out)", 1usize),
        (&right, "server CPU per delivery (ns)", 2usize),
    ] {
        let y_max = curves
            .values()
            .flatten()
            .map(|p| if pick == 1 { p.1 } else { p.2 })
            .fold(0.0f64, f64::max)
            * 1.15;
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(35)
            .y_label_area_size(80)
            .build_cartesian_2d((s_min..s_max).log_scale(), 0.0..y_max.max(1e-9))?;
        chart
            .configure_mesh()
            .x_desc("subscribers S")
            .x_label_formatter(&|v| fmt_num(*v))
            .y_label_formatter(&|v| fmt_num(*v))
            .draw()?;
        for (server, points) in curves {
            let mut pts: Vec<(f64, f64)> = points
                .iter()
                .map(|p| (p.0, if pick == 1 { p.1 } else { p.2 }))
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            let color = color_of(server);
            chart
                .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?
                .label(display_name(server).to_string())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
            chart.draw_series(pts.iter().map(|p| Circle::new(*p, 3, color.filled())))?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}
