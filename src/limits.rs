//! Resource limits that protect the server from one client or one address: connection
//! caps and a per-socket op rate. (The handshake deadline is the listener's, `net`; the
//! REST body cap is HTTP middleware, `api::body`.)
//!
//! Each limit comes from [`crate::config::Config`]; 0 disables the count-based ones. They
//! live together so the README's limits table has one place to point at.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex},
    time::Instant,
};

use crate::model::{Kind, Refusal};

/// The stable error code of every connection-cap refusal.
pub const TOO_MANY_CONNECTIONS: &str = "too_many_connections";

/// Caps on concurrent WebSocket connections; 0 means unlimited.
#[derive(Debug, Clone, Copy)]
pub struct ConnCaps {
    pub total: usize,
    pub per_user: usize,
    pub per_ip: usize,
}

/// Counts of open WebSocket connections, by user and by address.
#[derive(Debug, Default)]
struct Counts {
    total: usize,
    users: HashMap<Arc<str>, usize>,
    ips: HashMap<IpAddr, usize>,
}

/// Admits WebSocket connections against [`ConnCaps`]. Admission and release happen under
/// one short lock, so two racing upgrades can never both take the last slot.
#[derive(Debug)]
pub struct ConnLimiter {
    caps: ConnCaps,
    counts: Mutex<Counts>,
}

/// One admitted connection; dropping it gives the slot back.
#[derive(Debug)]
pub struct Permit {
    limiter: Arc<ConnLimiter>,
    user: Option<Arc<str>>,
    ip: Option<IpAddr>,
}

impl ConnLimiter {
    /// A limiter with no connection open.
    pub fn new(caps: ConnCaps) -> Arc<Self> {
        Arc::new(ConnLimiter {
            caps,
            counts: Mutex::new(Counts::default()),
        })
    }

    /// Takes a slot for a connection of `user` (None for guests, who have no stable id)
    /// from `ip`, or says which cap is full: the total gives 503 (the server is full),
    /// a per-user or per-address cap 429 (this caller has enough).
    pub fn acquire(
        self: &Arc<Self>,
        user: Option<Arc<str>>,
        ip: Option<IpAddr>,
    ) -> Result<Permit, Refusal> {
        let caps = self.caps;
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if caps.total > 0 && counts.total >= caps.total {
            return Err(Refusal::unavailable(
                TOO_MANY_CONNECTIONS,
                format!("the server is at its limit of {} connections", caps.total),
            ));
        }
        if let Some(u) = &user
            && caps.per_user > 0
            && counts.users.get(u).copied().unwrap_or(0) >= caps.per_user
        {
            return Err(Refusal::new(
                Kind::RateLimited,
                TOO_MANY_CONNECTIONS,
                format!("at most {} connections per user", caps.per_user),
            ));
        }
        if let Some(ip) = ip
            && caps.per_ip > 0
            && counts.ips.get(&ip).copied().unwrap_or(0) >= caps.per_ip
        {
            return Err(Refusal::new(
                Kind::RateLimited,
                TOO_MANY_CONNECTIONS,
                format!("at most {} connections per address", caps.per_ip),
            ));
        }
        counts.total += 1;
        if let Some(u) = &user {
            *counts.users.entry(u.clone()).or_default() += 1;
        }
        if let Some(ip) = ip {
            *counts.ips.entry(ip).or_default() += 1;
        }
        Ok(Permit {
            limiter: self.clone(),
            user,
            ip,
        })
    }

    /// Open connections admitted by this limiter.
    pub fn total(&self) -> usize {
        self.counts.lock().map(|c| c.total).unwrap_or(0)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut counts = self
            .limiter
            .counts
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        counts.total = counts.total.saturating_sub(1);
        if let Some(u) = &self.user
            && let Some(n) = counts.users.get_mut(u)
        {
            *n -= 1;
            if *n == 0 {
                counts.users.remove(u);
            }
        }
        if let Some(ip) = &self.ip
            && let Some(n) = counts.ips.get_mut(ip)
        {
            *n -= 1;
            if *n == 0 {
                counts.ips.remove(ip);
            }
        }
    }
}

/// A token bucket for one socket's ops: `rate` per second, bursts up to `burst`.
/// A rate of 0 admits everything.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: u32, burst: u32) -> Self {
        let burst = f64::from(burst.max(rate).max(1));
        TokenBucket {
            rate: f64::from(rate),
            burst,
            tokens: burst,
            last: Instant::now(),
        }
    }

    /// Takes one token if there is one.
    pub fn take(&mut self) -> bool {
        if self.rate == 0.0 {
            return true;
        }
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_count_and_release() {
        let l = ConnLimiter::new(ConnCaps {
            total: 3,
            per_user: 2,
            per_ip: 0,
        });
        let alice: Arc<str> = Arc::from("alice");
        let a1 = l.acquire(Some(alice.clone()), None).expect("first");
        let _a2 = l.acquire(Some(alice.clone()), None).expect("second");
        let refused = l.acquire(Some(alice.clone()), None).expect_err("third");
        assert_eq!(refused.kind, Kind::RateLimited);
        let _g = l.acquire(None, None).expect("guest");
        let full = l.acquire(None, None).expect_err("full");
        assert_eq!(full.kind, Kind::Unavailable);
        drop(a1);
        assert_eq!(l.total(), 2);
        l.acquire(Some(alice), None).expect("a slot came back");
    }

    #[test]
    fn bucket_refuses_past_the_burst() {
        let mut b = TokenBucket::new(10, 10);
        let taken = (0..100).filter(|_| b.take()).count();
        assert!((10..=11).contains(&taken), "{taken}");
        let mut free = TokenBucket::new(0, 0);
        assert!((0..1000).all(|_| free.take()));
    }
}
