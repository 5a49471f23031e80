//! What a schedule is: its definition as the API takes it and the store keeps it, what
//! the API shows of it, and the push target it names.

use poem_openapi::{Enum, Object, types::Example};
use serde::{Deserialize, Serialize};

use crate::{
    model::{Audience, Kind, Refusal, Role},
    push::{self, Destination, Route},
};

/// Most schedules a server keeps; each one holds a payload of up to 64 KiB in memory.
pub const MAX_SCHEDULES: usize = 1000;

/// Longest `every_s`: one year (keeps every computed time far from overflow).
pub const MAX_EVERY_S: u64 = 366 * 24 * 3600;

/// Longest accepted schedule name, in bytes.
pub const MAX_NAME: usize = 128;

/// Longest accepted cron pattern, in bytes.
pub const MAX_CRON: usize = 256;

/// The time zone used when a definition names none.
fn default_tz() -> String {
    "UTC".to_string()
}

/// Which push family a schedule uses; the other target fields depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Enum)]
#[serde(rename_all = "lowercase")]
#[oai(rename_all = "lowercase")]
pub enum TargetKind {
    /// Every socket (no other field).
    Broadcast,
    /// Every socket of `role`.
    Role,
    /// Every socket of `user`.
    User,
    /// Every socket of each of `users`.
    Users,
    /// The subscribers of `channel`, narrowed by its tier.
    Channel,
}

impl TargetKind {
    /// Lowercase name, for messages.
    fn as_str(self) -> &'static str {
        match self {
            TargetKind::Broadcast => "broadcast",
            TargetKind::Role => "role",
            TargetKind::User => "user",
            TargetKind::Users => "users",
            TargetKind::Channel => "channel",
        }
    }
}

/// Who a scheduled push reaches: the same families as `/api/push/*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Object)]
pub struct ScheduleTarget {
    /// `broadcast`, `role` (needs `role`), `user` (needs `user`), `users` (needs
    /// `users`) or `channel` (needs `channel`). Fields another kind needs are refused.
    pub kind: TargetKind,
    /// For `role`: `guest`, `free`, `member` or `admin`.
    #[oai(skip_serializing_if_is_none)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// For `user`: the user's `sub`.
    #[oai(skip_serializing_if_is_none)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// For `users`: the users' `sub`s (at most 1000).
    #[oai(skip_serializing_if_is_none)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<Vec<String>>,
    /// For `channel`: a declared channel, `video:{id}`, `user:{sub}` or `broadcast`.
    #[oai(skip_serializing_if_is_none)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

impl ScheduleTarget {
    /// The push destination these fields describe, or why they do not fit the kind.
    pub fn destination(&self) -> Result<Destination, Refusal> {
        let kind = self.kind.as_str();
        let fields = [
            ("role", self.role.is_some()),
            ("user", self.user.is_some()),
            ("users", self.users.is_some()),
            ("channel", self.channel.is_some()),
        ];
        let needed = match self.kind {
            TargetKind::Broadcast => None,
            TargetKind::Role => Some("role"),
            TargetKind::User => Some("user"),
            TargetKind::Users => Some("users"),
            TargetKind::Channel => Some("channel"),
        };
        if let Some((extra, _)) = fields
            .iter()
            .find(|(name, set)| *set && Some(*name) != needed)
        {
            return Err(invalid_target(format!(
                "target kind {kind} does not use the field {extra}"
            )));
        }
        let missing = || {
            invalid_target(format!(
                "target kind {kind} needs the field {}",
                needed.unwrap_or("")
            ))
        };
        Ok(match self.kind {
            TargetKind::Broadcast => Destination::Broadcast,
            TargetKind::Role => {
                let name = self.role.as_deref().ok_or_else(missing)?;
                let role = Role::ALL
                    .into_iter()
                    .find(|r| r.as_str() == name)
                    .ok_or_else(|| {
                        invalid_target(format!(
                            "unknown role {name:?}: use guest, free, member or admin"
                        ))
                    })?;
                Destination::Role(role)
            }
            TargetKind::User => Destination::User(self.user.clone().ok_or_else(missing)?),
            TargetKind::Users => {
                let users = self.users.clone().ok_or_else(missing)?;
                if users.is_empty() {
                    return Err(invalid_target("target kind users needs at least one user"));
                }
                Destination::Users(users)
            }
            TargetKind::Channel => Destination::Channel(self.channel.clone().ok_or_else(missing)?),
        })
    }
}

/// A schedule as created: the push to make and when. This is also the JSON kept in the
/// store, so that a restart rebuilds exactly what was acknowledged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Object)]
#[oai(example)]
pub struct ScheduleDef {
    /// A label for people and logs (1 to 128 bytes).
    pub name: String,
    /// Cron pattern with six fields, seconds first: `sec min hour day-of-month month
    /// day-of-week`. `0/5 * * * * *` fires every 5 s; `0 0 9 L * *` at 09:00 on the
    /// last day of each month. Supports lists, ranges, steps, `L`, `#`, `W` and month
    /// and weekday names. Exactly one of `cron` and `every_s` is required.
    #[oai(skip_serializing_if_is_none)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// Fixed interval in seconds (1 to 31622400), counted from creation. Exactly one of
    /// `cron` and `every_s` is required.
    #[oai(skip_serializing_if_is_none)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every_s: Option<u64>,
    /// Who each run reaches.
    pub target: ScheduleTarget,
    /// Event name, sent as the frame's `type`.
    #[oai(default = "push::default_event")]
    #[serde(default = "push::default_event")]
    pub event: String,
    /// Any JSON; delivered unchanged in `data.payload` on every run (`null` when absent).
    #[oai(default)]
    #[serde(default)]
    pub payload: serde_json::Value,
    /// Which role groups may receive it.
    #[oai(default)]
    #[serde(default)]
    pub audience: Audience,
    /// IANA time zone in which `cron` is evaluated (`UTC`, `Europe/Paris`,
    /// `Asia/Shanghai`, ...). Daylight-saving changes follow the zone's rules.
    #[oai(default = "default_tz")]
    #[serde(default = "default_tz")]
    pub tz: String,
}

impl Example for ScheduleDef {
    /// A month-end notice to members, so Swagger UI users start from a valid body.
    fn example() -> Self {
        ScheduleDef {
            name: "month-end notice".into(),
            cron: Some("0 0 9 L * *".into()),
            every_s: None,
            target: ScheduleTarget {
                kind: TargetKind::Role,
                role: Some("member".into()),
                user: None,
                users: None,
                channel: None,
            },
            event: "notice".into(),
            payload: serde_json::json!({"text": "Your monthly statement is ready"}),
            audience: Audience::Members,
            tz: "Asia/Shanghai".into(),
        }
    }
}

/// A schedule as the API shows it: its definition and its run state.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct ScheduleInfo {
    /// Server-assigned id.
    pub id: String,
    /// The definition's fields, as created.
    pub name: String,
    /// The cron pattern, for cron schedules.
    #[oai(skip_serializing_if_is_none)]
    pub cron: Option<String>,
    /// The interval in seconds, for fixed-interval schedules.
    #[oai(skip_serializing_if_is_none)]
    pub every_s: Option<u64>,
    /// Who each run reaches.
    pub target: ScheduleTarget,
    /// The event name of each run.
    pub event: String,
    /// The payload of each run, delivered unchanged in `data.payload`.
    pub payload: serde_json::Value,
    /// Which role groups may receive it.
    pub audience: Audience,
    /// The time zone `cron` is evaluated in.
    pub tz: String,
    /// Whether runs are suspended (`PATCH` with `{"paused": false}` resumes).
    pub paused: bool,
    /// Unix milliseconds of creation.
    pub created_at: u64,
    /// Unix milliseconds of the next run; absent while paused, or when the cron pattern
    /// has no future match. Runs missed while the server was down are not replayed.
    #[oai(skip_serializing_if_is_none)]
    pub next_run: Option<u64>,
    /// Unix milliseconds of the last run; absent before the first.
    #[oai(skip_serializing_if_is_none)]
    pub last_run: Option<u64>,
    /// Sockets the last run was written to; absent before the first run.
    #[oai(skip_serializing_if_is_none)]
    pub last_delivered: Option<u64>,
    /// Runs so far. Each run's event carries its index in `data.schedule.run`.
    pub runs: u64,
}

