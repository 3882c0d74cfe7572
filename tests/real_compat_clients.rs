//! Clients other than the docker CLI, through Shoal in front of real engines, doing what
//! they do against one engine (issue 15): the Ruby `docker-api` gem's exec start without a
//! hijack and its lower-case JSON keys (`tests/rb/compat_clients.rb`), docker-py's attach
//! with logs right after a wait, and the CLI's link removal.
#![allow(
    clippy::disallowed_methods,
    reason = "plain #[test]s: they block the test's own thread, while the engines and Shoal under test are processes of their own"
)]

mod support;

use std::process::Command;
use support::{RealCluster, ShoalDaemon};

/// Runs a client script with `tcp://<shoal>` as its argument; answers its stdout.
fn run_script(program: &str, script: &str, shoal: &ShoalDaemon) -> String {
    let path = format!("{}/tests/{script}", env!("CARGO_MANIFEST_DIR"));
    let o = Command::new("timeout")
        .args(["90", program, &path, &format!("tcp://{}", shoal.host())])
        .output()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"));
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    );
    assert!(
        o.status.success(),
        "{script} failed:\n{out}\n{err}\nshoal:\n{}",
        shoal.log_tail()
    );
    out
}

#[test]
fn the_ruby_gem_execs_without_a_hijack_and_sends_keys_in_any_case() {
    // One engine: the script joins its container to a network it makes, and a local
    // network only joins containers of its own node.
    let cluster = RealCluster::new()
        .engines(1)
        .start()
        .expect("engines start");
    let shoal = ShoalDaemon::over(&cluster, &[]);
    let out = run_script("ruby", "rb/compat_clients.rb", &shoal);
    assert!(out.contains("ruby ok"), "{out}");
}

#[test]
fn docker_py_attach_with_logs_after_wait_returns_the_output_every_time() {
    let cluster = RealCluster::new()
        .engines(2)
        .start()
        .expect("engines start");
    let shoal = ShoalDaemon::over(&cluster, &[]);
    let out = run_script("python3", "py/attach_logs.py", &shoal);
    assert!(out.contains("attach ok 30"), "{out}");
}
