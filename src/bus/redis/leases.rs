//! Schedule run leases: one node of the cluster fires each planned run.
//!
//! A run is claimed with `SET NX PX` on (schedule, planned time); the winner also takes
//! the next number from the schedule's cluster-wide run counter.

use super::{RedisBus, unavailable};
use crate::bus::BusError;

/// Takes the lease of one schedule run; returns the cluster-wide run number, or 0.
pub(super) const CLAIM_LUA: &str = r#"
if redis.call('SET', KEYS[1], ARGV[4], 'NX', 'PX', ARGV[1]) then
  redis.call('SET', KEYS[2], ARGV[2], 'NX')
  local n = redis.call('INCR', KEYS[2])
  redis.call('EXPIRE', KEYS[2], ARGV[3])
  return n
end
return 0
"#;

/// Seconds a schedule's run counter outlives its last run.
const RUNS_KEEP_S: u64 = 400 * 24 * 3600;

/// How long a run lease is held (longer than any clock skew between nodes).
const LEASE_MS: u64 = 10 * 60 * 1000;

impl RedisBus {
    /// Takes the lease of the run of `id` planned at `planned_ms`; the run number, or
    /// `None` when another node holds it.
    pub(super) async fn claim_lease(
        &self,
        id: &str,
        planned_ms: u64,
        local_run: u64,
    ) -> Result<Option<u64>, BusError> {
        let mut conn = self.connection()?;
        let run: u64 = self
            .claim_script
            .key(self.key("lease", &format!("{id}:{planned_ms}")))
            .key(self.key("runs", id))
            .arg(LEASE_MS)
            .arg(local_run.saturating_sub(1))
            .arg(RUNS_KEEP_S)
            .arg(&self.cfg.node)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok((run > 0).then_some(run))
    }
}
