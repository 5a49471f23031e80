//! Cluster: three in-process nodes sharing a real Redis (bus) and PostgreSQL (store).
//!
//! Requested by setting `DANMAKU_TEST_REDIS_URL` and `DANMAKU_TEST_PG_URL` (`.ci/run` does).
//! When requested, an unreachable service fails the test loudly; when not, each test
//! prints one line and returns, so `cargo test` passes on a bare machine. Every test uses
//! its own Redis key prefix and PostgreSQL schema, so they run in parallel.
//!
//! The harness (services, nodes, cleanup) is in `common::cluster`; the tests are in the
//! submodules, by what they prove (`moderation`: mutes and grants across nodes).

mod delivery;
mod moderation;
mod outages;
mod presence;
mod recovery;
mod store;
