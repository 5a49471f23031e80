//! A throwaway PostgreSQL server (its own data directory and port, started with the
//! machine's `initdb`/`pg_ctl`), for the test that really stops PostgreSQL under a
//! running node. The machine's own server on 5432 is never touched.

use std::{
    path::PathBuf,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

/// A private PostgreSQL cluster, stopped and removed on drop.
pub struct ThrowawayPostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

/// The directory of the machine's PostgreSQL server binaries (Debian's layout).
fn pg_bin() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries (/usr/lib/postgresql) are needed for this test")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    found.sort();
    found
        .pop()
        .expect("no initdb under /usr/lib/postgresql/*/bin")
}

/// Runs a PostgreSQL tool as the `postgres` OS user when we are root (initdb and the
/// server refuse to run as root), as ourselves otherwise.
fn as_postgres(tool: &std::path::Path) -> Command {
    // Root or not: the effective uid (third field of `Uid:`) in /proc.
    let root = std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false);
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(tool);
        c
    } else {
        Command::new(tool)
    }
}

impl ThrowawayPostgres {
    /// Creates a cluster in a temp dir and starts it on a free port.
    pub async fn start() -> ThrowawayPostgres {
        let bin = pg_bin();
        let dir = tempfile::Builder::new()
            .prefix("danmaku-pg-")
            .tempdir()
            .unwrap();
        // The server runs as `postgres`: it must own its directory.
        let _ = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(dir.path())
            .status();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let out = as_postgres(&bin.join("initdb"))
            .args(["-D"])
            .arg(dir.path().join("data"))
            .args(["-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"])
            .stdout(Stdio::null())
            .output()
            .expect("initdb runs");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pg = ThrowawayPostgres { bin, dir, port };
        pg.resume().await;
        pg
    }

    /// The URL of this server's `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server (again, on the same port and data) and waits until it accepts.
    pub async fn resume(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let out = as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-o", &opts, "-l"])
            .arg(self.dir.path().join("server.log"))
            .args(["-w", "start"])
            .stdout(Stdio::null())
            .output()
            .expect("pg_ctl runs");
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while sqlx::PgPool::connect(&self.url()).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "throwaway PostgreSQL did not accept"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the server at once (`immediate`: connections drop as in a crash).
    pub fn stop(&self) {
        let _ = as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for ThrowawayPostgres {
    fn drop(&mut self) {
        self.stop();
    }
}
