//! etcd discovery and `shoal join`, against a real etcd (tests/support/etcd.rs) and real
//! dockerd engines: a joined engine appears in `docker info` within a second; an agent
//! stopped with SIGTERM takes its node away at once (lease revoked), a killed one within
//! the TTL (lease expired); `shoal list etcd://` lists the joined engines; with etcd down
//! the manager keeps serving reads, proxied calls and creates on the nodes it knows, says
//! etcd is unreachable in `docker info`, and catches up when etcd is back (an engine that
//! joined meanwhile appears); TLS to a three-member etcd that loses a member.
#![allow(
    clippy::disallowed_methods,
    reason = "plain #[test]s: they block the test's own thread, while etcd, the engines and Shoal under test are processes of their own"
)]

mod support;

use std::process::Command;
use std::time::{Duration, Instant};
use support::etcd::EtcdCluster;
use support::join::JoinAgent;
use support::{docker_cli, RealCluster, ShoalDaemon};

/// The agents' lease: short, so expiry is seen quickly.
const TTL_SECS: u64 = 3;
/// etcd's expiry check (every 500 ms) and the manager's reaction.
const EXPIRY_SLACK: Duration = Duration::from_millis(900);

/// `GET /info` through Shoal, as text (fast enough to time a join to the tenth of a
/// second, which the `docker` CLI is not).
fn info(shoal: &ShoalDaemon) -> String {
    support::http::get(shoal.host(), "/info", Duration::from_secs(5))
        .map(|a| a.text())
        .unwrap_or_default()
}

