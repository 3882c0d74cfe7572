//! Honest state for a sick node, against real engines: one engine of three is frozen
//! (SIGSTOP: it accepts connections and answers nothing). Once Shoal marks it unhealthy,
//! `docker ps` hides its containers, `docker ps -a` shows them `Host Down` (classic Swarm's
//! words), `docker info` says `Unhealthy`, and a call to its container fails at once with a
//! 5xx naming the node, instead of after the engine timeout; calls that were waiting on it
//! (`logs -f`, `wait`) end at the mark. After SIGCONT the next calls go through again,
//! without waiting for the longest back-off.
#![allow(
    clippy::disallowed_methods,
    reason = "plain #[test]s: they block the test's own thread, while the engines and Shoal under test are processes of their own"
)]

mod support;

use std::time::{Duration, Instant};
use support::{
    docker_cli, docker_cli_timeout, wait_until, DockerOutput, RealCluster, RealEngine, ShoalDaemon,
};

/// Thaws a frozen engine when dropped, so a failing test never leaves a dockerd stopped.
struct Frozen<'a>(&'a RealEngine);

impl<'a> Frozen<'a> {
    fn freeze(engine: &'a RealEngine) -> Self {
        engine.freeze();
        Frozen(engine)
    }
}

impl Drop for Frozen<'_> {
    fn drop(&mut self) {
        self.0.thaw();
    }
}

/// Engine calls time out after this; a refused call must come back well before.
const ENGINE_TIMEOUT_SECS: u64 = 5;

