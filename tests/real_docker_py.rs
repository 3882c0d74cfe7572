//! docker-py (Debian's `python3-docker`, the PyPI `docker` package) through Shoal in front of
//! two real engines: `tests/py/docker_py_smoke.py` runs, logs, execs and follows events.
#![allow(
    clippy::disallowed_methods,
    reason = "plain #[test]s: they block the test's own thread, while the engines and Shoal under test are processes of their own"
)]

mod support;

use std::process::Command;
use support::{RealCluster, ShoalDaemon};

#[test]
fn docker_py_runs_logs_execs_and_follows_events() {
    let cluster = RealCluster::new()
        .engine("node-1", &[])
        .engine("node-2", &[])
        .start()
        .expect("engines start");
    let shoal = ShoalDaemon::over(&cluster, &[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/docker_py_smoke.py");
    let o = Command::new("timeout")
        .args(["120", "python3", script, &format!("tcp://{}", shoal.host())])
        .output()
        .expect("python3 runs (install python3-docker)");
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(o.status.success(), "docker-py failed:\n{out}\n{err}");
    assert!(out.contains("docker-py ok"), "{out}");
}
