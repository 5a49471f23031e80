//! The hub: live sockets, room memberships and fan-out on this node.
//!
//! Producers never reach sockets directly: they publish through the bus, and the bus
//! calls [`Hub::deliver`] on every node. Two kinds of channel live here:
//!
//! - **rooms** (`video:*`, declared channels, `broadcast`): a [`channel::Channel`] per
//!   name in a lock-free map (papaya), members grouped by role, events batched per room
//!   and written once per pass ([`batch`]);
//! - **personal channels** (`user:{sub}`): found through an index of each user's
//!   sockets, written at once (a user has a handful of sockets, nothing to batch).
//!
//! [`conn`] is one socket's handle and write queue; [`clock`] runs due flushes and the
//! per-socket deadlines without a timer per socket.

pub mod batch;
pub mod channel;
pub mod clock;
pub mod conn;
pub mod event;
pub mod pressure;
pub mod registry;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use self::{
    batch::PassOutcome,
    channel::{Channel, Members, Next},
    clock::{Deadlines, Timer},
    conn::{Conn, QueueCaps, Sent, hash_sub},
    event::Encoded,
    registry::Registry,
};
use crate::{
    frame,
    metrics::Metrics,
    model::{
        Role,
        channel::{BROADCAST, USER_PREFIX},
        role_bit,
    },
};

/// Fan-out settings, from configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Bounds of every socket's write queue.
    pub queue: QueueCaps,
    /// The longest a busy room's batch may wait (`ws.flush_tick_ms`).
    pub flush_tick: Duration,
    /// The per-socket deadlines the clock enforces.
    pub deadlines: Deadlines,
}

/// This node's sockets and rooms.
#[derive(Debug)]
pub struct Hub {
    rooms: papaya::HashMap<Arc<str>, Arc<Channel>>,
    /// Every socket, by id and by user (for `user:{sub}` deliveries).
    registry: Registry,
    next_id: AtomicU64,
    queue: QueueCaps,
    flush_tick: Duration,
    deadlines: Deadlines,
    timer: Timer,
    /// How busy fan-out keeps this node; sets the floor of every room's window.
    pressure: pressure::Pressure,
    broadcast: Arc<str>,
    metrics: Arc<Metrics>,
}

/// What a delivery asks of its caller.
#[derive(Debug)]
#[must_use = "a flush job must be run (after releasing the caller's locks)"]
pub struct Delivery {
    /// Sockets the event is for on this node.
    pub count: usize,
    /// A room to flush now; run it with [`Hub::flush`] once the caller's locks are gone.
    pub flush: Option<Arc<Channel>>,
}

impl Hub {
    /// An empty hub; start its clock with [`Hub::run_clock`].
    pub fn new(settings: Settings, metrics: Arc<Metrics>) -> Self {
        Hub {
            rooms: papaya::HashMap::new(),
            registry: Registry::default(),
            next_id: AtomicU64::new(1),
            queue: settings.queue,
            flush_tick: settings.flush_tick,
            deadlines: settings.deadlines,
            timer: Timer::default(),
            pressure: pressure::Pressure::new(settings.flush_tick),
            broadcast: Arc::from(BROADCAST),
            metrics,
        }
    }

    /// Allocates a connection id (used before the identity is known, for guests).
    pub fn next_conn_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The bounds every socket's queue is created with.
    pub fn queue_caps(&self) -> QueueCaps {
        self.queue
    }

    /// Registers a socket: the connection map, its user's sockets (unless a guest) and
    /// the `broadcast` room.
    pub fn register(&self, conn: &Arc<Conn>, guest: bool) {
        let role = conn.role();
        self.registry.insert(conn, !guest);
        self.subscribe_as(conn, &self.broadcast.clone(), role, false);
        self.metrics.conn_opened(role);
    }

    /// Forgets a socket and its memberships. `channels` are the rooms it joined itself.
    pub fn unregister(&self, conn: &Conn, channels: &[Arc<str>]) {
        let role = conn.role();
        self.unsubscribe(conn.id, &self.broadcast.clone(), role);
        for name in channels {
            self.unsubscribe(conn.id, name, role);
        }
        if self.registry.remove(conn) {
            self.metrics.conn_closed(role);
        }
    }

    /// Bytes queued in every socket, summed at the moment of the call. Read by the
    /// metrics endpoint only: a shared counter would put every write on one cache line.
    pub fn queued_bytes(&self) -> usize {
        let mut sum = 0;
        self.registry.for_each(|c| sum += c.queued_bytes());
        sum
    }

