//! CPU time from /proc: per process (`/proc/<pid>/stat`, utime + stime) and for the whole
//! machine (`/proc/stat`, every non-idle column), in clock ticks converted to milliseconds.

use anyhow::{Context, bail};
use std::time::Duration;

/// A process to account for, as given on the command line (`name=pid`). One name may be given
/// several times (e.g. two instances of a service); their times add up.
#[derive(Clone, Debug)]
pub struct Watched {
    pub name: String,
    pub pid: u32,
}

pub fn parse_pids(list: &str) -> anyhow::Result<Vec<Watched>> {
    let mut watched = Vec::new();
    for (name, pid) in parse_pairs(list)? {
        let pid = pid.parse().with_context(|| format!("`{name}={pid}`: pid is not a number"))?;
        watched.push(Watched { name, pid });
    }
    Ok(watched)
}

/// `a=1, b=2` as (name, value) pairs.
pub fn parse_pairs(list: &str) -> anyhow::Result<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    for entry in list.split(',').map(str::trim).filter(|entry| !entry.is_empty()) {
        let Some((name, value)) = entry.split_once('=') else { bail!("`{entry}` is not name=value") };
        pairs.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    Ok(pairs)
}

/// Resident memory of a process in KiB (`VmRSS` in `/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).context("no VmRSS line")?;
    Ok(line.split_whitespace().nth(1).context("empty VmRSS line")?.parse()?)
}

/// Clock ticks per second, from `getconf CLK_TCK`; 100 (the Linux norm) when that fails.
pub fn ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .filter(|ticks| *ticks > 0)
        .unwrap_or(100)
}

/// utime + stime of one process, in ticks.
pub fn process_ticks(pid: &str) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The command name (field 2) is in parentheses and may hold spaces; count from after it.
    let rest = stat.rsplit_once(')').map(|(_, rest)| rest).context("malformed stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Field 3 (state) is fields[0]; utime is field 14, stime field 15.
    let ticks = |n: usize| -> anyhow::Result<u64> { Ok(fields.get(n - 3).context("short stat")?.parse()?) };
    Ok(ticks(14)? + ticks(15)?)
}

/// Busy ticks of the whole machine: user, nice, system, irq, softirq, steal (not idle/iowait).
pub fn machine_ticks() -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat.lines().find(|line| line.starts_with("cpu ")).context("no cpu line in /proc/stat")?;
    let columns: Vec<u64> = line.split_whitespace().skip(1).map(str::parse).collect::<Result<_, _>>()?;
    Ok([0, 1, 2, 5, 6, 7].iter().filter_map(|i| columns.get(*i)).sum())
}

/// One reading of every watched process, this process and the machine.
#[derive(Clone, Debug)]
pub struct Sample {
    pub processes: Vec<u64>,
    pub loadgen: u64,
    pub machine: u64,
}

pub fn sample(watched: &[Watched]) -> anyhow::Result<Sample> {
    let processes =
        watched.iter().map(|w| process_ticks(&w.pid.to_string())).collect::<anyhow::Result<_>>()?;
    Ok(Sample { processes, loadgen: process_ticks("self")?, machine: machine_ticks()? })
}

pub fn busy_ticks(from: &Sample, to: &Sample) -> u64 {
    to.processes.iter().zip(&from.processes).map(|(b, a)| b.saturating_sub(*a)).sum()
}

/// Once the orders are terminal, notifications and webhooks still run; waits (at most
/// `limit`) until the watched processes together use under 2% of one core over a second.
pub async fn settle(watched: &[Watched], ticks_per_second: u64, limit: Duration) -> anyhow::Result<Sample> {
    let start = std::time::Instant::now();
    let mut last = sample(watched)?;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = sample(watched)?;
        let idle = busy_ticks(&last, &now) * 50 <= ticks_per_second;
        if idle || start.elapsed() >= limit {
            return Ok(now);
        }
        last = now;
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "a test should stop at the first unexpected value")]
mod tests {
    use super::*;

    #[test]
    fn pids_parse() {
        let parsed = parse_pids("order-api=12, inventory=13").unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!((parsed[1].name.as_str(), parsed[1].pid), ("inventory", 13));
        assert!(parse_pids("nope").is_err());
    }

    #[test]
    fn own_stat_reads() {
        assert!(process_ticks("self").is_ok());
        assert!(machine_ticks().is_ok());
        let rss = rss_kib(std::process::id()).unwrap();
        assert!(rss > 100, "a running test binary holds more than 100 KiB, got {rss}");
    }
}
