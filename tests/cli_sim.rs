//! The `shoal` binary itself, driven by the real `docker` CLI: `shoal manage --sim 3`, then
//! `docker version/info/ps/images/inspect` against it; and the one-line errors of bad input.

use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const SHOAL: &str = env!("CARGO_BIN_EXE_shoal");

/// A `shoal manage` child process, killed when dropped (even when the test fails).
struct Daemon {
    child: Child,
    host: String,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn manage(extra: &[&str]) -> Daemon {
    let port = free_port();
    let host = format!("127.0.0.1:{port}");
    let child = Command::new(SHOAL)
        .args(["manage", "-H", &host])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("shoal starts");
    Daemon { child, host }
}

fn docker(host: &str, args: &[&str]) -> Output {
    Command::new("docker")
        .arg("-H")
        .arg(format!("tcp://{host}"))
        .args(args)
        .output()
        .expect("the docker CLI runs (install docker.io)")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn wait_for_nodes(d: &Daemon, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let o = docker(&d.host, &["info", "--format", "{{json .SystemStatus}}"]);
        let healthy = String::from_utf8_lossy(&o.stdout)
            .matches("Healthy")
            .count();
        if o.status.success() && healthy == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "never saw {n} healthy nodes: {:?}",
            text(&o)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sim_cluster_through_the_docker_cli() {
    let d = manage(&["--sim", "3"]);
    wait_for_nodes(&d, 3);

    let (out, err) = text(&docker(&d.host, &["info"]));
    assert!(out.contains(" Nodes: 3"), "{out}");
    for n in ["sim-1", "sim-2", "sim-3"] {
        assert!(out.contains(&format!("  {n}: 127.0.0.1:")), "{out}");
    }
    assert!(out.contains("Containers: 9"), "{out}");
    assert!(
        !err.contains("WARNING") && !err.contains("rror"),
        "stderr: {err}"
    );

    let o = docker(&d.host, &["version"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("shoal/"), "{out}");
    assert!(out.contains("API version:       1.41"), "{out}");
    assert!(err.is_empty(), "{err}");

    let o = docker(&d.host, &["ps", "-a", "--format", "{{.Names}}"]);
    let (out, err) = text(&o);
    assert!(err.is_empty(), "{err}");
    let names: Vec<&str> = out.lines().collect();
    assert_eq!(names.len(), 9, "{out}");
    assert!(names.contains(&"sim-2/sim-2-c0"), "{out}");

    let (out, _) = text(&docker(
        &d.host,
        &["images", "--format", "{{.Repository}}:{{.Tag}}"],
    ));
    assert!(out.lines().any(|l| l == "busybox:latest"), "{out}");

    let o = docker(
        &d.host,
        &[
            "inspect",
            "--format",
            "{{.Name}} {{.Node.Name}}",
            "sim-3-c1",
        ],
    );
    assert_eq!(text(&o).0.trim(), "/sim-3-c1 sim-3", "{:?}", text(&o));
    let id = text(&docker(
        &d.host,
        &["ps", "-aq", "--no-trunc", "--filter", "name=sim-1-c2"],
    ))
    .0;
    let o = docker(
        &d.host,
        &["inspect", "--format", "{{.Name}}", &id.trim()[..7]],
    );
    assert_eq!(text(&o).0.trim(), "/sim-1-c2", "{:?}", text(&o));

    let o = docker(&d.host, &["inspect", "no-such-thing"]);
    assert!(!o.status.success());
    assert!(
        text(&o).1.contains("No such object: no-such-thing"),
        "{:?}",
        text(&o)
    );
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
    let dead = free_port();
    let d = manage(&[
        &format!("nodes://127.0.0.1:{dead}"),
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
        let (out, _) = text(&docker(&d.host, &["info"]));
        if out.contains("└ Status: Unhealthy") {
            assert!(out.contains("cannot connect to engine"), "{out}");
            break;
        }
        assert!(Instant::now() < deadline, "{out}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let o = docker(&d.host, &["ps", "-a"]);
    assert!(o.status.success(), "{:?}", text(&o));
}
