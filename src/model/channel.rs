//! The channel names the server itself manages, and the shape of a video id.

use super::Refusal;

/// The channel every socket is on automatically; broadcasts and role pushes use it.
pub const BROADCAST: &str = "broadcast";

/// The prefix of personal channels: `user:{sub}` reaches every socket of one user.
pub const USER_PREFIX: &str = "user:";

/// The prefix of video rooms: `video:{id}`.
pub const VIDEO_PREFIX: &str = "video:";

/// Longest video id accepted.
pub const MAX_VIDEO_ID: usize = 64;

/// Whether `id` has the shape of a video id: 1 to [`MAX_VIDEO_ID`] ASCII letters, digits
/// and `- _ .`. Here, at the bottom, because the comment rules (paths, channel names) and
/// the token verifier (the `mod` claim lists video ids) both check it.
pub fn is_video_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_VIDEO_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// [`is_video_id`], refusing 422 `invalid_video`.
pub fn check_video_id(id: &str) -> Result<(), Refusal> {
    if is_video_id(id) {
        Ok(())
    } else {
        Err(Refusal::invalid(
            "invalid_video",
            format!("video ids are 1 to {MAX_VIDEO_ID} characters of letters, digits and - _ ."),
        ))
    }
}
