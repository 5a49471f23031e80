//! The `[moderation]` group: the default flood rule (what applies in a video without a
//! rule of its own, `PUT /api/videos/{id}/flood-rule`), how long an automatic mute
//! counts toward the next one's escalation, and the external classifier hook. Also the bounds of every flood rule, shared
//! with the REST validation (`moderation::flood`), so a rule the file may set is one the
//! API accepts too.

group! {
    /// `[moderation]`: the default flood rule and its escalation.
    ["moderation"] ModerationConfig, ModerationArgs, "Moderation [moderation]" {
        /// Default flood rule: a user who posts more than this many comments in one video
        /// within `flood_window_s` is muted there (admins are exempt). 0 disables the
        /// default (videos with their own rule keep it).
        flood_max: u32 = 10 => (long = "flood-max", env = "DANMAKU_FLOOD_MAX");
        /// The default flood rule's sliding window, in seconds.
        flood_window_s: u32 = 20
            => (long = "flood-window-s", env = "DANMAKU_FLOOD_WINDOW_S");
        /// The default flood rule's first mute, in seconds.
        flood_mute_s: u32 = 300 => (long = "flood-mute-s", env = "DANMAKU_FLOOD_MUTE_S");
        /// The default flood rule's mutes for the 2nd, 3rd, … offence, in seconds (the
        /// last one repeats). Comma-separated.
        flood_escalation: Vec<u32> = vec![1800, 86400]
            => (long = "flood-escalation", env = "DANMAKU_FLOOD_ESCALATION", value_delimiter = ',');
        /// How long an automatic mute counts as an offence toward the next one's
        /// escalation, in seconds (read from the audit log).
        flood_offence_window_s: u64 = 86_400
            => (long = "flood-offence-window-s", env = "DANMAKU_FLOOD_OFFENCE_WINDOW_S");
        /// Distinct viewers whose reports hide a comment pending review (0: reports
        /// never hide; moderators still see them queued).
        report_threshold: u32 = 3
            => (long = "report-threshold", env = "DANMAKU_REPORT_THRESHOLD");
        /// Reports one user may file in any 60 s (1 to 1000).
        report_rate_per_min: u32 = 10
            => (long = "report-rate-per-min", env = "DANMAKU_REPORT_RATE_PER_MIN");
        /// The wait before a failed webhook delivery's first retry, in milliseconds; it
        /// doubles at each retry, up to 5 minutes apart, for 24 attempts (with the
        /// default, about 87 minutes). 10 to 60000.
        webhook_retry_base_ms: u64 = 1000
            => (long = "webhook-retry-base-ms", env = "DANMAKU_WEBHOOK_RETRY_BASE_MS");
        /// How long a post waits for the moderation hook's answer, in milliseconds
        /// (10 to 5000). Past it, `hook_failure` applies.
        hook_budget_ms: u64 = 150
            => (long = "moderation-hook-budget-ms", env = "DANMAKU_MODERATION_HOOK_BUDGET_MS");
        /// What a post gets when the hook times out, fails, answers garbage or is
        /// saturated: `allow` (stored visible) or `hold` (stored held for review).
        hook_failure: HookFailure = HookFailure::Allow
            => (long = "moderation-hook-failure", env = "DANMAKU_MODERATION_HOOK_FAILURE");
        /// Most hook calls in flight at once; a post beyond it gets `hook_failure`
        /// at once (counted as `busy`), so a slow hook never piles up requests.
        hook_max_in_flight: u32 = 256
            => (long = "moderation-hook-max-in-flight", env = "DANMAKU_MODERATION_HOOK_MAX_IN_FLIGHT");
    }
    optional {
        /// The external classifier: each new comment (but admins') is POSTed there as
        /// signed JSON and waits up to `hook_budget_ms` for `allow`, `deny`, `hold` or
        /// `shadow`. Unset: no hook. http(s) only.
        hook_url: String
            => (long = "moderation-hook-url", env = "DANMAKU_MODERATION_HOOK_URL");
        /// The HMAC-SHA256 key the hook's requests are signed with (required with
        /// `hook_url`).
        hook_secret: String => (
            long = "moderation-hook-secret",
            env = "DANMAKU_MODERATION_HOOK_SECRET",
            hide_env_values = true
        );
    }
}

/// What a post gets when the moderation hook gives no usable answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HookFailure {
    /// Stored visible, as without a hook.
    Allow,
    /// Stored held for review.
    Hold,
}

