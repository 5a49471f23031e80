//! Properties of the three input decoders, shared by the cargo-fuzz targets (`fuzz/`)
//! and the property tests (`tests/inputs.rs`) so that both check exactly the same thing.
//!
//! Each function takes arbitrary bytes. The code under test must never panic on them;
//! these functions panic only when one of the stated properties is broken, which is
//! what a fuzzer or a property test reports.

use crate::{
    danmaku::{
        formats::parse_bilibili,
        rules::{self, Draft},
    },
    model::{Policy, Role},
    store::review::{BlockAction, BlockRule, PatternKind, RuleSet},
    ws::protocol::{self, Op},
};

/// Error codes the WebSocket op decoder may return.
const OP_CODES: [&str; 3] = ["bad_json", "bad_request", "unknown_op"];

/// `ws::protocol::parse`: an error has one of the documented codes and a bounded
/// message; an echoed id is a number or a string of at most 64 bytes; a `danmaku` op's
/// time is a finite number (JSON has no NaN or infinity).
pub fn ws_op(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (id, op) = protocol::parse(&text);
    if let Some(id) = &id {
        assert!(
            id.is_number() || id.as_str().is_some_and(|s| s.len() <= 64),
            "echoed id {id}"
        );
    }
    match op {
        Ok(Op::Danmaku { draft, .. }) => assert!(draft.time.is_finite()),
        Ok(_) => {}
        Err(e) => {
            assert!(OP_CODES.contains(&e.code), "undocumented code {}", e.code);
            assert!(
                e.message.len() <= 512,
                "error message of {} bytes",
                e.message.len()
            );
        }
    }
}

/// `danmaku::rules::normalize_text` and `validate`: normalising is idempotent and never
/// leaves control characters or outer whitespace; an accepted comment's text is already
/// normal, non-empty and within the role's length; a refusal has a 4xx status.
/// The first byte picks the role and the optional fields, the rest is the text.
pub fn danmaku_text(data: &[u8]) {
    let (head, rest) = data.split_first().unwrap_or((&0, &[]));
    let raw = String::from_utf8_lossy(rest);
    let once = rules::normalize_text(&raw);
    assert_eq!(
        rules::normalize_text(&once),
        once,
        "normalize_text is not idempotent on {raw:?}"
    );
    assert!(
        !once.chars().any(char::is_control),
        "control left: {once:?}"
    );
    assert_eq!(once.trim(), once, "outer whitespace left: {once:?}");

    let role = match head & 3 {
        0 => Role::Guest,
        1 => Role::Free,
        2 => Role::Member,
        _ => Role::Admin,
    };
    let pick = |bit: u8, v: &str| (head & bit != 0).then(|| v.to_string());
    let draft = Draft {
        text: raw.to_string(),
        time: f64::from(*head) * 7.5 - 100.0,
        mode: pick(4, "top"),
        color: pick(8, if head & 64 != 0 { "#ff00ZZ" } else { "#ff0000" }),
        size: pick(16, "large"),
        audience: pick(32, if head & 128 != 0 { "all" } else { "members" }),
    };
    let policy = Policy::default();
    match rules::validate(&draft, role, &policy) {
        Ok(valid) => {
            let max = policy.of(role).map_or(0, |p| p.max_len);
            assert_eq!(rules::normalize_text(&valid.text), valid.text);
            assert!(!valid.text.is_empty());
            assert!(valid.text.chars().count() <= max);
            // The block rules: a word rule matches exactly when its folded form is in
            // the folded text; refusal outranks the regex's shadow.
            let folded = crate::model::text::fold(&valid.text);
            let verdict = block_rules().verdict(&folded);
            let has_word = folded.contains("spoiler") || folded.contains("bad");
            assert_eq!(
                verdict == Some(BlockAction::Refuse),
                has_word,
                "{:?} → {verdict:?}",
                valid.text
            );
        }
        Err(r) => assert!(
            !matches!(
                r.kind,
                crate::model::Kind::Unavailable | crate::model::Kind::Internal
            ),
            "a client error, not {:?}",
            r.kind
        ),
    }
}

/// The block rules the text check screens with: two refused words (one full-width)
/// and a shadowing regex, compiled once.
fn block_rules() -> &'static crate::moderation::block::Compiled {
    static RULES: std::sync::OnceLock<crate::moderation::block::Compiled> =
        std::sync::OnceLock::new();
    RULES.get_or_init(|| {
        let rule = |kind, pattern: &str, action| BlockRule {
            kind,
            pattern: pattern.into(),
            action,
        };
        crate::moderation::block::Compiled::new(RuleSet {
            video: None,
            rules: vec![
                rule(PatternKind::Word, "spoiler", BlockAction::Refuse),
                rule(PatternKind::Word, "ＢＡＤ", BlockAction::Refuse),
                rule(PatternKind::Regex, r"23{4,}", BlockAction::Shadow),
            ],
            by: "fuzz".into(),
            set_at: 0,
        })
        .expect("the fuzz rules compile")
    })
}

/// `danmaku::formats::parse_bilibili`: it either refuses the file with a message or
/// returns comments whose text is normal, non-empty and within the length limit.
pub fn bilibili(data: &[u8]) {
    let xml = String::from_utf8_lossy(data);
    const MAX_LEN: usize = 100;
    match parse_bilibili("fuzz", &xml, MAX_LEN, 0) {
        Ok(imported) => {
            for item in &imported.items {
                assert!(!item.text.is_empty(), "empty text imported");
                assert!(item.text.chars().count() <= MAX_LEN, "over-long text");
                assert_eq!(rules::normalize_text(&item.text), item.text);
                assert_eq!(item.video, "fuzz");
            }
        }
        Err(message) => assert!(!message.is_empty()),
    }
}
