//! Child processes a test owns: killed (SIGKILL) and reaped when the test ends.

use std::process::Child;

/// A child process killed (and reaped) at the latest when the test ends, even failing.
pub struct KillOnDrop(pub Child);

impl KillOnDrop {
    /// Sends SIGKILL: no shutdown sequence runs.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.kill();
    }
}
