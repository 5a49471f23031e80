//! Scheduled pushes: definitions, cadences, the in-memory registry and the task that
//! fires them.
//!
//! A schedule is a push (`event`, `payload`, `audience`, `target`) plus a cadence: a
//! cron pattern with a seconds field evaluated in an IANA time zone, or a fixed
//! `every_s` interval. Definitions are written to the store first ([`ScheduleStore`]),
//! then mirrored in [`Schedules`], which the API reads and the scheduler task ([`run`])
//! walks. Each run goes through the same resolve-and-publish path as a REST push
//! ([`crate::api::push`]), so the access rules are evaluated at run time: re-tiering or
//! undeclaring a channel applies to the next run.
//!
//! **Missed runs are not replayed.** When the server was down (or the task fell behind)
//! at a run time, that run is skipped; after a start or a resume the next run is the
//! first one after *now*. A schedule never fires in a burst.
//!
//! [`ScheduleStore`]: crate::store::ScheduleStore

use std::{
    collections::HashMap,
    str::FromStr,
    sync::{Arc, Mutex, atomic::Ordering},
    time::Duration,
};

use chrono::DateTime;
use croner::{
    Cron,
    parser::{CronParser, Seconds},
};
use poem_openapi::{Enum, Object, types::Example};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::{
    access::Audience,
    api::{
        error::ApiError,
        push::{self, Destination, Route},
    },
    auth::{Role, now_millis},
    server::State,
    store::ScheduleRecord,
};

/// Most schedules a server keeps; each one holds a payload of up to 64 KiB in memory.
pub const MAX_SCHEDULES: usize = 1000;

/// Longest `every_s`: one year (keeps every computed time far from overflow).
pub const MAX_EVERY_S: u64 = 366 * 24 * 3600;

/// Longest accepted schedule name, in bytes.
pub const MAX_NAME: usize = 128;

/// Longest accepted cron pattern, in bytes.
pub const MAX_CRON: usize = 256;

