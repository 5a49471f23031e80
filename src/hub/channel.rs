//! A channel's subscribers, split into one copy-on-write list per role group.
//!
//! Fan-out loads a snapshot (`ArcSwap::load`, no lock) and walks it. Joining or leaving
//! takes the channel's own small mutex and publishes a new list, so writers never block
//! readers and readers never block each other.

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use super::{
    conn::{Conn, Pushed},
    event::Encoded,
};
use crate::model::Role;

/// Subscribers of one channel.
#[derive(Debug)]
pub struct Channel {
    pub name: Arc<str>,
    groups: [ArcSwap<Vec<Arc<Conn>>>; 4],
    /// Serializes membership changes; `true` once the channel emptied and left the map.
    dead: Mutex<bool>,
}

/// The result of one fan-out.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FanOut {
    /// Sockets the frame was queued to.
    pub delivered: usize,
    /// Sockets that overflowed during this fan-out and are being closed.
    pub overflowed: usize,
}

impl Channel {
    /// An empty channel.
    pub fn new(name: Arc<str>) -> Self {
        Channel {
            name,
            groups: Default::default(),
            dead: Mutex::new(false),
        }
    }

    /// Adds `conn` to `role`'s group. Returns false when the channel was retired
    /// concurrently; the caller then retries with a fresh channel.
    pub fn add(&self, conn: &Arc<Conn>, role: Role) -> bool {
        let dead = self.dead.lock().unwrap_or_else(|e| e.into_inner());
        if *dead {
            return false;
        }
        let group = &self.groups[role.index()];
        let current = group.load();
        if current.iter().any(|c| c.id == conn.id) {
            return true;
        }
        let mut next = Vec::with_capacity(current.len() + 1);
        next.extend(current.iter().cloned());
        next.push(conn.clone());
        group.store(Arc::new(next));
        true
    }

    /// Removes connection `id` from `role`'s group. Returns true when the channel is now
    /// empty and has been marked dead (the caller removes it from the map).
    pub fn remove(&self, id: u64, role: Role) -> bool {
        let mut dead = self.dead.lock().unwrap_or_else(|e| e.into_inner());
        let group = &self.groups[role.index()];
        let current = group.load();
        if current.iter().any(|c| c.id == id) {
            let next: Vec<_> = current.iter().filter(|c| c.id != id).cloned().collect();
            group.store(Arc::new(next));
        }
        if self.groups.iter().all(|g| g.load().is_empty()) {
            *dead = true;
        }
        *dead
    }

    /// Queues `ev` to every subscriber its target admits.
    pub fn deliver(&self, ev: &Encoded) -> FanOut {
        let mut out = FanOut::default();
        for role in Role::ALL {
            if ev.target.mask & crate::model::role_bit(role) == 0 {
                continue;
            }
            let group = self.groups[role.index()].load();
            let filtered = ev.target.users.is_some() || ev.target.except.is_some();
            for conn in group.iter() {
                if filtered && !ev.target.admits(role, &conn.sub) {
                    continue;
                }
                match conn.push(&ev.frame) {
                    Pushed::Queued => out.delivered += 1,
                    Pushed::Overflowed => out.overflowed += 1,
                    Pushed::Closed => {}
                }
            }
        }
        out
    }

    /// Subscribers per role group.
    pub fn counts(&self) -> [usize; 4] {
        let mut counts = [0; 4];
        for (i, g) in self.groups.iter().enumerate() {
            counts[i] = g.load().len();
        }
        counts
    }

    /// Distinct users subscribed (for presence), excluding guests.
    pub fn users(&self) -> Vec<Arc<str>> {
        let mut users: Vec<Arc<str>> = self.groups[1..]
            .iter()
            .flat_map(|g| g.load().iter().map(|c| c.sub.clone()).collect::<Vec<_>>())
            .collect();
        users.sort();
        users.dedup();
        users
    }
}
