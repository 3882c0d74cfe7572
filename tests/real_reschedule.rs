//! Rescheduling on node failure, against real engines: one engine of three is killed; once
//! it has been unhealthy for `--reschedule-grace`, its containers with the policy
//! `on-node-failure` (by env or by label) run again on the other nodes, once each, with
//! their names, published ports, labels and swarm ids, started only if they ran; a
//! container without the policy stays where it was. `docker events` tells what moved from
//! where to where, and the metric counts it. Shoal is then restarted: from the labels alone
//! it moves nothing twice, and when the engine comes back it removes the stale originals:
//! each name means one container again, through Shoal and on the engines themselves.
#![allow(
    clippy::disallowed_methods,
    reason = "plain #[test]s: they block the test's own thread, while the engines and Shoal under test are processes of their own"
)]

mod support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::{docker_cli, http, wait_healthy, wait_until, DockerOutput, RealCluster, ShoalDaemon};

/// `docker inspect` of one container through Shoal, as JSON.
fn inspect(docker: &dyn Fn(&[&str]) -> DockerOutput, name: &str) -> serde_json::Value {
    let o = docker(&["inspect", name]).expect_success();
    let v: serde_json::Value = serde_json::from_str(&o.stdout).expect("inspect is JSON");
    v[0].clone()
}

/// `shoal_reschedules_total{outcome}` from Shoal's metrics.
fn reschedules(host: &str, outcome: &str) -> u64 {
    let m = http::get(host, "/metrics", Duration::from_secs(5))
        .map(|a| a.text())
        .unwrap_or_default();
    let prefix = format!("shoal_reschedules_total{{outcome=\"{outcome}\"}} ");
    m.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(0.0) as u64
}

/// Names of the containers an engine itself holds (all states).
fn names_on(engine: &support::RealEngine) -> Vec<String> {
    let o = engine
        .docker(&["ps", "-a", "--format", "{{.Names}}"])
        .expect_success();
    let mut v: Vec<String> = o.stdout.lines().map(str::to_owned).collect();
    v.sort();
    v
}