#[test]
fn a_frozen_node_is_shown_as_down_and_refused_at_once_then_serves_again() {
    let cluster = RealCluster::new()
        .engines(3)
        .start()
        .expect("three dockerd engines start");
    let (healthy, sick) = (&cluster.engines()[0], &cluster.engines()[1]);
    healthy
        .docker(&["run", "-d", "--name", "api", "busybox", "sleep", "1000"])
        .expect_success();
    sick.docker(&["run", "-d", "--name", "web", "busybox", "sleep", "1000"])
        .expect_success();

    let timeout = format!("{ENGINE_TIMEOUT_SECS}s");
    let shoal = ShoalDaemon::over(
        &cluster,
        &["--engine-timeout", &timeout, "--engine-failure-retry", "2"],
    );
    let docker = |args: &[&str]| -> DockerOutput { docker_cli(shoal.host(), args) };
    let (sick_name, healthy_name) = (sick.name().to_string(), healthy.name().to_string());
    let web = format!("{sick_name}/web");
    let api = format!("{healthy_name}/api");

    let o = docker(&["ps", "--format", "{{.Names}} {{.Status}}"]).expect_success();
    assert!(o.stdout.contains(&format!("{web} Up")), "{o}");

    // Calls that wait on the engine, under way when it freezes: they end at the mark.
    let waiting = |args: &'static [&'static str]| {
        let host = shoal.host().to_string();
        std::thread::spawn(move || {
            let o = docker_cli_timeout(&host, args, Duration::from_secs(90));
            (o, Instant::now())
        })
    };
    let follow = waiting(&["logs", "-f", "web"]);
    let wait = waiting(&["wait", "web"]);
    std::thread::sleep(Duration::from_millis(500));
    let frozen = Frozen::freeze(sick);
    let froze = Instant::now();
    wait_until("the frozen node to be unhealthy", 60, || {
        let o = docker(&["info"]);
        let sick_block = o
            .stdout
            .split(&format!(" {sick_name}: "))
            .nth(1)
            .unwrap_or("");
        let status = sick_block.lines().find(|l| l.contains("└ Status:"));
        match status {
            Some(l) if l.contains("Unhealthy") => Ok(()),
            other => Err(format!("{other:?} in {o}")),
        }
    });
    println!(
        "frozen node unhealthy after {:.1} s",
        froze.elapsed().as_secs_f64()
    );
    let marked = froze.elapsed();
    for (what, call) in [("logs -f", follow), ("wait", wait)] {
        let (o, ended) = call.join().expect("the call's thread");
        let after = ended.duration_since(froze);
        println!(
            "`docker {what}` ended {:.1} s after the freeze",
            after.as_secs_f64()
        );
        // dockerd answers both heads at once, so both are streams cut short: the CLI
        // fails on the broken answer.
        assert!(!o.success(), "{o}");
        println!("`docker {what}`: {}", o.stderr.trim());
        assert!(
            after < marked + Duration::from_secs(5),
            "`docker {what}` ended {after:?} after the freeze, the mark came after {marked:?}: {o}"
        );
    }

    // `docker ps` hides what the sick node last listed; `-a` shows it as `Host Down`.
    let o = docker(&["ps", "--format", "{{.Names}} {{.Status}}"]).expect_success();
    assert!(!o.stdout.contains(&web), "{o}");
    assert!(o.stdout.contains(&format!("{api} Up")), "{o}");
    let o = docker(&["ps", "-a", "--format", "{{.Names}}|{{.Status}}"]).expect_success();
    assert!(
        o.stdout.lines().any(|l| l == format!("{web}|Host Down")),
        "{o}"
    );
    assert!(o.stdout.contains(&format!("{api}|Up")), "{o}");

    // `docker info` counts only healthy nodes' containers and says which node is sick.
    let o = docker(&["info"]).expect_success();
    assert_eq!(o.stdout.matches("└ Status: Unhealthy").count(), 1, "{o}");
    assert_eq!(o.stdout.matches("└ Status: Healthy").count(), 2, "{o}");

    // Calls to its container are refused at once, naming the node; the others serve.
    for args in [
        vec!["inspect", "web"],
        vec!["top", "web"],
        vec!["logs", "web"],
    ] {
        let began = Instant::now();
        let o = docker(&args);
        let took = began.elapsed();
        assert!(!o.success(), "{o}");
        assert!(
            o.stderr
                .contains(&format!("running on unhealthy node {sick_name}")),
            "{o}"
        );
        assert!(
            took < Duration::from_secs(ENGINE_TIMEOUT_SECS - 2),
            "`docker {}` took {took:?}",
            args.join(" ")
        );
    }
    let (status, _) = shoal_get(shoal.host(), "/containers/web/json");
    assert_eq!(status, 503, "a call to a sick node's container is a 503");

    // The cluster page's JSON says so too.
    let (status, body) = shoal_get(shoal.host(), "/shoal/api/cluster");
    assert_eq!(status, 200, "{body}");
    let cluster: serde_json::Value = serde_json::from_str(&body).expect("cluster JSON");
    let health = |name: &str| {
        cluster["nodes"]
            .as_array()
            .and_then(|nodes| nodes.iter().find(|n| n["name"] == name))
            .map(|n| n["health"].clone())
    };
    assert_eq!(health(&sick_name), Some("Unhealthy".into()), "{body}");
    assert_eq!(health(&healthy_name), Some("Healthy".into()), "{body}");
    docker(&["inspect", "api"]).expect_success();
    docker(&["top", "api"]).expect_success();

    drop(frozen);
    let thawed = Instant::now();
    wait_until("the thawed node to serve again", 30, || {
        let o = docker(&["inspect", "--format", "{{.State.Running}}", "web"]);
        if o.success() && o.out() == "true" {
            Ok(())
        } else {
            Err(o.to_string())
        }
    });
    let back = thawed.elapsed();
    println!(
        "thawed node serving again after {:.1} s",
        back.as_secs_f64()
    );
    assert!(back < Duration::from_secs(10), "{back:?}");
    docker(&["top", "web"]).expect_success();
    let o = docker(&["ps", "--format", "{{.Names}} {{.Status}}"]).expect_success();
    assert!(o.stdout.contains(&format!("{web} Up")), "{o}");
}

/// The status and body of `GET path` on Shoal (an answer of known length).
fn shoal_get(host: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(host).expect("connect to shoal");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: shoal\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).expect("an answer");
    let answer = String::from_utf8_lossy(&answer).to_string();
    let status = answer.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}
