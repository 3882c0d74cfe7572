//! The daily work of a `docker` CLI user, through Shoal in front of three real engines:
//! run (attached, interactive, with stdin), logs, exec, stats, top, port, the lifecycle
//! verbs, cp, export, diff, rm, prune, events. Each step asserts on output, exit code, and
//! where the container ended up.
#![allow(
    clippy::disallowed_methods,
    reason = "plain #[test]s: they block the test's own thread, while the engines and Shoal under test are processes of their own"
)]

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::{
    docker_cli, docker_cli_stdin, docker_cli_timeout, DockerOutput, RealCluster, ShoalDaemon,
};

struct Fx {
    cluster: RealCluster,
    shoal: ShoalDaemon,
}

impl Fx {
    fn docker(&self, args: &[&str]) -> DockerOutput {
        docker_cli(self.shoal.host(), args)
    }

    fn ok(&self, args: &[&str]) -> String {
        self.docker(args).expect_success().out().to_string()
    }

    /// The docker CLI through Shoal with `input` on its stdin.
    fn with_stdin(&self, args: &[&str], input: &[u8]) -> DockerOutput {
        docker_cli_stdin(self.shoal.host(), args, input)
    }

    fn node_of(&self, name: &str) -> String {
        self.ok(&["inspect", "--format", "{{.Node.Name}}", name])
    }
}

