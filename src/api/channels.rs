//! `/api/channels`: declare channels with a tier, list them, and read presence.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path, payload::Json};

use super::{
    ApiTags,
    auth::{Admin, MaybeAuthed},
    error::ApiError,
};
use crate::{
    access,
    model::{Identity, Role, Tier},
    state::State,
};

/// Channel endpoints.
pub struct ChannelsApi;

/// A declared channel.
#[derive(Debug, Object)]
pub struct ChannelInfo {
    pub name: String,
    pub tier: Tier,
    /// Unix milliseconds of the last change.
    pub updated_at: u64,
}

/// Body of `PUT /api/channels/{name}`.
#[derive(Debug, Object)]
pub struct DeclareChannel {
    pub tier: Tier,
}

/// Reply of `PUT /api/channels/{name}`.
#[derive(ApiResponse)]
pub enum DeclareReply {
    /// The channel was declared.
    #[oai(status = 201)]
    Created(Json<ChannelInfo>),
    /// The channel existed; its tier was updated.
    #[oai(status = 200)]
    Updated(Json<ChannelInfo>),
}

/// Reply of `DELETE /api/channels/{name}`.
#[derive(ApiResponse)]
pub enum DeleteReply {
    /// The declaration was removed.
    #[oai(status = 204)]
    Deleted,
}

/// Subscriber counts per role.
#[derive(Debug, Object)]
pub struct ByRole {
    pub guest: u64,
    pub free: u64,
    pub member: u64,
    pub admin: u64,
}

/// Who is on a channel.
#[derive(Debug, Object)]
pub struct Presence {
    pub channel: String,
    /// Sockets subscribed.
    pub total: u64,
    pub by_role: ByRole,
    /// Distinct signed-in users (admins only).
    #[oai(skip_serializing_if_is_none)]
    pub users: Option<Vec<String>>,
}

/// The identity used for access checks: API keys act as an admin, no credentials as a guest.
fn effective_identity(caller: &Option<super::auth::Caller>) -> Identity {
    match caller.as_ref().and_then(|c| c.identity()) {
        Some(id) => (**id).clone(),
        None => Identity {
            sub: Arc::from("-"),
            name: Arc::from("-"),
            role: caller.as_ref().map(|c| c.role()).unwrap_or(Role::Guest),
            exp: None,
            moderates: Arc::default(),
        },
    }
}

#[OpenApi(tag = "ApiTags::Channels")]
impl ChannelsApi {
    /// List the declared channels the caller may join.
    #[oai(path = "/channels", method = "get")]
    async fn list(
        &self,
        state: Data<&Arc<State>>,
        auth: MaybeAuthed,
    ) -> Result<Json<Vec<ChannelInfo>>, ApiError> {
        let role = auth.0.as_ref().map(|c| c.role()).unwrap_or(Role::Guest);
        let decls = state.store.list_channels().await?;
        Ok(Json(
            decls
                .into_iter()
                .filter(|d| d.tier.admits(role))
                .map(|d| ChannelInfo {
                    name: d.name,
                    tier: d.tier,
                    updated_at: d.updated_at,
                })
                .collect(),
        ))
    }

    /// Declare a channel or change its tier (admin).
    ///
    /// Only declared channels can be joined (besides `video:*` and the automatic ones).
    /// A new tier applies to the next event at once: fan-out is always narrowed by it.
    #[oai(path = "/channels/:name", method = "put")]
    async fn declare(
        &self,
        state: Data<&Arc<State>>,
        auth: Admin,
        name: Path<String>,
        body: Json<DeclareChannel>,
    ) -> Result<DeclareReply, ApiError> {
        access::declarable(&name).map_err(ApiError::from)?;
        let created = state.store.put_channel(&name, body.tier).await?;
        state.directory.declare(&name, body.tier);
        tracing::info!(channel = %*name, tier = body.tier.as_str(), by = %auth.0.label(), created, "channel declared");
        let info = ChannelInfo {
            name: name.0,
            tier: body.tier,
            updated_at: crate::model::time::now_millis(),
        };
        Ok(if created {
            DeclareReply::Created(Json(info))
        } else {
            DeclareReply::Updated(Json(info))
        })
    }

    /// Remove a channel declaration (admin). Current subscribers stop receiving its events.
    #[oai(path = "/channels/:name", method = "delete")]
    async fn delete(
        &self,
        state: Data<&Arc<State>>,
        auth: Admin,
        name: Path<String>,
    ) -> Result<DeleteReply, ApiError> {
        access::declarable(&name).map_err(ApiError::from)?;
        if !state.store.delete_channel(&name).await? {
            return Err(ApiError::not_found(
                "unknown_channel",
                format!("channel {} is not declared", *name),
            ));
        }
        state.directory.forget(&name);
        tracing::info!(channel = %*name, by = %auth.0.label(), "channel deleted");
        Ok(DeleteReply::Deleted)
    }

    /// Who is subscribed to a channel, summed over every live node of a cluster. The user
    /// list (admins only) names the users on the node that answers.
    #[oai(path = "/channels/:name/presence", method = "get")]
    async fn presence(
        &self,
        state: Data<&Arc<State>>,
        auth: MaybeAuthed,
        name: Path<String>,
    ) -> Result<Json<Presence>, ApiError> {
        let who = effective_identity(&auth.0);
        if who.role != Role::Admin {
            state.directory.check(&who, &name).map_err(ApiError::from)?;
        } else if matches!(
            access::parse_channel(&name).map_err(ApiError::from)?,
            access::ChannelKind::Named
        ) && state.directory.declared(&name).is_none()
        {
            // Admins may look into any channel, but a named one exists only while it is
            // declared (a deleted declaration is gone, as for everyone else).
            return Err(ApiError::not_found(
                "unknown_channel",
                format!("channel {} is not declared", *name),
            ));
        }
        let counts = state
            .bus
            .presence(&name)
            .await
            .map_err(|e| ApiError::unavailable("bus_unavailable", e.to_string()))?;
        let users = (who.role == Role::Admin).then(|| {
            state
                .hub
                .users(&name)
                .iter()
                .map(|u| u.to_string())
                .collect()
        });
        Ok(Json(Presence {
            channel: name.0,
            total: counts.iter().sum::<usize>() as u64,
            by_role: ByRole {
                guest: counts[0] as u64,
                free: counts[1] as u64,
                member: counts[2] as u64,
                admin: counts[3] as u64,
            },
            users,
        }))
    }
}
