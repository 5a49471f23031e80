//! Pushes: resolving who a push is for and sending it through the bus.
//!
//! Domain logic shared by the REST push endpoints (`api::push`), the scheduler
//! (`schedule::runner`) and the admin console (which calls the REST API): every push is
//! one event whose `data` carries the payload unchanged, and the same access rules
//! (channel names and tiers, audiences, user lists) decide where it may go.

use std::sync::Arc;

use serde_json::Value;

use crate::{
    access::{self, BROADCAST, ChannelKind, Directory},
    bus::Bus,
    hub::event::{Publish, Target},
    model::{Audience, Refusal, Role, Tier},
};

/// Largest accepted payload, as compact JSON.
pub const MAX_PAYLOAD: usize = 64 * 1024;

/// Most users addressed by one push.
pub const MAX_USERS: usize = 1000;

/// Event names the protocol uses for its own frames.
const RESERVED_EVENTS: [&str; 5] = ["reply", "welcome", "unsubscribed", "token_expired", "batch"];

/// The event name used when a push names none.
pub fn default_event() -> String {
    "push".to_string()
}

/// Who a push is for, before the access rules resolve it. One value per push family, so
/// that the REST endpoints and scheduled pushes share every rule below.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
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
pub type Route = (Arc<str>, Target);

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// Sockets the event was queued to on this node.
    pub delivered: u64,
    /// The channel sequence number; `None` when several channels were used.
    pub seq: Option<u64>,
}

/// Validates an event name and the payload size.
pub fn check(event: &str, payload: &Value) -> Result<(), Refusal> {
    let valid = !event.is_empty()
        && event.len() <= 64
        && event
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.:".contains(&b));
    if !valid {
        return Err(Refusal::invalid(
            "invalid_event",
            "event names are 1 to 64 characters of letters, digits and _ - . :",
        ));
    }
    if RESERVED_EVENTS.contains(&event) {
        return Err(Refusal::invalid(
            "reserved_event",
            format!("{event} is a protocol frame type"),
        ));
    }
    let size = serde_json::to_vec(payload)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_PAYLOAD {
        return Err(Refusal::invalid(
            "payload_too_large",
            format!("payloads are at most {MAX_PAYLOAD} bytes of JSON"),
        ));
    }
    Ok(())
}

/// Validates an explicit user list.
fn check_users(users: &[String]) -> Result<(), Refusal> {
    if users.len() > MAX_USERS {
        return Err(Refusal::invalid(
            "too_many_users",
            format!("at most {MAX_USERS} users per push"),
        ));
    }
    if users.iter().any(|u| u.is_empty() || u.len() > 128) {
        return Err(Refusal::invalid(
            "invalid_user",
            "user ids are 1 to 128 bytes",
        ));
    }
    Ok(())
}

/// A fresh push id, for logs.
pub fn push_id() -> String {
    format!("p-{:016x}", rand::random::<u64>())
}

/// The `data` of a push event: the payload, passed through unchanged.
pub fn push_data(payload: Value) -> Value {
    serde_json::json!({ "payload": payload })
}

/// Builds the audience target, narrowed by an optional user list.
fn target(audience: Audience, users: Option<Vec<String>>) -> Result<Target, Refusal> {
    let t = Target::audience(audience);
    match users {
        Some(users) => {
            check_users(&users)?;
            Ok(t.only_users(users))
        }
        None => Ok(t),
    }
}

/// Resolves and sends pushes; one per process, shared by every caller.
pub struct Service {
    directory: Arc<Directory>,
    bus: Arc<dyn Bus>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("push::Service").finish_non_exhaustive()
    }
}

impl Service {
    /// A service resolving tiers in `directory` and publishing on `bus`.
    pub fn new(directory: Arc<Directory>, bus: Arc<dyn Bus>) -> Self {
        Service { directory, bus }
    }

    /// Resolves a destination into routes with the access rules: channel names and
    /// tiers, audiences, user lists. `only` narrows every route to those users. Fails
    /// with the precise code of the first rule broken (`invalid_channel`,
    /// `unknown_channel`, ...).
    pub fn resolve(
        &self,
        dest: Destination,
        audience: Audience,
        only: Option<Vec<String>>,
    ) -> Result<Vec<Route>, Refusal> {
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
                let tier = match access::parse_channel(&channel)? {
                    ChannelKind::Named => self.directory.declared(&channel).ok_or_else(|| {
                        Refusal::not_found(
                            "unknown_channel",
                            format!("channel {channel} is not declared"),
                        )
                    })?,
                    ChannelKind::Video(v) => self.directory.video_tier(&v).ok_or_else(|| {
                        Refusal::not_found(
                            "unknown_video",
                            format!("video {v} is not in the catalog"),
                        )
                    })?,
                    ChannelKind::User(_) | ChannelKind::Broadcast => Tier::Free,
                };
                let mut t = target(audience, only)?;
                t.mask &= tier.mask();
                Ok(vec![(Arc::from(channel.as_str()), t)])
            }
        }
    }

    /// Publishes one event on every route through the bus and logs each publish. The
    /// result sums the sockets reached; `seq` is set when exactly one channel was used.
    pub async fn send(
        &self,
        id: &str,
        event: &str,
        data: Value,
        routes: Vec<Route>,
        by: &str,
    ) -> Result<Sent, Refusal> {
        let single = routes.len() == 1;
        let mut delivered = 0u64;
        let mut last_seq = None;
        for (channel, target) in routes {
            let published = self
                .bus
                .publish(Publish {
                    channel: channel.clone(),
                    event: event.to_string(),
                    data: data.clone(),
                    target,
                })
                .await
                .map_err(|e| Refusal::unavailable("bus_unavailable", e.to_string()))?;
            tracing::info!(push = id, %channel, seq = published.seq, delivered = published.delivered, %by, "push");
            delivered += published.delivered as u64;
            last_seq = Some(published.seq);
        }
        Ok(Sent {
            delivered,
            seq: if single { last_seq } else { None },
        })
    }
}
