//! The shared application state: what every request and every session needs, behind
//! one `Arc`.
//!
//! It sits below the transports (`api`, `ws`) and above the domain services and
//! engines it holds; `server` builds it (the composition root) and nothing here builds
//! anything. Background tasks (the scheduler, presence) do not take it: they get the
//! parts they use, so no engine ever depends on the whole house.

use std::sync::Arc;

use crate::{
    access::Directory,
    auth::{Signer, Verifier},
    bus::Bus,
    config::Config,
    danmaku,
    hub::Hub,
    limits::ConnLimiter,
    metrics::Metrics,
    moderation,
    net::Sockets,
    push,
    schedule::Schedules,
    shutdown::Shutdown,
    store::Store,
};

/// Everything a request or session needs.
pub struct State {
    pub cfg: Config,
    pub verifier: Verifier,
    /// Present when tokens can be minted (HS256, or a configured private key).
    pub signer: Option<Signer>,
    pub hub: Arc<Hub>,
    pub bus: Arc<dyn Bus>,
    pub store: Arc<dyn Store>,
    /// Channel and video tiers, mirrored from the store.
    pub directory: Arc<Directory>,
    /// Posting, history and moderation of comments.
    pub danmaku: danmaku::Service,
    /// Room moderators, scoped mutes and the audit log (danmaku holds it too).
    pub moderation: Arc<moderation::Service>,
    /// Outgoing webhooks: registrations and the delivery queue (danmaku, moderation and
    /// presence hold it too).
    pub webhooks: Arc<crate::webhooks::Service>,
    /// Resolving and sending pushes (REST, scheduler).
    pub push: Arc<push::Service>,
    /// Scheduled pushes, mirrored from the store; the scheduler task fires them.
    pub schedules: Arc<Schedules>,
    pub metrics: Arc<Metrics>,
    /// Observed by new upgrades and sessions.
    pub shutdown: Shutdown,
    /// Connection caps checked at every WebSocket upgrade.
    pub limiter: Arc<ConnLimiter>,
    /// The listener's open connections, where an upgraded socket takes its stream.
    pub sockets: Arc<Sockets>,
}
