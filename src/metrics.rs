//! Process-wide counters, rendered in Prometheus text format at `GET /metrics`.
//!
//! Plain relaxed atomics: incrementing one costs a few nanoseconds and never takes a lock,
//! so the fan-out path can count what it does.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use crate::{auth::AuthError, model::Role};

/// Auth failure reasons, in label order.
const AUTH_CODES: [AuthError; 12] = [
    AuthError::MissingToken,
    AuthError::TokenTooLarge,
    AuthError::Malformed,
    AuthError::BadSignature,
    AuthError::Expired,
    AuthError::NotYetValid,
    AuthError::BadIssuer,
    AuthError::BadAudience,
    AuthError::MissingSub,
    AuthError::BadRole,
    AuthError::Conflict,
    AuthError::BadModClaim,
];

/// All counters and gauges of the process.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Open sockets per role (gauge).
    pub connections: [AtomicI64; 4],
    /// Sockets opened since start.
    pub connections_total: AtomicU64,
    /// Messages queued to sockets by fan-out.
    pub delivered: AtomicU64,
    /// Events published (once per event, not per socket).
    pub published: AtomicU64,
    /// Sockets closed because they could not keep up.
    pub slow_disconnects: AtomicU64,
    /// Room passes: one batch written to a room's members.
    pub fanout_passes: AtomicU64,
    /// Frames built by room passes (each shared by every socket it went to).
    pub fanout_frames: AtomicU64,
    /// Compressed client messages inflated.
    pub ws_inflated: AtomicU64,
    /// Client operations received over WebSocket.
    pub ws_ops: AtomicU64,
    /// Invalid client frames (bad JSON, unknown op, binary).
    pub ws_bad_frames: AtomicU64,
    /// Client ops refused by the per-socket rate limit.
    pub ws_rate_limited: AtomicU64,
    /// WebSocket upgrades refused by a connection cap.
    pub ws_refused: AtomicU64,
    /// Comments kept out of the free feed by flood control.
    pub sampled_out: AtomicU64,
    /// Comments accepted and stored.
    pub danmaku_posted: AtomicU64,
    /// Stored changes the bus could not carry, recorded for catch-up.
    pub publish_deferred: AtomicU64,
    /// Recorded changes published once the bus was back.
    pub caught_up: AtomicU64,
    /// Scheduled push runs, including runs whose target no longer resolves.
    pub schedule_runs: AtomicU64,
    /// Token rejections, by [`AuthError`] (index in `AUTH_CODES`).
    auth_failures: [AtomicU64; 12],
    /// Moderation hook calls by outcome (index in [`HOOK_OUTCOMES`]).
    hook_outcomes: [AtomicU64; 8],
}

/// The outcomes of a moderation hook call: its four answers, and the failures after
/// which `moderation.hook_failure` applies (`busy`: too many calls in flight).
pub const HOOK_OUTCOMES: [&str; 8] = [
    "allow",
    "deny",
    "hold",
    "shadow",
    "timeout",
    "error",
    "malformed",
    "busy",
];

impl Metrics {
    /// Counts a moderation hook call's outcome (one of [`HOOK_OUTCOMES`]).
    pub fn hook_outcome(&self, outcome: &str) {
        if let Some(i) = HOOK_OUTCOMES.iter().position(|o| *o == outcome) {
            self.hook_outcomes[i].fetch_add(1, Relaxed);
        }
    }

    /// Counts a rejected token or API key.
    pub fn auth_failure(&self, err: AuthError) {
        if let Some(i) = AUTH_CODES.iter().position(|c| *c == err) {
            self.auth_failures[i].fetch_add(1, Relaxed);
        }
    }

    /// A socket of `role` opened.
    pub fn conn_opened(&self, role: Role) {
        self.connections[role.index()].fetch_add(1, Relaxed);
        self.connections_total.fetch_add(1, Relaxed);
    }

    /// A socket of `role` closed.
    pub fn conn_closed(&self, role: Role) {
        self.connections[role.index()].fetch_sub(1, Relaxed);
    }

