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

/// The event name used when a body names none.
pub(crate) fn default_event() -> String {
    "push".to_string()
}

/// The body of every push.
#[derive(Debug, Object)]
pub struct PushBody {
    /// Event name, sent as the frame's `type`.
    #[oai(default = "default_event")]
    pub event: String,
    /// Any JSON; delivered unchanged in `data.payload` (`null` when absent).
    #[oai(default)]
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
    /// Any JSON; delivered unchanged in `data.payload` (`null` when absent).
    #[oai(default)]
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
    #[oai(skip_serializing_if_is_none)]
    pub seq: Option<u64>,
}

/// Validates the event name and payload size (shared with scheduled pushes).
pub(crate) fn check(event: &str, payload: &serde_json::Value) -> Result<(), ApiError> {
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

/// The `data` of a push event: the payload, passed through unchanged.
fn push_data(payload: serde_json::Value) -> serde_json::Value {
    serde_json::json!({ "payload": payload })
}

/// Who a push is for, before the access rules resolve it. One value per push family, so
/// that the REST endpoints and scheduled pushes share every rule below.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Destination {
    /// Every socket (the `broadcast` channel).
    Broadcast,
    /// Every socket of one role (the `broadcast` channel, one role group).
    Role(Role),
    /// Every socket of one user (`user:{sub}`).
    User(String),
    /// Every socket of each listed user (one `user:{sub}` channel each).
    Users(Vec<String>),
    /// A channel's subscribers, narrowed by the channel's tier.
    Channel(String),
}

/// One channel to publish on and who among its subscribers may receive the event.
pub(crate) type Route = (Arc<str>, Target);

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

/// Resolves a destination into routes with the access rules: channel names and tiers,
/// audiences, user lists. `only` narrows every route to those users. Fails with the
/// precise code of the first rule broken (`invalid_channel`, `unknown_channel`, ...).
pub(crate) fn resolve(
    state: &State,
    dest: Destination,
    audience: Audience,
    only: Option<Vec<String>>,
) -> Result<Vec<Route>, ApiError> {
    match dest {
        Destination::Broadcast => Ok(vec![(Arc::from(BROADCAST), target(audience, only)?)]),
        Destination::Role(role) => Ok(vec![(
            Arc::from(BROADCAST),
            target(audience, only)?.only_role(role),
        )]),
        Destination::User(sub) => {
            check_users(std::slice::from_ref(&sub))?;
            Ok(vec![(access::user_channel(&sub), target(audience, only)?)])
        }
        Destination::Users(mut users) => {
            check_users(&users)?;
            users.sort();
            users.dedup();
            let t = target(audience, only)?;
            Ok(users
                .iter()
                .map(|sub| (access::user_channel(sub), t.clone()))
                .collect())
        }
        Destination::Channel(channel) => {
            let tier = match access::parse_channel(&channel).map_err(ApiError::denied)? {
                ChannelKind::Named => state.directory.declared(&channel).ok_or_else(|| {
                    ApiError::not_found(
                        "unknown_channel",
                        format!("channel {channel} is not declared"),
                    )
                })?,
                ChannelKind::Video(v) => state.directory.video_tier(&v).ok_or_else(|| {
                    ApiError::not_found("unknown_video", format!("video {v} is not in the catalog"))
                })?,
                ChannelKind::User(_) | ChannelKind::Broadcast => access::Tier::Free,
            };
            let mut t = target(audience, only)?;
            t.mask &= tier.mask();
            Ok(vec![(Arc::from(channel.as_str()), t)])
        }
    }
}

/// Publishes one event on every route through the bus and logs each publish. The reply
/// sums the sockets written; `seq` is set when exactly one channel was used.
pub(crate) async fn send(
    state: &State,
    id: &str,
    event: &str,
    data: serde_json::Value,
    routes: Vec<Route>,
    by: &str,
) -> Result<PushReply, ApiError> {
    let single = routes.len() == 1;
    let mut delivered = 0u64;
    let mut last_seq = None;
    for (channel, target) in routes {
        let published = state
            .bus
            .publish(Publish {
                channel: channel.clone(),
                event: event.to_string(),
                data: data.clone(),
                target,
            })
            .await
            .map_err(|e| ApiError::unavailable("bus_unavailable", e.to_string()))?;
        tracing::info!(push = id, %channel, seq = published.seq, delivered = published.delivered, %by, "push");
        delivered += published.delivered as u64;
        last_seq = Some(published.seq);
    }
    Ok(PushReply {
        id: id.to_string(),
        delivered,
        seq: if single { last_seq } else { None },
    })
}

/// Validates, resolves and sends one REST push.
async fn push(
    state: &State,
    auth: &Admin,
    dest: Destination,
    event: String,
    payload: serde_json::Value,
    audience: Audience,
    only: Option<Vec<String>>,
) -> Result<Json<PushReply>, ApiError> {
    check(&event, &payload)?;
    let routes = resolve(state, dest, audience, only)?;
    let id = push_id();
    send(
        state,
        &id,
        &event,
        push_data(payload),
        routes,
        &auth.0.label(),
    )
    .await
    .map(Json)
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
        push(
            &state,
            &auth,
            Destination::Broadcast,
            b.event,
            b.payload,
            b.audience,
            b.users,
        )
        .await
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
        push(
            &state,
            &auth,
            Destination::Role(role.0),
            b.event,
            b.payload,
            b.audience,
            b.users,
        )
        .await
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
        push(
            &state,
            &auth,
            Destination::User(sub.0),
            b.event,
            b.payload,
            b.audience,
            b.users,
        )
        .await
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
        push(
            &state,
            &auth,
            Destination::Users(b.users),
            b.event,
            b.payload,
            b.audience,
            None,
        )
        .await
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
        push(
            &state,
            &auth,
            Destination::Channel(channel.0),
            b.event,
            b.payload,
            b.audience,
            b.users,
        )
        .await
    }
}
