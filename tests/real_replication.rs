//! Replicated managers (`shoal manage --replication`) over a real etcd and real dockerd
//! engines joined with `shoal join`: the managers elect one primary (`docker info` says
//! `Role` and `Primary`); a replica forwards what it does not answer itself, `docker logs
//! -f`, `docker exec -i` and the WebSocket attach included; when the primary is killed during a loop of
//! `docker run -d` through a replica, the replica takes over within the lease TTL and every
//! create answered 201 exists exactly once; with three managers, an engine and the primary
//! killed at the same moment, the new primary reschedules the engine's `on-node-failure`
//! container, once across the managers.
#![allow(
    clippy::disallowed_methods,
    reason = "plain #[test]s: they block the test's own thread, while etcd, the engines and Shoal under test are processes of their own"
)]

mod support;

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::etcd::EtcdCluster;
use support::join::JoinAgent;
use support::{
    docker_cli, docker_cli_stdin, docker_cli_timeout, http, wait_until, RealCluster, RealEngine,
    ShoalDaemon,
};

/// The primary's lease: short, so a takeover is seen quickly (etcd's shortest is 2 s).
const TTL_SECS: u64 = 3;

fn manage(discovery: &str, extra: &[&str]) -> ShoalDaemon {
    let mut args = vec![
        discovery,
        "--replication",
        "--replication-ttl",
        "3s",
        "--engine-refresh-min-interval",
        "1s",
        "--engine-refresh-max-interval",
        "2s",
    ];
    args.extend_from_slice(extra);
    ShoalDaemon::start(&args)
}

/// `Role` and `Primary` of a manager's `/info` (empty when it does not answer).
fn role(host: &str) -> (String, String) {
    let Ok(answer) = http::get(host, "/info", Duration::from_secs(3)) else {
        return (String::new(), String::new());
    };
    let v: serde_json::Value = serde_json::from_str(&answer.text()).unwrap_or_default();
    role_of(&v["SystemStatus"])
}

/// `Role` and `Primary` of a `SystemStatus` (`[[name, value], ...]`).
fn role_of(status: &serde_json::Value) -> (String, String) {
    let line = |name: &str| {
        status
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p[0] == name)
            .and_then(|p| p[1].as_str())
            .unwrap_or("")
            .to_string()
    };
    (line("Role"), line("Primary"))
}

/// Waits until exactly one manager is primary and every other names it; answers its index.
fn elected(managers: &[&ShoalDaemon], secs: u64) -> usize {
    let mut primary = 0;
    wait_until("one primary, named by every replica", secs, || {
        let roles: Vec<(String, String)> = managers.iter().map(|m| role(m.host())).collect();
        let primaries: Vec<usize> = (0..roles.len())
            .filter(|i| roles[*i].0 == "primary")
            .collect();
        let [p] = primaries[..] else {
            return Err(format!("{roles:?}"));
        };
        let host = managers[p].host();
        let all_name_it = roles
            .iter()
            .enumerate()
            .all(|(i, r)| i == p || (r.0 == "replica" && r.1 == host));
        if roles[p].1 != host || !all_name_it {
            return Err(format!("{roles:?}"));
        }
        primary = p;
        Ok(())
    });
    primary
}

/// Names of the containers an engine itself holds (all states).
fn names_on(engine: &RealEngine) -> Vec<String> {
    let o = engine
        .docker(&["ps", "-a", "--format", "{{.Names}}"])
        .expect_success();
    o.stdout.lines().map(str::to_owned).collect()
}

