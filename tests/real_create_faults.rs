//! Creates against a frozen real engine (SIGSTOP: it accepts connections and answers
//! nothing), before Shoal marks it unhealthy: the creates it swallows answer failure, and
//! once it thaws and reads them, nothing they made is left behind (checked on the engines
//! directly). An unnamed create is tried on the other node; a named one is not, and its
//! name stays booked until its fate is known.
#![allow(
    clippy::disallowed_methods,
    reason = "plain #[test]s: they block the test's own thread, while the engines and Shoal under test are processes of their own"
)]

mod support;

use std::io::{Read, Write};
use std::time::Duration;

use support::{docker_cli_timeout, wait_until, RealCluster, ShoalDaemon};

/// `GET /metrics` through Shoal, over plain HTTP/1.0.
fn metrics(host: &str) -> String {
    let mut s = std::net::TcpStream::connect(host).expect("connect to shoal");
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: shoal\r\n\r\n")
        .expect("send");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out
}

/// Containers Shoal made on this engine (they carry `com.docker.swarm.id`), by name.
fn made_by_shoal(engine: &support::RealEngine) -> Vec<String> {
    let o = engine
        .docker(&[
            "ps",
            "-a",
            "--filter",
            "label=com.docker.swarm.id",
            "--format",
            "{{.Names}}",
        ])
        .expect_success();
    o.out().lines().map(str::to_string).collect()
}

#[test]
fn creates_on_a_frozen_engine_leave_no_orphan_once_it_thaws() {
    let cluster = RealCluster::new()
        .engines(2)
        .start()
        .expect("two dockerd engines start");
    // A short call and work timeout (a create is work), and the frozen engine kept
    // "healthy" for the whole test: the window between a freeze and the unhealthy mark is
    // what this is about.
    let shoal = ShoalDaemon::over(
        &cluster,
        &[
            "--engine-timeout",
            "3s",
            "--engine-work-timeout",
            "3s",
            "--engine-failure-retry",
            "1000",
        ],
    );
    let docker = |args: &[&str]| docker_cli_timeout(shoal.host(), args, Duration::from_secs(60));
    let (n1, n2) = (cluster.engine("node-1"), cluster.engine("node-2"));

    n1.freeze();
    // Named, and only node-1 will do: it fails, and it is not tried elsewhere.
    let named = docker(&[
        "create",
        "--name",
        "stuck",
        "-e",
        "constraint:node==node-1",
        "busybox",
        "true",
    ]);
    assert!(
        !named.success(),
        "a create on a frozen engine answered: {named}"
    );
    assert!(named.stderr.contains("did not answer"), "{named}");
    // Its name is booked while its fate is unknown: no second `stuck` on node-2.
    let twin = docker(&[
        "create",
        "--name",
        "stuck",
        "-e",
        "constraint:node==node-2",
        "busybox",
        "true",
    ]);
    assert!(!twin.success(), "{twin}");
    assert!(twin.stderr.contains("Conflict"), "{twin}");
    // Unnamed and only preferring node-1: tried there, then on node-2.
    let moved = docker(&[
        "create",
        "-e",
        "constraint:node==~node-1",
        "busybox",
        "true",
    ]);
    assert!(moved.success(), "{moved}");
    let id = moved.out().to_string();
    let node = docker(&["inspect", "--format", "{{.Node.Name}}", &id]).expect_success();
    assert_eq!(node.out(), "node-2");
    n1.thaw();

    // Whatever node-1 read while frozen is found by its swarm ID and removed.
    wait_until("no container of Shoal's left on node-1", 90, || {
        let left = made_by_shoal(n1);
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("node-1 still has {left:?}"))
        }
    });
    // Then the name is free again, and node-2 holds only the moved create.
    wait_until("the name `stuck` free again", 90, || {
        let o = docker(&[
            "create",
            "--name",
            "stuck",
            "-e",
            "constraint:node==node-2",
            "busybox",
            "true",
        ]);
        if o.success() {
            Ok(())
        } else {
            Err(o.to_string())
        }
    });
    let mut on_n2 = made_by_shoal(n2);
    on_n2.sort();
    assert_eq!(on_n2.len(), 2, "{on_n2:?}");
    assert!(on_n2.contains(&"stuck".to_string()), "{on_n2:?}");
    let m = metrics(shoal.host());
    let resolved: u64 = m
        .lines()
        .filter(|l| l.starts_with("shoal_create_resolutions_total{"))
        .filter(|l| l.contains("outcome=\"removed\"") || l.contains("outcome=\"absent\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert!(resolved >= 2, "two silent creates resolved: {m}");
    eprintln!(
        "resolutions: {}",
        m.lines()
            .filter(|l| l.starts_with("shoal_create_"))
            .collect::<Vec<_>>()
            .join("; ")
    );
}

#[test]
fn a_create_on_a_killed_engine_is_tried_on_another_node_at_once() {
    let cluster = RealCluster::new()
        .engines(2)
        .start()
        .expect("two dockerd engines start");
    // node-1 stays "healthy" in Shoal's eyes: the moment right after a crash.
    let shoal = ShoalDaemon::over(
        &cluster,
        &["--engine-timeout", "3s", "--engine-failure-retry", "1000"],
    );
    let docker = |args: &[&str]| docker_cli_timeout(shoal.host(), args, Duration::from_secs(60));
    cluster.engine("node-1").kill();

    // Named: a refused connection created nothing, so the name may go elsewhere.
    let started = std::time::Instant::now();
    let moved = docker(&[
        "create",
        "--name",
        "survivor",
        "-e",
        "constraint:node==~node-1",
        "busybox",
        "true",
    ]);
    assert!(moved.success(), "{moved}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "tried elsewhere at once, not after a timeout: {:?}",
        started.elapsed()
    );
    let node = docker(&["inspect", "--format", "{{.Node.Name}}", "survivor"]).expect_success();
    assert_eq!(node.out(), "node-2");
    assert_eq!(made_by_shoal(cluster.engine("node-2")), ["survivor"]);

    // Only node-1 will do: the answer is the engine's failure, not a placement refusal.
    let stuck = docker(&["create", "-e", "constraint:node==node-1", "busybox", "true"]);
    assert!(!stuck.success(), "{stuck}");
    assert!(stuck.stderr.contains("cannot connect to engine"), "{stuck}");

    let m = metrics(shoal.host());
    let line = m
        .lines()
        .find(|l| l.starts_with("shoal_create_retries_total{reason=\"connect\"}"))
        .unwrap_or_else(|| panic!("no connect retries in {m}"));
    assert!(line.ends_with(" 2"), "{line}");
}
