//! The `[danmaku]` group: what the comment service accepts and how it thins a flood.
//! Posting privileges per role stay in their own top-level `[policy.*]` tables (see
//! [`crate::model::Policy`]), as before the file had sections.

group! {
    /// `[danmaku]`: the catalog's default, the word filter and flood sampling.
    ["danmaku"] DanmakuConfig, DanmakuArgs, "Danmaku [danmaku]" {
        /// Videos missing from the catalog behave as free videos (so any page can host
        /// comments). When false they answer 404 `unknown_video`.
        open_unknown_videos: bool = true
            => (long = "open-unknown-videos", env = "DANMAKU_OPEN_UNKNOWN_VIDEOS");
        /// The initial global block rules: words refused in comments (case-insensitive,
        /// after full/half-width folding), comma-separated. Stored as the global rule set
        /// the first time a store starts without one; from then on the set is changed at
        /// runtime (`/api/moderation/rules`) and this setting is not read again.
        block_words: Vec<String> = Vec::new()
            => (long = "block-words", env = "DANMAKU_BLOCK_WORDS", value_delimiter = ',');
        /// Comments per second per room that reach guests and free users in a flood
        /// (members and admins always get every comment). 0 disables sampling.
        free_feed_rate: u32 = 20
            => (long = "free-feed-rate", env = "DANMAKU_FREE_FEED_RATE");
        /// Spam-wave folding: within this many milliseconds of a comment, later ones in
        /// the same room that normalise to the same text (case, width, spaces, repeated
        /// characters: `2333333` = `23333`) are stored but delivered as a count on the
        /// first (`danmaku_fold`). 0 turns folding off (0 to 60000).
        fold_window_ms: u64 = 5000
            => (long = "fold-window-ms", env = "DANMAKU_FOLD_WINDOW_MS");
        /// Whether members' comments fold too (admins' never do).
        fold_members: bool = false
            => (long = "fold-members", env = "DANMAKU_FOLD_MEMBERS");
    }
}
