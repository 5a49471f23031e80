//! Presence events: viewer counts pushed to the subscribers of `video:*` channels.
//!
//! Video pages show "N watching". Rather than publish on every join and leave (a busy
//! room would flood its viewers), a task looks at the hub every `ws.presence_interval_ms`
//! (2 s by default) and publishes `{"type":"presence","data":{"total":N}}` through the
//! bus on each video channel whose count changed since its last presence event. So each
//! channel gets at most one presence event per interval, and none while its count holds.
//! In a cluster the count sums every live node ([`crate::bus::Bus::presence`]) and one
//! node announces each change.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use tokio::time::MissedTickBehavior;

use crate::{
    bus::Bus,
    hub::Hub,
    hub::event::{Publish, Target},
    model::Audience,
    shutdown::Shutdown,
    webhooks,
};

/// The channel family that gets presence events.
pub const PREFIX: &str = "video:";

/// The event name of presence frames.
pub const EVENT: &str = "presence";

/// Publishes the changed counts of one tick. `last` holds the count each channel was
/// last seen with here; channels that emptied (and so left the hub) are forgotten, so a
/// room that fills again is told its new count. In a cluster the bus keeps the last
/// total told by any node ([`crate::bus::Bus::presence_told`]).
async fn tick(
    hub: &Hub,
    bus: &dyn Bus,
    last: &mut HashMap<Arc<str>, usize>,
    rooms: &mut Rooms<'_>,
) {
    let totals = hub.channel_totals(PREFIX);
    let mut seen = HashMap::with_capacity(totals.len());
    for (channel, local) in totals {
        // In a cluster the count is every node's; each node tells its own viewers.
        let total = match bus.presence(&channel).await {
            Ok(counts) => counts.iter().sum(),
            Err(_) => local,
        };
        rooms.occupied(bus, &channel, total).await;
        let told_here = last.get(&channel).copied();
        // In a cluster the last total told is shared, so one node announces each change
        // (and a room new to this node is told at once); on one node, `last` decides.
        let announce = match bus.presence_told(&channel, total).await {
            Ok(Some(changed)) => changed || told_here.is_none(),
            Ok(None) | Err(_) => told_here != Some(total),
        };
        if announce {
            let published = bus
                .publish(Publish {
                    channel: channel.clone(),
                    event: EVENT.to_string(),
                    data: serde_json::json!({ "total": total }),
                    target: Target::audience(Audience::Everyone),
                })
                .await;
            if let Err(e) = published {
                // Not remembered as told: the next tick tries again.
                tracing::warn!(%channel, error = %e, "presence not published");
                continue;
            }
        }
        seen.insert(channel, total);
    }
    rooms.vacated(bus, &seen).await;
    *last = seen;
}

/// The rooms with viewers as this node saw them, for the `room.occupied` and
/// `room.vacated` webhook events. A room is occupied when it gets its first viewer on any
/// node and vacated when its last one leaves every node; on a cluster the bus's shared
/// record of each room's state ([`Bus::room_state`]) lets one node tell each change.
/// The record is kept only while some webhook subscribes a room event.
struct Rooms<'a> {
    webhooks: &'a webhooks::Service,
    /// Video channels this node saw with viewers (on any node).
    open: HashSet<Arc<str>>,
}

impl Rooms<'_> {
    /// Whether some webhook subscribes a room event, so the rooms' state is recorded.
    fn watched(&self) -> bool {
        self.webhooks.wants("room.occupied") || self.webhooks.wants("room.vacated")
    }

    /// Notes a room this node has viewers in (`total` on every node); tells
    /// `room.occupied` if it had none. On a cluster every node with viewers sets the
    /// shared record each tick, not only when the room is new to it: another node may
    /// have told a vacancy it saw in a heartbeat taken while this node's viewers were
    /// between a leave and a join, and the room must then be told occupied again.
    async fn occupied(&mut self, bus: &dyn Bus, channel: &Arc<str>, total: usize) {
        if total == 0 {
            return;
        }
        let new_here = self.open.insert(channel.clone());
        if !self.watched() {
            return;
        }
        if recorded(bus, channel, true, new_here).await && self.webhooks.wants("room.occupied") {
            self.tell("room.occupied", channel, total).await;
        }
    }

    /// Rooms this node saw that left its hub: vacated when no node has viewers there.
    /// A room still watched elsewhere stays open here and is looked at again each tick:
    /// each node reads the others' counts as of their last heartbeat, so when the last
    /// viewers leave two nodes at once, each may still see the other's, and a node that
    /// forgot the room then would leave its vacancy told by nobody.
    async fn vacated(&mut self, bus: &dyn Bus, seen: &HashMap<Arc<str>, usize>) {
        let gone: Vec<Arc<str>> = self
            .open
            .iter()
            .filter(|c| !seen.contains_key(*c))
            .cloned()
            .collect();
        for channel in gone {
            let total: usize = match bus.presence(&channel).await {
                Ok(counts) => counts.iter().sum(),
                Err(_) => continue,
            };
            if total > 0 {
                continue;
            }
            self.open.remove(&channel);
            if !self.watched() {
                continue;
            }
            if recorded(bus, &channel, false, true).await && self.webhooks.wants("room.vacated") {
                self.tell("room.vacated", &channel, 0).await;
            }
        }
    }

    /// Queues a room event.
    async fn tell(&self, event: &'static str, channel: &str, total: usize) {
        let video = channel.strip_prefix(PREFIX).unwrap_or(channel);
        self.webhooks
            .emit(event, serde_json::json!({"video": video, "total": total}))
            .await;
    }
}

/// Records a room's state and says whether it changed, so this node tells the change:
/// the bus's shared record on a cluster; on one node (no shared record), `alone`, what
/// this node's own view says. A failure is logged as a warning when this node saw a
/// change (`alone`); the every-tick re-assertions of an occupied room only log at debug,
/// so a bus outage does not log each room every tick.
async fn recorded(bus: &dyn Bus, channel: &str, occupied: bool, alone: bool) -> bool {
    match bus.room_state(channel, occupied).await {
        Ok(Some(changed)) => changed,
        Ok(None) => alone,
        Err(e) if alone => {
            tracing::warn!(channel, error = %e, "room state not recorded: its webhook event is skipped");
            false
        }
        Err(e) => {
            tracing::debug!(channel, error = %e, "room state not re-asserted");
            false
        }
    }
}

/// The presence task: one tick per `interval` until shutdown starts.
pub async fn run(
    hub: Arc<Hub>,
    bus: Arc<dyn Bus>,
    webhooks: Arc<webhooks::Service>,
    interval: Duration,
    mut shutdown: Shutdown,
) {
    let mut interval = tokio::time::interval(interval.max(Duration::from_millis(1)));
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last = HashMap::new();
    let mut rooms = Rooms {
        webhooks: &webhooks,
        open: HashSet::new(),
    };
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = shutdown.started() => break,
        }
        tick(&hub, bus.as_ref(), &mut last, &mut rooms).await;
    }
    tracing::debug!("presence task stopped");
}
