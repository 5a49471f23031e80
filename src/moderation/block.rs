//! Block rules at runtime: per video and global, words and regular expressions, each
//! with an action (refuse, hold for review, shadow). `GET/PUT/DELETE
//! /api/moderation/rules`; the configured `block_words` seed the global set once (as
//! `refuse` words), the first time a store starts with no global set.
//!
//! **Matching.** A comment's text is folded (`model::text::fold`: full-width to
//! half-width, lowercase) and every rule of the global set and of the video's set is
//! tried: a word matches as a substring of the folded text (the word is folded the same
//! way), a regex (the `regex` crate: linear time, no backtracking; case-insensitive) is
//! run on the folded text. When several rules match, the strongest action wins: refuse, then hold, then
//! shadow. A set is compiled once when stored or synced: per action, one `RegexSet` and
//! a word list, so a post costs one pass per action, not one per rule.
//!
//! **Limits.** At most [`MAX_RULES`] rules per scope (413 `too_many_rules`), patterns of
//! 1 to [`MAX_PATTERN`] characters, regexes that compile within [`REGEX_SIZE_LIMIT`]
//! bytes (else 422 `invalid_pattern`, which says which rule and why). Nothing is stored
//! unless the whole set is valid.
//!
//! Who may: the global set, admins only; a video's set, admins and the video's
//! moderators (403 `not_moderator`). Reading follows the same rule.

use std::sync::Arc;

use regex::{RegexBuilder, RegexSet, RegexSetBuilder};

use super::{Service, audit, unavailable};
use crate::{
    access::Directory,
    model::{Identity, Refusal, text::fold, text::normalize_text, time::now_millis},
    store::{
        moderation::Action,
        review::{BlockAction, BlockRule, PatternKind, RuleSet},
    },
};

/// Most rules in one scope.
pub const MAX_RULES: usize = 1000;

/// Longest pattern, in characters.
pub const MAX_PATTERN: usize = 200;

/// Largest compiled form of one regex, in bytes (the `regex` crate's `size_limit`): a
/// pattern like `(a|b){1000}{1000}` is refused instead of taking memory.
pub const REGEX_SIZE_LIMIT: usize = 64 * 1024;

/// Largest compiled set of one action in one scope.
const SET_SIZE_LIMIT: usize = 8 * 1024 * 1024;

/// Who stored the seeded global set.
pub const SEEDED_BY: &str = "config";

/// One scope's rules, compiled: per action (strongest first), the folded words and one
/// regex set.
#[derive(Debug)]
pub struct Compiled {
    /// The set as stored (for listing and for skipping a recompile on sync).
    pub set: RuleSet,
    by_action: Vec<(BlockAction, Vec<String>, Option<RegexSet>)>,
}

impl Compiled {
    /// Compiles a set, or says which rule is wrong (422 `invalid_pattern`).
    pub fn new(set: RuleSet) -> Result<Compiled, Refusal> {
        let mut by_action = Vec::new();
        for action in [BlockAction::Refuse, BlockAction::Hold, BlockAction::Shadow] {
            let mut words = Vec::new();
            let mut patterns = Vec::new();
            for (i, r) in set.rules.iter().enumerate() {
                if r.action != action {
                    continue;
                }
                match r.kind {
                    PatternKind::Word => words.push(folded_word(i, &r.pattern)?),
                    PatternKind::Regex => {
                        check_regex(i, &r.pattern)?;
                        patterns.push(r.pattern.clone());
                    }
                }
            }
            let regexes = if patterns.is_empty() {
                None
            } else {
                Some(
                    RegexSetBuilder::new(&patterns)
                        .case_insensitive(true)
                        .size_limit(SET_SIZE_LIMIT)
                        .build()
                        .map_err(|e| {
                            Refusal::invalid(
                                "invalid_pattern",
                                format!(
                                    "the {} regexes together are too large: {e}",
                                    action.as_str()
                                ),
                            )
                        })?,
                )
            };
            if !words.is_empty() || regexes.is_some() {
                by_action.push((action, words, regexes));
            }
        }
        Ok(Compiled { set, by_action })
    }

