//! Scheduled pushes: definitions, cadences, the in-memory registry and the task that
//! fires them.
//!
//! A schedule is a push (`event`, `payload`, `audience`, `target`) plus a cadence: a
//! cron pattern with a seconds field evaluated in an IANA time zone, or a fixed
//! `every_s` interval. Definitions are written to the store first ([`ScheduleStore`]),
//! then mirrored in [`Schedules`], which the API reads and the scheduler task
//! ([`Runner`]) walks. Each run goes through the same resolve-and-publish path as a REST
//! push ([`crate::push`]), so the access rules are evaluated at run time: re-tiering or
//! undeclaring a channel applies to the next run.
//!
//! **Missed runs are not replayed.** When the server was down (or the task fell behind)
//! at a run time, that run is skipped; after a start or a resume the next run is the
//! first one after *now*. A schedule never fires in a burst.
//!
//! - [`def`]: what a schedule is (the API and store shapes) and its push target;
//! - [`cadence`]: when it fires;
//! - [`registry`]: the schedules in memory;
//! - [`runner`]: the task that fires due runs.
//!
//! [`ScheduleStore`]: crate::store::ScheduleStore

pub mod cadence;
pub mod def;
pub mod registry;
pub mod runner;

pub use cadence::Cadence;
pub use def::{
    MAX_CRON, MAX_EVERY_S, MAX_NAME, MAX_SCHEDULES, ScheduleDef, ScheduleInfo, ScheduleTarget,
    TargetKind, schedule_id,
};
pub use registry::Schedules;
pub use runner::Runner;
