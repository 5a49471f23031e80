//! Who is connected: every socket by id, and each user's sockets by `sub`.
//!
//! Sharded maps behind small mutexes rather than a lock-free map: a lock-free map frees
//! removed entries later (by epoch), which would keep a closed socket's handle, and so
//! its file descriptor, alive for an unbounded time. Here a socket's last handle goes
//! when its session ends. The maps are touched on connect, disconnect, user pushes and
//! the clock's sweep, never on a room's fan-out path.

use std::{
    collections::HashMap,
    hash::{BuildHasher, Hash},
    sync::{Arc, Mutex, MutexGuard},
};

use super::conn::Conn;

/// Shards per map: enough that a connect storm on two cores rarely meets itself.
const SHARDS: usize = 16;

/// A map split over [`SHARDS`] mutexes by key hash.
struct Sharded<K, V> {
    shards: Vec<Mutex<HashMap<K, V>>>,
    hasher: std::collections::hash_map::RandomState,
}

impl<K: Hash + Eq, V> Sharded<K, V> {
    fn new() -> Self {
        Sharded {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: Default::default(),
        }
    }

    fn shard<Q: Hash + ?Sized>(&self, key: &Q) -> MutexGuard<'_, HashMap<K, V>> {
        let i = (self.hasher.hash_one(key) as usize) % SHARDS;
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    fn shards(&self) -> impl Iterator<Item = MutexGuard<'_, HashMap<K, V>>> {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Every socket of this node, by id and by user.
pub struct Registry {
    conns: Sharded<u64, Arc<Conn>>,
    users: Sharded<Arc<str>, Box<[Arc<Conn>]>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            conns: Sharded::new(),
            users: Sharded::new(),
        }
    }
}

impl Registry {
    /// Adds a socket; `user` also lists it under its `sub`.
    pub fn insert(&self, conn: &Arc<Conn>, user: bool) {
        self.conns.shard(&conn.id).insert(conn.id, conn.clone());
        if user {
            let mut shard = self.users.shard(&*conn.sub);
            let list = shard.remove(&*conn.sub);
            let next: Box<[Arc<Conn>]> = list
                .into_iter()
                .flat_map(|l| l.into_vec())
                .chain([conn.clone()])
                .collect();
            shard.insert(conn.sub.clone(), next);
        }
    }

    /// Removes a socket; true when it was there.
    pub fn remove(&self, conn: &Conn) -> bool {
        let removed = self.conns.shard(&conn.id).remove(&conn.id).is_some();
        let mut shard = self.users.shard(&*conn.sub);
        if let Some(list) = shard.remove(&*conn.sub) {
            let rest: Box<[Arc<Conn>]> = list
                .into_vec()
                .into_iter()
                .filter(|c| c.id != conn.id)
                .collect();
            if !rest.is_empty() {
                shard.insert(conn.sub.clone(), rest);
            }
        }
        removed
    }

    /// The sockets of one user.
    pub fn user(&self, sub: &str) -> Vec<Arc<Conn>> {
        self.users
            .shard(sub)
            .get(sub)
            .map(|l| l.to_vec())
            .unwrap_or_default()
    }

    /// Number of sockets.
    pub fn len(&self) -> usize {
        self.conns.shards().map(|s| s.len()).sum()
    }

    /// Whether no socket is connected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls `f` on every socket, a shard at a time, outside the shard's lock (so `f`
    /// may write to sockets without holding up connects).
    pub fn for_each(&self, mut f: impl FnMut(&Arc<Conn>)) {
        let mut batch = Vec::new();
        for shard in &self.conns.shards {
            batch.extend(
                shard
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .values()
                    .cloned(),
            );
            for conn in batch.drain(..) {
                f(&conn);
            }
        }
    }

    /// Every user with sockets here, with them.
    pub fn users(&self) -> Vec<(Arc<str>, Vec<Arc<Conn>>)> {
        let mut out = Vec::new();
        for shard in self.users.shards() {
            out.extend(shard.iter().map(|(k, v)| (k.clone(), v.to_vec())));
        }
        out
    }
}