    /// The strongest action of a rule matching `folded` text, if any.
    pub fn verdict(&self, folded: &str) -> Option<BlockAction> {
        self.by_action.iter().find_map(|(action, words, regexes)| {
            let hit = words.iter().any(|w| folded.contains(w.as_str()))
                || regexes.as_ref().is_some_and(|s| s.is_match(folded));
            hit.then_some(*action)
        })
    }
}

/// A word as matched: normalised and folded like comment text, never empty.
fn folded_word(i: usize, pattern: &str) -> Result<String, Refusal> {
    check_length(i, pattern)?;
    let w = fold(&normalize_text(pattern));
    if w.is_empty() {
        return Err(Refusal::invalid(
            "invalid_pattern",
            format!("rule {i}: the word is empty once control characters are removed"),
        ));
    }
    Ok(w)
}

/// Refuses an empty or over-long pattern.
fn check_length(i: usize, pattern: &str) -> Result<(), Refusal> {
    let n = pattern.chars().count();
    if n == 0 || n > MAX_PATTERN {
        return Err(Refusal::invalid(
            "invalid_pattern",
            format!("rule {i}: a pattern has 1 to {MAX_PATTERN} characters (this one {n})"),
        ));
    }
    Ok(())
}

/// Compiles one regex on its own, to say which rule fails and why.
fn check_regex(i: usize, pattern: &str) -> Result<(), Refusal> {
    check_length(i, pattern)?;
    RegexBuilder::new(pattern)
        .case_insensitive(true)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map(|_| ())
        .map_err(|e| {
            let why = e.to_string();
            let why = why
                .lines()
                .last()
                .unwrap_or("does not compile")
                .trim()
                .to_string();
            Refusal::invalid("invalid_pattern", format!("rule {i}: {pattern:?}: {why}"))
        })
}

/// The compiled sets per scope (`""` global, else the video id), read on every post
/// (lock-free; values replaced whole, writes serialised by the service's mirror lock).
#[derive(Debug, Default)]
pub(super) struct Mirror {
    by_scope: papaya::HashMap<String, Arc<Compiled>>,
}

impl Mirror {
    /// The strongest action the global set and `video`'s set give `text`.
    fn verdict(&self, video: &str, text: &str) -> Option<BlockAction> {
        let map = self.by_scope.pin();
        if map.is_empty() {
            return None;
        }
        let folded = fold(text);
        [map.get(""), map.get(video)]
            .into_iter()
            .flatten()
            .filter_map(|c| c.verdict(&folded))
            .max()
    }

    /// Records a set already stored.
    fn set(&self, c: Compiled) {
        let scope = c.set.video.clone().unwrap_or_default();
        self.by_scope.pin().insert(scope, Arc::new(c));
    }

    /// Forgets a scope's set, already removed from the store.
    fn clear(&self, video: Option<&str>) {
        self.by_scope.pin().remove(video.unwrap_or(""));
    }

    /// Replaces the mirror with the stored sets, recompiling only those that changed.
    /// A stored set that no longer compiles (it did when stored) is logged and skipped.
    pub(super) fn replace(&self, sets: Vec<RuleSet>) {
        let map = self.by_scope.pin();
        let mut seen = std::collections::HashSet::new();
        for set in sets {
            let scope = set.video.clone().unwrap_or_default();
            seen.insert(scope.clone());
            if map.get(&scope).is_some_and(|c| c.set == set) {
                continue;
            }
            match Compiled::new(set) {
                Ok(c) => {
                    map.insert(scope, Arc::new(c));
                }
                Err(r) => {
                    tracing::error!(scope, error = %r.message, "stored block rules do not compile")
                }
            }
        }
        map.retain(|scope, _| seen.contains(scope));
    }

    /// The set of a scope.
    fn get(&self, video: Option<&str>) -> Option<RuleSet> {
        self.by_scope
            .pin()
            .get(video.unwrap_or(""))
            .map(|c| c.set.clone())
    }
}

