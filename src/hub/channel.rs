//! A room: a channel's subscribers, partitioned by role group, and the batch of events
//! waiting to be written to them.
//!
//! Events collect in the room's pending batch and leave together: the first event in a
//! quiet room at once, later ones when the room's window has passed since the last
//! flush. The window adapts: it is a few times the cost of the room's last pass over its
//! subscribers, and at least the node-wide floor that grows while fan-out keeps the
//! cores busy ([`super::pressure`]), capped by `ws.flush_tick_ms`. So a small room on an
//! idle node writes each event as it comes, a room of ten thousand writes a few events
//! per syscall, and many busy rooms on a loaded node trade a few milliseconds for half
//! the syscalls (see [`Channel::enqueue`]).
//!
//! One small mutex per room guards its membership and its batch. A flush takes the
//! batch and a snapshot of the members (an `Arc`, copy-on-write) under it, then writes
//! outside it. Flushes of one room never overlap, so every socket gets the room's
//! events in `seq` order. A socket that joins while events are pending skips those
//! events: the bus has already replayed them to it (or they precede its join).

use std::{
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use super::{conn::Conn, event::Encoded};
use crate::model::Role;

/// Most events in one batch frame: selections of a batch are `u64` bit sets.
pub const MAX_BATCH_EVENTS: usize = 64;

/// Most JSON bytes in one batch frame; a larger batch leaves in several passes.
pub const MAX_BATCH_BYTES: usize = 64 * 1024;

/// How many times the cost of its last pass a busy room waits before the next one: at
/// 2, fan-out of one busy room takes at most about a third of a core, and an event waits
/// at most two passes (chosen against 1 and 4 while the engine was built; the sitting
/// in BENCHMARKS.md runs with 2).
pub const WINDOW_PER_PASS: u32 = 2;

/// A room's subscribers in one vector, grouped by role: `conns[ends[g-1]..ends[g]]` is
/// role group `g`. One allocation per room, whatever the number of groups.
#[derive(Debug, Clone, Default)]
pub struct Members {
    conns: Vec<Arc<Conn>>,
    ends: [u32; 4],
}

impl Members {
    /// The sockets of one role group.
    pub fn group(&self, role: Role) -> &[Arc<Conn>] {
        let g = role.index();
        let start = if g == 0 { 0 } else { self.ends[g - 1] as usize };
        &self.conns[start..self.ends[g] as usize]
    }

    /// Subscribers per role group.
    pub fn counts(&self) -> [usize; 4] {
        let mut c = [0; 4];
        let mut start = 0;
        for (g, end) in self.ends.iter().enumerate() {
            c[g] = *end as usize - start;
            start = *end as usize;
        }
        c
    }

    /// Number of subscribers.
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    /// Whether the room has no subscriber.
    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// Every subscriber, group by group.
    pub fn all(&self) -> &[Arc<Conn>] {
        &self.conns
    }

    /// Adds `conn` at the end of `role`'s group; false when it is already there.
    fn add(&mut self, conn: &Arc<Conn>, role: Role) -> bool {
        if self.group(role).iter().any(|c| c.id == conn.id) {
            return false;
        }
        let g = role.index();
        // Append, then move the hole forward: each later group gives its first slot to
        // its predecessor's new end.
        let mut pos = self.conns.len();
        self.conns.push(conn.clone());
        for later in (g + 1..4).rev() {
            let start = self.ends[later - 1] as usize;
            self.conns.swap(start, pos);
            pos = start;
        }
        for end in &mut self.ends[g..] {
            *end += 1;
        }
        true
    }

    /// Removes connection `id` from `role`'s group; false when it is not there.
    fn remove(&mut self, id: u64, role: Role) -> bool {
        let g = role.index();
        let start = if g == 0 { 0 } else { self.ends[g - 1] as usize };
        let Some(at) = self.group(role).iter().position(|c| c.id == id) else {
            return false;
        };
        // Swap it to the end of its group, then each later group's last slot into the
        // hole that its predecessor's shrinking leaves, and drop the final element.
        let mut hole = start + at;
        for later in g..4 {
            let last = self.ends[later] as usize - 1;
            self.conns.swap(hole, last);
            hole = last;
        }
        self.conns.pop();
        for end in &mut self.ends[g..] {
            *end -= 1;
        }
        true
    }
}

/// A socket that joined while events were pending: it skips the first `skip` of them.
#[derive(Debug, Clone, Copy)]
pub struct Joiner {
    pub id: u64,
    pub skip: u32,
}

/// Membership and batch of a room, behind its mutex.
#[derive(Debug)]
struct State {
    members: Arc<Members>,
    pending: Vec<Encoded>,
    /// JSON bytes of `pending`.
    pending_bytes: usize,
    joiners: Vec<Joiner>,
    /// A pass is writing; events that arrive meanwhile wait for the next.
    flushing: bool,
    /// A flush is due at `due` (the hub's timer will run it).
    due: Option<Instant>,
    /// Start of the last pass.
    last_flush: Option<Instant>,
    /// Current window (adapted after each pass).
    window: Duration,
    /// The room emptied and left the hub's map.
    dead: bool,
}

/// Subscribers and pending events of one channel.
#[derive(Debug)]
pub struct Channel {
    pub name: Arc<str>,
    state: Mutex<State>,
}

/// What an enqueue asks of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Nothing: a pass in progress or a due flush will take the event.
    Nothing,
    /// Flush now (the room was quiet): run [`Channel::take`] after releasing any lock.
    FlushNow,
    /// Arm the hub's timer for this instant.
    Schedule(Instant),
}

