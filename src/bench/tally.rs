//! Folding the viewers' results into the report's numbers: per role, per room, per
//! node pair (same or cross), and how viewers came through faults, worst one included.

use std::collections::HashMap;

use super::{
    poster::PostTally,
    report::{Histogram, Latency, RoleReport, Survival, WorstViewer},
    viewer::ViewerResult,
};

/// What the viewers add up to.
#[derive(Default)]
pub(super) struct Folded {
    pub(super) roles: HashMap<String, RoleReport>,
    pub(super) room_hist: Vec<Histogram>,
    pub(super) viewer_errors: usize,
    pub(super) wire: u64,
    pub(super) payload: u64,
    pub(super) compressed: usize,
    pub(super) same_node: Histogram,
    pub(super) cross_node: Histogram,
    pub(super) survival: Survival,
}

/// Folds every viewer's result. `poster_room` maps a poster to its room, so a viewer
/// expects only its own room's acknowledged comments (and no members-only ones unless
/// its role may see them).
pub(super) async fn fold(
    vtasks: Vec<tokio::task::JoinHandle<Result<ViewerResult, String>>>,
    tally: &PostTally,
    rooms: usize,
    posters: usize,
    poster_room: impl Fn(usize) -> usize,
) -> Folded {
    let mut f = Folded {
        room_hist: vec![Histogram::default(); rooms],
        ..Folded::default()
    };
    let mut reconnect = Histogram::default();
    let mut worst: Option<(u64, u64, WorstViewer)> = None;
    for t in vtasks {
        let Ok(Ok(v)) = t.await else {
            f.viewer_errors += 1;
            continue;
        };
        f.wire += v.wire_bytes;
        f.payload += v.payload_bytes;
        f.compressed += usize::from(v.deflate);
        let members = v.role.is_member_or_admin();
        let expected: u64 = (0..posters)
            .filter(|p| poster_room(*p) == v.room)
            .map(|p| tally.acked_by_poster.get(p).copied().unwrap_or(0))
            .sum::<u64>()
            - if members {
                0
            } else {
                tally.members_only_by_room.get(v.room).copied().unwrap_or(0)
            };
        let unique: u64 = v.unique_by_poster.iter().sum::<u64>()
            - if members { 0 } else { v.unique_members_only };
        let missed = expected.saturating_sub(unique);
        let r = f.roles.entry(v.role.to_string()).or_default();
        r.viewers += 1;
        r.received += v.received;
        r.duplicates += v.duplicates;
        r.leaks += v.leaks;
        r.expected += expected;
        r.missed += missed;
        r.hist.merge(&v.hist);
        f.room_hist[v.room].merge(&v.hist);
        f.same_node.merge(&v.same_node);
        f.cross_node.merge(&v.cross_node);
        let s = &mut f.survival;
        s.viewers_reconnected += u64::from(v.reconnects > 0);
        s.reconnects += v.reconnects;
        s.dead_sockets += v.dead_sockets;
        s.unrecovered += v.unrecovered;
        s.refilled += v.refilled;
        s.renumbered += v.renumbered;
        s.gaps += v.gaps;
        s.duplicates += v.duplicates;
        s.missing += missed;
        s.seq_checked += v.seq_checked;
        s.down_at_end += u64::from(v.down_at_end);
        reconnect.merge(&v.reconnect_time);
        let faults = v.gaps + v.duplicates + missed;
        let slowest = Latency::of(&v.reconnect_time).max_ms;
        let key = (faults, (slowest * 1000.0) as u64);
        if worst.as_ref().is_none_or(|w| (w.0, w.1) < key) {
            worst = Some((
                key.0,
                key.1,
                WorstViewer {
                    index: v.index,
                    role: v.role.to_string(),
                    first_node: v.node,
                    gaps: v.gaps,
                    duplicates: v.duplicates,
                    missing: missed,
                    reconnects: v.reconnects,
                    reconnect_max_ms: slowest,
                },
            ));
        }
    }
    f.survival.reconnect = Latency::of(&reconnect);
    f.survival.worst = worst.map(|w| w.2);
    f
}
