//! Measurement helpers every scenario shares: latency histograms, rounding, the server's memory,
//! and how busy the server's and the generator's cores were over a measured interval.

use hdrhistogram::Histogram;
use serde_json::json;

use super::Metrics;
use crate::procinfo::{self, Memory};

/// Latency histogram in microseconds, 1 us to 10 minutes, 3 significant figures.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

pub fn latency_metrics(prefix: &str, hist: &Histogram<u64>, out: &mut Metrics) {
    if hist.is_empty() {
        return;
    }
    for (name, q) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999)] {
        out.insert(
            format!("{prefix}{name}_ms"),
            json!(ms(hist.value_at_quantile(q))),
        );
    }
    out.insert(format!("{prefix}max_ms"), json!(ms(hist.max())));
    out.insert(
        format!("{prefix}mean_ms"),
        json!((hist.mean() / 10.0).round() / 100.0),
    );
}

pub fn memory_of(pid: Option<u32>) -> Option<Memory> {
    pid.and_then(|p| Memory::read_tree(p).ok())
}

/// Busy shares of the server's and the generator's cores over a measurement.
pub struct CoreWatch {
    server: Option<(Vec<usize>, procinfo::CoreTimes)>,
    generator: (Vec<usize>, procinfo::CoreTimes),
    /// The server's pid and its process CPU seconds at the start.
    server_cpu: Option<(u32, f64)>,
    /// Named groups of other processes (the nodes of a cluster, its backplane) with their CPU
    /// seconds at the start.
    groups: Vec<(CpuGroup, f64)>,
}

/// Processes whose CPU time is reported together under `name` (`<name>_cpu_util`,
/// `<name>_cpu_ns_per_delivery`, ...).
#[derive(Clone, Debug)]
pub struct CpuGroup {
    pub name: &'static str,
    pub pids: Vec<u32>,
}

impl CpuGroup {
    /// User and system CPU seconds of every process of the group (with their children).
    fn cpu_seconds(&self) -> f64 {
        self.pids
            .iter()
            .map(|&pid| procinfo::cpu_seconds(pid))
            .sum()
    }
}

/// What the server's CPU time is divided by: `key` names the metric, `scale` turns seconds into
/// its unit (1e6 for µs, 1e9 for ns), `count` is how many units of work were done.
pub struct PerUnit<'a> {
    pub key: &'a str,
    pub scale: f64,
    pub count: u64,
}

impl CoreWatch {
    pub fn start(server_pid: Option<u32>) -> Self {
        let server = server_pid
            .map(procinfo::allowed_cpus)
            .filter(|c| c.len() == 1)
            .map(|c| {
                let t = procinfo::CoreTimes::read(&c);
                (c, t)
            });
        let gen_cpus = procinfo::allowed_cpus(std::process::id());
        let t = procinfo::CoreTimes::read(&gen_cpus);
        Self {
            server,
            generator: (gen_cpus, t),
            server_cpu: server_pid.map(|pid| (pid, procinfo::cpu_seconds(pid))),
            groups: Vec::new(),
        }
    }

    /// Also watch these process groups over the same interval.
    pub fn with_groups(mut self, groups: &[CpuGroup]) -> Self {
        self.groups = groups
            .iter()
            .map(|g| (g.clone(), g.cpu_seconds()))
            .collect();
        self
    }

    /// Record the server's CPU use over `secs` and per unit of work, and how busy both cores were.
    pub fn finish(&self, m: &mut Metrics, secs: f64, per: PerUnit<'_>) {
        if let Some((pid, before)) = self.server_cpu {
            let cpu = procinfo::cpu_seconds(pid) - before;
            m.insert("server_cpu_util".into(), json!(round3(cpu / secs)));
            m.insert(
                per.key.into(),
                json!(round3(cpu * per.scale / per.count.max(1) as f64)),
            );
        }
        for (group, before) in &self.groups {
            let cpu = group.cpu_seconds() - before;
            m.insert(format!("{}_cpu_seconds", group.name), json!(round3(cpu)));
            m.insert(
                format!("{}_cpu_util", group.name),
                json!(round3(cpu / secs)),
            );
            m.insert(
                format!("{}_cpu_ns_per_delivery", group.name),
                json!(round3(cpu * 1e9 / per.count.max(1) as f64)),
            );
        }
        if let Some((cpus, before)) = &self.server {
            let (busy, nice) = procinfo::CoreTimes::read(cpus).shares_since(before);
            m.insert("server_core_busy".into(), json!(round3(busy)));
            m.insert("server_core_niced_other".into(), json!(round3(nice)));
        }
        if self.generator.0.len() == 1 {
            let (busy, nice) =
                procinfo::CoreTimes::read(&self.generator.0).shares_since(&self.generator.1);
            m.insert("generator_core_busy".into(), json!(round3(busy)));
            m.insert("generator_core_niced_other".into(), json!(round3(nice)));
        }
    }
}

pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
