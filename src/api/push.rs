//! `/api/push/*`: server pushes to sockets, for backends and admins.
//!
//! Every push is one event (`type` = the `event` name) whose `data` is `{"payload": ..}`
//! with the payload passed through unchanged. The reply counts the sockets written.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::{Object, OpenApi, param::Path, payload::Json};

use super::{ApiTags, auth::Admin, error::ApiError};
use crate::{
    access::{self, Audience, BROADCAST, ChannelKind},
    auth::Role,
    hub::event::{Publish, Target},
    server::State,
};

/// Largest accepted payload, as compact JSON.
pub const MAX_PAYLOAD: usize = 64 * 1024;

/// Most users addressed by one push.
pub const MAX_USERS: usize = 1000;

/// Event names the protocol uses for its own frames.
const RESERVED_EVENTS: [&str; 5] = ["reply", "welcome", "unsubscribed", "token_expired", "batch"];

/// Push endpoints.
pub struct PushApi;

fn default_event() -> String {
    "push".to_string()
}

/// The body of every push.
#[derive(Debug, Object)]
pub struct PushBody {
    /// Event name, sent as the frame's `type`.
    #[oai(default = "default_event")]
    pub event: String,
    /// Any JSON; delivered unchanged in `data.payload`.
    pub payload: serde_json::Value,
    /// Which role groups may receive it.
    #[oai(default)]
    pub audience: Audience,
    /// Optional explicit user list (by `sub`) that further narrows the audience.
    pub users: Option<Vec<String>>,
}

/// Body of `POST /api/push/users`.
#[derive(Debug, Object)]
pub struct PushUsersBody {
    /// The users (by `sub`) to reach, on all their devices.
    pub users: Vec<String>,
    #[oai(default = "default_event")]
    pub event: String,
    pub payload: serde_json::Value,
    #[oai(default)]
    pub audience: Audience,
}

/// What a push did.
#[derive(Debug, Object)]
pub struct PushReply {
    /// Push id, for logs.
    pub id: String,
    /// Sockets the event was written to (0 when nobody in the audience is online).
    pub delivered: u64,
    /// The channel sequence number of the event; absent when several channels were used.
    pub seq: Option<u64>,
}

/// Validates the event name and payload size.
fn check(event: &str, payload: &serde_json::Value) -> Result<(), ApiError> {
    let valid = !event.is_empty()
        && event.len() <= 64
        && event
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.:".contains(&b));
    if !valid {
        return Err(ApiError::unprocessable(
            "invalid_event",
            "event names are 1 to 64 characters of letters, digits and _ - . :",
        ));
    }
    if RESERVED_EVENTS.contains(&event) {
        return Err(ApiError::unprocessable(
            "reserved_event",
            format!("{event} is a protocol frame type"),
        ));
    }
    let size = serde_json::to_vec(payload)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_PAYLOAD {
        return Err(ApiError::unprocessable(
            "payload_too_large",
            format!("payloads are at most {MAX_PAYLOAD} bytes of JSON"),
        ));
    }
    Ok(())
}

/// Validates an explicit user list.
fn check_users(users: &[String]) -> Result<(), ApiError> {
    if users.len() > MAX_USERS {
        return Err(ApiError::unprocessable(
            "too_many_users",
            format!("at most {MAX_USERS} users per push"),
        ));
    }
    if users.iter().any(|u| u.is_empty() || u.len() > 128) {
        return Err(ApiError::unprocessable(
            "invalid_user",
            "user ids are 1 to 128 bytes",
        ));
    }
    Ok(())
}

/// A fresh push id.
fn push_id() -> String {
    format!("p-{:016x}", rand::random::<u64>())
}

/// Publishes one event and logs it.
async fn publish(
    state: &State,
    id: &str,
    channel: Arc<str>,
    event: String,
    payload: serde_json::Value,
    target: Target,
    by: &str,
) -> Result<crate::bus::Published, ApiError> {
    let data = serde_json::json!({ "payload": payload });
    let published = state
        .bus
        .publish(Publish {
            channel: channel.clone(),
            event,
            data,
            target,
        })
        .await
        .map_err(|e| ApiError::unavailable("bus_unavailable", e.to_string()))?;
    tracing::info!(push = id, %channel, seq = published.seq, delivered = published.delivered, %by, "push");
    Ok(published)
}

/// Builds the audience target, narrowed by an optional user list.
fn target(audience: Audience, users: Option<Vec<String>>) -> Result<Target, ApiError> {
    let t = Target::audience(audience);
    match users {
        Some(users) => {
            check_users(&users)?;
            Ok(t.only_users(users))
        }
        None => Ok(t),
    }
}

