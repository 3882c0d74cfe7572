//! The `shoal` binary itself, driven by the real `docker` CLI: `shoal manage --sim 3`, then
//! `docker version/info/ps/images/inspect` against it; and the one-line errors of bad input.
#![allow(
    clippy::disallowed_methods,
    reason = "plain #[test]s: they block the test's own thread, while the engines and Shoal under test are processes of their own"
)]

mod support;

use std::process::Command;
use std::time::{Duration, Instant};
use support::{docker_cli, served_addr, DockerOutput, ShoalDaemon};

const SHOAL: &str = env!("CARGO_BIN_EXE_shoal");

fn docker(d: &ShoalDaemon, args: &[&str]) -> DockerOutput {
    docker_cli(d.host(), args)
}

fn wait_for_nodes(d: &ShoalDaemon, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let o = docker(d, &["info", "--format", "{{json .SystemStatus}}"]);
        if o.success() && o.stdout.matches("Healthy").count() == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "never saw {n} healthy nodes: {o}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sim_cluster_through_the_docker_cli() {
    let d = ShoalDaemon::start(&["--sim", "3"]);
    wait_for_nodes(&d, 3);

    let o = docker(&d, &["info"]);
    assert!(o.stdout.contains(" Nodes: 3"), "{o}");
    for n in ["sim-1", "sim-2", "sim-3"] {
        assert!(o.stdout.contains(&format!("  {n}: 127.0.0.1:")), "{o}");
    }
    assert!(o.stdout.contains("Containers: 9"), "{o}");
    assert!(
        !o.stderr.contains("WARNING") && !o.stderr.contains("rror"),
        "{o}"
    );

    let o = docker(&d, &["version"]).expect_success();
    assert!(o.stdout.contains("shoal/"), "{o}");
    assert!(o.stdout.contains("API version:       1.41"), "{o}");
    assert!(o.stderr.is_empty(), "{o}");

    let o = docker(&d, &["ps", "-a", "--format", "{{.Names}}"]);
    assert!(o.stderr.is_empty(), "{o}");
    let names: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(names.len(), 9, "{o}");
    assert!(names.contains(&"sim-2/sim-2-c0"), "{o}");

    let o = docker(&d, &["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(o.stdout.lines().any(|l| l == "busybox:latest"), "{o}");

    let o = docker(
        &d,
        &[
            "inspect",
            "--format",
            "{{.Name}} {{.Node.Name}}",
            "sim-3-c1",
        ],
    );
    assert_eq!(o.out(), "/sim-3-c1 sim-3", "{o}");
    let id = docker(
        &d,
        &["ps", "-aq", "--no-trunc", "--filter", "name=sim-1-c2"],
    )
    .stdout;
    let o = docker(&d, &["inspect", "--format", "{{.Name}}", &id.trim()[..7]]);
    assert_eq!(o.out(), "/sim-1-c2", "{o}");

    let o = docker(&d, &["inspect", "no-such-thing"]);
    assert!(!o.success());
    assert!(o.stderr.contains("No such object: no-such-thing"), "{o}");

    // `shoal list -H` shows the node states `docker info` shows.
    let o = Command::new(SHOAL)
        .args(["list", "-H", d.host()])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{listed}");
    let info = docker(&d, &["info"]).stdout;
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 3, "{listed}");
    for line in lines {
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols[2], "Healthy", "{line}");
        assert_eq!(cols[3], "3 containers", "{line}");
        assert!(
            info.contains(&format!("  {}: {}", cols[0], cols[1])),
            "{line} not in {info}"
        );
    }
}

#[test]
fn list_prints_what_discovery_yields() {
    let o = Command::new(SHOAL)
        .args(["list", "nodes://10.0.0.[1:3]:2375,h:1"])
        .output()
        .unwrap();
    assert!(o.status.success());
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "10.0.0.1:2375\n10.0.0.2:2375\n10.0.0.3:2375\nh:1\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("engines");
    std::fs::write(&file, "# two\na:1\nb:2 # second\n").unwrap();
    let o = Command::new(SHOAL)
        .args(["list", &format!("file://{}", file.display())])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "a:1\nb:2\n");
}

#[test]
fn bad_input_is_a_one_line_error_not_a_crash() {
    for (args, says) in [
        (vec!["list", "consul://x"], "unknown discovery"),
        (
            vec!["list", "-H", "127.0.0.1:1"],
            "cannot ask shoal at 127.0.0.1:1",
        ),
        (
            vec!["list", "file:///nonexistent/engines"],
            "cannot read discovery file /nonexistent/engines",
        ),
        (
            vec!["manage", "-H", "127.0.0.1:0", "zk://x"],
            "unknown discovery",
        ),
        (
            vec!["manage", "-H", "127.0.0.1:0", "file:///nonexistent/engines"],
            "cannot read discovery file",
        ),
        (
            vec!["manage", "-H", "nowhere", "nodes://h:1"],
            "bad -H/--host",
        ),
        (
            vec!["manage", "-H", "127.0.0.1:0", "nodes://h[9:1]:1"],
            "bad range",
        ),
    ] {
        let o = Command::new(SHOAL).args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(err.contains(says), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn unreachable_engines_are_unhealthy_nodes_not_a_crash() {
    // A socket path in a directory of our own: nothing can listen there, whereas a
    // "free" TCP port may be taken by another process meanwhile.
    let dir = tempfile::tempdir().expect("a temp dir");
    let discovery = format!("unix://{}", dir.path().join("no-engine.sock").display());
    let d = ShoalDaemon::start(&[
        &discovery,
        "--engine-refresh-min-interval",
        "100ms",
        "--engine-refresh-max-interval",
        "200ms",
        "--engine-failure-retry",
        "2",
        "--engine-timeout",
        "500ms",
    ]);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let o = docker(&d, &["info"]);
        if o.stdout.contains("└ Status: Unhealthy") {
            assert!(o.stdout.contains("cannot connect to engine"), "{o}");
            break;
        }
        assert!(Instant::now() < deadline, "{o}");
        std::thread::sleep(Duration::from_millis(100));
    }
    docker(&d, &["ps", "-a"]).expect_success();
}

#[test]
fn the_served_address_is_read_from_text_and_json_lines() {
    let text = "2026-12-01T15:00:00Z  INFO shoal::listen: shoal is serving the Docker API \
                host=127.0.0.1:0 addr=127.0.0.1:41234\n";
    assert_eq!(served_addr(text).as_deref(), Some("127.0.0.1:41234"));
    let coloured = "\u{1b}[32m INFO\u{1b}[0m \u{1b}[2mshoal::listen\u{1b}[0m: shoal is serving \
                    the Docker API \u{1b}[3mhost\u{1b}[0m\u{1b}[2m=\u{1b}[0m127.0.0.1:0 \
                    \u{1b}[3maddr\u{1b}[0m\u{1b}[2m=\u{1b}[0m127.0.0.1:5\n";
    assert_eq!(served_addr(coloured).as_deref(), Some("127.0.0.1:5"));
    let json = r#"{"level":"INFO","fields":{"message":"shoal is serving the Docker API","host":"127.0.0.1:0","addr":"127.0.0.1:7"}}"#;
    assert_eq!(served_addr(json).as_deref(), Some("127.0.0.1:7"));
    assert_eq!(served_addr("INFO something else addr=1.2.3.4:5"), None);
}
