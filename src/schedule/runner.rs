//! The scheduler task: sleeps until the earliest next run (or until the registry
//! changes), fires what is due through the push service, and records each run.

use std::{
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use super::registry::{Due, Schedules};
use crate::{
    bus::Bus,
    metrics::Metrics,
    model::{Refusal, time::now_millis},
    push,
    shutdown::Shutdown,
    store::Store,
};

/// Longest single sleep of the scheduler: it re-plans at least this often, so a far
/// deadline never strains the timer and a wall-clock change is noticed.
const MAX_SLEEP: Duration = Duration::from_secs(3600);

/// The `data` of a scheduled push event: the payload unchanged, plus which schedule and
/// which run sent it.
fn run_data(due: &Due) -> serde_json::Value {
    serde_json::json!({
        "payload": due.def.payload,
        "schedule": {"id": due.id, "name": due.def.name, "run": due.run},
    })
}

/// What the scheduler task needs: the registry it walks, the push path it fires
/// through, the bus (one node of a cluster claims each run), the store (runs are
/// recorded), the metrics and the shutdown signal.
pub struct Runner {
    pub schedules: Arc<Schedules>,
    pub push: Arc<push::Service>,
    pub bus: Arc<dyn Bus>,
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
    pub shutdown: Shutdown,
}

impl Runner {
    /// Publishes one run through the push path; returns the sockets written.
    async fn fire(&self, due: &Due) -> Result<u64, Refusal> {
        let routes = due.def.routes(&self.push)?;
        let push_id = format!("{}#{}", due.id, due.run);
        let sent = self
            .push
            .send(&push_id, &due.def.event, run_data(due), routes, "scheduler")
            .await?;
        Ok(sent.delivered)
    }

    /// Publishes every due run, then records them in the store, metrics and logs.
    async fn fire_due(&self) {
        let done = {
            let _publishing = self.schedules.publishing.lock().await;
            let mut done = Vec::new();
            for mut due in self.schedules.take_due(now_millis()) {
                // In a cluster one node wins each tick; the others skip it.
                match self.bus.claim_run(&due.id, due.planned, due.run).await {
                    Ok(Some(run)) => {
                        self.schedules.renumber(&due.id, due.run, run);
                        due.run = run;
                    }
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::warn!(schedule = %due.id, error = %e, "schedule run skipped: cannot claim it");
                        continue;
                    }
                }
                let result = self.fire(&due).await;
                done.push((due, result));
            }
            done
        };
        for (due, result) in done {
            self.metrics.schedule_runs.fetch_add(1, Ordering::Relaxed);
            let delivered = match result {
                Ok(delivered) => {
                    tracing::info!(schedule = %due.id, name = %due.def.name, run = due.run, delivered, "schedule run");
                    delivered
                }
                Err(e) => {
                    tracing::warn!(schedule = %due.id, name = %due.def.name, run = due.run, code = %e.code, error = %e.message, "schedule run published nothing");
                    0
                }
            };
            self.schedules.delivered(&due.id, due.run, delivered);
            if let Err(e) = self
                .store
                .record_schedule_run(&due.id, due.at, due.run, delivered)
                .await
            {
                tracing::error!(schedule = %due.id, error = %e, "cannot record a schedule run");
            }
        }
    }

    /// The task: sleeps until the earliest next run (or until the registry changes),
    /// fires what is due, and repeats until shutdown starts.
    pub async fn run(self) {
        let mut shutdown = self.shutdown.clone();
        tracing::info!(count = self.schedules.len(), "scheduler started");
        while !shutdown.is_started() {
            self.fire_due().await;
            let sleep = async {
                match self.schedules.next_deadline() {
                    Some(t) => {
                        let wait = Duration::from_millis(t.saturating_sub(now_millis()));
                        tokio::time::sleep(wait.min(MAX_SLEEP)).await
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = sleep => {}
                _ = self.schedules.wake.notified() => {}
                _ = shutdown.started() => break,
            }
        }
        tracing::info!("scheduler stopped");
    }
}