/// Turns a publish result into the reply.
fn reply(id: String, p: crate::bus::Published) -> Json<PushReply> {
    Json(PushReply {
        id,
        delivered: p.delivered as u64,
        seq: Some(p.seq),
    })
}

#[OpenApi(tag = "ApiTags::Push")]
impl PushApi {
    /// Push to every connected socket in the audience.
    #[oai(path = "/push/broadcast", method = "post")]
    async fn broadcast(
        &self,
        state: Data<&Arc<State>>,
        auth: Admin,
        body: Json<PushBody>,
    ) -> Result<Json<PushReply>, ApiError> {
        let b = body.0;
        check(&b.event, &b.payload)?;
        let t = target(b.audience, b.users)?;
        let id = push_id();
        let p = publish(
            &state,
            &id,
            Arc::from(BROADCAST),
            b.event,
            b.payload,
            t,
            &auth.0.label(),
        )
        .await?;
        Ok(reply(id, p))
    }

    /// Push to every socket of one role (narrowed by the audience).
    #[oai(path = "/push/roles/:role", method = "post")]
    async fn role(
        &self,
        state: Data<&Arc<State>>,
        auth: Admin,
        role: Path<Role>,
        body: Json<PushBody>,
    ) -> Result<Json<PushReply>, ApiError> {
        let b = body.0;
        check(&b.event, &b.payload)?;
        let t = target(b.audience, b.users)?.only_role(role.0);
        let id = push_id();
        let p = publish(
            &state,
            &id,
            Arc::from(BROADCAST),
            b.event,
            b.payload,
            t,
            &auth.0.label(),
        )
        .await?;
        Ok(reply(id, p))
    }

    /// Push to every socket of one user, on all devices. Offline users give `delivered: 0`.
    #[oai(path = "/push/users/:sub", method = "post")]
    async fn user(
        &self,
        state: Data<&Arc<State>>,
        auth: Admin,
        sub: Path<String>,
        body: Json<PushBody>,
    ) -> Result<Json<PushReply>, ApiError> {
        let b = body.0;
        check(&b.event, &b.payload)?;
        check_users(std::slice::from_ref(&sub.0))?;
        let t = target(b.audience, b.users)?;
        let id = push_id();
        let p = publish(
            &state,
            &id,
            access::user_channel(&sub),
            b.event,
            b.payload,
            t,
            &auth.0.label(),
        )
        .await?;
        Ok(reply(id, p))
    }

    /// Push to every socket of each listed user.
    #[oai(path = "/push/users", method = "post")]
    async fn users(
        &self,
        state: Data<&Arc<State>>,
        auth: Admin,
        body: Json<PushUsersBody>,
    ) -> Result<Json<PushReply>, ApiError> {
        let b = body.0;
        check(&b.event, &b.payload)?;
        check_users(&b.users)?;
        let id = push_id();
        let mut users = b.users;
        users.sort();
        users.dedup();
        let mut delivered = 0;
        for sub in users {
            let p = publish(
                &state,
                &id,
                access::user_channel(&sub),
                b.event.clone(),
                b.payload.clone(),
                Target::audience(b.audience),
                &auth.0.label(),
            )
            .await?;
            delivered += p.delivered as u64;
        }
        Ok(Json(PushReply {
            id,
            delivered,
            seq: None,
        }))
    }

    /// Push to a channel's subscribers, filtered by the audience and the channel's tier.
    #[oai(path = "/push/channels/:channel", method = "post")]
    async fn channel(
        &self,
        state: Data<&Arc<State>>,
        auth: Admin,
        channel: Path<String>,
        body: Json<PushBody>,
    ) -> Result<Json<PushReply>, ApiError> {
        let b = body.0;
        check(&b.event, &b.payload)?;
        let tier = match access::parse_channel(&channel).map_err(ApiError::denied)? {
            ChannelKind::Named => state.directory.declared(&channel).ok_or_else(|| {
                ApiError::not_found(
                    "unknown_channel",
                    format!("channel {} is not declared", *channel),
                )
            })?,
            ChannelKind::Video(v) => state.directory.video_tier(&v).ok_or_else(|| {
                ApiError::not_found("unknown_video", format!("video {v} is not in the catalog"))
            })?,
            ChannelKind::User(_) | ChannelKind::Broadcast => access::Tier::Free,
        };
        let mut t = target(b.audience, b.users)?;
        t.mask &= tier.mask();
        let id = push_id();
        let p = publish(
            &state,
            &id,
            Arc::from(channel.0.as_str()),
            b.event,
            b.payload,
            t,
            &auth.0.label(),
        )
        .await?;
        Ok(reply(id, p))
    }
}
