//! What a bench run measured: latency histograms, the per-role tally, the report and
//! its printed table.

use std::collections::HashMap;

use serde::Serialize;

use super::{Scenario, nodes::NodeReport};

/// A log-bucketed latency histogram (1% resolution, fixed memory).
#[derive(Debug, Clone)]
pub struct Histogram {
    buckets: Vec<u64>,
    count: u64,
    pub(super) max_us: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: vec![0; 2200],
            count: 0,
            max_us: 0,
        }
    }
}

impl Histogram {
    /// Records one latency in microseconds.
    pub fn record(&mut self, us: u64) {
        let i = ((us.max(1) as f64).ln() * 100.0) as usize;
        let i = i.min(self.buckets.len() - 1);
        self.buckets[i] += 1;
        self.count += 1;
        self.max_us = self.max_us.max(us);
    }

    /// Adds another histogram.
    pub fn merge(&mut self, o: &Histogram) {
        for (a, b) in self.buckets.iter_mut().zip(&o.buckets) {
            *a += b;
        }
        self.count += o.count;
        self.max_us = self.max_us.max(o.max_us);
    }

    /// Latencies recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The latency at quantile `q` (0..1), in microseconds.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let target = ((self.count as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= target {
                return ((i as f64 + 0.5) / 100.0).exp() as u64;
            }
        }
        self.max_us
    }
}

/// What one role group of viewers saw.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RoleReport {
    pub viewers: u64,
    pub received: u64,
    pub expected: u64,
    pub missed: u64,
    pub duplicates: u64,
    /// Members-only comments received by a role that must never see them.
    pub leaks: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    #[serde(skip)]
    pub(super) hist: Histogram,
}

/// A latency summary, in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Latency {
    pub count: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    /// Summarises a histogram.
    pub fn of(h: &Histogram) -> Latency {
        let ms = |us: u64| us as f64 / 1000.0;
        Latency {
            count: h.count,
            p50_ms: ms(h.quantile(0.5)),
            p99_ms: ms(h.quantile(0.99)),
            max_ms: ms(h.max_us),
        }
    }
}

/// How viewers came through faults (`--survive-faults`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Survival {
    /// Viewers that reconnected at least once, and the reconnects in all.
    pub viewers_reconnected: u64,
    pub reconnects: u64,
    /// From losing a socket to the new subscribe reply (history refetch included).
    pub reconnect: Latency,
    /// Sockets found silent past `--dead-after-s` (the rest were closed or reset).
    pub dead_sockets: u64,
    /// Resubscribes answered `recovered: false` (history refetched over REST).
    pub unrecovered: u64,
    /// Comments got from the history refetch rather than live.
    pub refilled: u64,
    /// Comments delivered on their node without a seq while the bus was away, then again
    /// numbered (the protocol's allowed repeat; not counted as duplicates).
    pub renumbered: u64,
    /// Channel seqs skipped without the server saying so.
    pub gaps: u64,
    pub duplicates: u64,
    /// Acknowledged comments an eligible viewer never got, live or from history.
    pub missing: u64,
    /// Events whose seq was checked (0 would mean the gap check saw nothing).
    pub seq_checked: u64,
    /// Viewers still reconnecting when the run ended.
    pub down_at_end: u64,
    /// The viewer with the most gaps + duplicates + missing (then the slowest return).
    pub worst: Option<WorstViewer>,
}

/// One viewer's faults, for the worst one.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WorstViewer {
    pub index: usize,
    pub role: String,
    pub first_node: usize,
    pub gaps: u64,
    pub duplicates: u64,
    pub missing: u64,
    pub reconnects: u64,
    pub reconnect_max_ms: f64,
}

/// Posts refused during an outage: answered 503 (with their latency) or unreachable.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Refusals {
    pub refused_503: u64,
    pub codes: HashMap<String, u64>,
    pub latency: Latency,
    /// Posts no node accepted a connection for.
    pub unreachable: u64,
    /// Posts acknowledged after the last 503 (None: no 503): posting resumed.
    pub acked_after_last_refusal: Option<u64>,
}

