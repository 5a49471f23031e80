//! Announcing a review (moderation decides and stores it, see `moderation::review`):
//! an approved comment is published to its audience as any new comment (with a
//! catch-up record should the bus be away) and counted in the heatmap; a rejected one
//! was never seen by the audience, so only its author and the moderators hear of it.
//! Everyone who saw it marked (its author, the video's moderators, admins) gets
//! `danmaku_reviewed {id, video, state}`, `state` being `visible` or `rejected`.

use super::{
    Announcement, Service,
    announce::{comment_event, deletion_event, hook_data, marked_events},
};
use crate::{
    access::Directory,
    model::{Identity, Refusal, Tier},
    store::{danmaku::Deferred, review::Verdict},
};

impl Service {
    /// Approves or rejects a held comment (`moderation` checks and stores it), and
    /// returns what to publish.
    pub async fn review(
        &self,
        dir: &Directory,
        who: &Identity,
        id: i64,
        verdict: Verdict,
        reason: Option<&str>,
    ) -> Result<Announcement, Refusal> {
        let stored = self.moderation.review(who, id, verdict, reason).await?;
        let video = stored.d.video.clone();
        let tier = dir.video_tier(&video).unwrap_or(Tier::Free);
        let outcome = match verdict {
            Verdict::Approve => "visible",
            Verdict::Reject => "rejected",
        };
        let marked = marked_events(
            &stored,
            tier,
            self.moderation.stored_moderators(&video),
            "danmaku_reviewed",
            serde_json::json!({"id": id, "video": video, "state": outcome}),
            true,
        );
        Ok(match verdict {
            Verdict::Approve => {
                self.invalidate(&video).await;
                self.heatmaps
                    .record(&video, stored.d.time_ms, stored.d.audience, 1)
                    .await;
                Announcement {
                    event: Some(comment_event(&stored, tier)),
                    change: Deferred::Posted,
                    id,
                    marked,
                    webhook: Some((
                        "danmaku.posted",
                        hook_data(
                            &stored,
                            serde_json::json!({"approved_by": who.sub.as_ref()}),
                        ),
                    )),
                }
            }
            Verdict::Reject => {
                let mut marked = marked;
                // The author's pages drop it as they drop any deleted comment.
                marked.push(deletion_event(&stored, tier));
                Announcement {
                    event: None,
                    change: Deferred::Deleted,
                    id,
                    marked,
                    webhook: Some((
                        "danmaku.deleted",
                        serde_json::json!({"id": id, "video": video, "by": who.sub.as_ref(),
                            "reason": reason, "state": "rejected"}),
                    )),
                }
            }
        })
    }
}