/// The configured words as the initial global set.
pub fn seed_set(words: &[String]) -> RuleSet {
    RuleSet {
        video: None,
        rules: words
            .iter()
            .filter(|w| !fold(&normalize_text(w)).is_empty())
            .map(|w| BlockRule {
                kind: PatternKind::Word,
                pattern: w.chars().take(MAX_PATTERN).collect(),
                action: BlockAction::Refuse,
            })
            .collect(),
        by: SEEDED_BY.to_string(),
        set_at: now_millis(),
    }
}

impl Service {
    /// What the block rules do to a comment of `text` in `video`: `None` when none
    /// matches; else the strongest matching action.
    pub fn screen(&self, video: &str, text: &str) -> Option<BlockAction> {
        self.blocks.verdict(video, text)
    }

    /// Stores the configured words as the global set if the store never had one (the
    /// first start, or a store from before runtime rules). Later starts leave whatever
    /// admins made of it.
    pub async fn seed_block_words(&self, words: &[String]) -> Result<(), String> {
        let set = seed_set(words);
        let compiled = Compiled::new(set.clone()).map_err(|r| r.message.to_string())?;
        let stored = self
            .store
            .seed_block_rules(set)
            .await
            .map_err(|e| e.to_string())?;
        if stored {
            tracing::info!(
                words = compiled.set.rules.len(),
                "block_words stored as the global block rules"
            );
            self.apply_local(|s| s.blocks.set(compiled));
        }
        Ok(())
    }

    /// Replaces the block rules of a scope (`None`: global, admins only). Checks the
    /// caller, the count (413) and every pattern (422) before storing anything.
    pub async fn set_block_rules(
        &self,
        dir: &Directory,
        who: &Identity,
        video: Option<&str>,
        rules: Vec<BlockRule>,
        reason: Option<&str>,
    ) -> Result<RuleSet, Refusal> {
        let reason = super::check_reason(reason)?;
        let authority = self.require_scope(who, video)?;
        if let Some(v) = video {
            super::slow_mode::require_catalog(dir, v)?;
        }
        if rules.len() > MAX_RULES {
            return Err(Refusal::too_large(
                "too_many_rules",
                format!(
                    "a scope holds at most {MAX_RULES} rules (this request {})",
                    rules.len()
                ),
            ));
        }
        let now = now_millis();
        let set = RuleSet {
            video: video.map(str::to_string),
            rules,
            by: who.sub.to_string(),
            set_at: now,
        };
        let compiled = Compiled::new(set.clone())?;
        let entry = audit::entry(
            who,
            authority,
            Action::BlockRulesSet,
            video,
            video.unwrap_or("*").to_string(),
            reason,
            serde_json::json!({"rules": set.rules.len()}),
            now,
        );
        self.store
            .put_block_rules(set.clone(), entry)
            .await
            .map_err(unavailable("block rules"))?;
        self.apply_local(|s| s.blocks.set(compiled));
        tracing::info!(video = ?video, rules = set.rules.len(), by = %who.sub, "block rules set");
        Ok(set)
    }

    /// Removes the block rules of a scope; 404 `unknown_rules` when it had none.
    pub async fn clear_block_rules(
        &self,
        who: &Identity,
        video: Option<&str>,
        reason: Option<&str>,
    ) -> Result<(), Refusal> {
        let reason = super::check_reason(reason)?;
        let authority = self.require_scope(who, video)?;
        let now = now_millis();
        let entry = audit::entry(
            who,
            authority,
            Action::BlockRulesCleared,
            video,
            video.unwrap_or("*").to_string(),
            reason,
            serde_json::json!({}),
            now,
        );
        let gone = self
            .store
            .delete_block_rules(video, entry)
            .await
            .map_err(unavailable("block rules"))?;
        self.apply_local(|s| s.blocks.clear(video));
        if !gone {
            return Err(Refusal::not_found(
                "unknown_rules",
                match video {
                    Some(v) => format!("video {v} has no block rules of its own"),
                    None => "there are no global block rules".to_string(),
                },
            ));
        }
        tracing::info!(video = ?video, by = %who.sub, "block rules cleared");
        Ok(())
    }