/// The result of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: Scenario,
    pub viewers: usize,
    pub posters: usize,
    pub duration_s: f64,
    pub sent: u64,
    pub acked: u64,
    pub send_errors: u64,
    /// Posts whose connection broke before an answer (their node died mid-request):
    /// neither acknowledged nor owed to anyone.
    pub lost_in_flight: u64,
    pub deliveries: u64,
    pub deliveries_per_s: f64,
    pub acked_per_s: f64,
    pub ack_p50_ms: f64,
    pub ack_p99_ms: f64,
    pub roles: HashMap<String, RoleReport>,
    /// Per-room p99 latency in ms (rooms scenario).
    pub room_p99_ms: Vec<f64>,
    pub rss_before_kb: Option<u64>,
    pub rss_after_kb: Option<u64>,
    pub rss_per_conn_bytes: Option<f64>,
    /// Viewers that never read (`--stalled`).
    pub stalled: usize,
    /// Sockets the server closed as slow during the run (from its `/metrics`).
    pub slow_disconnects: Option<u64>,
    /// Viewers that negotiated permessage-deflate.
    pub compressed_viewers: usize,
    /// Bytes read by viewers from their sockets, per delivered comment.
    pub wire_bytes_per_delivery: Option<f64>,
    /// The same messages' bytes before compression (JSON text), per delivery.
    pub payload_bytes_per_delivery: Option<f64>,
    /// Delivery latency of comments posted to the viewer's own node and to another.
    pub same_node: Latency,
    pub cross_node: Latency,
    /// Each node's viewers, CPU and RSS (one entry for a single-node run).
    pub nodes: Vec<NodeReport>,
    /// Present with `--survive-faults`.
    pub survival: Option<Survival>,
    pub refusals: Refusals,
    pub ok: bool,
}

/// Raises this process's open-file limit to its hard limit (sockets are files).
pub fn raise_nofile_limit() -> u64 {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            return lim.rlim_cur;
        }
    }
    0
}

/// Prints the multi-node, survival and refusal lines (only what the run has).
fn print_nodes(r: &Report) {
    let lat = |l: &Latency| {
        format!(
            "{} (p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms)",
            l.count, l.p50_ms, l.p99_ms, l.max_ms
        )
    };
    if r.nodes.len() > 1 {
        println!(
            "same-node deliveries {}; cross-node {}",
            lat(&r.same_node),
            lat(&r.cross_node)
        );
    }
    for (i, n) in r.nodes.iter().enumerate() {
        if r.nodes.len() == 1 && n.pid.is_none() {
            break;
        }
        let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
        println!(
            "node {i} {}: {} viewers, CPU {}%, RSS {} -> {} KiB{}",
            n.url,
            n.viewers,
            opt(n.cpu_percent.map(|c| format!("{c:.0}"))),
            opt(n.rss_before_kb.map(|v| v.to_string())),
            opt(n.rss_after_kb.map(|v| v.to_string())),
            if n.alive_at_end == Some(false) {
                " (dead at end)"
            } else {
                ""
            }
        );
    }
    let f = &r.refusals;
    if f.refused_503 > 0 || f.unreachable > 0 {
        println!(
            "refused: 503 {} {:?} latency {}; unreachable {}; acked after the last 503: {}",
            f.refused_503,
            f.codes,
            lat(&f.latency),
            f.unreachable,
            f.acked_after_last_refusal
                .map_or_else(|| "-".into(), |n| n.to_string())
        );
    }
    if let Some(s) = &r.survival {
        println!(
            "survive: reconnects {} by {} viewers, time to reconnect p50 {:.1} ms p99 {:.1} ms max {:.1} ms; dead sockets {}; unrecovered {} (refilled {}); renumbered {}; gaps {} dups {} missing {} (seq checked {}); down at end {}",
            s.reconnects,
            s.viewers_reconnected,
            s.reconnect.p50_ms,
            s.reconnect.p99_ms,
            s.reconnect.max_ms,
            s.dead_sockets,
            s.unrecovered,
            s.refilled,
            s.renumbered,
            s.gaps,
            s.duplicates,
            s.missing,
            s.seq_checked,
            s.down_at_end
        );
        if let Some(w) = &s.worst {
            println!(
                "worst viewer: #{} ({}, first on node {}): gaps {} dups {} missing {} reconnects {} (max {:.1} ms)",
                w.index,
                w.role,
                w.first_node,
                w.gaps,
                w.duplicates,
                w.missing,
                w.reconnects,
                w.reconnect_max_ms
            );
        }
    }
}

