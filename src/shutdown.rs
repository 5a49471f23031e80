//! The shutdown signal, in one small type.
//!
//! [`Trigger::fire`] starts the shutdown sequence (see `server`); every background task
//! and every new WebSocket upgrade holds a [`Shutdown`] and either asks whether it has
//! started or waits for it. Dropping the trigger counts as firing it, so a task never
//! outlives the server that spawned it.

use tokio::sync::watch;

/// Starts the shutdown; owned by the server.
#[derive(Debug)]
pub struct Trigger(watch::Sender<bool>);

/// Observes the shutdown; cheap to clone into every task.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

/// A trigger and the first observer of it.
pub fn channel() -> (Trigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (Trigger(tx), Shutdown(rx))
}

impl Trigger {
    /// Starts the shutdown (idempotent).
    pub fn fire(&self) {
        let _ = self.0.send(true);
    }
}

impl Shutdown {
    /// Whether the shutdown has started.
    pub fn is_started(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once the shutdown has started (or its trigger is gone).
    pub async fn started(&mut self) {
        // `wait_for` fails only when the sender is dropped, which also means: stop.
        let _ = self.0.wait_for(|started| *started).await;
    }
}
