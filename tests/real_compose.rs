//! The real `docker-compose` of this machine through Shoal in front of three real engines:
//! `up -d`, `ps`, `logs`, `exec`, `down`, with a network and a named volume the services
//! share, which pull both services onto one node.
#![allow(
    clippy::disallowed_methods,
    reason = "plain #[test]s: they block the test's own thread, while the engines and Shoal under test are processes of their own"
)]

mod support;

use std::process::Command;
use support::{RealCluster, ShoalDaemon};

const COMPOSE: &str = r#"version: "3.7"
services:
  web:
    image: busybox
    command: sh -c "echo web up; sleep 1000"
    volumes: ["data:/data"]
    networks: [back]
    stop_grace_period: 1s
  worker:
    image: busybox
    command: sh -c "echo worker up; sleep 1000"
    depends_on: [web]
    networks: [back]
    stop_grace_period: 1s
networks:
  back: {}
volumes:
  data: {}
"#;

fn compose(host: &str, dir: &std::path::Path, args: &[&str]) -> (bool, String) {
    let o = Command::new("timeout")
        .arg("120")
        .arg("docker-compose")
        .args(["-p", "shoalapp", "-f"])
        .arg(dir.join("docker-compose.yml"))
        .args(args)
        .env("DOCKER_HOST", format!("tcp://{host}"))
        .env("COMPOSE_INTERACTIVE_NO_CLI", "1")
        .output()
        .expect("docker-compose runs (install docker-compose)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success(), text)
}

#[test]
fn docker_compose_up_ps_logs_exec_down() {
    let cluster = RealCluster::new()
        .engines(3)
        .start()
        .expect("engines start");
    let shoal = ShoalDaemon::over(&cluster, &[]);
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("docker-compose.yml"), COMPOSE).expect("write compose file");
    let host = shoal.host();

    let (ok, out) = compose(host, dir.path(), &["up", "-d"]);
    assert!(ok, "up: {out}");
    let (ok, out) = compose(host, dir.path(), &["ps"]);
    assert!(ok, "ps: {out}");
    assert!(
        out.contains("shoalapp_web_1") && out.contains("shoalapp_worker_1"),
        "{out}"
    );
    assert_eq!(out.matches(" Up ").count(), 2, "{out}");
    let (ok, out) = compose(host, dir.path(), &["logs", "--no-color"]);
    assert!(
        ok && out.contains("web up") && out.contains("worker up"),
        "logs: {out}"
    );
    let (ok, out) = compose(
        host,
        dir.path(),
        &[
            "exec",
            "-T",
            "web",
            "sh",
            "-c",
            "echo saved > /data/f; cat /data/f",
        ],
    );
    assert!(ok && out.contains("saved"), "exec: {out}");

    // Both services joined the project's network, which lives on one node: they are there.
    let node = |name: &str| {
        support::docker_cli(host, &["inspect", "--format", "{{.Node.Name}}", name])
            .expect_success()
            .out()
            .to_string()
    };
    assert_eq!(node("shoalapp_web_1"), node("shoalapp_worker_1"));

    let (ok, out) = compose(host, dir.path(), &["down", "-v"]);
    assert!(ok, "down: {out}");
    for e in cluster.engines() {
        assert_eq!(
            e.docker(&["ps", "-aq"]).expect_success().out(),
            "",
            "{} keeps containers",
            e.name()
        );
        let nets = e
            .docker(&["network", "ls", "--format", "{{.Name}}"])
            .expect_success();
        assert!(
            !nets.stdout.contains("shoalapp_back"),
            "{} keeps the network",
            e.name()
        );
    }
}