impl std::str::FromStr for HookFailure {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "allow" => Ok(HookFailure::Allow),
            "hold" => Ok(HookFailure::Hold),
            other => Err(format!("hook_failure is allow or hold, not {other:?}")),
        }
    }
}

/// Shortest and longest hook budget, in milliseconds.
pub const HOOK_BUDGET_MS: std::ops::RangeInclusive<u64> = 10..=5000;

/// A flood rule's `max_comments`: 2 to this.
pub const FLOOD_MAX_COMMENTS: u32 = 1000;
/// A flood rule's `window_s`: 1 to this (one hour).
pub const FLOOD_MAX_WINDOW_S: u32 = 3600;
/// A flood rule's `mute_s`: 1 to this (one day).
pub const FLOOD_MAX_MUTE_S: u32 = 86_400;
/// Each escalation step: 1 to this (one year, the longest mute).
pub const FLOOD_MAX_ESCALATION_S: u32 = 31_536_000;
/// Most escalation steps.
pub const FLOOD_MAX_STEPS: usize = 10;
/// The offence window: 1 to this (one year).
pub const FLOOD_MAX_OFFENCE_WINDOW_S: u64 = 31_536_000;

/// Checks a flood rule's values; the error is a stable code and a message for people.
pub fn check_flood_rule(
    max_comments: u32,
    window_s: u32,
    mute_s: u32,
    escalation: &[u32],
) -> Result<(), (&'static str, String)> {
    if !(2..=FLOOD_MAX_COMMENTS).contains(&max_comments) {
        return Err((
            "invalid_max_comments",
            format!("max_comments is 2 to {FLOOD_MAX_COMMENTS}"),
        ));
    }
    if !(1..=FLOOD_MAX_WINDOW_S).contains(&window_s) {
        return Err((
            "invalid_window",
            format!("window_s is 1 to {FLOOD_MAX_WINDOW_S} seconds"),
        ));
    }
    if !(1..=FLOOD_MAX_MUTE_S).contains(&mute_s) {
        return Err((
            "invalid_mute",
            format!("mute_s is 1 to {FLOOD_MAX_MUTE_S} seconds"),
        ));
    }
    if escalation.len() > FLOOD_MAX_STEPS
        || escalation
            .iter()
            .any(|s| !(1..=FLOOD_MAX_ESCALATION_S).contains(s))
    {
        return Err((
            "invalid_escalation",
            format!(
                "escalation is at most {FLOOD_MAX_STEPS} mutes of 1 to {FLOOD_MAX_ESCALATION_S} seconds"
            ),
        ));
    }
    Ok(())
}

impl ModerationConfig {
    /// Rejects a default flood rule the API would refuse (unless it is off).
    pub fn validate(&self) -> Result<(), String> {
        if self.flood_max != 0 {
            check_flood_rule(
                self.flood_max,
                self.flood_window_s,
                self.flood_mute_s,
                &self.flood_escalation,
            )
            .map_err(|(_, m)| {
                format!("[moderation] default flood rule: {m} (flood_max 0 turns it off)")
            })?;
        }
        if !(1..=FLOOD_MAX_OFFENCE_WINDOW_S).contains(&self.flood_offence_window_s) {
            return Err(format!(
                "moderation.flood_offence_window_s is 1 to {FLOOD_MAX_OFFENCE_WINDOW_S}"
            ));
        }
        if !HOOK_BUDGET_MS.contains(&self.hook_budget_ms) {
            return Err(format!(
                "moderation.hook_budget_ms is {} to {}",
                HOOK_BUDGET_MS.start(),
                HOOK_BUDGET_MS.end()
            ));
        }
        if !(10..=60_000).contains(&self.webhook_retry_base_ms) {
            return Err("moderation.webhook_retry_base_ms is 10 to 60000".into());
        }
        if !(1..=1000).contains(&self.report_rate_per_min) {
            return Err("moderation.report_rate_per_min is 1 to 1000".into());
        }
        if self.hook_max_in_flight == 0 {
            return Err("moderation.hook_max_in_flight is at least 1".into());
        }
        if let Some(url) = &self.hook_url {
            let ok = reqwest::Url::parse(url)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
            if !ok {
                return Err(format!("moderation.hook_url {url:?} is not an http(s) URL"));
            }
            if self.hook_secret.as_deref().is_none_or(str::is_empty) {
                return Err("moderation.hook_secret is required with moderation.hook_url".into());
            }
        }
        Ok(())
    }
}
