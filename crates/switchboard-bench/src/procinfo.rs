//! Readers for /proc: a process's memory and CPU time, the kernel's socket memory, the machine.

use std::collections::BTreeMap;

use serde::Serialize;

/// Memory of one process, in bytes.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Memory {
    /// `VmRSS` from /proc/PID/status.
    pub rss: u64,
    /// `RssAnon` from /proc/PID/status: heap, stacks, anonymous mappings.
    pub rss_anon: u64,
    /// `Pss` from /proc/PID/smaps_rollup (shared pages divided among sharers).
    pub pss: u64,
    /// `Anonymous` from /proc/PID/smaps_rollup.
    pub anonymous: u64,
}

fn kib_field(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix(':')?;
        let kib: u64 = rest.split_whitespace().next()?.parse().ok()?;
        Some(kib * 1024)
    })
}

impl Memory {
    pub fn read(pid: u32) -> anyhow::Result<Self> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let rollup =
            std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
        Ok(Self {
            rss: kib_field(&status, "VmRSS").unwrap_or(0),
            rss_anon: kib_field(&status, "RssAnon").unwrap_or(0),
            pss: kib_field(&rollup, "Pss").unwrap_or(0),
            anonymous: kib_field(&rollup, "Anonymous").unwrap_or(0),
        })
    }

    /// Sum over a process and its descendants (Jac Cloud and Node may run workers).
    pub fn read_tree(pid: u32) -> anyhow::Result<Self> {
        let mut total = Self::read(pid)?;
        for child in descendants(pid) {
            if let Ok(m) = Self::read(child) {
                total.rss += m.rss;
                total.rss_anon += m.rss_anon;
                total.pss += m.pss;
                total.anonymous += m.anonymous;
            }
        }
        Ok(total)
    }
}

fn descendants(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    while let Some(p) = frontier.pop() {
        let path = format!("/proc/{p}/task/{p}/children");
        if let Ok(text) = std::fs::read_to_string(path) {
            for child in text
                .split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok())
            {
                out.push(child);
                frontier.push(child);
            }
        }
    }
    out
}

/// CPU seconds (user + system) used by a process and its descendants so far.
pub fn cpu_seconds(pid: u32) -> f64 {
    let ticks = clock_ticks();
    let mut total = 0.0;
    for p in std::iter::once(pid).chain(descendants(pid)) {
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) {
            // Fields after the parenthesised command name; utime and stime are fields 14, 15.
            if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
                let fields: Vec<&str> = rest.split_whitespace().collect();
                let utime: f64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0);
                let stime: f64 = fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
                total += (utime + stime) / ticks;
            }
        }
    }
    total
}

/// CPU seconds of this generator process.
pub fn self_cpu_seconds() -> f64 {
    cpu_seconds(std::process::id())
}

fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// The kernel's socket memory, system wide (both ends of every loopback connection).
#[derive(Debug, Clone, Default, Serialize)]
pub struct KernelSockets {
    /// `TCP: inuse`: TCP sockets in use.
    pub tcp_inuse: u64,
    /// `TCP: mem`, converted from pages to bytes: memory in socket buffers.
    pub tcp_mem_bytes: u64,
    /// Selected slab caches (bytes = active objects x object size), if /proc/slabinfo is readable.
    pub slab_bytes: BTreeMap<String, u64>,
}

const SLABS: &[&str] = &[
    "TCP",
    "TCPv6",
    "request_sock_TCP",
    "sock_inode_cache",
    "dentry",
    "filp",
    "eventpoll_epi",
    "eventpoll_pwq",
    "skbuff_head_cache",
    "kmalloc-rnd-01-1k",
];

