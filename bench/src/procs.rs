//! The stack's processes as the bench sees them: CPU seconds and peak resident memory of each
//! `make up` process over a scenario, read from `/proc` (pids from `.dev/run/<name>.pid`).

use std::path::Path;
use std::time::Instant;

/// Services whose processes are measured (`.dev/run/<name>.pid`, program name), the broker last.
pub const PROCESSES: [(&str, &str); 6] = [
    ("identity", "identity"),
    ("catalog", "catalog"),
    ("cart", "cart"),
    ("order", "order"),
    ("payment", "payment"),
    ("broker", "tansu"),
];

/// Per-process CPU ticks and peak RSS at one moment. Taking it reads each process's peak-RSS
/// count, then restarts it, so the next snapshot's peaks are the peaks between the two.
pub struct Snapshot {
    at: Instant,
    pids: Vec<Option<u32>>,
    ticks: Vec<Option<u64>>,
    /// Peak RSS (MiB) since the count was last restarted, read before restarting it.
    peaks: Vec<Option<f64>>,
    /// Whether the peak was restarted (`/proc/<pid>/clear_refs`); else it is the peak since start.
    peak_restarted: Vec<bool>,
    /// This bench's own CPU ticks: it shares the machine with the stack.
    own: Option<u64>,
    /// The whole machine's (busy, total) ticks from `/proc/stat`, all cores.
    machine: Option<(u64, u64)>,
}

/// The machine's busy and total CPU ticks so far (`cpu` line of `/proc/stat`; idle and iowait
/// are not busy).
fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let f: Vec<u64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user already).
    let total: u64 = f.iter().take(8).sum();
    let idle = f.get(3)? + f.get(4)?;
    Some((total - idle, total))
}

pub fn pid_of(run_dir: &Path, file: &str, program: &str) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(run_dir.join(format!("{file}.pid")))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    // The pid file may be stale and the pid reused: check the program.
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let argv0 = cmdline.split(|b| *b == 0).next()?;
    let argv0 = String::from_utf8_lossy(argv0);
    (argv0.rsplit('/').next() == Some(program)).then_some(pid)
}

/// CPU time (user + system) of `pid` so far, in clock ticks (`/proc/<pid>/stat` fields 14, 15).
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Peak resident set (`VmHWM`) since start or since the last restart, in MiB.
fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Restart the peak-RSS count of `pid` at its current RSS (Linux: `5` into `clear_refs`).
fn restart_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

impl Snapshot {
    pub fn take(run_dir: &Path) -> Self {
        let pids: Vec<Option<u32>> = PROCESSES
            .iter()
            .map(|(file, program)| pid_of(run_dir, file, program))
            .collect();
        Snapshot {
            at: Instant::now(),
            ticks: pids.iter().map(|p| p.and_then(cpu_ticks)).collect(),
            peaks: pids.iter().map(|p| p.and_then(peak_rss_mib)).collect(),
            peak_restarted: pids.iter().map(|p| p.is_some_and(restart_peak)).collect(),
            pids,
            own: cpu_ticks(std::process::id()),
            machine: machine_ticks(),
        }
    }

    /// Whether any of the stack's processes was found.
    pub fn found_any(&self) -> bool {
        self.pids.iter().any(Option::is_some)
    }
}

/// Each process's CPU seconds, share of one core and peak RSS between two snapshots.
pub fn print_table(before: &Snapshot, after: &Snapshot) {
    println!("| process | CPU s | % of one core | peak RSS MiB |");
    println!("|---|---:|---:|---:|");
    let secs = after.at.duration_since(before.at).as_secs_f64();
    for (i, (file, _)) in PROCESSES.iter().enumerate() {
        let Some(pid) = before.pids[i] else {
            continue;
        };
        let cpu = match (before.ticks[i], after.ticks[i]) {
            // USER_HZ, the unit of /proc's times, is 100 on Linux.
            (Some(b), Some(a)) => Some(a.saturating_sub(b) as f64 / 100.0),
            _ => None,
        };
        // The process must be the same one: a restarted service has a new pid.
        let rss = after.peaks[i].filter(|_| after.pids[i] == Some(pid));
        let since = if before.peak_restarted[i] {
            ""
        } else {
            " (since start)"
        };
        println!(
            "| {file} | {} | {} | {}{since} |",
            cpu.map_or("?".into(), |c| format!("{c:.1}")),
            cpu.map_or("?".into(), |c| format!("{:.0}", 100.0 * c / secs)),
            rss.map_or("?".into(), |r| format!("{r:.0}")),
        );
    }
    let own = match (before.own, after.own) {
        (Some(b), Some(a)) => format!("{:.1}", a.saturating_sub(b) as f64 / 100.0),
        _ => "?".into(),
    };
    println!("| bench (this process) | {own} | | |");
    if let (Some((b_busy, b_total)), Some((a_busy, a_total))) = (before.machine, after.machine) {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let busy = (a_busy - b_busy) as f64 / (a_total - b_total).max(1) as f64;
        println!(
            "machine: {:.0}% of {cores} cores busy over the run (everything on it, other work included)",
            100.0 * busy
        );
    }
}
