//! REST transport: the poem-openapi API under `/api`.
//!
//! Endpoints are grouped by resource in submodules; each takes its caller through one of
//! the extractors in [`auth`] and answers errors as [`error::ApiError`]. The spec that
//! this module generates is committed as `openapi/openapi.json` and checked by a test.

pub mod allow;
pub mod auth;
pub mod body;
pub mod channels;
pub mod client;
pub mod demo;
pub mod dplayer;
pub mod engagement;
pub mod error;
pub mod moderation;
pub mod push;
pub mod review;
pub mod room_rules;
pub mod rules;
pub mod schedules;
pub mod videos;
pub mod webhooks;

use poem_openapi::{OpenApiService, Tags};

/// Tags that group endpoints in Swagger UI.
#[derive(Tags)]
pub enum ApiTags {
    /// Channel declarations, tiers and presence.
    Channels,
    /// Server pushes to sockets: broadcast, role, user, channel.
    Push,
    /// Scheduled pushes: cron or fixed-interval runs of a push.
    Schedules,
    /// Identity helpers (demo tokens, who am I).
    Auth,
    /// The video catalog, comments (danmaku), moderation and bilibili XML.
    Videos,
    /// Room moderators, scoped mutes and shadow bans, slow mode, flood rules, block and
    /// hold rules, the review queue and the audit log.
    Moderation,
}

/// The combined API type.
pub type Api = (
    channels::ChannelsApi,
    push::PushApi,
    videos::VideosApi,
    engagement::EngagementApi,
    moderation::ModerationApi,
    room_rules::RoomRulesApi,
    rules::RulesApi,
    review::ReviewApi,
    schedules::SchedulesApi,
    webhooks::WebhooksApi,
    demo::AuthApi,
);

/// Builds the OpenAPI service, served under `/api`.
pub fn service() -> OpenApiService<Api, ()> {
    OpenApiService::new(
        (
            channels::ChannelsApi,
            push::PushApi,
            videos::VideosApi,
            engagement::EngagementApi,
            moderation::ModerationApi,
            room_rules::RoomRulesApi,
            rules::RulesApi,
            review::ReviewApi,
            schedules::SchedulesApi,
            webhooks::WebhooksApi,
            demo::AuthApi,
        ),
        "danmaku",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Live video comments and role-aware pushes. Errors are JSON `{code, message}`. \
         The WebSocket protocol at `/ws` is documented in `openapi/asyncapi.yaml`.",
    )
    .server("/api")
}

/// The spec as committed in `openapi/openapi.json` (`danmaku openapi` prints it).
pub fn spec_json() -> String {
    service().spec()
}
