//! The channel names the server itself manages.

/// The channel every socket is on automatically; broadcasts and role pushes use it.
pub const BROADCAST: &str = "broadcast";

/// The prefix of personal channels: `user:{sub}` reaches every socket of one user.
pub const USER_PREFIX: &str = "user:";

/// The prefix of video rooms: `video:{id}`.
pub const VIDEO_PREFIX: &str = "video:";
