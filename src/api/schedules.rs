//! `/api/schedules`: scheduled pushes, created, listed, paused and deleted by admins.
//!
//! A schedule is a push (`/api/push/*` families and rules) fired by cron or at a fixed
//! interval. Definitions are stored first, then handed to the scheduler
//! ([`crate::schedule`]). Runs missed while the server was down are not replayed: after
//! a restart (or a resume) the next run is the first one after now.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path, payload::Json, types::Example};

use super::{ApiTags, auth::Admin, error::ApiError};
use crate::{
    model::time::now_millis,
    push,
    schedule::{self, Cadence, MAX_SCHEDULES, ScheduleDef, ScheduleInfo},
    state::State,
    store::ScheduleRecord,
};

/// Schedule endpoints.
pub struct SchedulesApi;

/// Body of `PATCH /api/schedules/{id}`.
#[derive(Debug, Object)]
#[oai(example)]
pub struct PatchSchedule {
    /// `true` suspends runs; `false` resumes them from the next run after now.
    pub paused: bool,
}

impl Example for PatchSchedule {
    /// Pausing, the usual first use.
    fn example() -> Self {
        PatchSchedule { paused: true }
    }
}

/// Reply of `POST /api/schedules`.
#[derive(ApiResponse)]
pub enum CreateReply {
    /// The schedule is stored and planned; `next_run` says when it first fires.
    #[oai(status = 201)]
    Created(Json<ScheduleInfo>),
}

/// Reply of `DELETE /api/schedules/{id}`.
#[derive(ApiResponse)]
pub enum DeleteReply {
    /// The schedule is gone; no run of it is published after this reply.
    #[oai(status = 204)]
    Deleted,
}

/// The example id shown in Swagger UI.
fn example_id() -> String {
    "s-3f2a9c0d81b7e645".to_string()
}

/// The 404 for an id that names no schedule.
fn unknown(id: &str) -> ApiError {
    ApiError::not_found("unknown_schedule", format!("no schedule has the id {id}"))
}

#[OpenApi(tag = "ApiTags::Schedules")]
impl SchedulesApi {
    /// Create a scheduled push (admin).
    ///
    /// Give exactly one of `cron` (six fields, seconds first, evaluated in `tz`) and
    /// `every_s` (seconds, counted from creation). `target.kind` picks the push family
    /// and the field it needs: `role`, `user`, `users` or `channel` (none for
    /// `broadcast`). Each run publishes `event` with `data: {"payload": <payload>,
    /// "schedule": {"id", "name", "run"}}`, resolving the target with the push rules as
    /// they are at run time.
    ///
    /// Missed runs are not replayed: runs that fall while the server is down are
    /// skipped, and after a restart the next run is the first one after now.
    ///
    /// Errors (422): `invalid_cron` (with the parser's message), `invalid_schedule`
    /// (not exactly one of cron and every_s), `invalid_interval`, `invalid_tz`,
    /// `invalid_name`, `invalid_target` (a missing or extra field for the kind, an
    /// unknown role, an undeclared or invalid channel, a bad user list), `invalid_event`,
    /// `reserved_event`, `payload_too_large`, `too_many_schedules`.
    #[oai(path = "/schedules", method = "post")]
    async fn create(
        &self,
        state: Data<&Arc<State>>,
        auth: Admin,
        body: Json<ScheduleDef>,
    ) -> Result<CreateReply, ApiError> {
        let def = body.0;
        let created_at = now_millis();
        let cadence = Cadence::of(&def, created_at)?;
        push::check(&def.event, &def.payload)?;
        def.routes(&state.push)?;
        if state.schedules.len() >= MAX_SCHEDULES {
            return Err(ApiError::unprocessable(
                "too_many_schedules",
                format!("a server keeps at most {MAX_SCHEDULES} schedules; delete some first"),
            ));
        }
        let definition = serde_json::to_string(&def).map_err(|e| {
            ApiError::unprocessable("invalid_payload", format!("cannot store: {e}"))
        })?;
        let id = schedule::schedule_id();
        state
            .store
            .put_schedule(&ScheduleRecord {
                id: id.clone(),
                definition,
                paused: false,
                created_at,
                last_run: None,
                last_delivered: None,
                runs: 0,
            })
            .await?;
        let info = state.schedules.insert(&id, def, cadence, created_at);
        tracing::info!(schedule = %id, name = %info.name, next_run = ?info.next_run, by = %auth.0.label(), "schedule created");
        Ok(CreateReply::Created(Json(info)))
    }

    /// List every schedule, oldest first (admin).
    ///
    /// Each comes with its run state: `paused`, `next_run`, `last_run`, `last_delivered`
    /// and `runs`.
    #[oai(path = "/schedules", method = "get")]
    async fn list(
        &self,
        state: Data<&Arc<State>>,
        _auth: Admin,
    ) -> Result<Json<Vec<ScheduleInfo>>, ApiError> {
        Ok(Json(state.schedules.list()))
    }

    /// One schedule with its run state (admin).
    ///
    /// 404 `unknown_schedule` if there is none with this id.
    #[oai(path = "/schedules/:id", method = "get")]
    async fn get(
        &self,
        state: Data<&Arc<State>>,
        _auth: Admin,
        #[oai(example = "example_id")] id: Path<String>,
    ) -> Result<Json<ScheduleInfo>, ApiError> {
        state
            .schedules
            .get(&id)
            .map(Json)
            .ok_or_else(|| unknown(&id))
    }

    /// Pause or resume a schedule (admin).
    ///
    /// Once a pausing reply is sent, the schedule publishes nothing until resumed. A
    /// resumed schedule does not replay the runs it missed: its next run is the first
    /// one after now. 404 `unknown_schedule` if there is none with this id.
    #[oai(path = "/schedules/:id", method = "patch")]
    async fn patch(
        &self,
        state: Data<&Arc<State>>,
        auth: Admin,
        #[oai(example = "example_id")] id: Path<String>,
        body: Json<PatchSchedule>,
    ) -> Result<Json<ScheduleInfo>, ApiError> {
        if !state.store.set_schedule_paused(&id, body.paused).await? {
            return Err(unknown(&id));
        }
        let info = state
            .schedules
            .set_paused(&id, body.paused)
            .await
            .ok_or_else(|| unknown(&id))?;
        tracing::info!(schedule = %*id, paused = body.paused, next_run = ?info.next_run, by = %auth.0.label(), "schedule updated");
        Ok(Json(info))
    }

    /// Delete a schedule (admin).
    ///
    /// Once the reply is sent, no run of it is published. 404 `unknown_schedule` if
    /// there is none with this id.
    #[oai(path = "/schedules/:id", method = "delete")]
    async fn delete(
        &self,
        state: Data<&Arc<State>>,
        auth: Admin,
        #[oai(example = "example_id")] id: Path<String>,
    ) -> Result<DeleteReply, ApiError> {
        if !state.store.delete_schedule(&id).await? {
            return Err(unknown(&id));
        }
        state.schedules.remove(&id).await;
        tracing::info!(schedule = %*id, by = %auth.0.label(), "schedule deleted");
        Ok(DeleteReply::Deleted)
    }
}