#[test]
fn daily_work_through_shoal() {
    let cluster = RealCluster::new()
        .engine("node-1", &["zone=a"])
        .engine("node-2", &["zone=a"])
        .engine("node-3", &["zone=b"])
        .start()
        .expect("engines start");
    let shoal = ShoalDaemon::over(&cluster, &[]);
    let fx = Fx { cluster, shoal };

    // run --rm: create, attach (hijack), start, wait, rm.
    let o = fx.docker(&["run", "--rm", "busybox", "echo", "hi"]);
    assert!(o.success(), "{o}");
    assert_eq!(o.stdout, "hi\n", "{o}");
    assert_eq!(fx.ok(&["ps", "-aq"]), "", "--rm left a container");

    // stdin, half-closed, reaches the engine.
    let o = fx.with_stdin(&["run", "-i", "--rm", "busybox", "cat"], b"data\n");
    assert!(o.success(), "{o}");
    assert_eq!(o.stdout, "data\n", "{o}");

    // A non-zero exit code comes back as the CLI's own.
    let o = fx.docker(&["run", "--rm", "busybox", "sh", "-c", "exit 3"]);
    assert_eq!(o.status.code(), Some(3), "{o}");

    // An interactive TTY (`script` gives the CLI a terminal): the shell reads our input,
    // and the CLI resizes the TTY as it starts.
    let cmd = format!(
        "docker -H tcp://{} run -it --rm busybox sh -c 'stty size; read line; echo got $line; tty'",
        fx.shoal.host()
    );
    let mut child = Command::new("timeout")
        .args(["60", "script", "-qec", &cmd, "/dev/null"])
        .env_remove("DOCKER_HOST")
        .env("COLUMNS", "100")
        .env("LINES", "30")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script runs");
    let mut stdin = child.stdin.take().expect("stdin");
    std::thread::sleep(Duration::from_secs(2));
    // A failed write (the CLI already ended) is reported with what the CLI printed.
    let typed = stdin.write_all(b"typed\n");
    drop(stdin);
    let o = child.wait_with_output().expect("ends");
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(typed.is_ok(), "typing failed ({typed:?}): {out} {err}");
    assert!(out.contains("got typed"), "{out}");
    assert!(out.contains("/dev/pts/"), "{out}");

    // A service, its logs, exec, stats, top, port.
    fx.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-e",
        "constraint:zone==b",
        "busybox",
        "sh",
        "-c",
        "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.1; done",
    ]);
    assert_eq!(fx.node_of("web"), "node-3");
    support::wait_until("web logs", 10, || {
        let o = fx.docker(&["logs", "--tail", "5", "-t", "web"]);
        let lines: Vec<&str> = o.stdout.lines().collect();
        if lines.len() == 5 && lines.iter().all(|l| l.contains("Z line ")) {
            Ok(())
        } else {
            Err(o.to_string())
        }
    });
    let o = docker_cli_timeout(
        fx.shoal.host(),
        &["logs", "-f", "web"],
        Duration::from_secs(2),
    );
    assert!(o.timed_out, "logs -f must follow until stopped: {o}");
    assert!(o.stdout.lines().count() > 5, "{o}");
    assert_eq!(fx.ok(&["exec", "web", "cat", "/etc/hostname"]).len(), 12);
    let o = fx.with_stdin(&["exec", "-i", "web", "cat"], b"via exec\n");
    assert!(o.success() && o.stdout == "via exec\n", "{o}");
    let o = fx.docker(&["exec", "web", "sh", "-c", "exit 7"]);
    assert_eq!(o.status.code(), Some(7), "{o}");
    let stats = fx.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.MemUsage}}",
        "web",
    ]);
    assert!(stats.starts_with("web "), "{stats}");
    let top = fx.ok(&["top", "web"]);
    assert!(top.contains("sleep") || top.contains("sh -c"), "{top}");
    fx.ok(&[
        "run", "-d", "--name", "ported", "-p", "8081:80", "busybox", "sleep", "1000",
    ]);
    let o = fx.docker(&["port", "ported"]);
    assert!(o.success(), "{o}");

    // Lifecycle verbs land on the container's node.
    fx.ok(&["pause", "web"]);
    assert_eq!(
        fx.ok(&["inspect", "--format", "{{.State.Status}}", "web"]),
        "paused"
    );
    fx.ok(&["unpause", "web"]);
    fx.ok(&["rename", "web", "web2"]);
    support::wait_until("renamed", 5, || {
        match fx
            .docker(&["ps", "--format", "{{.Names}}"])
            .stdout
            .contains("node-3/web2")
        {
            true => Ok(()),
            false => Err("not yet".into()),
        }
    });
    fx.ok(&["update", "--memory", "64m", "--memory-swap", "128m", "web2"]);
    fx.ok(&["restart", "-t", "1", "web2"]);
    fx.ok(&["kill", "web2"]);
    let code = fx.ok(&["wait", "web2"]);
    assert_eq!(code, "137");
    fx.ok(&["start", "web2"]);
    fx.ok(&["stop", "-t", "1", "web2"]);

    // cp both ways, export, diff.
    let dir = tempfile::tempdir().expect("temp dir");
    let local = dir.path().join("hostname");
    fx.ok(&["cp", "web2:/etc/hostname", &local.display().to_string()]);
    assert_eq!(
        std::fs::read_to_string(&local)
            .expect("copied")
            .trim()
            .len(),
        12
    );
    let up = dir.path().join("up.txt");
    std::fs::write(&up, "uploaded\n").expect("write");
    fx.ok(&["cp", &up.display().to_string(), "web2:/tmp/"]);
    let diff = fx.ok(&["diff", "web2"]);
    assert!(diff.contains("A /tmp/up.txt"), "{diff}");
    let tar = dir.path().join("web.tar");
    fx.ok(&["export", "-o", &tar.display().to_string(), "web2"]);
    assert!(std::fs::metadata(&tar).expect("exported").len() > 100_000);

    // commit, then run the new image: it exists on node-3 only, and pulls the run there.
    fx.ok(&["commit", "web2", "committed:1"]);
    let o = fx.docker(&[
        "run",
        "--name",
        "fromcommit",
        "committed:1",
        "cat",
        "/tmp/up.txt",
    ]);
    assert!(o.success() && o.stdout == "uploaded\n", "{o}");
    assert_eq!(fx.node_of("fromcommit"), "node-3");
    fx.ok(&["rm", "fromcommit"]);

    // Events: one merged stream of all nodes, with since and a filter.
    let o = fx.docker(&[
        "events",
        "--since",
        "5m",
        "--until",
        "0s",
        "--filter",
        "container=web2",
        "--format",
        "{{.Action}} {{.Actor.Attributes.name}}",
    ]);
    assert!(o.success(), "{o}");
    assert!(o.stdout.lines().any(|l| l == "rename web2"), "{o}");
    assert!(o.stdout.lines().any(|l| l.starts_with("kill ")), "{o}");

    // rm -f, and prune on every node with the results summed.
    fx.ok(&["rm", "-f", "web2", "ported"]);
    for node in ["node-1", "node-2"] {
        fx.ok(&[
            "create",
            "-e",
            &format!("constraint:node=={node}"),
            "busybox",
            "true",
        ]);
    }
    let pruned = fx.ok(&["container", "prune", "-f"]);
    assert_eq!(
        pruned.lines().filter(|l| l.len() == 64).count(),
        2,
        "{pruned}"
    );
    for e in fx.cluster.engines() {
        assert_eq!(
            e.docker(&["ps", "-aq"]).expect_success().out(),
            "",
            "{} not empty",
            e.name()
        );
    }
}
