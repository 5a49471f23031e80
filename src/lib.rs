//! danmaku: live video comments and role-aware live pushes over WebSocket.
//!
//! The modules follow the path of a message, from the wire inwards:
//!
//! - [`ws`] and [`api`] are the transports. `ws` upgrades `GET /ws`, runs one task per
//!   socket and speaks the JSON protocol documented in `openapi/asyncapi.yaml`. `api` is
//!   the poem-openapi REST surface under `/api` (documented in `openapi/openapi.json`).
//!   [`pages`] serves the browser pages, embedded in the binary (or from
//!   `DANMAKU_STATIC_DIR`), outside the OpenAPI spec.
//! - [`hub`] owns sessions, channels and fan-out: who is connected, who listens where,
//!   and which sockets an event may reach. It encodes each event once and shares the bytes.
//! - [`danmaku`] holds the comment rules and runs posting, history and moderation in
//!   the mandated order (validate → store → acknowledge → publish).
//! - [`moderation`] holds room moderators, scoped mutes and the audit log; `danmaku`
//!   asks it whether a poster is muted and whether a deleter moderates the video.
//! - [`webhooks`] sends signed outgoing events (comments posted, held, deleted, users
//!   muted, rooms occupied and vacated) from a queue kept in the store, at least once
//!   with one id per event, once per cluster; `danmaku`, `moderation` and `presence`
//!   tell it what happened.
//! - [`access`] holds the rules that decide whether a role may join a channel or reach an
//!   audience; every transport asks it, none decides on its own.
//! - [`bus`] carries published events to every node's hub (in-process by default, Redis
//!   for a cluster) and assigns each channel's `seq`; it also sums presence over nodes
//!   and leases schedule runs.
//! - [`store`] persists what must survive a restart (SQLite by default, PostgreSQL for a
//!   cluster).
//! - [`schedule`] keeps scheduled pushes in memory and runs the task that fires them
//!   through the same path as REST pushes; [`presence`] periodically publishes viewer
//!   counts to `video:*` channels.
//! - [`auth`] verifies and mints JWTs; the accepted algorithm comes from config only.
//! - [`fuzz_checks`] holds the input-decoder properties that the fuzz targets and the
//!   property tests share.
//! - [`mod@bench`] is `danmaku bench`, the load generator (a client of the server).
//! - [`limits`] caps connections (total, per user, per IP), op rates, handshake time and
//!   REST body sizes.
//! - [`config`], [`metrics`] and [`server`] wire it together; `server` owns startup and
//!   the explicit shutdown sequence.

pub mod access;
pub mod api;
pub mod auth;
pub mod bench;
pub mod bus;
pub mod config;
pub mod danmaku;
pub mod frame;
pub mod fuzz_checks;
pub mod hub;
pub mod limits;
pub mod metrics;
pub mod model;
pub mod moderation;
pub mod net;
pub mod pages;
pub mod presence;
pub mod push;
pub mod schedule;
pub mod server;
pub mod shutdown;
pub mod state;
pub mod store;
pub mod webhooks;
pub mod ws;
