//! Reading stored comments: history pages and the rows of exports (DPlayer, bilibili
//! XML), each as its reader may see them.
//!
//! **What a reader sees** ([`Sight`]): everyone sees the visible comments of their
//! audience. A comment's author also sees their own held ones (marked `held`) and
//! shadowed ones (unmarked: nothing tells them). The video's moderators and admins see
//! every comment, marked with its state. The common page (the first 1000 by video time)
//! is cached per audience for the public sight only; an author with hidden comments in
//! the video (a partial-index lookup says so) and a moderator read the store.
//!
//! Exports have no field for a state, so they never carry another poster's hidden
//! comments, not even for a moderator (the history API and the console show those);
//! an author's own are included, so their player replays what they posted.

use std::sync::Arc;

use super::{DEFAULT_LIMIT, MAX_LIMIT, Service, View};
use crate::{
    access::Directory,
    model::{Identity, Refusal, Role},
    store::danmaku::{HistoryQuery, StoredDanmaku},
};

/// How much of a video's comments a reader sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sight {
    /// The visible comments of their audience.
    Public,
    /// Those and their own hidden ones.
    Author(String),
    /// Every comment, marked (the video's moderators, admins).
    Moderator,
}

/// The store failure of a read, as a refusal.
fn unavailable(e: crate::store::StoreError) -> Refusal {
    tracing::error!(error = %e, "history read failed");
    Refusal::unavailable("store_unavailable", "history is unavailable; retry")
}

impl Service {
    /// What `reader` (`None`: a guest) sees of `video`'s comments.
    pub async fn sight(&self, reader: Option<&Identity>, video: &str) -> Result<Sight, Refusal> {
        let Some(who) = reader.filter(|w| !w.is_guest()) else {
            return Ok(Sight::Public);
        };
        if self.moderation.authority(who, video).is_some() {
            return Ok(Sight::Moderator);
        }
        if self
            .store
            .has_hidden(video, &who.sub)
            .await
            .map_err(unavailable)?
        {
            return Ok(Sight::Author(who.sub.to_string()));
        }
        Ok(Sight::Public)
    }

    /// Reads a history window as `reader` (`None`: a guest) may see it.
    pub async fn history(
        &self,
        dir: &Directory,
        reader: Option<&Identity>,
        mut q: HistoryQuery,
    ) -> Result<Arc<Vec<View>>, Refusal> {
        let role = reader.map(|r| r.role).unwrap_or(Role::Guest);
        let tier = self.video_tier(dir, &q.video)?;
        Self::check_read(tier, role)?;
        q.members = role.is_member_or_admin();
        q.limit = q.limit.clamp(1, MAX_LIMIT);
        let sight = self.sight(reader, &q.video).await?;
        let cacheable = sight == Sight::Public
            && q.from_ms.is_none()
            && q.to_ms.is_none()
            && q.after_id.is_none()
            && q.limit == DEFAULT_LIMIT
            && !q.newest;
        let key = (q.video.clone(), q.members);
        if cacheable && let Some(hit) = self.history_cache.get(&key).await {
            return Ok(hit);
        }
        match &sight {
            Sight::Public => {}
            Sight::Author(sub) => q.author = Some(sub.clone()),
            Sight::Moderator => q.every_state = true,
        }
        let rows = self.store.history(q).await.map_err(unavailable)?;
        let views = Arc::new(
            rows.iter()
                .map(|r| match &sight {
                    Sight::Public => View::of(r),
                    Sight::Author(sub) if r.d.sub == *sub => View::for_author(r),
                    Sight::Author(_) => View::of(r),
                    Sight::Moderator => View::marked(r),
                })
                .collect::<Vec<_>>(),
        );
        if cacheable {
            self.history_cache.insert(key, views.clone()).await;
        }
        Ok(views)
    }

    /// Reads a history window with authors, for exports (hashing needs `sub`): the
    /// visible comments of the reader's audience and the reader's own hidden ones.
    pub async fn history_rows(
        &self,
        dir: &Directory,
        reader: Option<&Identity>,
        mut q: HistoryQuery,
    ) -> Result<Vec<StoredDanmaku>, Refusal> {
        let role = reader.map(|r| r.role).unwrap_or(Role::Guest);
        let tier = self.video_tier(dir, &q.video)?;
        Self::check_read(tier, role)?;
        q.members = role.is_member_or_admin();
        q.limit = q.limit.clamp(1, MAX_LIMIT);
        q.author = reader.filter(|w| !w.is_guest()).map(|w| w.sub.to_string());
        self.store.history(q).await.map_err(unavailable)
    }
}
