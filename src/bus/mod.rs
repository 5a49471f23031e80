//! The bus: how a published event reaches every node's hub, and where `seq` comes from.
//!
//! One implementation per engine, chosen in one place ([`crate::server::build`]). The
//! in-process [`local::LocalBus`] is the default; a Redis bus slots in behind the same
//! trait for clusters.

pub mod local;

use async_trait::async_trait;

use crate::hub::event::Publish;

/// What a publish did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// The channel sequence number given to the event.
    pub seq: u64,
    /// Sockets the event was queued to (on this node).
    pub delivered: usize,
}

/// Why a publish failed.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("the bus is unavailable: {0}")]
    Unavailable(String),
}

/// Carries events to subscribers, assigning each channel a strictly increasing `seq`.
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Publishes one event; returns once it is queued to this node's sockets.
    async fn publish(&self, msg: Publish) -> Result<Published, BusError>;

    /// A short name for logs and `/readyz`.
    fn name(&self) -> &'static str;

    /// Whether the bus can currently carry events.
    fn is_ready(&self) -> bool {
        true
    }
}