/// Polls `/info` every 20 ms until `check` holds; the time it took.
fn time_until(
    shoal: &ShoalDaemon,
    what: &str,
    limit: Duration,
    check: impl Fn(&str) -> bool,
) -> Duration {
    let began = Instant::now();
    loop {
        let text = info(shoal);
        if check(&text) {
            return began.elapsed();
        }
        assert!(
            began.elapsed() < limit + Duration::from_secs(10),
            "never saw {what}: {text}\n{}",
            shoal.log_tail()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn manage(discovery: &str) -> ShoalDaemon {
    ShoalDaemon::start(&[
        discovery,
        "--engine-refresh-min-interval",
        "1s",
        "--engine-refresh-max-interval",
        "2s",
    ])
}

fn shoal_list(discovery: &str) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_shoal"))
        .args(["list", discovery])
        .output()
        .expect("shoal list runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn join_appears_within_a_second_and_leaves_within_the_ttl() {
    let etcd = EtcdCluster::start(1);
    let cluster = RealCluster::new().engines(2).start().expect("two engines");
    let discovery = etcd.url("join-test");
    let shoal = manage(&discovery);
    let (a, b) = (&cluster.engines()[0], &cluster.engines()[1]);
    time_until(&shoal, "etcd connected", Duration::from_secs(5), |t| {
        t.contains("connected (revision")
    });
    assert!(
        info(&shoal).contains(r#"["Nodes","0"]"#),
        "{}",
        info(&shoal)
    );

    // Join: the node is in `docker info` within a second of starting the agent.
    let mut agent_a = JoinAgent::join(a, &discovery, TTL_SECS);
    let took = time_until(&shoal, "a joined", Duration::from_secs(1), |t| {
        t.contains(&a.tcp_addr())
    });
    println!(
        "joined engine in docker info after {:.2} s",
        took.as_secs_f64()
    );
    assert!(took <= Duration::from_secs(1), "join took {took:?}");
    let mut agent_b = JoinAgent::join(b, &discovery, TTL_SECS);
    time_until(&shoal, "b joined", Duration::from_secs(1), |t| {
        t.contains(&b.tcp_addr())
    });
    support::wait_healthy(shoal.host(), 2);

    // `shoal list etcd://...` lists both, one a line.
    let (ok, out) = shoal_list(&discovery);
    assert!(ok, "{out}");
    let mut listed: Vec<&str> = out.lines().collect();
    listed.sort_unstable();
    let mut want = vec![a.tcp_addr(), b.tcp_addr()];
    want.sort_unstable();
    assert_eq!(listed, want);

    // The manager places and proxies on joined nodes like on any other.
    let run = docker_cli(
        shoal.host(),
        &["run", "-d", "--name", "joined", "busybox", "sleep", "600"],
    );
    assert!(run.success(), "{run}");

    // SIGTERM: the agent revokes its lease; the node goes at once.
    let stopped = Instant::now();
    assert!(
        agent_a.stop(),
        "the agent exits 0 on SIGTERM: {}",
        agent_a.log()
    );
    let took = time_until(&shoal, "a left", Duration::from_secs(TTL_SECS), |t| {
        !t.contains(&a.tcp_addr())
    });
    println!(
        "stopped agent's node gone after {:.2} s",
        took.as_secs_f64()
    );
    assert!(
        stopped.elapsed() <= Duration::from_secs(TTL_SECS),
        "{took:?}"
    );

    // SIGKILL: nothing revokes; the lease expires within the TTL.
    let killed = Instant::now();
    agent_b.kill();
    let took = time_until(&shoal, "b expired", Duration::from_secs(TTL_SECS), |t| {
        !t.contains(&b.tcp_addr())
    });
    println!(
        "killed agent's node gone after {:.2} s (TTL {TTL_SECS} s)",
        took.as_secs_f64()
    );
    // The lease ends TTL after its last renewal (at most a heartbeat before the kill);
    // etcd checks for expired leases every 500 ms: that, and the manager's reaction, is
    // allowed beyond the TTL.
    assert!(
        killed.elapsed() <= Duration::from_secs(TTL_SECS) + EXPIRY_SLACK,
        "{took:?}"
    );
    let (ok, out) = shoal_list(&discovery);
    assert!(ok && out.trim().is_empty(), "{out}");
}

#[test]
fn etcd_down_keeps_serving_and_catches_up() {
    let etcd = EtcdCluster::start(1);
    let cluster = RealCluster::new().engines(2).start().expect("two engines");
    let discovery = etcd.url("down-test");
    let shoal = manage(&discovery);
    let (a, b) = (&cluster.engines()[0], &cluster.engines()[1]);
    let _agent_a = JoinAgent::join(a, &discovery, TTL_SECS);
    support::wait_healthy(shoal.host(), 1);
    let docker = |args: &[&str]| docker_cli(shoal.host(), args);
    docker(&["run", "-d", "--name", "web", "busybox", "sleep", "600"]).expect_success();

    etcd.stop();
    let down = Instant::now();
    let took = time_until(
        &shoal,
        "etcd reported unreachable",
        Duration::from_secs(5),
        |t| t.contains("unreachable since"),
    );
    println!("etcd down seen after {:.2} s", took.as_secs_f64());
    // An engine joins while etcd is down: its agent keeps trying.
    let _agent_b = JoinAgent::join(b, &discovery, TTL_SECS);

    // The docker CLI shows the state and the warning.
    let o = docker(&["info"]);
    assert!(o.success(), "{o}");
    assert!(
        o.stdout.contains("Discovery Status: unreachable since"),
        "{o}"
    );
    assert!(
        format!("{}{}", o.stdout, o.stderr).contains("is unreachable since"),
        "the warning: {o}"
    );
    assert!(o.stdout.contains("Nodes: 1"), "{o}");
    // Reads, proxied calls and creates on the known node go on.
    let ps = docker(&["ps", "--format", "{{.Names}}"]).expect_success();
    assert!(ps.stdout.contains("/web"), "{ps}");
    let exec = docker(&["exec", "web", "echo", "still-here"]).expect_success();
    assert_eq!(exec.out(), "still-here");
    docker(&[
        "run",
        "-d",
        "--name",
        "while-down",
        "busybox",
        "sleep",
        "600",
    ])
    .expect_success();
    docker(&["inspect", "while-down"]).expect_success();

    // Hold etcd down for 4 s in all (longer than the agents' TTL, so leases must survive
    // the restart or be made again).
    if let Some(rest) = Duration::from_secs(4).checked_sub(down.elapsed()) {
        std::thread::sleep(rest);
    }
    let o = docker(&["info"]);
    assert!(o.stdout.contains("Nodes: 1"), "still the known node: {o}");
    etcd.start_again();
    let back = Instant::now();
    let took = time_until(&shoal, "catching up", Duration::from_secs(5), |t| {
        t.contains(&b.tcp_addr()) && t.contains(&a.tcp_addr()) && t.contains("connected (revision")
    });
    println!("caught up {:.2} s after etcd returned", took.as_secs_f64());
    assert!(back.elapsed() < Duration::from_secs(5));
    support::wait_healthy(shoal.host(), 2);
    let o = docker(&["info"]);
    assert!(
        !format!("{}{}", o.stdout, o.stderr).contains("unreachable"),
        "{o}"
    );
    // The log says both.
    let log = shoal.log();
    assert!(
        log.contains("etcd unreachable: keeping the nodes known so far"),
        "{log}"
    );
    assert!(log.contains("etcd reachable again: caught up"), "{log}");
}

/// TLS to a three-member etcd (what replicated managers run on) that requires client
/// certificates: `--discovery-opt kv.*` for `manage`, `join` and `list`; with one member
/// killed, the manager and the agents go on through the other two. The engines serve
/// `--tlsverify` too: `join` checks them with `--engine-tls*`, as `manage` dials them, and
/// refuses one it cannot reach over plain HTTP.
#[test]
fn tls_three_member_etcd_losing_one_member() {
    let dir = tempfile::tempdir().expect("a temp dir for certificates");
    let pki = support::pki::Pki::new(dir.path(), "etcd");
    let etcd = EtcdCluster::start_tls(3, &pki);
    let cluster = RealCluster::new()
        .engines(2)
        .tls(&pki)
        .start()
        .expect("two TLS engines");
    let (a, b) = (&cluster.engines()[0], &cluster.engines()[1]);
    let discovery = etcd.url("tls-test");
    let to_engines = pki.client("manager");
    let engine_tls = to_engines.engine_tls_args();
    let cert = etcd.client_cert().expect("a client certificate");
    let opts = [
        format!("kv.cacertfile={}", cert.ca.display()),
        format!("kv.certfile={}", cert.cert.display()),
        format!("kv.keyfile={}", cert.key.display()),
    ];
    let mut args: Vec<&str> = vec![&discovery];
    for o in &opts {
        args.extend(["--discovery-opt", o]);
    }
    args.extend(engine_tls.iter().map(String::as_str));
    args.extend([
        "--engine-refresh-min-interval",
        "1s",
        "--engine-refresh-max-interval",
        "2s",
    ]);
    let shoal = ShoalDaemon::start(&args);
    let discovery_opts: Vec<String> = opts
        .iter()
        .flat_map(|o| ["--discovery-opt".to_string(), o.clone()])
        .collect();
    // Without the engine's TLS files the agent's `/_ping` is refused, and it says so.
    let mut plain = JoinAgent::join_with(a, &discovery, TTL_SECS, &discovery_opts);
    let status = plain.wait();
    assert_eq!(status.code(), Some(2), "{}", plain.log());
    assert!(
        plain
            .log()
            .contains(&format!("no Docker engine answers at {}", a.tcp_addr())),
        "{}",
        plain.log()
    );
    let join_args = [discovery_opts, engine_tls].concat();
    let mut agent_a = JoinAgent::join_with(a, &discovery, TTL_SECS, &join_args);
    time_until(&shoal, "a joined over TLS", Duration::from_secs(1), |t| {
        t.contains(&a.tcp_addr())
    });

    // One member of three down: b still joins, and the manager sees it.
    etcd.stop_member(0);
    let _agent_b = JoinAgent::join_with(b, &discovery, TTL_SECS, &join_args);
    let took = time_until(
        &shoal,
        "b joined with a member down",
        Duration::from_secs(5),
        |t| {
            t.contains(&b.tcp_addr())
                && t.contains(&a.tcp_addr())
                && t.contains("connected (revision")
        },
    );
    println!(
        "joined with one member of three down after {:.2} s",
        took.as_secs_f64()
    );

    // `shoal list` with the same options reads both keys; without a client certificate
    // etcd refuses it, and the error says so.
    let list = |opts: &[String]| {
        Command::new(env!("CARGO_BIN_EXE_shoal"))
            .arg("list")
            .args(opts.iter().flat_map(|o| ["--discovery-opt", o.as_str()]))
            .arg(&discovery)
            .output()
            .expect("shoal list runs")
    };
    let out = list(&opts);
    assert!(out.status.success(), "{out:?}");
    let mut listed: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect();
    listed.sort_unstable();
    let mut want = vec![a.tcp_addr(), b.tcp_addr()];
    want.sort_unstable();
    assert_eq!(listed, want);
    let out = list(&opts[..1]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{out:?}");
    assert!(err.contains("etcd unreachable"), "{err}");

    // The agent's revoke reaches a live member.
    assert!(
        agent_a.stop(),
        "the agent exits 0 on SIGTERM: {}",
        agent_a.log()
    );
    time_until(&shoal, "a left", Duration::from_secs(3), |t| {
        !t.contains(&a.tcp_addr())
    });
    etcd.start_member(0);
}

/// A hung etcd (SIGSTOP: connections stay open, nothing answers) is noticed by the
/// HTTP/2 pings on the manager's watch, not only a closed connection; then caught up.
#[test]
fn a_hung_etcd_is_noticed_and_caught_up() {
    let etcd = EtcdCluster::start(1);
    let shoal = manage(&etcd.url("hung-test"));
    time_until(&shoal, "etcd connected", Duration::from_secs(5), |t| {
        t.contains("connected (revision")
    });
    etcd.freeze();
    let took = time_until(&shoal, "a hung etcd noticed", Duration::from_secs(8), |t| {
        t.contains("unreachable since")
    });
    println!("hung etcd noticed after {:.2} s", took.as_secs_f64());
    // Pings every 2 s, answered within 2 s, then one more attempt bounded by the 3 s call
    // timeout before etcd is said to be unreachable.
    assert!(took < Duration::from_secs(9), "{took:?}");
    etcd.thaw();
    let took = time_until(&shoal, "caught up", Duration::from_secs(5), |t| {
        t.contains("connected (revision")
    });
    println!("caught up {:.2} s after etcd resumed", took.as_secs_f64());
}

/// etcd down when the manager starts: it serves anyway, says so, and follows etcd once
/// it answers.
#[test]
fn a_manager_starts_while_etcd_is_down() {
    let etcd = EtcdCluster::start(1);
    etcd.stop();
    let shoal = manage(&etcd.url("start-test"));
    let took = time_until(
        &shoal,
        "etcd reported unreachable",
        Duration::from_secs(2),
        |t| t.contains("unreachable since"),
    );
    println!(
        "manager serving, etcd unreachable, {:.2} s after start",
        took.as_secs_f64()
    );
    etcd.start_again();
    time_until(&shoal, "etcd connected", Duration::from_secs(5), |t| {
        t.contains("connected (revision")
    });
}

#[test]
fn join_refuses_an_address_with_no_engine() {
    let out = Command::new(env!("CARGO_BIN_EXE_shoal"))
        .args(["join", "--advertise", "127.0.0.1:1", "etcd://127.0.0.1:1/x"])
        .output()
        .expect("shoal join runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("no Docker engine answers at 127.0.0.1:1"),
        "{err}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_shoal"))
        .args(["join", "--advertise", "127.0.0.1:1", "nodes://127.0.0.1:1"])
        .output()
        .expect("shoal join runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("needs an etcd:// discovery"), "{err}");
}