/// Prints the summary table.
pub(super) fn print_report(r: &Report, viewer_errors: usize, poster_errors: &[String]) {
    println!(
        "\nscenario {:?}: {} viewers, {} posters, {:.1} s",
        r.scenario, r.viewers, r.posters, r.duration_s
    );
    println!(
        "sent {}  acked {} ({:.0}/s, p50 {:.2} ms, p99 {:.2} ms)  errors {}  lost in flight {}",
        r.sent, r.acked, r.acked_per_s, r.ack_p50_ms, r.ack_p99_ms, r.send_errors, r.lost_in_flight
    );
    if r.viewers > 0 && r.scenario != Scenario::Idle {
        println!("deliveries {} ({:.0}/s)", r.deliveries, r.deliveries_per_s);
        println!(
            "{:<8} {:>8} {:>10} {:>10} {:>8} {:>6} {:>6} {:>9} {:>9} {:>9} {:>9}",
            "role",
            "viewers",
            "received",
            "expected",
            "missed",
            "dups",
            "leaks",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "max ms"
        );
        let mut names: Vec<_> = r.roles.keys().collect();
        names.sort();
        for name in names {
            let x = &r.roles[name];
            println!(
                "{:<8} {:>8} {:>10} {:>10} {:>8} {:>6} {:>6} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                name,
                x.viewers,
                x.received,
                x.expected,
                x.missed,
                x.duplicates,
                x.leaks,
                x.p50_ms,
                x.p90_ms,
                x.p99_ms,
                x.max_ms
            );
        }
    }
    if !r.room_p99_ms.is_empty() {
        let mut v = r.room_p99_ms.clone();
        v.sort_by(|a, b| a.total_cmp(b));
        println!(
            "per-room p99: median {:.2} ms, worst {:.2} ms over {} rooms",
            v[v.len() / 2],
            v[v.len() - 1],
            v.len()
        );
    }
    if let (Some(w), Some(p)) = (r.wire_bytes_per_delivery, r.payload_bytes_per_delivery) {
        println!(
            "bytes per delivery: {w:.1} on the wire, {p:.1} of JSON ({} of {} viewers compressed)",
            r.compressed_viewers, r.viewers
        );
    }
    if let (Some(b), Some(a)) = (r.rss_before_kb, r.rss_after_kb) {
        println!("server RSS: before {b} KiB, after {a} KiB");
    }
    if let Some(p) = r.rss_per_conn_bytes {
        println!("server RSS per connection: {:.0} bytes", p);
    }
    if r.stalled > 0 {
        println!(
            "stalled viewers: {}, closed by the server as slow: {}",
            r.stalled,
            r.slow_disconnects
                .map_or_else(|| "unknown (no /metrics)".into(), |n| n.to_string())
        );
    }
    print_nodes(r);
    if viewer_errors > 0 {
        println!("viewer failures: {viewer_errors}");
    }
    for e in poster_errors.iter().take(5) {
        println!("poster failure: {e}");
    }
    println!(
        "result: {}",
        if r.ok {
            "OK (no missed, duplicate or leaked deliveries)"
        } else {
            "PROBLEMS (see above)"
        }
    );
}