impl Example for ScheduleInfo {
    /// The example definition as it looks after a few runs.
    fn example() -> Self {
        let def = ScheduleDef::example();
        ScheduleInfo {
            id: "s-3f2a9c0d81b7e645".into(),
            name: def.name,
            cron: def.cron,
            every_s: def.every_s,
            target: def.target,
            event: def.event,
            payload: def.payload,
            audience: def.audience,
            tz: def.tz,
            paused: false,
            created_at: 1_735_689_600_000,
            next_run: Some(1_740_704_400_000),
            last_run: Some(1_738_285_200_000),
            last_delivered: Some(1873),
            runs: 2,
        }
    }
}

impl ScheduleDef {
    /// Resolves the target into routes with the push access rules, as they are now.
    /// Every failure is a 422 `invalid_target` carrying the rule's message.
    pub fn routes(&self, push: &push::Service) -> Result<Vec<Route>, Refusal> {
        let dest = self.target.destination()?;
        push.resolve(dest, self.audience, None)
            .map_err(|e| e.recoded(Kind::Invalid, "invalid_target"))
    }
}

/// A target that does not fit its kind.
fn invalid_target(message: impl Into<std::borrow::Cow<'static, str>>) -> Refusal {
    Refusal::invalid("invalid_target", message)
}

/// A fresh schedule id.
pub fn schedule_id() -> String {
    format!("s-{:016x}", rand::random::<u64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_need_exactly_their_field() {
        let t = |kind, role: Option<&str>, channel: Option<&str>| ScheduleTarget {
            kind,
            role: role.map(Into::into),
            user: None,
            users: None,
            channel: channel.map(Into::into),
        };
        assert_eq!(
            t(TargetKind::Broadcast, None, None).destination(),
            Ok(Destination::Broadcast)
        );
        assert_eq!(
            t(TargetKind::Role, Some("guest"), None).destination(),
            Ok(Destination::Role(Role::Guest))
        );
        assert!(t(TargetKind::Role, None, None).destination().is_err());
        assert!(
            t(TargetKind::Role, Some("boss"), None)
                .destination()
                .is_err()
        );
        assert!(
            t(TargetKind::Broadcast, None, Some("news"))
                .destination()
                .is_err()
        );
        assert!(t(TargetKind::Channel, None, None).destination().is_err());
        let nobody = ScheduleTarget {
            users: Some(Vec::new()),
            ..t(TargetKind::Users, None, None)
        };
        assert!(nobody.destination().is_err(), "an empty user list");
    }

    #[test]
    fn definitions_round_trip_through_json_with_defaults() {
        let d = ScheduleDef::example();
        let text = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<ScheduleDef>(&text).unwrap(), d);
        let minimal: ScheduleDef = serde_json::from_str(
            r#"{"name":"n","every_s":1,"target":{"kind":"broadcast"},"payload":null}"#,
        )
        .unwrap();
        assert_eq!(
            (
                minimal.event.as_str(),
                minimal.audience,
                minimal.tz.as_str()
            ),
            ("push", Audience::Everyone, "UTC")
        );
    }
}
