//! The schedules in memory, mirrored from the store, and what is due when.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use tokio::sync::Notify;

use super::{
    cadence::Cadence,
    def::{ScheduleDef, ScheduleInfo},
};
use crate::{model::time::now_millis, store::ScheduleRecord};

/// One schedule in memory.
#[derive(Debug)]
struct Entry {
    def: Arc<ScheduleDef>,
    cadence: Cadence,
    paused: bool,
    created_at: u64,
    next_run: Option<u64>,
    last_run: Option<u64>,
    last_delivered: Option<u64>,
    runs: u64,
}

impl Entry {
    /// An entry for a stored schedule, planned from `now`; `None` (logged) when its
    /// definition no longer parses.
    fn from_record(rec: &ScheduleRecord, now: u64) -> Option<Entry> {
        let parsed = serde_json::from_str::<ScheduleDef>(&rec.definition)
            .map_err(|e| e.to_string())
            .and_then(|def| {
                Cadence::of(&def, rec.created_at)
                    .map(|c| (def, c))
                    .map_err(|e| e.message.into_owned())
            });
        let (def, cadence) = match parsed {
            Ok(ok) => ok,
            Err(error) => {
                tracing::error!(schedule = %rec.id, %error, "stored schedule is invalid; not loaded");
                return None;
            }
        };
        let next_run = cadence.next_after(now);
        Some(Entry {
            def: Arc::new(def),
            cadence,
            paused: rec.paused,
            created_at: rec.created_at,
            next_run,
            last_run: rec.last_run,
            last_delivered: rec.last_delivered,
            runs: rec.runs,
        })
    }

    /// The API view of this entry.
    fn info(&self, id: &str) -> ScheduleInfo {
        let d = &*self.def;
        ScheduleInfo {
            id: id.to_string(),
            name: d.name.clone(),
            cron: d.cron.clone(),
            every_s: d.every_s,
            target: d.target.clone(),
            event: d.event.clone(),
            payload: d.payload.clone(),
            audience: d.audience,
            tz: d.tz.clone(),
            paused: self.paused,
            created_at: self.created_at,
            next_run: if self.paused { None } else { self.next_run },
            last_run: self.last_run,
            last_delivered: self.last_delivered,
            runs: self.runs,
        }
    }
}

/// A run taken from the registry, to be published.
#[derive(Debug)]
pub(super) struct Due {
    pub(super) id: String,
    pub(super) def: Arc<ScheduleDef>,
    /// The run's index (1 for the first run).
    pub(super) run: u64,
    /// Unix milliseconds the run was taken at.
    pub(super) at: u64,
    /// Unix milliseconds the run was planned for: the same on every node of a cluster,
    /// so it names the tick in the run's lease.
    pub(super) planned: u64,
}

/// The schedules in memory, mirrored from the store, with the scheduler's wake-up.
///
/// Writers (the API) store first, then update the mirror, then [`Notify`] the task so it
/// re-plans its sleep. Removing or pausing a schedule also waits for any run being
/// published at that moment, so once `DELETE` or a pausing `PATCH` has answered, that
/// schedule publishes nothing more.
#[derive(Debug, Default)]
pub struct Schedules {
    entries: Mutex<HashMap<String, Entry>>,
    pub(super) wake: Notify,
    /// Held by the task while it publishes a batch of runs.
    pub(super) publishing: tokio::sync::Mutex<()>,
}

impl Schedules {
    /// Locks the map; a poisoned lock still holds consistent entries (no update panics
    /// halfway), so it is used as is.
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Fills the registry from the store at startup. Next runs are computed from `now`:
    /// runs missed while the server was down are not replayed. A stored definition that
    /// no longer parses is logged and left out (it stays in the store).
    pub fn load(&self, records: Vec<ScheduleRecord>, now: u64) {
        let mut map = self.lock();
        map.clear();
        for rec in records {
            if let Some(entry) = Entry::from_record(&rec, now) {
                map.insert(rec.id, entry);
            }
        }
        tracing::info!(count = map.len(), "schedules loaded");
    }

