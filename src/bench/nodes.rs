//! Several nodes in one run: the node list (`--url a,b,c` or `--url` repeated), the
//! round-robin that spreads viewers and posts over it, and each node's server CPU and
//! RSS read from /proc (one `--server-pid` per node, in `--url` order).

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde::Serialize;

use super::Stop;

/// One server node of the run.
#[derive(Debug, Clone)]
pub struct Node {
    /// `http://host:port`, no trailing slash (REST).
    pub base: String,
    /// `ws://host:port/ws` (viewers, WebSocket posters).
    pub ws: String,
}

/// The nodes named by `--url` (each may hold several, comma-separated). Why: the flag
/// stays the old single URL in the common case and grows to a cluster without a new one.
pub fn parse_nodes(urls: &[String]) -> Result<Vec<Node>, String> {
    let nodes: Vec<Node> = urls
        .iter()
        .flat_map(|u| u.split(','))
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| {
            let base = u.trim_end_matches('/').to_string();
            let ws = format!(
                "{}/ws",
                base.replacen("http://", "ws://", 1)
                    .replacen("https://", "wss://", 1)
            );
            Node { base, ws }
        })
        .collect();
    if nodes.is_empty() {
        return Err("--url names no node".into());
    }
    Ok(nodes)
}

/// Reads `VmRSS` of a process in KiB.
pub fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// utime+stime of a process in clock ticks (fields 14 and 15 of /proc/PID/stat). Why:
/// the bench must report each node's CPU itself, not leave it to an outside wrapper.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after it are space-separated.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Clock ticks per second, for [`cpu_ticks`].
fn ticks_per_s() -> f64 {
    // SAFETY: sysconf only reads a constant of the system.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// The first and the latest good /proc sample of one node's process. Why the latest
/// good one: a node killed mid-run (chaos) still reports its CPU up to its death.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    ticks: u64,
    rss_kb: Option<u64>,
}

/// Samples every node's process once a second over the load (posting and drain).
pub struct Probe {
    pids: Vec<Option<u32>>,
    first: Vec<Option<Sample>>,
    last: Arc<Mutex<Vec<Option<Sample>>>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// Reads one sample of `pid`.
fn sample(pid: Option<u32>) -> Option<Sample> {
    let pid = pid?;
    Some(Sample {
        at: Instant::now(),
        ticks: cpu_ticks(pid)?,
        rss_kb: rss_kb(pid),
    })
}

impl Probe {
    /// Starts sampling `pids` (node `i` is `pids[i]`, when given) until `stop`.
    pub fn start(pids: Vec<Option<u32>>, stop: Arc<Stop>) -> Probe {
        let first: Vec<Option<Sample>> = pids.iter().map(|p| sample(*p)).collect();
        let last = Arc::new(Mutex::new(first.clone()));
        let task = pids.iter().any(Option::is_some).then(|| {
            let (pids, last) = (pids.clone(), last.clone());
            tokio::spawn(async move {
                while !stop.is_stopped() {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    let mut l = last.lock().unwrap_or_else(|e| e.into_inner());
                    for (i, p) in pids.iter().enumerate() {
                        if let Some(s) = sample(*p) {
                            l[i] = Some(s);
                        }
                    }
                }
            })
        });
        Probe {
            pids,
            first,
            last,
            task,
        }
    }

    /// Ends sampling (one last sample first) and reports each node.
    pub async fn finish(mut self, nodes: &[Node], viewers: &[usize]) -> Vec<NodeReport> {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut alive = Vec::with_capacity(nodes.len());
        for (i, p) in self.pids.iter().enumerate() {
            let now = sample(*p);
            alive.push(p.map(|_| now.is_some()));
            if now.is_some() {
                last[i] = now;
            }
        }
        let hz = ticks_per_s();
        nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let (f, l) = (self.first.get(i).copied().flatten(), last[i]);
                let cpu_percent = match (f, l) {
                    (Some(f), Some(l)) if l.at > f.at => Some(
                        (l.ticks.saturating_sub(f.ticks)) as f64 / hz / (l.at - f.at).as_secs_f64()
                            * 100.0,
                    ),
                    _ => None,
                };
                NodeReport {
                    url: n.base.clone(),
                    viewers: viewers.get(i).copied().unwrap_or(0),
                    pid: self.pids.get(i).copied().flatten(),
                    cpu_percent,
                    rss_before_kb: f.and_then(|s| s.rss_kb),
                    rss_after_kb: l.and_then(|s| s.rss_kb),
                    alive_at_end: alive.get(i).copied().flatten(),
                }
            })
            .collect()
    }
}

/// What one node did over the load.
#[derive(Debug, Clone, Serialize)]
pub struct NodeReport {
    pub url: String,
    /// Viewers that first connected here (round-robin).
    pub viewers: usize,
    pub pid: Option<u32>,
    /// utime+stime over the load, as a share of wall time (100 = one core).
    pub cpu_percent: Option<f64>,
    pub rss_before_kb: Option<u64>,
    /// The last RSS read (before its death, for a node killed mid-run).
    pub rss_after_kb: Option<u64>,
    /// Whether the process still ran at the end (None without a pid).
    pub alive_at_end: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_may_repeat_and_hold_commas() {
        let n = parse_nodes(&["http://a:1/,http://b:2".into(), "http://c:3".into()]).unwrap();
        let ws: Vec<_> = n.iter().map(|n| n.ws.as_str()).collect();
        assert_eq!(ws, ["ws://a:1/ws", "ws://b:2/ws", "ws://c:3/ws"]);
        assert_eq!(n[0].base, "http://a:1");
        assert!(parse_nodes(&[" ".into()]).is_err());
    }

    #[test]
    fn reads_its_own_cpu() {
        assert!(cpu_ticks(std::process::id()).is_some());
    }
}
