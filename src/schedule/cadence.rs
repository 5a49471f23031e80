//! When a schedule fires: a cron pattern in a time zone, or a fixed interval.

use std::str::FromStr;

use chrono::DateTime;
use croner::{
    Cron,
    parser::{CronParser, Seconds},
};

use super::def::{MAX_CRON, MAX_EVERY_S, MAX_NAME, ScheduleDef};
use crate::model::Refusal;

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
    pub fn of(def: &ScheduleDef, anchor: u64) -> Result<Cadence, Refusal> {
        if def.name.trim().is_empty() || def.name.len() > MAX_NAME {
            return Err(Refusal::invalid(
                "invalid_name",
                format!("names are 1 to {MAX_NAME} bytes, not only spaces"),
            ));
        }
        let tz = chrono_tz::Tz::from_str(&def.tz).map_err(|_| {
            Refusal::invalid(
                "invalid_tz",
                format!(
                    "unknown time zone {:?}: use an IANA name such as UTC, Europe/Paris or Asia/Shanghai",
                    def.tz
                ),
            )
        })?;
        match (&def.cron, def.every_s) {
            (Some(_), Some(_)) | (None, None) => Err(Refusal::invalid(
                "invalid_schedule",
                "give exactly one of cron and every_s",
            )),
            (None, Some(every)) => {
                if every == 0 || every > MAX_EVERY_S {
                    return Err(Refusal::invalid(
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
                    return Err(Refusal::invalid(
                        "invalid_cron",
                        format!("cron patterns are at most {MAX_CRON} bytes"),
                    ));
                }
                let cron = CronParser::builder()
                    .seconds(Seconds::Required)
                    .sloppy_ranges(true)
                    .build()
                    .parse(pattern)
                    .map_err(|e| Refusal::invalid("invalid_cron", e.to_string()))?;
                let cadence = Cadence::Cron {
                    cron: Box::new(cron),
                    tz,
                };
                if cadence.next_after(anchor).is_none() {
                    return Err(Refusal::invalid(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        model::Audience,
        schedule::def::{ScheduleTarget, TargetKind},
    };

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
}
