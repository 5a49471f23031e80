//! `/api/push/*`: server pushes to sockets, for backends and admins.
//!
//! Every push is one event (`type` = the `event` name) whose `data` is `{"payload": ..}`
//! with the payload passed through unchanged. The reply counts the sockets written.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::{Object, OpenApi, param::Path, payload::Json};

use super::{ApiTags, auth::Admin, error::ApiError};
use crate::{
    model::{Audience, Role},
    push::{self, Destination, default_event},
    state::State,
};

/// Push endpoints.
pub struct PushApi;

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

/// Validates, resolves and sends one REST push.
async fn send_push(
    state: &State,
    auth: &Admin,
    dest: Destination,
    event: String,
    payload: serde_json::Value,
    audience: Audience,
    only: Option<Vec<String>>,
) -> Result<Json<PushReply>, ApiError> {
    push::check(&event, &payload)?;
    let routes = state.push.resolve(dest, audience, only)?;
    let id = push::push_id();
    let sent = state
        .push
        .send(
            &id,
            &event,
            push::push_data(payload),
            routes,
            &auth.0.label(),
        )
        .await?;
    Ok(Json(PushReply {
        id,
        delivered: sent.delivered,
        seq: sent.seq,
    }))
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
        send_push(
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
        send_push(
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
        send_push(
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
        send_push(
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
        send_push(
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