    /// The block rules of a scope (an empty set when it has none).
    pub fn block_rules(&self, who: &Identity, video: Option<&str>) -> Result<RuleSet, Refusal> {
        self.require_scope(who, video)?;
        Ok(self.blocks.get(video).unwrap_or(RuleSet {
            video: video.map(str::to_string),
            rules: Vec::new(),
            by: String::new(),
            set_at: 0,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(kind: PatternKind, pattern: &str, action: BlockAction) -> BlockRule {
        BlockRule {
            kind,
            pattern: pattern.into(),
            action,
        }
    }

    fn set(video: Option<&str>, rules: Vec<BlockRule>) -> RuleSet {
        RuleSet {
            video: video.map(str::to_string),
            rules,
            by: "root".into(),
            set_at: 1,
        }
    }

    #[test]
    fn the_strongest_matching_action_wins_across_scopes() {
        let m = Mirror::default();
        m.set(
            Compiled::new(set(
                None,
                vec![
                    rule(PatternKind::Word, "ＳＰＡＭ", BlockAction::Refuse),
                    rule(PatternKind::Regex, r"^2{0,1}3{4,}$", BlockAction::Shadow),
                ],
            ))
            .unwrap(),
        );
        m.set(
            Compiled::new(set(
                Some("v"),
                vec![rule(PatternKind::Regex, r"buy\s+now", BlockAction::Hold)],
            ))
            .unwrap(),
        );
        assert_eq!(
            m.verdict("v", "so Spam here"),
            Some(BlockAction::Refuse),
            "folded width and case"
        );
        assert_eq!(m.verdict("v", "23333"), Some(BlockAction::Shadow));
        assert_eq!(m.verdict("v", "BUY   now"), Some(BlockAction::Hold));
        assert_eq!(
            m.verdict("other", "buy now"),
            None,
            "a video's rules stay in it"
        );
        assert_eq!(m.verdict("v", "buy now spam"), Some(BlockAction::Refuse));
        assert_eq!(m.verdict("v", "hello"), None);
        m.clear(Some("v"));
        assert_eq!(m.verdict("v", "buy now"), None);
    }

    #[test]
    fn bad_patterns_are_refused_with_the_rule_named() {
        let bad = |rules| Compiled::new(set(None, rules)).unwrap_err();
        let e = bad(vec![
            rule(PatternKind::Word, "ok", BlockAction::Refuse),
            rule(PatternKind::Regex, "(unclosed", BlockAction::Refuse),
        ]);
        assert_eq!(e.code, "invalid_pattern");
        assert!(e.message.contains("rule 1"), "{}", e.message);
        assert_eq!(
            bad(vec![rule(PatternKind::Word, "\u{200b}", BlockAction::Hold)]).code,
            "invalid_pattern"
        );
        assert_eq!(
            bad(vec![rule(
                PatternKind::Word,
                &"x".repeat(MAX_PATTERN + 1),
                BlockAction::Hold
            )])
            .code,
            "invalid_pattern"
        );
        let huge = bad(vec![rule(
            PatternKind::Regex,
            r"(\w{100}){100}",
            BlockAction::Shadow,
        )]);
        assert!(
            huge.message.contains("size limit") || huge.message.contains("exceeds"),
            "{}",
            huge.message
        );
    }

    #[test]
    fn a_sync_keeps_unchanged_sets_and_drops_removed_ones() {
        let m = Mirror::default();
        let g = set(
            None,
            vec![rule(PatternKind::Word, "a", BlockAction::Refuse)],
        );
        m.replace(vec![g.clone(), set(Some("v"), vec![])]);
        let before = Arc::as_ptr(&m.by_scope.pin().get("").unwrap().clone());
        m.replace(vec![g]);
        let after = Arc::as_ptr(&m.by_scope.pin().get("").unwrap().clone());
        assert_eq!(before, after, "an unchanged set is not recompiled");
        assert!(m.get(Some("v")).is_none());
    }

    #[test]
    fn the_seed_keeps_non_empty_words_as_refusals() {
        let s = seed_set(&["spam".into(), " ".into(), "ＢＡＤ".into()]);
        assert_eq!(s.rules.len(), 2);
        assert!(
            s.rules
                .iter()
                .all(|r| r.action == BlockAction::Refuse && r.kind == PatternKind::Word)
        );
        assert_eq!(s.by, SEEDED_BY);
    }
}
