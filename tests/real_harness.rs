//! Smoke test of the real-engine harness itself: three labelled engines start, each
//! is its own node, and dropping the cluster leaves no dockerd and no container behind;
//! each engine has an address and network namespace of its own, outside the host's.
#![allow(
    clippy::disallowed_methods,
    reason = "plain #[test]s: they block the test's own thread, while the engines and Shoal under test are processes of their own"
)]

mod support;

use std::error::Error;
use std::process::Command;

use support::RealCluster;

fn pgrep(pattern: &str) -> String {
    let out = Command::new("pgrep")
        .args(["-a", "-f", pattern])
        .output()
        .expect("run pgrep");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn three_labelled_engines_start_isolated_and_clean_up() -> Result<(), Box<dyn Error>> {
    let cluster = RealCluster::three_labelled().start()?;
    eprintln!("3 engines started in {:?}", cluster.started_in());
    let dir = cluster.dir().display().to_string();

    for engine in cluster.engines() {
        let info = engine
            .docker(&["info", "--format", "{{.Name}} {{.Labels}}"])
            .expect_success();
        // dockerd does not keep the order of its --label flags.
        let (name, labels) = info.out().split_once(' ').expect("name and labels");
        let mut labels: Vec<&str> = labels.trim_matches(['[', ']']).split(' ').collect();
        labels.sort_unstable();
        let mut want: Vec<&str> = engine.labels().iter().map(String::as_str).collect();
        want.sort_unstable();
        assert_eq!(
            (name, labels),
            (engine.name(), want),
            "docker info of {}",
            engine.tcp_addr()
        );
    }

    // A unique argument, to find the container's process on the host afterwards.
    let marker = format!("{}", 100_000 + std::process::id());
    let node1 = cluster.engine("node-1");
    node1
        .docker(&["run", "-d", "--name", "web", "busybox", "sleep", &marker])
        .expect_success();
    let ps = node1
        .docker(&["ps", "--format", "{{.Names}}"])
        .expect_success();
    assert_eq!(ps.out(), "web");
    assert!(
        !pgrep(&format!("sleep {marker}")).is_empty(),
        "the container's process runs"
    );
    for other in &cluster.engines()[1..] {
        let ps = other
            .docker(&["ps", "-a", "--format", "{{.Names}}"])
            .expect_success();
        assert_eq!(
            ps.out(),
            "",
            "{} must not see node-1's container",
            other.name()
        );
    }

    // The engines also answer on their unix sockets.
    let sock = node1.unix_socket();
    let version = support::docker_cli(
        sock.to_str().unwrap(),
        &["version", "--format", "{{.Server.Version}}"],
    )
    .expect_success();
    assert!(!version.out().is_empty());

    let stopping = std::time::Instant::now();
    drop(cluster);
    eprintln!("cluster dropped in {:?}", stopping.elapsed());

    assert_eq!(pgrep(&dir), "", "no process of the harness remains");
    assert_eq!(
        pgrep(&format!("sleep {marker}")),
        "",
        "no container process remains"
    );
    assert!(!std::path::Path::new(&dir).exists(), "{dir} is removed");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")?;
    assert!(!mounts.contains(&dir), "no mount under {dir} remains");
    Ok(())
}

#[test]
fn a_panicking_test_still_stops_its_engines() {
    let dir = std::sync::Mutex::new(String::new());
    let result = std::panic::catch_unwind(|| {
        let cluster = RealCluster::new().engines(1).start().unwrap();
        *dir.lock().unwrap() = cluster.dir().display().to_string();
        cluster.engines()[0]
            .docker(&["run", "-d", "busybox", "sleep", "1000"])
            .expect_success();
        panic!("on purpose");
    });
    assert!(result.is_err());
    let dir = dir.into_inner().unwrap();
    assert!(!dir.is_empty());
    assert_eq!(pgrep(&dir), "", "no process of the harness remains");
    assert!(!std::path::Path::new(&dir).exists(), "{dir} is removed");
}

#[test]
fn a_killed_engine_restarts_on_its_address() -> Result<(), Box<dyn Error>> {
    let cluster = RealCluster::new().engines(1).start()?;
    let engine = &cluster.engines()[0];
    let addr = engine.tcp_addr();
    engine
        .docker(&["run", "-d", "--name", "c1", "busybox", "sleep", "1000"])
        .expect_success();
    engine.kill();
    assert!(
        !engine.docker(&["version"]).success(),
        "a killed engine does not answer"
    );
    engine.restart()?;
    assert_eq!(engine.tcp_addr(), addr);
    // live-restore is off, so the restarted engine has stopped the container.
    let state = engine
        .docker(&["inspect", "--format", "{{.State.Running}}", "c1"])
        .expect_success();
    assert_eq!(state.out(), "false");
    engine
        .docker(&["image", "inspect", "busybox:latest"])
        .expect_success();
    Ok(())
}

/// The network namespace of process `pid` (`net:[inode]`).
fn netns_of(pid: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/net"))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// Engines run outside the test's (the host's) network namespace, where their
/// `--bridge=none` would delete the host's `docker0` and their ports collide; each
/// has its own address and namespace, removed on drop. (That `docker0` is still there
/// after the whole suite is checked by `.ci/run`: a check here would also see other runs
/// on the machine.)
#[test]
fn engines_run_in_network_namespaces_of_their_own() -> Result<(), Box<dyn Error>> {
    let cluster = RealCluster::new().engines(2).start()?;
    let (a, b) = (&cluster.engines()[0], &cluster.engines()[1]);
    assert_ne!(a.tcp_addr(), b.tcp_addr());
    assert_ne!(a.netns(), b.netns());
    let host = netns_of("self");
    let mut seen = Vec::new();
    for engine in cluster.engines() {
        let addr = engine.tcp_addr();
        assert!(addr.ends_with(":2375"), "{addr}");
        assert!(!addr.starts_with("127."), "{addr}");
        let pid = engine.pid().expect("a running engine").to_string();
        let ns = netns_of(&pid);
        assert!(!ns.is_empty(), "namespace of {}", engine.name());
        assert_ne!(
            ns,
            host,
            "{} runs in the host's network namespace",
            engine.name()
        );
        seen.push(ns);
        engine
            .docker(&["run", "-d", "--name", "web", "busybox", "sleep", "1000"])
            .expect_success();
    }
    assert_ne!(seen[0], seen[1], "the engines share a network namespace");
    let namespaces = [a.netns(), b.netns()];
    drop(cluster);

    let left = std::fs::read_dir("/run/netns")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    for ns in namespaces {
        assert!(!left.contains(&ns), "network namespace {ns} remains");
    }
    Ok(())
}