    /// Adds `conn` to room `name` in `role`'s group (a new subscription: events pending
    /// in the room are skipped, the bus has replayed them).
    pub fn subscribe(&self, conn: &Arc<Conn>, name: &Arc<str>, role: Role) {
        self.subscribe_as(conn, name, role, true);
    }

    /// [`Hub::subscribe`], or a change of group when `joined` is false.
    fn subscribe_as(&self, conn: &Arc<Conn>, name: &Arc<str>, role: Role, joined: bool) {
        loop {
            let room = self
                .rooms
                .pin()
                .get_or_insert_with(name.clone(), || Arc::new(Channel::new(name.clone())))
                .clone();
            if room.add(conn, role, joined) {
                return;
            }
            // The room emptied and is being retired; drop it and retry with a new one.
            let _ = self
                .rooms
                .pin()
                .remove_if(name, |_, v| Arc::ptr_eq(v, &room));
        }
    }

    /// Removes connection `id` from room `name`'s `role` group, retiring an empty room.
    pub fn unsubscribe(&self, id: u64, name: &Arc<str>, role: Role) {
        let room = self.rooms.pin().get(name).cloned();
        if let Some(room) = room
            && room.remove(id, role)
        {
            let _ = self
                .rooms
                .pin()
                .remove_if(name, |_, v| Arc::ptr_eq(v, &room));
        }
    }

    /// Moves a socket between role groups after a refresh changed its role. It keeps the
    /// room's pending events (it was a member when they were published).
    pub fn change_group(&self, conn: &Arc<Conn>, name: &Arc<str>, from: Role, to: Role) {
        if from == to {
            return;
        }
        // Join the new group before leaving the old one so the room never looks empty.
        self.subscribe_as(conn, name, to, false);
        self.unsubscribe(conn.id, name, from);
    }

    /// Moves a socket of a user to another role group in `broadcast` (a refresh).
    pub fn change_broadcast_group(&self, conn: &Arc<Conn>, from: Role, to: Role) {
        self.change_group(conn, &self.broadcast.clone(), from, to);
    }

    /// Hands an encoded event to this node's subscribers of its channel: at once for a
    /// personal channel, in the room's next batch otherwise. The caller runs the
    /// returned flush (if any) after releasing its own locks.
    pub fn deliver(&self, ev: Encoded) -> Delivery {
        if let Some(sub) = ev.channel.strip_prefix(USER_PREFIX) {
            return Delivery {
                count: self.deliver_to_user(sub, &ev),
                flush: None,
            };
        }
        let Some(room) = self.rooms.pin().get(&ev.channel).cloned() else {
            return Delivery {
                count: 0,
                flush: None,
            };
        };
        let (target, channel) = (ev.target.clone(), ev.channel.clone());
        let (count, next) =
            room.enqueue(ev, Instant::now(), |m| count_admitted(m, &target, &channel));
        match next {
            Next::Nothing => Delivery { count, flush: None },
            Next::FlushNow => Delivery {
                count,
                flush: Some(room),
            },
            Next::Schedule(at) => {
                self.timer.schedule(at, room);
                Delivery { count, flush: None }
            }
        }
    }

    /// Writes one event to the sockets of one user (framed once for all of them).
    fn deliver_to_user(&self, sub: &str, ev: &Encoded) -> usize {
        let list = self.registry.user(sub);
        if list.is_empty() {
            return 0;
        }
        let mut frame = None;
        let mut deflated = None;
        let mut count = 0;
        for conn in list.iter() {
            if !ev.target.admits(conn.role(), conn, &ev.channel) {
                continue;
            }
            let plain = frame.get_or_insert_with(|| frame::text(&ev.text));
            let bytes = if conn.deflate {
                deflated
                    .get_or_insert_with(|| {
                        frame::deflate::compress(&ev.text)
                            .map(|z| frame::server_frame(frame::opcode::TEXT, true, &z))
                            .unwrap_or_else(|| plain.clone())
                    })
                    .clone()
            } else {
                plain.clone()
            };
            match conn.send(&bytes) {
                Sent::Written | Sent::Queued => count += 1,
                Sent::Overflowed => self.slow(&ev.channel, 1),
                Sent::Closed => {}
            }
        }
        self.metrics
            .delivered
            .fetch_add(count as u64, Ordering::Relaxed);
        count
    }

    /// Runs a room's flush: passes over its members until nothing pending is due, then
    /// arms the timer for the rest. Only the caller that was handed the room (by
    /// [`Hub::deliver`] or the clock) runs it; passes of one room never overlap.
    pub fn flush(&self, room: Arc<Channel>) {
        loop {
            match room.take(Instant::now()) {
                Ok(batch) => {
                    let out = batch::deliver(&batch);
                    let took = batch.started.elapsed();
                    self.pressure.add(took);
                    room.passed(took, self.pressure.floor(), self.flush_tick);
                    self.record(&room, out);
                }
                Err(Some(at)) => {
                    self.timer.schedule(at, room);
                    return;
                }
                Err(None) => return,
            }
        }
    }

