//! The server's background loops over the shared state: mirrors re-read from a shared
//! store, the bus-outage catch-up and the like and fold counters' flush. Each stops when
//! shutdown starts; [`super::Server::run`] spawns them and waits for them.

use std::{sync::Arc, time::Duration};

use crate::{
    config::{BusEngine, StoreEngine},
    danmaku::catchup,
    model::time::now_millis,
    state::State,
};

/// How often a cluster node re-reads what other nodes may have written to the store.
const MIRROR_SYNC: Duration = Duration::from_secs(1);

/// Cluster mode (a shared store): keeps this node's in-memory mirrors (channel tiers,
/// video tiers, schedules) in line with writes made through other nodes, every
/// [`MIRROR_SYNC`]. With the embedded store this node is the only writer: it returns.
/// Moderation (mutes, moderators) has its own faster loop: [`sync_moderation`].
pub(super) async fn sync_mirrors(state: Arc<State>) {
    if matches!(state.cfg.store.engine, StoreEngine::Sqlite) {
        return;
    }
    let mut shutdown = state.shutdown.clone();
    let mut tick = tokio::time::interval(MIRROR_SYNC);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.started() => break,
        }
        if let Err(e) = sync_once(&state).await {
            tracing::warn!(error = %e, "cannot refresh mirrors from the store");
        }
    }
}

/// Cluster mode: re-reads room moderators, mutes, slow modes and flood rules in force
/// every [`crate::moderation::SYNC_EVERY`], so that a change made through another node
/// applies here within a second (the general mirror loop's one second would not leave
/// room for the read itself). With the embedded store this node is the only writer.
pub(super) async fn sync_moderation(state: Arc<State>) {
    if matches!(state.cfg.store.engine, StoreEngine::Sqlite) {
        return;
    }
    let mut shutdown = state.shutdown.clone();
    let mut tick = tokio::time::interval(crate::moderation::SYNC_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.started() => break,
        }
        if let Err(e) = state.moderation.sync().await {
            tracing::warn!(error = %e, "cannot refresh moderation state from the store");
        }
        if let Err(e) = state.webhooks.sync().await {
            tracing::warn!(error = %e, "cannot refresh webhooks from the store");
        }
    }
}

/// Publishes the changes recorded while the bus was away, once it is back
/// ([`crate::danmaku::catchup`]). The in-process bus is never away: nothing to do.
pub(super) async fn catch_up(state: Arc<State>) {
    if matches!(state.cfg.bus.engine, BusEngine::Local) {
        return;
    }
    let mut shutdown = state.shutdown.clone();
    let mut pacer = catchup::Pacer::default();
    let mut tick = tokio::time::interval(catchup::TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.started() => break,
        }
        state.danmaku.record_unconfirmed(state.bus.as_ref()).await;
        let due = pacer.due(
            std::time::Instant::now(),
            state.bus.is_ready(),
            state.danmaku.catch_up_due(),
        );
        if !due {
            continue;
        }
        match state
            .danmaku
            .catch_up(state.bus.as_ref(), &state.directory)
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                published = n,
                "caught up: changes recorded during the bus outage published"
            ),
            Err(e) => tracing::warn!(error = %e, "catch-up stopped; retrying"),
        }
    }
}

/// Sends the like counts changed lately as `danmaku_likes` events, and the fold counts
/// as `danmaku_fold` events, at most one per comment per
/// [`crate::danmaku::likes::FLUSH_EVERY`].
pub(super) async fn flush_likes(state: Arc<State>) {
    let mut shutdown = state.shutdown.clone();
    let mut tick = tokio::time::interval(crate::danmaku::likes::FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.started() => break,
        }
        state.danmaku.flush_likes(state.bus.as_ref()).await;
        state.danmaku.flush_folds(state.bus.as_ref()).await;
    }
}

/// One refresh of the mirrors from the shared store.
async fn sync_once(state: &State) -> Result<(), crate::store::StoreError> {
    let read_at = now_millis();
    let decls = state.store.list_channels().await?;
    state
        .directory
        .load(decls.into_iter().map(|d| (d.name, d.tier)));
    for v in state.store.list_videos().await? {
        state.directory.set_video(&v.id, v.tier);
    }
    let schedules = state.store.list_schedules().await?;
    state.schedules.reconcile(schedules, read_at).await;
    Ok(())
}