impl KernelSockets {
    pub fn read() -> Self {
        let mut out = Self::default();
        let page = 4096u64;
        if let Ok(text) = std::fs::read_to_string("/proc/net/sockstat") {
            for line in text.lines() {
                if let Some(rest) = line.strip_prefix("TCP:") {
                    let parts: Vec<&str> = rest.split_whitespace().collect();
                    for pair in parts.chunks(2) {
                        if let [name, value] = pair {
                            let value: u64 = value.parse().unwrap_or(0);
                            match *name {
                                "inuse" => out.tcp_inuse = value,
                                "mem" => out.tcp_mem_bytes = value * page,
                                _ => {}
                            }
                        }
                    }
                }
            }
        }
        if let Ok(text) = std::fs::read_to_string("/proc/slabinfo") {
            for line in text.lines().skip(2) {
                let parts: Vec<&str> = line.split_whitespace().collect();
                if parts.len() < 4 || !SLABS.contains(&parts[0]) {
                    continue;
                }
                let active: u64 = parts[1].parse().unwrap_or(0);
                let size: u64 = parts[3].parse().unwrap_or(0);
                out.slab_bytes.insert(parts[0].to_string(), active * size);
            }
        }
        out
    }

    pub fn slab_total(&self) -> u64 {
        self.slab_bytes.values().sum()
    }
}

/// The machine the run happened on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpu_model: String,
    pub cores: usize,
    pub kernel: String,
    pub memory_total_bytes: u64,
    /// The 1, 5 and 15 minute load averages when the record was written, the run's own server
    /// and generator included (they add up to 2): the trace of other work sharing the machine.
    pub load_average: [f64; 3],
}

impl Machine {
    pub fn read() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let cores = cpuinfo
            .lines()
            .filter(|l| l.starts_with("processor"))
            .count();
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        Self {
            cpu_model,
            cores,
            kernel,
            memory_total_bytes: kib_field(&meminfo, "MemTotal").unwrap_or(0),
            load_average: load_average(),
        }
    }
}

/// `/proc/loadavg`'s first three fields (zeros if unreadable).
fn load_average() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut fields = text.split_whitespace().map(|v| v.parse().unwrap_or(0.0));
    std::array::from_fn(|_| fields.next().unwrap_or(0.0))
}

/// The cores a process may run on (its `Cpus_allowed_list`), e.g. `[0]` when pinned with taskset.
pub fn allowed_cpus(pid: u32) -> Vec<usize> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let Some(list) = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for part in list.trim().split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<usize>(), b.parse::<usize>()) {
                    out.extend(a..=b);
                }
            }
            None => {
                if let Ok(a) = part.parse() {
                    out.push(a);
                }
            }
        }
    }
    out
}

/// Jiffies of a set of cores from /proc/stat: (busy without niced work, niced work, total).
/// Busy includes user, system, irq and softirq time: the kernel's loopback work lands there even
/// when it is not charged to the process.
#[derive(Debug, Clone, Copy, Default)]
pub struct CoreTimes {
    pub busy: u64,
    pub nice: u64,
    pub total: u64,
}

impl CoreTimes {
    pub fn read(cpus: &[usize]) -> Self {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let mut out = Self::default();
        for line in stat.lines() {
            let mut parts = line.split_whitespace();
            let Some(name) = parts.next() else { continue };
            let Some(index) = name
                .strip_prefix("cpu")
                .and_then(|i| i.parse::<usize>().ok())
            else {
                continue;
            };
            if !cpus.contains(&index) {
                continue;
            }
            let v: Vec<u64> = parts.map(|p| p.parse().unwrap_or(0)).collect();
            // user nice system idle iowait irq softirq steal
            let get = |i: usize| v.get(i).copied().unwrap_or(0);
            out.busy += get(0) + get(2) + get(5) + get(6);
            out.nice += get(1);
            out.total += (0..8).map(get).sum::<u64>();
        }
        out
    }

    /// Shares of the interval since `before`: (busy, niced).
    pub fn shares_since(&self, before: &Self) -> (f64, f64) {
        let total = self.total.saturating_sub(before.total).max(1) as f64;
        (
            self.busy.saturating_sub(before.busy) as f64 / total,
            self.nice.saturating_sub(before.nice) as f64 / total,
        )
    }
}
