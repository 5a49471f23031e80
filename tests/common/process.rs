//! Child processes a test owns: the real `danmaku serve` binary started on
//! `127.0.0.1:0`, and other children killed (SIGKILL) and reaped when the test ends.

use std::{path::Path, process::Stdio};

use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
    sync::oneshot,
};

use crate::common::{API_KEY, SECRET, WAIT};

/// A child process killed (and reaped) at the latest when the test ends, even failing.
pub struct KillOnDrop(pub std::process::Child);

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

/// A running `danmaku serve` process, killed when dropped.
pub struct Proc {
    pub child: Child,
    pub base: String,
    pub ws_base: String,
    /// Its `listening addr=…` log line.
    pub listening: String,
}

/// Removes ANSI colour sequences from a log line.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl Proc {
    /// Starts the built binary with `dir` as its data dir (see [`Proc::start_program`]).
    pub async fn start(dir: &Path, env: &[(&str, &str)]) -> Proc {
        Self::start_program(Path::new(env!("CARGO_BIN_EXE_danmaku")), dir, env).await
    }

    /// Starts `program serve` on `127.0.0.1:0` in `dir` (its working and data dir), with
    /// the test secret and API key, `env` on top and no `DANMAKU_STATIC_DIR` unless
    /// `env` sets one; waits for the `listening addr=…` line. Its stderr keeps being
    /// drained so logging never blocks it.
    pub async fn start_program(program: &Path, dir: &Path, env: &[(&str, &str)]) -> Proc {
        let mut cmd = Command::new(program);
        cmd.arg("serve")
            .current_dir(dir)
            .env_remove("DANMAKU_STATIC_DIR")
            .env("DANMAKU_BIND", "127.0.0.1:0")
            .env("DANMAKU_DATA_DIR", dir)
            .env("DANMAKU_JWT_SECRET", SECRET)
            .env("DANMAKU_API_KEYS", API_KEY)
            .env("DANMAKU_SHUTDOWN_GRACE_S", "5")
            .env("DANMAKU_LOG", "info")
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn danmaku");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = oneshot::channel::<String>();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            let mut tx = Some(tx);
            while let Ok(Some(line)) = lines.next_line().await {
                let line = strip_ansi(&line);
                if line.contains("listening addr=")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(line);
                }
            }
        });
        let listening = tokio::time::timeout(WAIT, rx)
            .await
            .expect("the server never logged its address")
            .expect("the server exited before listening");
        let addr = listening
            .split("addr=")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .expect("addr")
            .to_string();
        Proc {
            child,
            base: format!("http://{addr}"),
            ws_base: format!("ws://{addr}/ws"),
            listening,
        }
    }

    /// Sends a signal to the process.
    pub fn signal(&self, sig: libc::c_int) {
        let pid = self.child.id().expect("running") as libc::pid_t;
        // SAFETY: plain kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(pid, sig) };
        assert_eq!(rc, 0, "kill failed");
    }
}
