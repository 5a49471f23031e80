//! Durable state behind one trait, with one implementation per engine.
//!
//! The store holds what must survive a restart: channel declarations, scheduled pushes
//! ([`schedules::ScheduleStore`]), comments as the product grows.
//! [`sqlite::SqliteStore`] is the embedded default.

pub mod danmaku;
pub mod engagement;
pub mod moderation;
pub mod postgres;
pub mod review;
pub mod room_rules;
pub mod schedules;
pub mod sqlite;
pub mod webhooks;

use async_trait::async_trait;

use crate::model::Tier;

pub use self::schedules::{ScheduleRecord, ScheduleStore};

/// A declared channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelDecl {
    pub name: String,
    pub tier: Tier,
    /// Unix milliseconds of the last change.
    pub updated_at: u64,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
}

/// Durable storage: the sum of one facet per concern, each implemented by both engines.
#[async_trait]
pub trait Store:
    danmaku::DanmakuStore
    + engagement::EngagementStore
    + moderation::ModerationStore
    + room_rules::RoomRulesStore
    + review::ReviewStore
    + webhooks::WebhookStore
    + ScheduleStore
    + Send
    + Sync
    + 'static
{
    /// Declares or re-tiers a channel. Returns true when it did not exist before.
    async fn put_channel(&self, name: &str, tier: Tier) -> Result<bool, StoreError>;

    /// Removes a declaration. Returns true when it existed.
    async fn delete_channel(&self, name: &str) -> Result<bool, StoreError>;

    /// All declared channels, by name.
    async fn list_channels(&self) -> Result<Vec<ChannelDecl>, StoreError>;

    /// Makes everything acknowledged so far durable (called at shutdown).
    async fn flush(&self) -> Result<(), StoreError>;

    /// A short engine name for logs.
    fn name(&self) -> &'static str;
}