#[test]
fn a_dead_nodes_containers_run_again_elsewhere_once_and_the_returned_originals_go() {
    let t0 = Instant::now();
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let cluster = RealCluster::new()
        .engines(3)
        .start()
        .expect("three dockerd engines start");
    let victim = &cluster.engines()[0];
    let others = &cluster.engines()[1..];
    let shoal = ShoalDaemon::over(
        &cluster,
        &[
            "--engine-failure-retry",
            "2",
            "--engine-timeout",
            "2s",
            "--reschedule-grace",
            "2s",
        ],
    );
    let docker = |args: &[&str]| -> DockerOutput { docker_cli(shoal.host(), args) };
    // A soft constraint puts them on the victim while it is up, and lets the copies go
    // elsewhere once it is not.
    let on_victim = format!("constraint:node==~{}", victim.name());
    docker(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        "8080:80",
        "-l",
        "tier=web",
        "-e",
        "reschedule:on-node-failure",
        "-e",
        &on_victim,
        "-e",
        "A=1",
        "--restart",
        "unless-stopped",
        "busybox",
        "sleep",
        "1000",
    ])
    .expect_success();
    docker(&[
        "create",
        "--name",
        "idle",
        "-l",
        r#"com.docker.swarm.reschedule-policies=["on-node-failure"]"#,
        "-e",
        &on_victim,
        "busybox",
        "sleep",
        "1000",
    ])
    .expect_success();
    docker(&[
        "run", "-d", "--name", "plain", "-e", &on_victim, "busybox", "sleep", "1000",
    ])
    .expect_success();
    assert_eq!(
        names_on(victim),
        ["idle", "plain", "web"],
        "placed on the victim"
    );
    let web_before = inspect(&docker, "web");
    let swarm_id = web_before["Config"]["Labels"]["com.docker.swarm.id"]
        .as_str()
        .expect("a swarm id")
        .to_string();
    let idle_swarm_id = inspect(&docker, "idle")["Config"]["Labels"]["com.docker.swarm.id"]
        .as_str()
        .unwrap()
        .to_string();
    // The rescheduler reads the config it will need while the node is up (once a second).
    std::thread::sleep(Duration::from_secs(3));

    victim.kill();
    let killed = Instant::now();
    wait_until("web and idle to be rescheduled", 40, || {
        let o = docker(&["ps", "-a", "--format", "{{.Names}} {{.State}}"]);
        let lines: Vec<&str> = o.stdout.lines().collect();
        let moved = |name: &str| {
            others.iter().any(|e| {
                lines
                    .iter()
                    .any(|l| l.starts_with(&format!("{}/{name} ", e.name())))
            })
        };
        if moved("web") && moved("idle") {
            Ok(())
        } else {
            Err(o.to_string())
        }
    });
    println!(
        "rescheduled {:.1} s after the kill (grace 2 s)",
        killed.elapsed().as_secs_f64()
    );

    // The name means the copy, which has the original's config, running.
    let web = inspect(&docker, "web");
    assert_eq!(web["Name"], "/web");
    assert_ne!(web["Id"], web_before["Id"]);
    assert_eq!(web["State"]["Running"], true, "{web}");
    let labels = &web["Config"]["Labels"];
    assert_eq!(labels["com.docker.swarm.id"], swarm_id.as_str());
    assert_eq!(labels["tier"], "web");
    assert_eq!(
        labels["com.docker.swarm.rescheduled-from"],
        victim.tcp_addr().as_str()
    );
    assert_eq!(
        web["HostConfig"]["PortBindings"]["80/tcp"][0]["HostPort"],
        "8080"
    );
    assert_eq!(web["HostConfig"]["RestartPolicy"]["Name"], "unless-stopped");
    assert!(
        web["Config"]["Env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "A=1"),
        "{web}"
    );
    let idle = inspect(&docker, "idle");
    assert_eq!(
        idle["State"]["Running"], false,
        "it was not running: {idle}"
    );
    assert_eq!(
        idle["Config"]["Labels"]["com.docker.swarm.id"],
        idle_swarm_id.as_str()
    );

    // Exactly once, on the engines themselves; `plain` had no policy and stays put.
    std::thread::sleep(Duration::from_secs(3));
    let mut live: Vec<String> = others.iter().flat_map(names_on).collect();
    live.sort();
    assert_eq!(live, ["idle", "web"], "one copy each, and no plain");
    assert_eq!(reschedules(shoal.host(), "done"), 2);
    assert_eq!(reschedules(shoal.host(), "failed"), 0);

    // What moved, from where to where, in `docker events`.
    let events = |host: &str, action: &str, name: &str| -> Vec<serde_json::Value> {
        let until = (SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 1)
        .to_string();
        let o = docker_cli(
            host,
            &[
                "events",
                "--since",
                &since,
                "--until",
                &until,
                "--filter",
                "type=container",
                "--format",
                "{{json .}}",
            ],
        )
        .expect_success();
        o.stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["Action"] == action && e["Actor"]["Attributes"]["name"] == name)
            .collect()
    };
    let moved = events(shoal.host(), "reschedule", "web");
    assert_eq!(moved.len(), 1, "{moved:?}");
    let attrs = &moved[0]["Actor"]["Attributes"];
    assert_eq!(attrs["from_node"], victim.name());
    assert_eq!(attrs["from_addr"], victim.tcp_addr().as_str());
    let holder = others
        .iter()
        .find(|e| names_on(e).contains(&"web".to_string()))
        .expect("an engine holds web");
    assert_eq!(attrs["to_node"], holder.name());
    assert_eq!(attrs["to_addr"], holder.tcp_addr().as_str());
    assert_eq!(moved[0]["Actor"]["ID"], web["Id"]);
    assert_eq!(attrs["started"], "true");
    assert_eq!(events(shoal.host(), "reschedule", "idle").len(), 1);
    assert!(events(shoal.host(), "reschedule", "plain").is_empty());

    // A restarted Shoal has only the labels to go by: it moves nothing again while the
    // engine is still dead, and knows the originals for stale once it is back.
    drop(shoal);
    let discovery = format!("nodes://{}", cluster.tcp_addrs());
    let shoal = ShoalDaemon::start(&[
        &discovery,
        "--engine-refresh-min-interval",
        "1s",
        "--engine-refresh-max-interval",
        "2s",
        "--engine-failure-retry",
        "2",
        "--engine-timeout",
        "2s",
        "--reschedule-grace",
        "2s",
    ]);
    wait_healthy(shoal.host(), 2);
    std::thread::sleep(Duration::from_secs(4));
    let mut live: Vec<String> = others.iter().flat_map(names_on).collect();
    live.sort();
    assert_eq!(live, ["idle", "web"], "nothing moved twice");
    assert_eq!(reschedules(shoal.host(), "done"), 0);

    // Bring the engine back: its stale originals go, `plain` stays.
    victim.restart().expect("the victim starts again");
    let back = Instant::now();
    wait_until("the stale originals to be removed", 40, || {
        let names = names_on(victim);
        if names == ["plain"] {
            Ok(())
        } else {
            Err(format!("{names:?}"))
        }
    });
    println!(
        "stale originals removed {:.1} s after the engine was back",
        back.elapsed().as_secs_f64()
    );
    let docker = |args: &[&str]| -> DockerOutput { docker_cli(shoal.host(), args) };
    wait_until("one web and one idle through Shoal", 10, || {
        let o = docker(&["ps", "-a", "--format", "{{.Names}}"]);
        let count = |n: &str| {
            o.stdout
                .lines()
                .filter(|l| l.ends_with(&format!("/{n}")))
                .count()
        };
        if count("web") == 1 && count("idle") == 1 && count("plain") == 1 {
            Ok(())
        } else {
            Err(o.to_string())
        }
    });
    assert_eq!(
        inspect(&docker, "web")["Id"],
        web["Id"],
        "the name is the copy's"
    );
    assert_eq!(events(shoal.host(), "reschedule_cleanup", "web").len(), 1);
    assert_eq!(events(shoal.host(), "reschedule_cleanup", "idle").len(), 1);
    println!("whole test {:.1} s", t0.elapsed().as_secs_f64());
}