    /// Counts a pass in the metrics and logs sockets closed as slow.
    fn record(&self, room: &Channel, out: PassOutcome) {
        self.metrics
            .delivered
            .fetch_add(out.delivered as u64, Ordering::Relaxed);
        self.metrics
            .fanout_frames
            .fetch_add(out.frames as u64, Ordering::Relaxed);
        self.metrics.fanout_passes.fetch_add(1, Ordering::Relaxed);
        if out.overflowed > 0 {
            self.slow(&room.name, out.overflowed);
        }
    }

    /// Counts and logs sockets closed as slow consumers.
    fn slow(&self, channel: &str, count: usize) {
        self.metrics
            .slow_disconnects
            .fetch_add(count as u64, Ordering::Relaxed);
        tracing::warn!(%channel, count, "closing slow sockets");
    }

    /// Subscribers of a channel on this node, per role group.
    pub fn counts(&self, name: &str) -> [usize; 4] {
        if let Some(sub) = name.strip_prefix(USER_PREFIX) {
            let mut c = [0; 4];
            for conn in self.registry.user(sub) {
                c[conn.role().index()] += 1;
            }
            return c;
        }
        self.rooms
            .pin()
            .get(name)
            .map(|c| c.counts())
            .unwrap_or_default()
    }

    /// Distinct non-guest users subscribed to a channel on this node.
    pub fn users(&self, name: &str) -> Vec<Arc<str>> {
        if let Some(sub) = name.strip_prefix(USER_PREFIX) {
            return self
                .registry
                .user(sub)
                .first()
                .map(|c| vec![c.sub.clone()])
                .unwrap_or_default();
        }
        self.rooms
            .pin()
            .get(name)
            .map(|c| c.users())
            .unwrap_or_default()
    }

    /// Cores' worth of time spent in room passes over the clock's last period.
    pub fn fanout_duty(&self) -> f64 {
        self.pressure.duty()
    }

    /// The node-wide floor of every room's window now.
    pub fn window_floor(&self) -> Duration {
        self.pressure.floor()
    }

    /// The process metrics, shared with the bus.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Number of open sockets on this node.
    pub fn connection_count(&self) -> usize {
        self.registry.len()
    }

    /// Asks every socket to close with `code` (used at shutdown).
    pub fn close_all(&self, code: u16) {
        self.registry.for_each(|conn| {
            conn.request_close(code);
        });
    }

    /// Subscribers per role group of every channel on this node (presence heartbeats):
    /// rooms, then personal channels.
    pub fn all_counts(&self) -> Vec<(Arc<str>, [usize; 4])> {
        let mut out: Vec<(Arc<str>, [usize; 4])> = self
            .rooms
            .pin()
            .iter()
            .map(|(name, c)| (name.clone(), c.counts()))
            .collect();
        for (sub, list) in self.registry.users() {
            let mut c = [0; 4];
            for conn in list.iter() {
                c[conn.role().index()] += 1;
            }
            out.push((Arc::from(format!("{USER_PREFIX}{sub}")), c));
        }
        out
    }

    /// Subscriber totals (all role groups) of this node's rooms whose name starts with
    /// `prefix`, for presence events. Empty rooms are retired, so never listed.
    pub fn channel_totals(&self, prefix: &str) -> Vec<(Arc<str>, usize)> {
        self.rooms
            .pin()
            .iter()
            .filter(|(name, _)| name.starts_with(prefix))
            .map(|(name, c)| (name.clone(), c.counts().iter().sum()))
            .collect()
    }
}

/// How many of a room's members an event is for: the groups its mask admits, narrowed
/// per socket when it names users or skips one.
fn count_admitted(members: &Members, target: &event::Target, channel: &str) -> usize {
    let mut n = 0;
    for role in Role::ALL {
        if target.mask & role_bit(role) == 0 {
            continue;
        }
        let group = members.group(role);
        if !target.by_user() {
            n += group.len();
            continue;
        }
        let except = target.except.as_deref().map(|e| (hash_sub(e), e));
        n += group
            .iter()
            .filter(|c| {
                except.is_none_or(|(h, e)| !c.is_user(h, e))
                    && target
                        .users
                        .as_ref()
                        .is_none_or(|u| target.listed(u, c, channel))
            })
            .count();
    }
    n
}

#[cfg(test)]
mod tests;