/// One chunk of a batch, taken for a pass.
#[derive(Debug)]
pub struct Batch {
    pub events: Vec<Encoded>,
    pub members: Arc<Members>,
    pub joiners: Vec<Joiner>,
    pub started: Instant,
}

impl Channel {
    /// An empty room.
    pub fn new(name: Arc<str>) -> Self {
        Channel {
            name,
            state: Mutex::new(State {
                members: Arc::default(),
                pending: Vec::new(),
                pending_bytes: 0,
                joiners: Vec::new(),
                flushing: false,
                due: None,
                last_flush: None,
                window: Duration::ZERO,
                dead: false,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `conn` to `role`'s group. Returns false when the room was retired
    /// concurrently; the caller then retries with a fresh room. With `joined` (a new
    /// subscription, not a change of group) the socket skips the events now pending.
    pub fn add(&self, conn: &Arc<Conn>, role: Role, joined: bool) -> bool {
        let mut s = self.lock();
        if s.dead {
            return false;
        }
        if Arc::make_mut(&mut s.members).add(conn, role) && joined && !s.pending.is_empty() {
            let skip = s.pending.len() as u32;
            s.joiners.push(Joiner { id: conn.id, skip });
        }
        true
    }

    /// Removes connection `id` from `role`'s group. Returns true when the room is now
    /// empty and has been marked dead (the caller removes it from the map).
    pub fn remove(&self, id: u64, role: Role) -> bool {
        let mut s = self.lock();
        Arc::make_mut(&mut s.members).remove(id, role);
        if s.members.is_empty() {
            s.dead = true;
            s.pending.clear();
            s.pending_bytes = 0;
            s.joiners.clear();
        }
        s.dead
    }

    /// A snapshot of the members.
    pub fn members(&self) -> Arc<Members> {
        self.lock().members.clone()
    }

    /// Queues `ev` for the room's next pass and says what the caller must do. `count`
    /// computes (from the members) how many sockets the event is for; it is returned
    /// with the decision. `tick` caps the window.
    pub fn enqueue(
        &self,
        ev: Encoded,
        now: Instant,
        count: impl FnOnce(&Members) -> usize,
    ) -> (usize, Next) {
        let mut s = self.lock();
        let n = count(&s.members);
        if n == 0 || s.dead {
            return (0, Next::Nothing);
        }
        s.pending_bytes += ev.text.len();
        s.pending.push(ev);
        if s.flushing || s.due.is_some() {
            return (n, Next::Nothing);
        }
        let at = s.last_flush.map(|t| t + s.window);
        match at {
            Some(at) if at > now => {
                s.due = Some(at);
                (n, Next::Schedule(at))
            }
            _ => {
                s.flushing = true;
                (n, Next::FlushNow)
            }
        }
    }

    /// The hub's timer says the flush due now may run: true when the caller should take
    /// batches, false when a pass is already running (it will see the events).
    pub fn start_due(&self) -> bool {
        let mut s = self.lock();
        s.due = None;
        if s.flushing || s.pending.is_empty() {
            return false;
        }
        s.flushing = true;
        true
    }

    /// Takes the next chunk of the pending batch for a pass, or ends the flush: `None`
    /// when nothing is pending (the flush is over) or the room's window has not passed
    /// since the last pass (then `Some(at)` in the second value asks to schedule).
    /// Only the flusher (the caller that got [`Next::FlushNow`] or `start_due`) calls it.
    pub fn take(&self, now: Instant) -> Result<Batch, Option<Instant>> {
        let mut s = self.lock();
        if s.pending.is_empty() || s.dead {
            s.flushing = false;
            return Err(None);
        }
        if let Some(at) = s.last_flush.map(|t| t + s.window)
            && at > now
        {
            s.flushing = false;
            s.due = Some(at);
            return Err(Some(at));
        }
        let mut count = 0;
        let mut bytes = 0;
        for ev in &s.pending {
            if count == MAX_BATCH_EVENTS || (count > 0 && bytes + ev.text.len() > MAX_BATCH_BYTES) {
                break;
            }
            count += 1;
            bytes += ev.text.len();
        }
        let events: Vec<Encoded> = if count == s.pending.len() {
            std::mem::take(&mut s.pending)
        } else {
            s.pending.drain(..count).collect()
        };
        s.pending_bytes -= bytes;
        let joiners = if s.joiners.is_empty() {
            Vec::new()
        } else {
            let taken: Vec<Joiner> = s.joiners.clone();
            s.joiners.retain_mut(|j| {
                j.skip = j.skip.saturating_sub(count as u32);
                j.skip > 0
            });
            taken
        };
        s.last_flush = Some(now);
        Ok(Batch {
            events,
            members: s.members.clone(),
            joiners,
            started: now,
        })
    }

    /// Records how long a pass took, which sets the next window: `WINDOW_PER_PASS` times
    /// the pass, at least the node's `floor` (see [`super::pressure`]), capped by `tick`.
    pub fn passed(&self, took: Duration, floor: Duration, tick: Duration) {
        let mut s = self.lock();
        s.window = (took * WINDOW_PER_PASS).max(floor).min(tick);
    }

    /// Subscribers per role group.
    pub fn counts(&self) -> [usize; 4] {
        self.lock().members.counts()
    }

    /// Distinct users subscribed (for presence), excluding guests.
    pub fn users(&self) -> Vec<Arc<str>> {
        let members = self.members();
        let mut users: Vec<Arc<str>> = Role::ALL[1..]
            .iter()
            .flat_map(|r| members.group(*r).iter().map(|c| c.sub.clone()))
            .collect();
        users.sort();
        users.dedup();
        users
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The partition invariant after any sequence of adds and removes.
    fn check(m: &Members, model: &[Vec<u64>; 4]) {
        for role in Role::ALL {
            let mut got: Vec<u64> = m.group(role).iter().map(|c| c.id).collect();
            got.sort();
            let mut want = model[role.index()].clone();
            want.sort();
            assert_eq!(got, want, "group {role}");
        }
        assert_eq!(m.len(), model.iter().map(Vec::len).sum::<usize>());
    }

    #[tokio::test]
    async fn groups_stay_partitioned_through_adds_and_removes() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut conns = Vec::new();
        let limiter = crate::limits::ConnLimiter::new(crate::limits::ConnCaps {
            total: 0,
            per_user: 0,
            per_ip: 0,
        });
        for id in 0..12u64 {
            let s = tokio::net::TcpStream::connect(addr).await.unwrap();
            let caps = super::super::conn::QueueCaps {
                max_msgs: 8,
                max_bytes: 1024,
            };
            let permit = limiter.acquire(None, None).unwrap();
            let sub = Arc::from(format!("u{id}"));
            conns.push(Conn::new(id, sub, Role::Guest, s, false, caps, 0, permit));
        }
        let mut m = Members::default();
        let mut model: [Vec<u64>; 4] = Default::default();
        // A fixed pseudo-random walk over add/remove on all four groups.
        let mut x: u64 = 7;
        for _ in 0..400 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let id = (x >> 33) % 12;
            let role = Role::ALL[((x >> 45) % 4) as usize];
            let conn = &conns[id as usize];
            let here = model[role.index()].contains(&id);
            let elsewhere = model.iter().any(|g| g.contains(&id));
            if (x >> 20).is_multiple_of(2) && !elsewhere {
                assert!(m.add(conn, role));
                model[role.index()].push(id);
            } else if here {
                assert!(m.remove(id, role));
                model[role.index()].retain(|i| *i != id);
            } else {
                assert!(!m.remove(id, role));
            }
            check(&m, &model);
        }
    }
}
