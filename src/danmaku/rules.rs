//! The posting rules: field validation, text normalisation, role privileges. (Block
//! rules are moderation's, set at runtime: `moderation::block`.)
//!
//! Pure functions over a [`Draft`] and the poster's role, so that REST, WebSocket and the
//! DPlayer endpoint apply one rule set, and unit tests can exercise every branch.

use serde::Deserialize;

use crate::model::{Audience, Mode, Policy, Refusal, Role, Size};

/// White, the only colour of non-members and the default.
pub const WHITE: u32 = 0xffffff;

/// Longest video id accepted (the shape lives in `model::channel`).
pub use crate::model::channel::MAX_VIDEO_ID;

/// Latest accepted video position: 24 hours.
pub const MAX_TIME_S: f64 = 86_400.0;

/// A comment as submitted, before validation. Optional fields take defaults.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Draft {
    pub text: String,
    /// Video position in seconds.
    pub time: f64,
    pub mode: Option<String>,
    /// `#rrggbb`.
    pub color: Option<String>,
    pub size: Option<String>,
    pub audience: Option<String>,
}

/// A validated comment, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Valid {
    pub text: String,
    pub time_ms: u64,
    pub mode: Mode,
    pub color: u32,
    pub size: Size,
    pub audience: Audience,
}

/// Validates a video id (used in paths and channel names); lives in `model::channel`
/// so that moderation, which `danmaku` depends on, checks ids the same way.
pub use crate::model::channel::check_video_id;

/// Text normalisation and folding live in `model::text`, shared with moderation's
/// block rules.
pub use crate::model::text::{fold, normalize_text};

/// Parses `#rrggbb` (case-insensitive).
pub fn parse_color(s: &str) -> Option<u32> {
    let hex = s.strip_prefix('#')?;
    if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(hex, 16).ok()
}

/// Formats a colour as `#rrggbb`.
pub fn format_color(c: u32) -> String {
    format!("#{:06x}", c & 0xffffff)
}

/// Applies every field rule and the role's privileges.
pub fn validate(draft: &Draft, role: Role, policy: &Policy) -> Result<Valid, Refusal> {
    let rp = policy.of(role).ok_or_else(|| {
        Refusal::unauthorized(
            "login_required",
            "sign in to post comments (guests may only read)",
        )
    })?;
    if !draft.time.is_finite() || draft.time < 0.0 || draft.time > MAX_TIME_S {
        return Err(Refusal::invalid(
            "invalid_time",
            "time is the video position in seconds, from 0 to 86400",
        ));
    }
    let mode = match draft.mode.as_deref() {
        None => Mode::Scroll,
        Some(m) => Mode::parse(m)
            .ok_or_else(|| Refusal::invalid("invalid_mode", "mode is scroll, top or bottom"))?,
    };
    let color = match draft.color.as_deref() {
        None => WHITE,
        Some(c) => {
            parse_color(c).ok_or_else(|| Refusal::invalid("invalid_color", "color is #rrggbb"))?
        }
    };
    let size = match draft.size.as_deref() {
        None => Size::Normal,
        Some(s) => Size::parse(s)
            .ok_or_else(|| Refusal::invalid("invalid_size", "size is small, normal or large"))?,
    };
    let audience = match draft.audience.as_deref() {
        None | Some("everyone") => Audience::Everyone,
        Some("members") => Audience::Members,
        Some(_) => {
            return Err(Refusal::invalid(
                "invalid_audience",
                "a comment's audience is everyone or members",
            ));
        }
    };
    let text = normalize_text(&draft.text);
    let len = text.chars().count();
    if len == 0 {
        return Err(Refusal::invalid("text_empty", "the comment is empty"));
    }
    if len > rp.max_len {
        return Err(Refusal::invalid(
            "text_too_long",
            format!("a {role}'s comment is at most {} characters", rp.max_len),
        ));
    }
    if (mode != Mode::Scroll && !rp.styled_modes) || (color != WHITE && !rp.any_color) {
        return Err(Refusal::forbidden(
            "member_style",
            "top/bottom modes and colours are for members",
        ));
    }
    if audience == Audience::Members && !rp.members_audience {
        return Err(Refusal::forbidden(
            "member_audience",
            "members-only comments are for members",
        ));
    }
    Ok(Valid {
        text,
        time_ms: (draft.time * 1000.0).round() as u64,
        mode,
        color,
        size,
        audience,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(text: &str) -> Draft {
        Draft {
            text: text.into(),
            time: 12.5,
            ..Draft::default()
        }
    }

    #[test]
    fn defaults_apply() {
        let v = validate(&draft(" hi "), Role::Free, &Policy::default()).unwrap();
        assert_eq!(v.text, "hi");
        assert_eq!(v.time_ms, 12_500);
        assert_eq!(
            (v.mode, v.color, v.size),
            (Mode::Scroll, WHITE, Size::Normal)
        );
        assert_eq!(v.audience, Audience::Everyone);
    }

    #[test]
    fn text_is_normalised_and_stripped() {
        assert_eq!(normalize_text("e\u{301}\u{7}x\u{202e}y\n"), "\u{e9}xy");
        assert_eq!(normalize_text("\u{0}\u{1b}  "), "");
    }

    #[test]
    fn role_privileges() {
        let p = Policy::default();
        let mut d = draft("x");
        d.mode = Some("top".into());
        assert_eq!(
            validate(&d, Role::Free, &p).unwrap_err().code,
            "member_style"
        );
        assert!(validate(&d, Role::Member, &p).is_ok());
        let mut d = draft("x");
        d.color = Some("#FF0000".into());
        assert_eq!(
            validate(&d, Role::Free, &p).unwrap_err().code,
            "member_style"
        );
        assert_eq!(validate(&d, Role::Member, &p).unwrap().color, 0xff0000);
        let mut d = draft("x");
        d.audience = Some("members".into());
        assert_eq!(
            validate(&d, Role::Free, &p).unwrap_err().code,
            "member_audience"
        );
        assert_eq!(
            validate(&draft("x"), Role::Guest, &p).unwrap_err().kind,
            crate::model::Kind::Unauthorized
        );
        assert_eq!(
            validate(&draft(&"a".repeat(31)), Role::Free, &p)
                .unwrap_err()
                .code,
            "text_too_long"
        );
        assert!(validate(&draft(&"a".repeat(100)), Role::Member, &p).is_ok());
    }

    #[test]
    fn bad_fields_are_422() {
        let p = Policy::default();
        for (field, code) in [
            ("mode", "invalid_mode"),
            ("color", "invalid_color"),
            ("size", "invalid_size"),
            ("audience", "invalid_audience"),
        ] {
            let mut d = draft("x");
            let bad = Some("nope".to_string());
            match field {
                "mode" => d.mode = bad,
                "color" => d.color = bad,
                "size" => d.size = bad,
                _ => d.audience = bad,
            }
            let e = validate(&d, Role::Admin, &p).unwrap_err();
            assert_eq!((e.kind, e.code), (crate::model::Kind::Invalid, code));
        }
        let mut d = draft("x");
        d.time = -1.0;
        assert_eq!(
            validate(&d, Role::Admin, &p).unwrap_err().code,
            "invalid_time"
        );
        d.time = f64::NAN;
        assert_eq!(
            validate(&d, Role::Admin, &p).unwrap_err().code,
            "invalid_time"
        );
    }
}