    /// A socket changed role through a token refresh.
    pub fn conn_role_changed(&self, from: Role, to: Role) {
        self.connections[from.index()].fetch_sub(1, Relaxed);
        self.connections[to.index()].fetch_add(1, Relaxed);
    }

    /// Total auth failures, all reasons.
    pub fn auth_failures_total(&self) -> u64 {
        self.auth_failures.iter().map(|c| c.load(Relaxed)).sum()
    }

    /// Renders the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(2048);
        let _ = writeln!(
            out,
            "# HELP danmaku_connections Open WebSocket connections by role.\n# TYPE danmaku_connections gauge"
        );
        for role in Role::ALL {
            let _ = writeln!(
                out,
                "danmaku_connections{{role=\"{}\"}} {}",
                role,
                self.connections[role.index()].load(Relaxed)
            );
        }
        let counters: [(&str, &str, &AtomicU64); 16] = [
            (
                "danmaku_comments_posted_total",
                "Comments accepted and durably stored.",
                &self.danmaku_posted,
            ),
            (
                "danmaku_publish_deferred_total",
                "Stored comments and deletions the bus could not carry (delivered on their node only, recorded for catch-up).",
                &self.publish_deferred,
            ),
            (
                "danmaku_caught_up_total",
                "Recorded comments and deletions handled once the bus was back (published, or found published already).",
                &self.caught_up,
            ),
            (
                "danmaku_free_feed_sampled_out_total",
                "Comments kept out of the guest/free feed by flood control.",
                &self.sampled_out,
            ),
            (
                "danmaku_connections_total",
                "WebSocket connections accepted since start.",
                &self.connections_total,
            ),
            (
                "danmaku_events_published_total",
                "Events published, counted once per event.",
                &self.published,
            ),
            (
                "danmaku_events_delivered_total",
                "Event copies written or queued to sockets.",
                &self.delivered,
            ),
            (
                "danmaku_fanout_passes_total",
                "Room batches written to a room's members (one pass each).",
                &self.fanout_passes,
            ),
            (
                "danmaku_fanout_frames_total",
                "Frames built by room passes, each shared by every socket it reached.",
                &self.fanout_frames,
            ),
            (
                "danmaku_ws_inflated_total",
                "Compressed client messages inflated (permessage-deflate).",
                &self.ws_inflated,
            ),
            (
                "danmaku_slow_disconnects_total",
                "Sockets closed because their write queue overflowed or stalled.",
                &self.slow_disconnects,
            ),
            (
                "danmaku_ws_ops_total",
                "Client operations received over WebSocket.",
                &self.ws_ops,
            ),
            (
                "danmaku_ws_bad_frames_total",
                "Invalid client frames received.",
                &self.ws_bad_frames,
            ),
            (
                "danmaku_ws_rate_limited_total",
                "Client operations refused by the per-socket rate limit.",
                &self.ws_rate_limited,
            ),
            (
                "danmaku_ws_refused_total",
                "WebSocket upgrades refused by a connection cap.",
                &self.ws_refused,
            ),
            (
                "danmaku_schedule_runs_total",
                "Scheduled push runs fired.",
                &self.schedule_runs,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                value.load(Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP danmaku_auth_failures_total Rejected tokens and API keys by reason.\n# TYPE danmaku_auth_failures_total counter"
        );
        for (i, code) in AUTH_CODES.iter().enumerate() {
            let _ = writeln!(
                out,
                "danmaku_auth_failures_total{{reason=\"{}\"}} {}",
                code.code(),
                self.auth_failures[i].load(Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP danmaku_moderation_hook_total Moderation hook calls by outcome (timeout, error, malformed and busy apply moderation.hook_failure).\n# TYPE danmaku_moderation_hook_total counter"
        );
        for (i, outcome) in HOOK_OUTCOMES.iter().enumerate() {
            let _ = writeln!(
                out,
                "danmaku_moderation_hook_total{{outcome=\"{outcome}\"}} {}",
                self.hook_outcomes[i].load(Relaxed)
            );
        }
        out
    }
}
