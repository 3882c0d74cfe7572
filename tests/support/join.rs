//! A `shoal join` agent registering a real engine in etcd, for the etcd and replication
//! tests: started with a short heartbeat and TTL so lease expiry is seen quickly, killed
//! on drop, its log printed when the test panics.

use super::RealEngine;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// The lease renewal every agent here uses.
pub const HEARTBEAT: &str = "1s";

/// A `shoal join` process, killed on drop.
pub struct JoinAgent {
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl JoinAgent {
    /// Joins `engine` (by its TCP address) to `discovery` with a lease of `ttl_secs`.
    pub fn join(engine: &RealEngine, discovery: &str, ttl_secs: u64) -> JoinAgent {
        Self::join_with(engine, discovery, ttl_secs, &[])
    }

    /// With more arguments (`--discovery-opt`, the engine's TLS files).
    pub fn join_with(
        engine: &RealEngine,
        discovery: &str,
        ttl_secs: u64,
        args: &[String],
    ) -> JoinAgent {
        let dir = tempfile::tempdir().expect("a temp dir for the agent's log");
        let log = dir.path().join("join.log");
        let out = std::fs::File::create(&log).expect("agent log");
        let child = Command::new(env!("CARGO_BIN_EXE_shoal"))
            .args(["join", "--advertise", &engine.tcp_addr()])
            .args(["--heartbeat", HEARTBEAT, "--ttl", &format!("{ttl_secs}s")])
            .args(args)
            .arg(discovery)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .expect("shoal join starts");
        JoinAgent {
            child,
            log,
            _dir: dir,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, and waits for the agent to exit; true when it exited 0.
    pub fn stop(&mut self) -> bool {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().map(|s| s.success()).unwrap_or(false)
    }

    /// SIGKILL: the lease is left to expire.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the agent to exit by itself (a join it refuses), and says how.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        self.child.wait().expect("the agent exits")
    }
}

impl Drop for JoinAgent {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("shoal join log:\n{}", self.log());
        }
    }
}