/// Longest single sleep of the scheduler: it re-plans at least this often, so a far
/// deadline never strains the timer and a wall-clock change is noticed.
const MAX_SLEEP: Duration = Duration::from_secs(3600);

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
    fn destination(&self) -> Result<Destination, String> {
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
            return Err(format!("target kind {kind} does not use the field {extra}"));
        }
        let missing = || {
            format!(
                "target kind {kind} needs the field {}",
                needed.unwrap_or("")
            )
        };
        Ok(match self.kind {
            TargetKind::Broadcast => Destination::Broadcast,
            TargetKind::Role => {
                let name = self.role.as_deref().ok_or_else(missing)?;
                let role = Role::ALL
                    .into_iter()
                    .find(|r| r.as_str() == name)
                    .ok_or_else(|| {
                        format!("unknown role {name:?}: use guest, free, member or admin")
                    })?;
                Destination::Role(role)
            }
            TargetKind::User => Destination::User(self.user.clone().ok_or_else(missing)?),
            TargetKind::Users => {
                let users = self.users.clone().ok_or_else(missing)?;
                if users.is_empty() {
                    return Err("target kind users needs at least one user".into());
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

/// Why a definition was refused: an API error code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub code: &'static str,
    pub message: String,
}

impl Invalid {
    /// Shorthand constructor.
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Invalid {
            code,
            message: message.into(),
        }
    }
}

impl From<Invalid> for ApiError {
    /// Every refused definition is a 422.
    fn from(e: Invalid) -> Self {
        ApiError::unprocessable(e.code, e.message)
    }
}

/// When a schedule fires.
#[derive(Debug, Clone)]
pub enum Cadence {
    /// A cron pattern evaluated in a time zone.
    Cron { cron: Box<Cron>, tz: chrono_tz::Tz },
    /// Every `period_ms`, on ticks `anchor + k * period_ms` (k ≥ 1), so restarts keep
    /// the rhythm without replaying.
    Every { period_ms: u64, anchor: u64 },
}

impl Cadence {
    /// Validates a definition's name, cadence and time zone. `anchor` is the creation
    /// time (unix ms) that `every_s` ticks count from.
    pub fn of(def: &ScheduleDef, anchor: u64) -> Result<Cadence, Invalid> {
        if def.name.trim().is_empty() || def.name.len() > MAX_NAME {
            return Err(Invalid::new(
                "invalid_name",
                format!("names are 1 to {MAX_NAME} bytes, not only spaces"),
            ));
        }
        let tz = chrono_tz::Tz::from_str(&def.tz).map_err(|_| {
            Invalid::new(
                "invalid_tz",
                format!(
                    "unknown time zone {:?}: use an IANA name such as UTC, Europe/Paris or Asia/Shanghai",
                    def.tz
                ),
            )
        })?;
        match (&def.cron, def.every_s) {
            (Some(_), Some(_)) | (None, None) => Err(Invalid::new(
                "invalid_schedule",
                "give exactly one of cron and every_s",
            )),
            (None, Some(every)) => {
                if every == 0 || every > MAX_EVERY_S {
                    return Err(Invalid::new(
                        "invalid_interval",
                        format!("every_s is 1 to {MAX_EVERY_S} seconds"),
                    ));
                }
                Ok(Cadence::Every {
                    period_ms: every * 1000,
                    anchor,
                })
            }
            (Some(pattern), None) => {
                if pattern.len() > MAX_CRON {
                    return Err(Invalid::new(
                        "invalid_cron",
                        format!("cron patterns are at most {MAX_CRON} bytes"),
                    ));
                }
                let cron = CronParser::builder()
                    .seconds(Seconds::Required)
                    .sloppy_ranges(true)
                    .build()
                    .parse(pattern)
                    .map_err(|e| Invalid::new("invalid_cron", e.to_string()))?;
                let cadence = Cadence::Cron {
                    cron: Box::new(cron),
                    tz,
                };
                if cadence.next_after(anchor).is_none() {
                    return Err(Invalid::new(
                        "invalid_cron",
                        format!("the pattern {pattern:?} never matches a future time"),
                    ));
                }
                Ok(cadence)
            }
        }
    }

    /// The first run time strictly after `after` (unix ms); `None` when there is none.
    pub fn next_after(&self, after: u64) -> Option<u64> {
        match self {
            Cadence::Every { period_ms, anchor } => {
                let k = after.saturating_sub(*anchor) / period_ms + 1;
                anchor.checked_add(k.checked_mul(*period_ms)?)
            }
            Cadence::Cron { cron, tz } => {
                // Whole seconds: the next match after this second is after `after` too.
                let secs = i64::try_from(after / 1000).ok()?;
                let start = DateTime::from_timestamp(secs, 0)?.with_timezone(tz);
                let next = cron.find_next_occurrence(&start, false).ok()?;
                u64::try_from(next.timestamp_millis()).ok()
            }
        }
    }
}

/// Resolves a definition's target into routes with the push access rules, as they are
/// now. Every failure is a 422 `invalid_target` carrying the rule's message.
pub(crate) fn routes(state: &State, def: &ScheduleDef) -> Result<Vec<Route>, ApiError> {
    let invalid = |m: String| ApiError::unprocessable("invalid_target", m);
    let dest = def.target.destination().map_err(invalid)?;
    push::resolve(state, dest, def.audience, None).map_err(|e| invalid(e.body().message.clone()))
}

/// A fresh schedule id.
pub fn schedule_id() -> String {
    format!("s-{:016x}", rand::random::<u64>())
}

/// One schedule in memory.
#[derive(Debug)]
struct Entry {
    def: Arc<ScheduleDef>,
    cadence: Cadence,
    paused: bool,
    created_at: u64,
    next_run: Option<u64>,
    last_run: Option<u64>,
    last_delivered: Option<u64>,
    runs: u64,
}

impl Entry {
    /// An entry for a stored schedule, planned from `now`; `None` (logged) when its
    /// definition no longer parses.
    fn from_record(rec: &ScheduleRecord, now: u64) -> Option<Entry> {
        let parsed = serde_json::from_str::<ScheduleDef>(&rec.definition)
            .map_err(|e| e.to_string())
            .and_then(|def| {
                Cadence::of(&def, rec.created_at)
                    .map(|c| (def, c))
                    .map_err(|e| e.message)
            });
        let (def, cadence) = match parsed {
            Ok(ok) => ok,
            Err(error) => {
                tracing::error!(schedule = %rec.id, %error, "stored schedule is invalid; not loaded");
                return None;
            }
        };
        let next_run = cadence.next_after(now);
        Some(Entry {
            def: Arc::new(def),
            cadence,
            paused: rec.paused,
            created_at: rec.created_at,
            next_run,
            last_run: rec.last_run,
            last_delivered: rec.last_delivered,
            runs: rec.runs,
        })
    }

    /// The API view of this entry.
    fn info(&self, id: &str) -> ScheduleInfo {
        let d = &*self.def;
        ScheduleInfo {
            id: id.to_string(),
            name: d.name.clone(),
            cron: d.cron.clone(),
            every_s: d.every_s,
            target: d.target.clone(),
            event: d.event.clone(),
            payload: d.payload.clone(),
            audience: d.audience,
            tz: d.tz.clone(),
            paused: self.paused,
            created_at: self.created_at,
            next_run: if self.paused { None } else { self.next_run },
            last_run: self.last_run,
            last_delivered: self.last_delivered,
            runs: self.runs,
        }
    }
}

/// A run taken from the registry, to be published.
#[derive(Debug)]
struct Due {
    id: String,
    def: Arc<ScheduleDef>,
    /// The run's index (1 for the first run).
    run: u64,
    /// Unix milliseconds the run was taken at.
    at: u64,
    /// Unix milliseconds the run was planned for: the same on every node of a cluster,
    /// so it names the tick in the run's lease.
    planned: u64,
}

/// The schedules in memory, mirrored from the store, with the scheduler's wake-up.
///
/// Writers (the API) store first, then update the mirror, then [`Notify`] the task so it
/// re-plans its sleep. Removing or pausing a schedule also waits for any run being
/// published at that moment, so once `DELETE` or a pausing `PATCH` has answered, that
/// schedule publishes nothing more.
#[derive(Debug, Default)]
pub struct Schedules {
    entries: Mutex<HashMap<String, Entry>>,
    wake: Notify,
    /// Held by the task while it publishes a batch of runs.
    publishing: tokio::sync::Mutex<()>,
}

impl Schedules {
    /// Locks the map; a poisoned lock still holds consistent entries (no update panics
    /// halfway), so it is used as is.
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Fills the registry from the store at startup. Next runs are computed from `now`:
    /// runs missed while the server was down are not replayed. A stored definition that
    /// no longer parses is logged and left out (it stays in the store).
    pub fn load(&self, records: Vec<ScheduleRecord>, now: u64) {
        let mut map = self.lock();
        map.clear();
        for rec in records {
            if let Some(entry) = Entry::from_record(&rec, now) {
                map.insert(rec.id, entry);
            }
        }
        tracing::info!(count = map.len(), "schedules loaded");
    }

    /// Cluster mode: brings the mirror in line with the shared store, where other nodes
    /// create, delete, pause and resume schedules. Entries known here keep their planning
    /// and run count; `read_at` is when `records` were read, so a schedule this node
    /// created after that read is not mistaken for a deleted one.
    pub async fn reconcile(&self, records: Vec<ScheduleRecord>, read_at: u64) {
        let now = now_millis();
        let mut gone = Vec::new();
        let mut changed = false;
        {
            let mut map = self.lock();
            let stored: std::collections::HashSet<&str> =
                records.iter().map(|r| r.id.as_str()).collect();
            for (id, e) in map.iter() {
                if !stored.contains(id.as_str()) && e.created_at < read_at.saturating_sub(5000) {
                    gone.push(id.clone());
                }
            }
            for rec in &records {
                match map.get_mut(&rec.id) {
                    Some(e) if e.paused != rec.paused => {
                        if e.paused {
                            e.next_run = e.cadence.next_after(now);
                        }
                        e.paused = rec.paused;
                        changed = true;
                    }
                    Some(_) => {}
                    None => {
                        if let Some(entry) = Entry::from_record(rec, now) {
                            map.insert(rec.id.clone(), entry);
                            changed = true;
                        }
                    }
                }
            }
        }
        for id in gone {
            self.remove(&id).await;
        }
        if changed {
            self.wake.notify_one();
        }
    }

    /// Number of schedules.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether there are no schedules.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Adds a schedule already stored, and wakes the task so it plans for it.
    pub fn insert(
        &self,
        id: &str,
        def: ScheduleDef,
        cadence: Cadence,
        created_at: u64,
    ) -> ScheduleInfo {
        let next_run = cadence.next_after(created_at.max(now_millis()));
        let entry = Entry {
            def: Arc::new(def),
            cadence,
            paused: false,
            created_at,
            next_run,
            last_run: None,
            last_delivered: None,
            runs: 0,
        };
        let info = entry.info(id);
        self.lock().insert(id.to_string(), entry);
        self.wake.notify_one();
        info
    }

    /// One schedule.
    pub fn get(&self, id: &str) -> Option<ScheduleInfo> {
        self.lock().get(id).map(|e| e.info(id))
    }

    /// Every schedule, oldest first.
    pub fn list(&self) -> Vec<ScheduleInfo> {
        let mut all: Vec<_> = self.lock().iter().map(|(id, e)| e.info(id)).collect();
        all.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        all
    }

    /// Forgets a schedule already removed from the store. Returns once no run of it can
    /// be published any more.
    pub async fn remove(&self, id: &str) -> bool {
        let existed = self.lock().remove(id).is_some();
        self.wake.notify_one();
        drop(self.publishing.lock().await);
        existed
    }

    /// Pauses or resumes a schedule already updated in the store. A resumed schedule's
    /// next run is the first after now (the paused time is not replayed). Returns once a
    /// paused schedule can publish no more runs.
    pub async fn set_paused(&self, id: &str, paused: bool) -> Option<ScheduleInfo> {
        let info = {
            let mut map = self.lock();
            let e = map.get_mut(id)?;
            if e.paused && !paused {
                e.next_run = e.cadence.next_after(now_millis());
            }
            e.paused = paused;
            e.info(id)
        };
        self.wake.notify_one();
        drop(self.publishing.lock().await);
        Some(info)
    }

    /// Takes every run due at `now`: counts it and plans the next run after `now`, so
    /// ticks missed while the task was late are skipped, not replayed.
    fn take_due(&self, now: u64) -> Vec<Due> {
        let mut due = Vec::new();
        for (id, e) in self.lock().iter_mut() {
            match e.next_run {
                Some(planned) if !e.paused && planned <= now => {
                    e.runs += 1;
                    e.last_run = Some(now);
                    e.next_run = e.cadence.next_after(now);
                    due.push(Due {
                        id: id.clone(),
                        def: e.def.clone(),
                        run: e.runs,
                        at: now,
                        planned,
                    });
                }
                _ => {}
            }
        }
        due.sort_by(|a, b| a.id.cmp(&b.id));
        due
    }

    /// Adopts the cluster-wide run number a lease returned.
    fn renumber(&self, id: &str, local: u64, run: u64) {
        if let Some(e) = self.lock().get_mut(id)
            && e.runs == local
        {
            e.runs = run;
        }
    }

    /// Notes what a run delivered.
    fn delivered(&self, id: &str, run: u64, delivered: u64) {
        if let Some(e) = self.lock().get_mut(id)
            && e.runs == run
        {
            e.last_delivered = Some(delivered);
        }
    }

    /// The earliest next run of an active schedule.
    fn next_deadline(&self) -> Option<u64> {
        self.lock()
            .values()
            .filter(|e| !e.paused)
            .filter_map(|e| e.next_run)
            .min()
    }
}

/// The `data` of a scheduled push event: the payload unchanged, plus which schedule and
/// which run sent it.
fn run_data(due: &Due) -> serde_json::Value {
    serde_json::json!({
        "payload": due.def.payload,
        "schedule": {"id": due.id, "name": due.def.name, "run": due.run},
    })
}

/// Publishes one run through the push path; returns the sockets written.
async fn fire(state: &State, due: &Due) -> Result<u64, ApiError> {
    let routes = routes(state, &due.def)?;
    let push_id = format!("{}#{}", due.id, due.run);
    let reply = push::send(
        state,
        &push_id,
        &due.def.event,
        run_data(due),
        routes,
        "scheduler",
    )
    .await?;
    Ok(reply.delivered)
}

/// Publishes every due run, then records them in the store, metrics and logs.
async fn fire_due(state: &State) {
    let done = {
        let _publishing = state.schedules.publishing.lock().await;
        let mut done = Vec::new();
        for mut due in state.schedules.take_due(now_millis()) {
            // In a cluster one node wins each tick; the others skip it.
            match state.bus.claim_run(&due.id, due.planned, due.run).await {
                Ok(Some(run)) => {
                    state.schedules.renumber(&due.id, due.run, run);
                    due.run = run;
                }
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(schedule = %due.id, error = %e, "schedule run skipped: cannot claim it");
                    continue;
                }
            }
            let result = fire(state, &due).await;
            done.push((due, result));
        }
        done
    };
    for (due, result) in done {
        state.metrics.schedule_runs.fetch_add(1, Ordering::Relaxed);
        let delivered = match result {
            Ok(delivered) => {
                tracing::info!(schedule = %due.id, name = %due.def.name, run = due.run, delivered, "schedule run");
                delivered
            }
            Err(e) => {
                let b = e.body();
                tracing::warn!(schedule = %due.id, name = %due.def.name, run = due.run, code = %b.code, error = %b.message, "schedule run published nothing");
                0
            }
        };
        state.schedules.delivered(&due.id, due.run, delivered);
        if let Err(e) = state
            .store
            .record_schedule_run(&due.id, due.at, due.run, delivered)
            .await
        {
            tracing::error!(schedule = %due.id, error = %e, "cannot record a schedule run");
        }
    }
}

/// The scheduler task: sleeps until the earliest next run (or until the registry
/// changes), fires what is due, and repeats until shutdown starts.
pub async fn run(state: Arc<State>) {
    let mut shutdown = state.shutdown.clone();
    tracing::info!(count = state.schedules.len(), "scheduler started");
    loop {
        if *shutdown.borrow() {
            break;
        }
        fire_due(&state).await;
        let sleep = async {
            match state.schedules.next_deadline() {
                Some(t) => {
                    let wait = Duration::from_millis(t.saturating_sub(now_millis()));
                    tokio::time::sleep(wait.min(MAX_SLEEP)).await
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = sleep => {}
            _ = state.schedules.wake.notified() => {}
            changed = shutdown.changed() => {
                if changed.is_err() {
                    break;
                }
            }
        }
    }
    tracing::info!("scheduler stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(cron: Option<&str>, every_s: Option<u64>, tz: &str) -> ScheduleDef {
        ScheduleDef {
            name: "t".into(),
            cron: cron.map(Into::into),
            every_s,
            target: ScheduleTarget {
                kind: TargetKind::Broadcast,
                role: None,
                user: None,
                users: None,
                channel: None,
            },
            event: "push".into(),
            payload: serde_json::json!(1),
            audience: Audience::Everyone,
            tz: tz.into(),
        }
    }

    /// Unix ms of a UTC date-time written as RFC 3339.
    fn at(s: &str) -> u64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis() as u64
    }

    #[test]
    fn every_ticks_from_the_anchor_and_skips_missed_ticks() {
        let c = Cadence::of(&def(None, Some(5), "UTC"), 1_000).unwrap();
        assert_eq!(c.next_after(1_000), Some(6_000));
        assert_eq!(c.next_after(5_999), Some(6_000));
        assert_eq!(c.next_after(6_000), Some(11_000));
        // Down for a minute: the next tick after now, no burst.
        assert_eq!(c.next_after(66_500), Some(71_000));
    }

    #[test]
    fn cron_has_seconds_and_last_day_of_month() {
        let c = Cadence::of(&def(Some("0/5 * * * * *"), None, "UTC"), 0).unwrap();
        let t = at("2025-03-01T10:00:02.300Z");
        assert_eq!(c.next_after(t), Some(at("2025-03-01T10:00:05Z")));
        assert_eq!(
            c.next_after(at("2025-03-01T10:00:05Z")),
            Some(at("2025-03-01T10:00:10Z"))
        );
        let every = Cadence::of(&def(Some("* * * * * *"), None, "UTC"), 0).unwrap();
        assert_eq!(
            every.next_after(at("2025-03-01T10:00:05.999Z")),
            Some(at("2025-03-01T10:00:06Z"))
        );
        let eom = Cadence::of(&def(Some("0 0 9 L * *"), None, "UTC"), 0).unwrap();
        assert_eq!(
            eom.next_after(at("2024-02-10T00:00:00Z")),
            Some(at("2024-02-29T09:00:00Z"))
        );
        assert_eq!(
            eom.next_after(at("2024-02-29T09:00:00Z")),
            Some(at("2024-03-31T09:00:00Z"))
        );
    }

    #[test]
    fn cron_runs_in_its_time_zone() {
        let c = Cadence::of(&def(Some("0 0 9 * * *"), None, "Asia/Shanghai"), 0).unwrap();
        assert_eq!(
            c.next_after(at("2025-03-01T00:00:00Z")),
            Some(at("2025-03-01T01:00:00Z"))
        );
        let paris = Cadence::of(&def(Some("0 0 9 * * *"), None, "Europe/Paris"), 0).unwrap();
        // Summer time: 09:00 in Paris is 07:00 UTC.
        assert_eq!(
            paris.next_after(at("2025-07-01T00:00:00Z")),
            Some(at("2025-07-01T07:00:00Z"))
        );
    }

    #[test]
    fn bad_definitions_get_precise_codes() {
        let code = |d: ScheduleDef| Cadence::of(&d, 0).unwrap_err().code;
        assert_eq!(code(def(Some("* * * * *"), None, "UTC")), "invalid_cron");
        assert_eq!(code(def(Some("61 * * * * *"), None, "UTC")), "invalid_cron");
        assert_eq!(code(def(Some("0 0 0 30 2 *"), None, "UTC")), "invalid_cron");
        assert_eq!(code(def(None, None, "UTC")), "invalid_schedule");
        assert_eq!(
            code(def(Some("* * * * * *"), Some(1), "UTC")),
            "invalid_schedule"
        );
        assert_eq!(code(def(None, Some(0), "UTC")), "invalid_interval");
        assert_eq!(
            code(def(None, Some(MAX_EVERY_S + 1), "UTC")),
            "invalid_interval"
        );
        assert_eq!(code(def(None, Some(1), "Mars/Olympus")), "invalid_tz");
        let mut unnamed = def(None, Some(1), "UTC");
        unnamed.name = " ".into();
        assert_eq!(code(unnamed), "invalid_name");
    }

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