/// `shoal_reschedules_total{outcome="done"}` of a manager.
fn reschedules_done(host: &str) -> u64 {
    let m = http::get(host, "/metrics", Duration::from_secs(5))
        .map(|a| a.text())
        .unwrap_or_default();
    m.lines()
        .find_map(|l| l.strip_prefix("shoal_reschedules_total{outcome=\"done\"} "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(0.0) as u64
}

/// `docker exec -i NAME cat` through `host`, `input` on its stdin.
fn exec_cat(host: &str, name: &str, input: &[u8]) -> String {
    docker_cli_stdin(host, &["exec", "-i", name, "cat"], input)
        .expect_success()
        .stdout
}

/// Sends `text` into the container's stdin over `GET /containers/NAME/attach/ws` through
/// `host`, and answers what comes back up to a newline.
fn ws_echo(host: &str, name: &str, text: &str) -> String {
    let url = format!("ws://{host}/v1.41/containers/{name}/attach/ws?stream=1&stdin=1&stdout=1");
    support::ws_attach::echo_line(awc::Client::new, &url, text)
}

#[test]
fn a_replica_forwards_and_takes_over_and_every_answered_create_exists_once() {
    let t0 = Instant::now();
    let etcd = EtcdCluster::start(1);
    let cluster = RealCluster::new().engines(2).start().expect("two engines");
    let discovery = etcd.url("repl");
    let _agents: Vec<JoinAgent> = cluster
        .engines()
        .iter()
        .map(|e| JoinAgent::join(e, &discovery, TTL_SECS))
        .collect();
    let mut managers = vec![manage(&discovery, &[]), manage(&discovery, &[])];
    for m in &managers {
        support::wait_healthy(m.host(), 2);
    }
    let p = elected(&managers.iter().collect::<Vec<_>>(), 15);
    let r = 1 - p;
    let replica = managers[r].host().to_string();
    println!("elected after {:.1} s", t0.elapsed().as_secs_f64());

    // Through the replica: a create (placed by the primary), logs -f, exec -i.
    docker_cli(
        &replica,
        &[
            "run",
            "-d",
            "--name",
            "talker",
            "busybox",
            "sh",
            "-c",
            "echo one; sleep 1; echo two",
        ],
    )
    .expect_success();
    let logs = docker_cli(&replica, &["logs", "-f", "talker"]).expect_success();
    assert_eq!(logs.stdout, "one\ntwo\n", "logs -f streams to the end");
    docker_cli(
        &replica,
        &["run", "-d", "--name", "shell", "busybox", "sleep", "600"],
    )
    .expect_success();
    assert_eq!(
        exec_cat(&replica, "shell", b"via the replica\n"),
        "via the replica\n"
    );
    let ps = docker_cli(&replica, &["ps", "--format", "{{.Names}}"]).expect_success();
    assert!(ps.stdout.contains("shell"), "{ps}");
    // The WebSocket attach, relayed by the replica to the primary and on to the engine.
    docker_cli(
        &replica,
        &["run", "-d", "-i", "--name", "wscat", "busybox", "cat"],
    )
    .expect_success();
    assert_eq!(
        ws_echo(&replica, "wscat", "hello over ws\n"),
        "hello over ws\n"
    );

    // A loop of creates through the replica; the primary is killed during it.
    let answered = Arc::new(Mutex::new(Vec::<String>::new()));
    let failed = Arc::new(Mutex::new(0usize));
    let stop = Arc::new(AtomicBool::new(false));
    let looper = {
        let (answered, failed, stop, host) = (
            answered.clone(),
            failed.clone(),
            stop.clone(),
            replica.clone(),
        );
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                let name = format!("loop-{i}");
                i += 1;
                let o = docker_cli_timeout(
                    &host,
                    &["run", "-d", "--name", &name, "busybox", "sleep", "600"],
                    Duration::from_secs(20),
                );
                if o.success() {
                    answered.lock().unwrap().push(name);
                } else {
                    *failed.lock().unwrap() += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        })
    };
    wait_until("three creates before the kill", 30, || {
        let n = answered.lock().unwrap().len();
        (n >= 3).then_some(()).ok_or(format!("{n} answered"))
    });
    managers[p].kill();
    let killed = Instant::now();
    wait_until("the replica to become primary", TTL_SECS + 10, || {
        let (role, primary) = role(&replica);
        (role == "primary" && primary == replica)
            .then_some(())
            .ok_or(format!("{role} {primary}"))
    });
    let took = killed.elapsed();
    println!("replica primary {:.2} s after the kill", took.as_secs_f64());
    assert!(
        took <= Duration::from_secs(TTL_SECS) + Duration::from_millis(1500),
        "takeover took {took:?}"
    );
    let before = answered.lock().unwrap().len();
    wait_until("three creates after the takeover", 30, || {
        let n = answered.lock().unwrap().len();
        (n >= before + 3)
            .then_some(())
            .ok_or(format!("{n} answered"))
    });
    stop.store(true, Ordering::SeqCst);
    looper.join().expect("the loop ends");
    let answered = answered.lock().unwrap().clone();
    println!(
        "{} creates answered, {} failed during the takeover",
        answered.len(),
        failed.lock().unwrap()
    );
    let on_engines: Vec<String> = cluster.engines().iter().flat_map(names_on).collect();
    for name in &answered {
        let n = on_engines.iter().filter(|n| *n == name).count();
        assert_eq!(n, 1, "{name} is on the engines {n} times: {on_engines:?}");
    }
    // The new primary serves the loop's containers like any other.
    let ps = docker_cli(&replica, &["ps", "--format", "{{.Names}}"]).expect_success();
    assert!(
        ps.stdout.contains(answered.last().unwrap().as_str()),
        "{ps}"
    );
    println!("test took {:.1} s", t0.elapsed().as_secs_f64());
}

#[test]
fn the_primary_and_an_engine_die_together_and_the_new_primary_reschedules_once() {
    let t0 = Instant::now();
    let etcd = EtcdCluster::start(1);
    let cluster = RealCluster::new().engines(2).start().expect("two engines");
    let (victim, other) = (&cluster.engines()[0], &cluster.engines()[1]);
    let discovery = etcd.url("repl-resched");
    let _agents: Vec<JoinAgent> = cluster
        .engines()
        .iter()
        .map(|e| JoinAgent::join(e, &discovery, TTL_SECS))
        .collect();
    let fast = [
        "--engine-failure-retry",
        "1",
        "--engine-timeout",
        "2s",
        "--reschedule-grace",
        "2s",
    ];
    let mut managers: Vec<ShoalDaemon> = (0..3).map(|_| manage(&discovery, &fast)).collect();
    for m in &managers {
        support::wait_healthy(m.host(), 2);
    }
    let p = elected(&managers.iter().collect::<Vec<_>>(), 15);
    let some_replica = managers[(p + 1) % 3].host().to_string();
    let on_victim = format!("constraint:node==~{}", victim.name());
    docker_cli(
        &some_replica,
        &[
            "run",
            "-d",
            "--name",
            "mover",
            "-e",
            "reschedule:on-node-failure",
            "-e",
            &on_victim,
            "busybox",
            "sleep",
            "600",
        ],
    )
    .expect_success();
    assert_eq!(names_on(victim), ["mover"], "placed on the victim");
    // Every manager's rescheduler reads the config while the node is up (once a second).
    std::thread::sleep(Duration::from_secs(3));

    victim.kill();
    managers[p].kill();
    let killed = Instant::now();
    let rest: Vec<&ShoalDaemon> = managers
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != p)
        .map(|(_, m)| m)
        .collect();
    let new_primary = rest[elected(&rest, TTL_SECS + 10)].host().to_string();
    wait_until("mover to run on the other engine", 40, || {
        let o = other.docker(&["ps", "--format", "{{.Names}}"]);
        o.stdout
            .lines()
            .any(|n| n == "mover")
            .then_some(())
            .ok_or(o.stdout)
    });
    println!(
        "rescheduled {:.1} s after the kills",
        killed.elapsed().as_secs_f64()
    );
    // Give a second manager every chance to do it again.
    std::thread::sleep(Duration::from_secs(4));
    let copies = names_on(other).iter().filter(|n| *n == "mover").count();
    assert_eq!(copies, 1, "{:?}", names_on(other));
    let done: u64 = rest.iter().map(|m| reschedules_done(m.host())).sum();
    assert_eq!(done, 1, "one move across the managers");
    assert_eq!(reschedules_done(&new_primary), 1, "made by the new primary");
    let ps = docker_cli(
        &new_primary,
        &["ps", "--filter", "name=mover", "--format", "{{.Names}}"],
    )
    .expect_success();
    assert_eq!(ps.stdout.trim(), format!("{}/mover", other.name()), "{ps}");

    // etcd down past the TTL: the primary steps down (it cannot know its lease lives); a
    // replica still answers what it answers itself, and the rest is refused with 503. etcd
    // back: a primary again, and forwarding works.
    let replica = rest
        .iter()
        .map(|m| m.host().to_string())
        .find(|h| *h != new_primary)
        .expect("a replica");
    etcd.stop();
    let stopped = Instant::now();
    wait_until("the primary to step down", TTL_SECS + 10, || {
        let (role, _) = role(&new_primary);
        (role == "candidate").then_some(()).ok_or(role)
    });
    println!(
        "primary stepped down {:.1} s after etcd stopped",
        stopped.elapsed().as_secs_f64()
    );
    assert!(
        stopped.elapsed() < Duration::from_secs(TTL_SECS),
        "stepped down before its lease could expire"
    );
    docker_cli(&replica, &["version", "--format", "{{.Server.Version}}"]).expect_success();
    let refused = docker_cli(&replica, &["ps"]);
    assert!(
        !refused.success() && refused.stderr.contains("no primary manager is known"),
        "{refused}"
    );
    etcd.start_again();
    elected(&rest, 30);
    docker_cli(&replica, &["ps"]).expect_success();

    // A primary stopped cleanly (SIGTERM) revokes its lease: the other takes over at once.
    let p = elected(&rest, 10);
    let survivor = rest[1 - p].host().to_string();
    let _ = Command::new("kill")
        .args(["-TERM", &rest[p].pid().to_string()])
        .status();
    let stopped = Instant::now();
    wait_until("the survivor to take over", TTL_SECS + 10, || {
        let (role, _) = role(&survivor);
        (role == "primary").then_some(()).ok_or(role)
    });
    println!(
        "took over {:.2} s after SIGTERM",
        stopped.elapsed().as_secs_f64()
    );
    assert!(
        stopped.elapsed() < Duration::from_secs(TTL_SECS),
        "a clean stop hands over before the lease's TTL"
    );
    println!("test took {:.1} s", t0.elapsed().as_secs_f64());
    drop(managers);
}

