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
use support::{docker_cli, RealCluster, ShoalDaemon};

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

#[test]
fn the_cli_removes_a_link_and_hears_where_split_dependencies_are() {
    let cluster = RealCluster::new()
        .engines(2)
        .start()
        .expect("engines start");
    let shoal = ShoalDaemon::over(&cluster, &[]);
    let docker = |args: &[&str]| docker_cli(shoal.host(), args);
    for (name, node) in [("vol0", "node-1"), ("vol1", "node-2")] {
        let on = format!("constraint:node=={node}");
        docker(&[
            "run", "-d", "--name", name, "-e", &on, "busybox", "sleep", "300",
        ])
        .expect_success();
    }
    // A link removal: `DELETE /containers//web/db?link=1` names the parent and the alias.
    docker(&[
        "run", "-d", "--name", "web", "--link", "vol0:db", "busybox", "sleep", "300",
    ])
    .expect_success();
    let links = |c: &str| {
        docker(&["inspect", "-f", "{{.HostConfig.Links}}", c])
            .expect_success()
            .out()
            .to_string()
    };
    assert_eq!(links("web"), "[/vol0:/web/db]");
    let removed = docker(&["rm", "--link", "/web/db"]).expect_success();
    assert_eq!(removed.out(), "/web/db");
    assert_eq!(links("web"), "[]");
    let gone = docker(&["rm", "--link", "web/db"]);
    assert!(!gone.success(), "{gone}");
    // Dependencies on two nodes: refused, naming each and its node.
    let split = docker(&[
        "run",
        "-d",
        "--volumes-from",
        "vol0",
        "--volumes-from",
        "vol1",
        "busybox",
        "true",
    ]);
    assert!(!split.success(), "{split}");
    assert!(
        split.stderr.contains(
            "cannot place: --volumes-from vol0 is on node-1, --volumes-from vol1 is on node-2; a container can only use containers of one node"
        ),
        "{split}"
    );
    for c in ["web", "vol0", "vol1"] {
        docker(&["rm", "-f", c]).expect_success();
    }
}

#[test]
fn a_create_the_engine_takes_long_over_is_not_cut_by_the_engine_timeout() {
    let cluster = RealCluster::new()
        .engines(1)
        .start()
        .expect("engines start");
    // A short engine timeout: refreshes and connects only. The create below makes dockerd
    // look for a log plugin, which takes it longer than that.
    let shoal = ShoalDaemon::over(&cluster, &["--engine-timeout", "2s"]);
    let began = std::time::Instant::now();
    let o = docker_cli(
        shoal.host(),
        &[
            "create",
            "--log-driver",
            "no-such-driver",
            "busybox",
            "true",
        ],
    );
    let took = began.elapsed();
    assert!(!o.success(), "{o}");
    assert!(!o.stderr.contains("did not answer"), "{o}");
    assert!(
        o.stderr.contains("no-such-driver"),
        "the engine's own refusal: {o}"
    );
    assert!(
        took > std::time::Duration::from_secs(2),
        "the engine took longer than --engine-timeout: {took:?}"
    );
}