    /// Cluster mode: brings the mirror in line with the shared store, where other nodes
    /// create, delete, pause and resume schedules. Entries known here keep their planning
    /// and run count; `read_at` is when `records` were read, so a schedule this node
    /// created after that read is not mistaken for a deleted one.
    pub async fn reconcile(&self, records: Vec<ScheduleRecord>, read_at: u64) {
        let now = now_millis();
        let mut gone = Vec::new();
        let mut changed = false;
        {
            let mut map = self.lock();
            let stored: std::collections::HashSet<&str> =
                records.iter().map(|r| r.id.as_str()).collect();
            for (id, e) in map.iter() {
                if !stored.contains(id.as_str()) && e.created_at < read_at.saturating_sub(5000) {
                    gone.push(id.clone());
                }
            }
            for rec in &records {
                match map.get_mut(&rec.id) {
                    Some(e) if e.paused != rec.paused => {
                        if e.paused {
                            e.next_run = e.cadence.next_after(now);
                        }
                        e.paused = rec.paused;
                        changed = true;
                    }
                    Some(_) => {}
                    None => {
                        if let Some(entry) = Entry::from_record(rec, now) {
                            map.insert(rec.id.clone(), entry);
                            changed = true;
                        }
                    }
                }
            }
        }
        for id in gone {
            self.remove(&id).await;
        }
        if changed {
            self.wake.notify_one();
        }
    }

    /// Number of schedules.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether there are no schedules.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Adds a schedule already stored, and wakes the task so it plans for it.
    pub fn insert(
        &self,
        id: &str,
        def: ScheduleDef,
        cadence: Cadence,
        created_at: u64,
    ) -> ScheduleInfo {
        let next_run = cadence.next_after(created_at.max(now_millis()));
        let entry = Entry {
            def: Arc::new(def),
            cadence,
            paused: false,
            created_at,
            next_run,
            last_run: None,
            last_delivered: None,
            runs: 0,
        };
        let info = entry.info(id);
        self.lock().insert(id.to_string(), entry);
        self.wake.notify_one();
        info
    }

    /// One schedule.
    pub fn get(&self, id: &str) -> Option<ScheduleInfo> {
        self.lock().get(id).map(|e| e.info(id))
    }

    /// Every schedule, oldest first.
    pub fn list(&self) -> Vec<ScheduleInfo> {
        let mut all: Vec<_> = self.lock().iter().map(|(id, e)| e.info(id)).collect();
        all.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        all
    }

    /// Forgets a schedule already removed from the store. Returns once no run of it can
    /// be published any more.
    pub async fn remove(&self, id: &str) -> bool {
        let existed = self.lock().remove(id).is_some();
        self.wake.notify_one();
        drop(self.publishing.lock().await);
        existed
    }

    /// Pauses or resumes a schedule already updated in the store. A resumed schedule's
    /// next run is the first after now (the paused time is not replayed). Returns once a
    /// paused schedule can publish no more runs.
    pub async fn set_paused(&self, id: &str, paused: bool) -> Option<ScheduleInfo> {
        let info = {
            let mut map = self.lock();
            let e = map.get_mut(id)?;
            if e.paused && !paused {
                e.next_run = e.cadence.next_after(now_millis());
            }
            e.paused = paused;
            e.info(id)
        };
        self.wake.notify_one();
        drop(self.publishing.lock().await);
        Some(info)
    }

    /// Takes every run due at `now`: counts it and plans the next run after `now`, so
    /// ticks missed while the task was late are skipped, not replayed.
    pub(super) fn take_due(&self, now: u64) -> Vec<Due> {
        let mut due = Vec::new();
        for (id, e) in self.lock().iter_mut() {
            match e.next_run {
                Some(planned) if !e.paused && planned <= now => {
                    e.runs += 1;
                    e.last_run = Some(now);
                    e.next_run = e.cadence.next_after(now);
                    due.push(Due {
                        id: id.clone(),
                        def: e.def.clone(),
                        run: e.runs,
                        at: now,
                        planned,
                    });
                }
                _ => {}
            }
        }
        due.sort_by(|a, b| a.id.cmp(&b.id));
        due
    }

    /// Adopts the cluster-wide run number a lease returned.
    pub(super) fn renumber(&self, id: &str, local: u64, run: u64) {
        if let Some(e) = self.lock().get_mut(id)
            && e.runs == local
        {
            e.runs = run;
        }
    }

    /// Notes what a run delivered.
    pub(super) fn delivered(&self, id: &str, run: u64, delivered: u64) {
        if let Some(e) = self.lock().get_mut(id)
            && e.runs == run
        {
            e.last_delivered = Some(delivered);
        }
    }

    /// The earliest next run of an active schedule.
    pub(super) fn next_deadline(&self) -> Option<u64> {
        self.lock()
            .values()
            .filter(|e| !e.paused)
            .filter_map(|e| e.next_run)
            .min()
    }
}