#[test]
fn the_etcd_ledger_claims_once_keeps_done_moves_and_frees_a_dead_primarys_claim() {
    use shoal_actors::etcd::EtcdConfig;
    use shoal_actors::reschedule::{Entry, EtcdLedger, Ledger};
    use shoal_actors::scheduler::NodeId;
    let etcd_cluster = EtcdCluster::start(1);
    let url = etcd_cluster.url("ledger");
    actix_rt::System::new().block_on(async move {
        let config = EtcdConfig::parse(&url).unwrap();
        let etcd = config.load().await.unwrap();
        let mut client = etcd.connect().await.unwrap();
        let lease = || {
            let mut c = client.clone();
            async move { c.lease_grant(30, None).await.unwrap().id() }
        };
        let (la, lb, lc) = (lease().await, lease().await, lease().await);
        let dir = config.key("reschedule");
        let a = EtcdLedger::new(etcd.clone(), dir.clone(), la, "a".into());
        let b = EtcdLedger::new(etcd.clone(), dir.clone(), lb, "b".into());
        let c = EtcdLedger::new(etcd.clone(), dir.clone(), lc, "c".into());
        let (n1, n2) = (NodeId::new("n1:2375"), NodeId::new("n2:2375"));

        assert!(a.claim("s1", &n1).await.unwrap(), "the first claim wins");
        assert!(!b.claim("s1", &n1).await.unwrap(), "a second one does not");
        b.release("s1", &n1).await.unwrap();
        assert_eq!(
            a.entry("s1", &n1).await.unwrap(),
            Some(Entry::Claimed),
            "another's release leaves the claim"
        );
        a.done("s1", &n1, &n2, "c2").await.unwrap();
        a.release("s1", &n1).await.unwrap();
        let done = Some(Entry::Done {
            to: n2.clone(),
            container_id: "c2".into(),
        });
        assert_eq!(
            a.entry("s1", &n1).await.unwrap(),
            done,
            "a late release keeps it done"
        );
        // A done move outlives the primary that made it.
        client.lease_revoke(la).await.unwrap();
        assert_eq!(b.entry("s1", &n1).await.unwrap(), done);
        assert!(!b.claim("s1", &n1).await.unwrap(), "not made twice");
        b.forget("s1", &n1).await.unwrap();
        assert!(b.claim("s1", &n1).await.unwrap(), "over: it may move again");

        // A claim whose primary died (its lease gone) is free for the next one.
        assert!(c.claim("s2", &n1).await.unwrap());
        assert!(!b.claim("s2", &n1).await.unwrap());
        client.lease_revoke(lc).await.unwrap();
        assert_eq!(b.entry("s2", &n1).await.unwrap(), None);
        assert!(b.claim("s2", &n1).await.unwrap());
    });
    drop(etcd_cluster);
}

/// `Role: ...` and `Primary: ...` as `docker info` prints them over TLS.
fn role_over_tls(cli: &support::DockerTls) -> (String, String) {
    let o = cli.run(&["info", "--format", "{{json .SystemStatus}}"]);
    role_of(&serde_json::from_str(o.out()).unwrap_or_default())
}

/// Managers served with `--tlsverify` in front of `dockerd --tlsverify` engines: a replica
/// dials the primary with TLS, checking its certificate against the CA and showing its own
/// (the leg that carries every forwarded request). Through the replica, with the docker CLI
/// and a client certificate: a create placed by the primary, `exec -i` (a hijack relayed
/// over TLS twice) and `logs`.
#[test]
fn a_replica_forwards_to_the_primary_over_tls() {
    let dir = tempfile::tempdir().expect("a temp dir for certificates");
    let pki = support::pki::Pki::new(dir.path(), "repl");
    let etcd = EtcdCluster::start(1);
    let cluster = RealCluster::new()
        .engines(2)
        .tls(&pki)
        .start()
        .expect("two TLS engines");
    let discovery = etcd.url("repl-tls");
    let agent_args = pki.client("agent").engine_tls_args();
    let _agents: Vec<JoinAgent> = cluster
        .engines()
        .iter()
        .map(|e| JoinAgent::join_with(e, &discovery, TTL_SECS, &agent_args))
        .collect();
    // One certificate for every manager: served to clients and to the other managers,
    // shown to the engines and to the primary.
    let manager = pki.shoal(&["IP:127.0.0.1"]);
    let (ca, cert, key) = (
        manager.ca.display().to_string(),
        manager.cert.display().to_string(),
        manager.key.display().to_string(),
    );
    let tls = [
        "--tlsverify",
        "--tlscacert",
        &ca,
        "--tlscert",
        &cert,
        "--tlskey",
        &key,
    ];
    let alice = pki.client("alice");
    let first = manage(&discovery, &tls);
    let first_cli = support::DockerTls::new(first.host(), &alice.docker_cert_path());
    wait_until("the first manager to be primary", 20, || {
        let (role, primary) = role_over_tls(&first_cli);
        (role == "primary" && primary == first.host())
            .then_some(())
            .ok_or(format!("{role} {primary}"))
    });
    let second = manage(&discovery, &tls);
    let replica = support::DockerTls::new(second.host(), &alice.docker_cert_path());
    wait_until(
        "the second manager to be a replica of the first",
        20,
        || {
            let (role, primary) = role_over_tls(&replica);
            (role == "replica" && primary == first.host())
                .then_some(())
                .ok_or(format!("{role} {primary}"))
        },
    );

    replica
        .run(&[
            "run",
            "-d",
            "--name",
            "tls-shell",
            "busybox",
            "sleep",
            "600",
        ])
        .expect_success();
    let o = replica.with_stdin(&["exec", "-i", "tls-shell", "cat"], b"replica over tls\n");
    assert!(o.success() && o.stdout == "replica over tls\n", "{o}");
    replica
        .run(&[
            "run",
            "--name",
            "tls-talker",
            "busybox",
            "echo",
            "said once",
        ])
        .expect_success();
    let logs = replica.run(&["logs", "tls-talker"]).expect_success();
    assert_eq!(logs.stdout, "said once\n", "{logs}");
    // A replica places nothing: each was created once, by the primary, from a request
    // that reached it only over the TLS leg (it serves nothing else).
    let on_engines: Vec<String> = cluster.engines().iter().flat_map(names_on).collect();
    for name in ["tls-shell", "tls-talker"] {
        let n = on_engines.iter().filter(|n| *n == name).count();
        assert_eq!(n, 1, "{name} is on the engines {n} times: {on_engines:?}");
    }
}
